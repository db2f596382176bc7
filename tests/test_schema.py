"""The OpenAPI schema is true to the API: schemathesis generates requests from
``/api/schema/`` for every ``/api/v1/`` operation, sends them in-process to the
WSGI app, as an anonymous client and as a token client holding every model
permission, and checks that no response is a server error and that every
response has a documented status code, content type and a body matching its
schema.

The number of examples per operation and caller comes from
``PORTAL_FUZZ_EXAMPLES`` (default 100, what the whole suite can afford on two
cores). By default the examples are the same on every run, so a red run can be
replayed as it was; ``PORTAL_FUZZ_RANDOM=1`` draws new ones each run (a failure
prints the request that caused it). ``make fuzz`` runs this file alone, with
both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core import signals
from django.db import close_old_connections
from django.db.models import Model
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.api import FeedbackThrottle
from catalog.models import Feedback, Person, Product
from portal.wsgi import application
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, ProductFactory, UserFactory, api_key
from uploads.models import Image

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex=r"^/(api/v1/|feedback/|fruits/|upload/)"
)

# Every documented status code is checked, not only 5xx: the API's schema
# documents its error responses (see core.schema), so an
# undocumented code or an error body of another shape is a lie worth failing on.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,  # Location and ETag where documented, each of its form
    response_schema_conformance,
]

MODELS: dict[str, type[Model]] = {
    "/api/v1/people/": Person,
    "/api/v1/feedback/": Feedback,
    "/api/v1/products/": Product,
    "/api/v1/images/": Image,
}


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Calling the WSGI app directly fires request_started/finished, whose handler
    would close the connection holding the test's transaction; Django's own test
    client detaches it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _generous_feedback_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anonymous creates would otherwise get 429 after ten examples (the throttle
    has its own tests); keep them reaching validation and the database."""
    monkeypatch.setattr(FeedbackThrottle, "rate", "100000/min", raising=False)


@pytest.fixture
def _some_rows(db: None) -> None:
    """A few rows of each kind for detail, update, delete and reprocess to find:
    images really stored and processed, so their originals can be fetched."""
    product = ProductFactory(image=ImageFactory(size=(64, 48)))
    ProductFactory()
    for _ in range(3):
        PersonFactory()
        FeedbackFactory(product=product)
    ImageFactory(size=(80, 60), processed=False)


@pytest.fixture(params=["anonymous", "token"])
def auth_headers(request: pytest.FixtureRequest, db: None) -> dict[str, str]:
    if request.param == "anonymous":
        return {}
    user = UserFactory(username="fuzzer")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["catalog", "uploads"]))
    return {"Authorization": f"Token {api_key(user)}"}


def aim_at_a_row(case: Any) -> None:
    """Point non-negative generated ids at rows that exist, so updates, deletes and
    reprocessing get past the 404; negative ids still exercise it."""
    raw = (case.path_parameters or {}).get("id")
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        return
    model = next(m for prefix, m in MODELS.items() if case.path.startswith(prefix))
    pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:10])
    if pks:
        case.path_parameters["id"] = pks[raw % len(pks)]


EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "100"))
RANDOM = os.environ.get("PORTAL_FUZZ_RANDOM", "") not in ("", "0")


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("_some_rows")
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # a request may touch the disk and Pillow: timing is not what is tested
    derandomize=not RANDOM,
    database=None,  # nothing is written into the checkout
    suppress_health_check=[
        # The rows, the token and the throttle are set up once per test, not
        # per example, on purpose: what one example writes (a delete, a new
        # review) is there for the next, as on a live server. Hypothesis warns
        # because it cannot reset them between examples; the other health
        # checks (slow or filtered generation, oversized data) stay on.
        HealthCheck.function_scoped_fixture,
    ],
)
def test_the_api_keeps_to_its_schema(case: Any, auth_headers: dict[str, str]) -> None:
    aim_at_a_row(case)
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
