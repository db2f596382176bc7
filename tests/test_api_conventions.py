"""Conventions every endpoint of ``/api/v1/`` keeps: JSON errors and status codes,
pagination, token auth, a constant number of queries per page, the OpenAPI
schema and its local Swagger UI."""

from __future__ import annotations

import inspect
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.core.cache.backends import locmem
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_filters import rest_framework as django_filters
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework import routers, viewsets
from rest_framework.test import APIClient

from catalog.api import PersonViewSet, ProductSerializer
from catalog.models import Feedback, Product
from core import api, filters
from portal.urls import router
from tests.factories import (
    FeedbackFactory,
    ImageFactory,
    PersonFactory,
    ProductFactory,
    UserFactory,
    api_key,
    jpeg_bytes,
)
from uploads.models import Image

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _counts_forgotten() -> Iterator[None]:
    """Counts a process keeps outlive a test's rows; each test starts without them."""
    api.forget_counts()
    yield
    api.forget_counts()


ENDPOINTS = ["/api/v1/people/", "/api/v1/feedback/", "/api/v1/products/", "/api/v1/images/"]


def small_images(n: int) -> list[Image]:
    """Processed images, small enough that a few hundred take seconds."""
    return [ImageFactory(size=(64, 48)) for _ in range(n)]


def upload(client: APIClient, data: bytes, name: str = "photo.jpg") -> Any:
    return client.post(
        "/api/v1/images/",
        {"file": SimpleUploadedFile(name, data, content_type="image/jpeg")},
        format="multipart",
    )


# --- Errors and status codes --------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unknown_id_is_a_json_404(visitor: APIClient, endpoint: str) -> None:
    response = visitor.get(f"{endpoint}999999/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_search_with_a_null_character_is_a_400_object(visitor: APIClient, endpoint: str) -> None:
    response = visitor.get(endpoint, {"search": "a\x00b"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed in an address."}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/feedback/cursor{}", None),
        ("get", "/api/v1/images/{id}/original{}", None),
        ("get", "/api/v1/images/{id}/url{}?spec=width-40", None),
        ("post", "/api/v1/images/{id}/focal-point{}", {"x": 0.5, "y": 0.5}),
        ("post", "/api/v1/images/{id}/reprocess{}", {}),
    ],
)
def test_an_action_answers_with_a_format_suffix_as_without(
    token_client: APIClient, method: str, path: str, body: dict[str, float] | None
) -> None:
    image = ImageFactory(size=(64, 48))
    send = getattr(token_client, method)
    kwargs = {"format": "json"} if body is not None else {}

    plain = send(path.format("/", id=image.pk), body, **kwargs)
    suffixed = send(path.format(".json", id=image.pk), body, **kwargs)

    assert plain.status_code < 400, plain.content
    assert suffixed.status_code == plain.status_code, suffixed.content


@pytest.mark.parametrize("path", ["/api/v1/products/{id}/?format=yaml", "/api/v1/products/?format=xml"])
def test_a_format_there_is_no_renderer_for_is_a_406_naming_those_there_are(
    visitor: APIClient, path: str
) -> None:
    product = ProductFactory()

    response = visitor.get(path.format(id=product.pk))

    assert response.status_code == 406
    assert response.json()["detail"].endswith("use one of: json, api.")
    assert visitor.get(f"/api/v1/products/{product.pk}/?format=json").status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/products/{id}.yaml", "/api/v1/feedback/0.5/", "/api/v1/people/1.5"]
)
def test_a_suffix_there_is_no_renderer_for_is_an_address_that_does_not_exist(
    visitor: APIClient, path: str
) -> None:
    product = ProductFactory()

    response = visitor.get(path.format(id=product.pk))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_bare_django_validation_error_is_a_400_whose_detail_is_a_string() -> None:
    response = api.exception_handler(DjangoValidationError(["Bad cursor.", "Try again."]), {})

    assert response is not None
    assert (response.status_code, response.data) == (400, {"detail": "Bad cursor. Try again."})


@pytest.mark.parametrize("debug", [False, True])
def test_a_write_without_the_trailing_slash_is_redirected_keeping_its_method(
    token_client: APIClient, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug  # Django's own redirect raised there instead
    review = {"title": "No slash", "name": "Ann", "text": "Kept."}

    redirected = token_client.post("/api/v1/feedback", review, format="json")
    followed = token_client.post("/api/v1/feedback", review, format="json", follow=True)

    assert (redirected.status_code, redirected["Location"]) == (308, "/api/v1/feedback/")
    assert followed.status_code == 201
    assert Feedback.objects.filter(title="No slash").count() == 1
    assert token_client.get("/api/v1/feedback").status_code == 301  # a read may become a GET


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, "/api/v1/feedback/cursor/"])
def test_a_search_of_too_many_words_is_a_400_naming_the_limit(visitor: APIClient, endpoint: str) -> None:
    response = visitor.get(endpoint, {"search": "a " * 1000})

    assert response.status_code == 400
    assert response.json() == {"search": ["At most 20 words may be searched for; 1000 were given."]}
    assert visitor.get(endpoint, {"search": " ".join(["a"] * 20)}).status_code == 200


ROW_FACTORIES: dict[str, Callable[[], Any]] = {
    "/api/v1/people/": PersonFactory,
    "/api/v1/feedback/": FeedbackFactory,
    "/api/v1/products/": ProductFactory,
    "/api/v1/images/": lambda: ImageFactory(size=(64, 48)),
}
# What a list would refuse (400) or leave the row out of, per endpoint.
LIST_ONLY_QUERIES: dict[str, list[dict[str, str]]] = {
    "/api/v1/people/": [{"is_active": "yes"}, {"is_active": "false"}],
    "/api/v1/feedback/": [{"rating": "1.5"}, {"source": "nowhere"}],
    "/api/v1/products/": [{"on_display": "maybe"}, {"image_name": "nothing-by-this-name.png"}],
    "/api/v1/images/": [{"status": "lost"}, {"format": "bmp"}],
}


@pytest.mark.parametrize(
    ("endpoint", "query"),
    [
        (endpoint, query)
        for endpoint in ENDPOINTS
        for query in [
            {"search": "a " * 1000},
            {"search": "nothing-has-these-words"},
            {"ordering": "no-such-field"},
            *LIST_ONLY_QUERIES[endpoint],
        ]
    ],
)
def test_a_detail_is_the_row_whatever_the_lists_parameters_say(
    token_client: APIClient, endpoint: str, query: dict[str, str]
) -> None:
    """Filters, search and order pick rows of a list; an address names its
    row. What a caller may not see is left out before (get_queryset)."""
    path = f"{endpoint}{ROW_FACTORIES[endpoint]().pk}/"

    response = token_client.get(path, query)

    assert response.status_code == 200, response.content
    assert response.json() == token_client.get(path).json()


def test_a_row_hidden_from_a_caller_stays_a_404_whatever_the_query(visitor: APIClient) -> None:
    gone = PersonFactory(is_active=False)

    for query in [{}, {"is_active": "false"}, {"search": gone.username}]:
        assert visitor.get(f"/api/v1/people/{gone.pk}/", query).status_code == 404


def test_the_actions_and_writes_on_a_row_ignore_the_lists_parameters(token_client: APIClient) -> None:
    image = ImageFactory(size=(64, 48))
    person = PersonFactory()

    original = token_client.get(f"/api/v1/images/{image.pk}/original/", {"status": "lost", "search": "x"})
    deleted = token_client.delete(f"/api/v1/people/{person.pk}/?is_active=false")

    assert original.status_code == 200, original.content
    assert deleted.status_code == 204, deleted.content


def boolean_filters() -> list[tuple[str, str, Any]]:
    """Every yes-or-no filter of the API: (endpoint, parameter, filter)."""
    found = []
    for prefix, viewset, _ in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        for name, filter_ in (filterset.base_filters if filterset else {}).items():
            if isinstance(filter_, django_filters.BooleanFilter):
                found.append((f"/api/v1/{prefix}/", name, filter_))
    return found


def test_the_api_has_yes_or_no_filters_and_each_is_the_strict_one() -> None:
    found = {(endpoint, name): type(f) for endpoint, name, f in boolean_filters()}

    assert {("/api/v1/people/", "is_active"), ("/api/v1/products/", "on_display")} <= set(found)
    assert set(found.values()) == {filters.BooleanFilter}


@pytest.mark.parametrize(("endpoint", "parameter"), [(e, p) for e, p, _ in boolean_filters()])
@pytest.mark.parametrize("value", ["yes", "maybe", "2", "on", " true"])
def test_a_yes_or_no_filter_refuses_a_value_it_cannot_read_naming_the_words_it_takes(
    token_client: APIClient, endpoint: str, parameter: str, value: str
) -> None:
    response = token_client.get(endpoint, {parameter: value})

    assert response.status_code == 400, response.content
    assert response.json() == {parameter: [f"{parameter} takes true or false (or 1 or 0), not {value!r}."]}


@pytest.mark.parametrize(("endpoint", "parameter"), [(e, p) for e, p, _ in boolean_filters()])
def test_a_yes_or_no_filter_quotes_a_long_value_cut_with_its_length(
    token_client: APIClient, endpoint: str, parameter: str
) -> None:
    """Its start alone would read as the whole of what was sent."""
    value = "yes" * 300
    response = token_client.get(endpoint, {parameter: value})

    assert response.status_code == 400, response.content
    quoted = f"{value[:60]!r}… (900 characters)"
    assert response.json() == {parameter: [f"{parameter} takes true or false (or 1 or 0), not {quoted}."]}


@pytest.mark.parametrize(("endpoint", "parameter"), [(e, p) for e, p, _ in boolean_filters()])
@pytest.mark.parametrize("value", ["true", "false", "True", "FALSE", "1", "0", ""])
def test_a_yes_or_no_filter_reads_the_words_it_always_read(
    token_client: APIClient, endpoint: str, parameter: str, value: str
) -> None:
    assert token_client.get(endpoint, {parameter: value}).status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "body", "body_format"),
    [
        ("/api/v1/people/", {"name": "Ann", "username": "ann"}, "json"),
        ("/api/v1/feedback/", {"title": "T", "name": "N", "text": "x"}, "json"),
        ("/api/v1/products/", {"name": "Fig", "weight": 3}, "json"),
        ("/api/v1/images/", {"file": None}, "multipart"),
    ],
)
def test_a_201_names_the_new_objects_address_in_the_api(
    token_client: APIClient, endpoint: str, body: dict[str, Any], body_format: str
) -> None:
    if "file" in body:
        body = {"file": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg")}

    created = token_client.post(endpoint, body, format=body_format)

    assert created.status_code == 201, created.content
    assert created["Location"] == f"http://testserver{endpoint}{created.json()['id']}/"
    assert token_client.get(created["Location"]).json()["id"] == created.json()["id"]


def test_a_non_numeric_id_is_a_json_404(visitor: APIClient) -> None:
    response = visitor.get("/api/v1/people/abc/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_put_on_a_list_endpoint_is_a_405(token_client: APIClient, endpoint: str) -> None:
    response = token_client.put(endpoint, {}, format="json")

    assert response.status_code == 405
    assert "PUT" in response.json()["detail"]
    assert "GET" in response["Allow"]


def test_images_cannot_be_edited_in_place(token_client: APIClient) -> None:
    """Only the focal point may be patched; nothing replaces an image whole."""
    image = ImageFactory()

    response = token_client.put(f"/api/v1/images/{image.pk}/", {"title": "x"}, format="multipart")
    assert response.status_code == 405
    response = token_client.patch(f"/api/v1/images/{image.pk}/", {"title": "x"}, format="multipart")
    assert response.status_code == 400
    assert "focal_point" in response.json()
    image.refresh_from_db()
    assert image.title != "x"


def test_a_json_body_to_the_images_endpoint_is_a_415(token_client: APIClient) -> None:
    response = token_client.post("/api/v1/images/", {"file": "aGVsbG8="}, format="json")

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_an_upload_over_the_byte_limit_is_a_413(token_client: APIClient, settings: Any) -> None:
    settings.IMAGE_MAX_BYTES = 2_000
    data = jpeg_bytes((400, 300))
    assert len(data) > settings.IMAGE_MAX_BYTES

    response = upload(token_client, data)

    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "2,000" in detail
    assert not Image.objects.exists()


def test_a_body_far_over_the_byte_limit_is_refused_from_its_header(
    token_client: APIClient, settings: Any
) -> None:
    settings.IMAGE_MAX_BYTES = 1_000
    data = b"\xff\xd8" + b"\0" * 200_000

    response = upload(token_client, data)

    assert response.status_code == 413
    assert not Image.objects.exists()


def test_a_file_that_is_not_an_image_is_a_400_naming_the_file(token_client: APIClient) -> None:
    response = upload(token_client, b"<html><script>alert(1)</script></html>", name="evil.jpg")

    assert response.status_code == 400
    messages = response.json()["file"]
    assert messages
    assert all(isinstance(message, str) and message for message in messages)
    assert not Image.objects.exists()


def test_an_upload_without_a_file_is_a_400(token_client: APIClient) -> None:
    response = token_client.post("/api/v1/images/", {"title": "nothing"}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()


def test_a_visitor_cannot_upload_an_image(visitor: APIClient) -> None:
    response = upload(visitor, jpeg_bytes((64, 48)))

    assert response.status_code == 401
    assert not Image.objects.exists()


def test_an_outsider_cannot_upload_an_image(outsider: APIClient) -> None:
    response = upload(outsider, jpeg_bytes((64, 48)))

    assert response.status_code == 403
    assert not Image.objects.exists()


def test_a_token_client_uploads_an_image(token_client: APIClient) -> None:
    response = upload(token_client, jpeg_bytes((64, 48)))

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["width"], body["height"], body["format"].lower()) == (64, 48, "jpeg")
    assert body["original_name"] == "photo.jpg"


# --- Pagination ---------------------------------------------------------------


def test_lists_are_paginated_twenty_at_a_time(visitor: APIClient) -> None:
    FeedbackFactory.create_batch(25)

    first = visitor.get("/api/v1/feedback/").json()
    second = visitor.get(first["next"]).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert second["previous"] is not None
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(set(ids)) == 25


def test_page_size_is_honoured_up_to_a_hundred(visitor: APIClient) -> None:
    FeedbackFactory.create_batch(120)

    def size(page_size: int) -> int:
        return len(visitor.get("/api/v1/feedback/", {"page_size": page_size}).json()["results"])

    assert size(5) == 5
    assert size(100) == 100
    assert size(1000) == 100


@pytest.mark.parametrize(
    ("url", "ends_with"),
    [
        ("/api/v1/people/", '"catalog_person"."id" ASC'),
        ("/api/v1/people/?ordering=-department", '"catalog_person"."id" DESC'),
        ("/api/v1/products/?ordering=weight", '"catalog_product"."id" ASC'),
        ("/api/v1/images/?ordering=width", '"uploads_image"."id" ASC'),
        ("/api/v1/images/?ordering=-bytes", '"uploads_image"."id" DESC'),
    ],
)
def test_a_page_s_order_ends_with_the_id_where_rows_may_tie(
    visitor: APIClient, url: str, ends_with: str
) -> None:
    # Rows that tie on every field of the order come in whatever order the
    # database likes, which PostgreSQL chooses afresh for each page
    # (tests/integration/test_api_pages_postgres.py): some twice, some never.
    PersonFactory()
    ProductFactory(image=small_images(1)[0])
    with CaptureQueriesContext(connection) as queries:
        assert visitor.get(url).status_code == 200
    # The page's own LIMIT, the last, outside every parenthesis: a subquery
    # of a column or of a condition (the count's too) may have one.
    [page] = [q["sql"] for q in queries.captured_queries if " LIMIT " in q["sql"].rpartition(")")[2]]
    assert page.rpartition(" LIMIT ")[0].endswith(ends_with), page


def test_an_order_by_a_field_no_two_rows_share_is_left_as_it_is(visitor: APIClient) -> None:
    PersonFactory()
    with CaptureQueriesContext(connection) as queries:
        assert visitor.get("/api/v1/people/?ordering=username").status_code == 200
    [page] = [q["sql"] for q in queries.captured_queries if " LIMIT " in q["sql"]]
    order = page.split(" ORDER BY ")[1].split(" LIMIT ")[0]
    assert "," not in order, order  # the username alone


def test_a_page_past_the_end_is_a_404_naming_the_last_page(visitor: APIClient) -> None:
    FeedbackFactory.create_batch(3)

    response = visitor.get("/api/v1/feedback/", {"page": 999, "page_size": 2})

    assert response.status_code == 404
    assert response.json() == {"detail": "There is no page '999': the pages are numbered 1 to 2."}


@pytest.mark.parametrize("page", ["0", "-1", "1.5", "two"])
def test_a_page_that_is_not_a_number_from_1_is_a_404_saying_so(visitor: APIClient, page: str) -> None:
    FeedbackFactory()

    response = visitor.get("/api/v1/feedback/", {"page": page})

    assert response.status_code == 404
    assert response.json() == {"detail": f"There is no page '{page}': the pages are numbered 1 to 1."}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_list_has_the_same_page_shape(visitor: APIClient, endpoint: str) -> None:
    body = visitor.get(endpoint).json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


# --- Token auth ---------------------------------------------------------------


def _perms(*codenames: str) -> list[Permission]:
    return list(Permission.objects.filter(codename__in=codenames))


def test_a_valid_token_authenticates_writes(visitor: APIClient) -> None:
    user = UserFactory(username="tool")
    user.user_permissions.add(*_perms("add_product"))
    key = api_key(user)

    response = visitor.post(
        "/api/v1/products/",
        {"name": "Kiwi", "weight": 80},
        format="json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code == 201, response.content


def test_drf_create_token_issues_the_key_a_tool_writes_with(visitor: APIClient) -> None:
    user = UserFactory(username="uploader-bot")
    user.user_permissions.add(*_perms("add_product"))
    out = io.StringIO()
    call_command("drf_create_token", "uploader-bot", stdout=out)
    [key] = re.findall(r"Generated token (\w+) for user uploader-bot", out.getvalue())

    response = visitor.post(
        "/api/v1/products/", {"name": "Kiwi", "weight": 80}, format="json", HTTP_AUTHORIZATION=f"Token {key}"
    )

    assert response.status_code == 201, response.content


def test_a_token_only_grants_the_permissions_of_its_user(visitor: APIClient) -> None:
    user = UserFactory(username="reader")
    user.user_permissions.add(*_perms("add_product"))
    key = api_key(user)
    product = ProductFactory()

    response = visitor.delete(f"/api/v1/products/{product.pk}/", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 403


# (a write, the permission it needs, a permission of the same model the caller holds)
REFUSED_WRITES = [
    ("post", "/api/v1/people/", "catalog.add_person", "view_person"),
    ("patch", "/api/v1/people/{person}/", "catalog.change_person", "view_person"),
    ("delete", "/api/v1/feedback/{review}/", "catalog.delete_feedback", "change_feedback"),
    ("put", "/api/v1/products/{product}/", "catalog.change_product", "add_product"),
    ("post", "/api/v1/images/", "uploads.add_image", "view_image"),
    ("patch", "/api/v1/images/{image}/", "uploads.change_image", "add_image"),
    ("post", "/api/v1/images/{image}/focal-point/", "uploads.change_image", "add_image"),
    ("post", "/api/v1/images/{image}/reprocess/", "uploads.change_image", "add_image"),
]


@pytest.mark.parametrize("session", [True, False], ids=["staff-session", "token"])
@pytest.mark.parametrize(("method", "path", "needed", "held"), REFUSED_WRITES)
def test_a_write_refused_for_want_of_a_model_permission_names_it(
    visitor: APIClient, session: bool, method: str, path: str, needed: str, held: str
) -> None:
    """Staff whose change is refused learn which permission to ask for, not
    DRF's bare "You do not have permission to perform this action." alone."""
    user = UserFactory(username="clerk", is_staff=session)
    user.user_permissions.add(*_perms(held))
    if session:
        visitor.force_login(user)
    else:
        visitor.credentials(HTTP_AUTHORIZATION=f"Token {api_key(user)}")
    rows = {
        "person": PersonFactory().pk,
        "review": FeedbackFactory().pk,
        "product": ProductFactory().pk,
        "image": ImageFactory(processed=False).pk,
    }

    response = getattr(visitor, method)(path.format(**rows), {}, format="json")

    assert response.status_code == 403, response.content
    assert response.json() == {"detail": f"This needs the permission {needed}."}


@pytest.mark.parametrize(
    ("path", "needed", "hidden"),
    [
        ("/api/v1/people/{}/", "catalog.change_person", lambda: PersonFactory(is_active=False)),
        ("/api/v1/feedback/{}/", "catalog.change_feedback", lambda: FeedbackFactory(status="hidden")),
    ],
)
def test_a_refusal_naming_a_permission_tells_nothing_of_the_rows_and_404s_stay(
    visitor: APIClient, path: str, needed: str, hidden: Callable[[], Any]
) -> None:
    """Checked of the model before any row is looked up: the refusal is the
    same for a row the caller is shown, one kept from it and one that does
    not exist; a caller who holds the permission gets the 404 of a row that
    does not exist."""
    user = UserFactory(username="clerk")
    user.user_permissions.add(*_perms("view_person", "view_feedback"))
    visitor.force_authenticate(user)
    kept = hidden()
    assert visitor.get(path.format(kept.pk)).status_code == 404

    answers = [visitor.patch(path.format(pk), {}, format="json") for pk in (kept.pk, kept.pk + 1000)]

    assert [(a.status_code, a.json()) for a in answers] == [
        (403, {"detail": f"This needs the permission {needed}."})
    ] * 2
    user.user_permissions.add(*_perms(needed.partition(".")[2]))
    visitor.force_authenticate(type(user).objects.get(pk=user.pk))  # its permissions read anew
    assert visitor.patch(path.format(kept.pk + 1000), {}, format="json").status_code == 404


def test_an_anonymous_write_is_still_asked_for_credentials(visitor: APIClient) -> None:
    image = ImageFactory(processed=False)

    for response in [
        visitor.patch(f"/api/v1/people/{PersonFactory().pk}/", {}, format="json"),
        visitor.post(f"/api/v1/images/{image.pk}/reprocess/", {}, format="json"),
    ]:
        assert response.status_code == 401, response.content


@pytest.mark.parametrize("header", ["Token not-a-real-key", "Token ", "Token a b", "token lowercase-key"])
def test_a_bad_token_is_a_401_even_on_reads(visitor: APIClient, header: str) -> None:
    response = visitor.get("/api/v1/people/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert "detail" in response.json()


def test_another_authorization_scheme_is_treated_as_anonymous(visitor: APIClient) -> None:
    """Only "Token" is the API's scheme; a Bearer header is not ours to judge."""
    reads = visitor.get("/api/v1/people/", HTTP_AUTHORIZATION="Bearer abc")
    writes = visitor.post("/api/v1/products/", {"name": "x", "weight": 1}, HTTP_AUTHORIZATION="Bearer abc")

    assert reads.status_code == 200
    assert writes.status_code == 401


def test_a_token_of_an_inactive_user_is_a_401(visitor: APIClient) -> None:
    user = UserFactory(username="former", is_active=False)
    key = api_key(user)

    response = visitor.get("/api/v1/people/", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 401


# --- Queries per request ------------------------------------------------------


# Where each list shows its image, if it has one.
IMAGE_FIELD = {"/api/v1/people/": "photo", "/api/v1/products/": "image", "/api/v1/images/": None}


def _queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    rows = response.json()["results"]
    endpoint = url.split("?", maxsplit=1)[0]
    if endpoint in IMAGE_FIELD:
        # Every row shows a processed image from its renditions, so reading
        # them is part of what is counted.
        assert rows
        field = IMAGE_FIELD[endpoint]
        for row in rows:
            image = row[field] if field else row
            assert image["status"] == "ready"
            assert image["srcset"].endswith("w"), image
    return len(captured.captured_queries)


def _feedback(n: int) -> None:
    FeedbackFactory.create_batch(n, product=ProductFactory())


def _people_with_photos(n: int) -> None:
    for image in small_images(n):
        PersonFactory(photo=image)


def _products_with_images(n: int) -> None:
    for image in small_images(n):
        ProductFactory(image=image)


def _images_some_tied_to_nothing(n: int) -> None:
    """Images the public sees (products') and, as many, some it does not
    (tied to nothing yet): leaving those out is part of the page's query."""
    _products_with_images(n)
    small_images(n)


def _portraits_some_of_former_people(n: int) -> None:
    """Images the public sees and, as many, some it does not (the photos of
    inactive people): leaving those out is part of the page's query."""
    for number, image in enumerate(small_images(2 * n)):
        PersonFactory(photo=image, is_active=number % 2 == 0)


@pytest.mark.parametrize(
    ("url", "make", "limit"),
    [
        ("/api/v1/feedback/?page_size=50", _feedback, 2),
        ("/api/v1/people/?page_size=50", _people_with_photos, 3),
        ("/api/v1/products/?page_size=50", _products_with_images, 3),
        ("/api/v1/images/?page_size=50", _images_some_tied_to_nothing, 3),
        ("/api/v1/images/?page_size=50", _portraits_some_of_former_people, 3),
    ],
)
def test_an_anonymous_page_costs_a_constant_number_of_queries(
    visitor: APIClient,
    django_assert_max_num_queries: Callable[..., Any],
    url: str,
    make: Callable[[int], Any],
    limit: int,
) -> None:
    make(5)
    few = _queries(visitor, url)
    make(55)  # more than a page
    many = _queries(visitor, url)

    with django_assert_max_num_queries(limit):
        visitor.get(url)
    assert few == many <= limit


@pytest.mark.parametrize(
    ("url", "make", "limit"),
    [
        # The token with its user, then the user's and groups' permissions (the
        # moderation check), then count and page (and renditions).
        ("/api/v1/feedback/?page_size=50", _feedback, 5),
        ("/api/v1/people/?page_size=50", _people_with_photos, 6),
        # Products need no moderation check: no permission queries.
        ("/api/v1/products/?page_size=50", _products_with_images, 4),
    ],
)
def test_a_token_client_page_costs_a_constant_number_of_queries(
    token_client: APIClient, url: str, make: Callable[[int], Any], limit: int
) -> None:
    make(5)
    few = _queries(token_client, url)
    make(55)  # more than a page
    many = _queries(token_client, url)

    assert few == many <= limit


def test_the_visible_subset_costs_no_extra_query(visitor: APIClient) -> None:
    FeedbackFactory.create_batch(30, status=Feedback.Status.HIDDEN)
    FeedbackFactory.create_batch(30)

    assert _queries(visitor, "/api/v1/feedback/?page_size=50&rating=5&search=x") <= 2


# --- OpenAPI schema and docs --------------------------------------------------


def test_the_schema_is_a_valid_openapi_3_document_in_yaml(visitor: APIClient) -> None:
    response = visitor.get("/api/schema/")

    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    validate_schema(document)
    for endpoint in ENDPOINTS:
        assert endpoint in document["paths"]


def test_the_schema_is_also_served_as_json(visitor: APIClient) -> None:
    response = visitor.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    document = json.loads(response.content)
    validate_schema(document)
    assert {"tokenAuth", "cookieAuth"} <= set(document["components"]["securitySchemes"])


def test_the_schema_documents_the_error_responses(visitor: APIClient) -> None:
    document = json.loads(visitor.get("/api/schema/", {"format": "json"}).content)
    paths = document["paths"]

    assert {"400", "429"} <= set(paths["/api/v1/feedback/"]["post"]["responses"])
    assert {"401", "403", "404"} <= set(paths["/api/v1/people/{id}/"]["delete"]["responses"])
    assert {"400", "413", "415"} <= set(paths["/api/v1/images/"]["post"]["responses"])
    assert "404" in paths["/api/v1/products/"]["get"]["responses"]


def test_no_operation_is_described_by_a_docstring_of_a_class_its_view_is_built_on(
    visitor: APIClient,
) -> None:
    document = json.loads(visitor.get("/api/schema/", {"format": "json"}).content)
    inherited = {
        inspect.cleandoc(base.__doc__)
        for _, viewset, _ in router.registry
        for base in viewset.__mro__[1:]
        if base.__doc__
    }
    descriptions = {
        (method, path): operation.get("description", "")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }

    assert not {key: text for key, text in descriptions.items() if text in inherited}
    assert descriptions[("post", "/api/v1/people/")] == inspect.cleandoc(PersonViewSet.__doc__ or "")


def test_a_view_without_a_docstring_of_its_own_has_no_description() -> None:
    """Not the docstring of a mixin it is built on."""

    class Undocumented(api.CreatedLocationMixin, viewsets.ModelViewSet[Product]):
        queryset = Product.objects.all()
        serializer_class = ProductSerializer

    undocumented = routers.SimpleRouter()
    undocumented.register("undocumented", Undocumented, basename="undocumented")
    document = SchemaGenerator(patterns=undocumented.urls).get_schema(request=None, public=True)

    operations = [op for operations in document["paths"].values() for op in operations.values()]
    assert len(operations) == 6
    assert all(not op.get("description") for op in operations)


def test_the_schema_marks_open_exactly_the_operations_an_anonymous_caller_may_use(visitor: APIClient) -> None:
    """``{}`` among an operation's security means no credentials are needed;
    asked without any (from the portal's own host), each operation is refused
    with 401 or 403 exactly where the schema leaves it out."""
    document = json.loads(visitor.get("/api/schema/", {"format": "json"}).content)
    ids = {"people": PersonFactory().pk, "feedback": FeedbackFactory().pk, "products": ProductFactory().pk}
    ids["images"] = ImageFactory(size=(64, 48)).pk
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            kind = path.split("/")[3] if path.startswith("/api/v1/") else ""
            url = path.replace("{id}", str(ids.get(kind, 1)))
            response = getattr(visitor, method)(url, {"spec": "width-40"} if method == "get" else {})
            open_ = {} in operation.get("security", [{}])
            assert open_ is not (response.status_code in (401, 403)), (method, path, response.status_code)
            checked += 1
    assert checked > 30


def test_the_docs_load_their_assets_from_local_static_files(visitor: APIClient) -> None:
    response = visitor.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']([^\"']+)[\"']", html)
    assert assets, html[:500]
    # Static files, and the page's start-up script, which the page serves.
    assert all(url.startswith(("/static/", "/api/docs/?")) for url in assets), assets
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost|testserver)", html)
    # Its start-up script is a file of its own (no inline script), which
    # loads the schema from here.
    start = re.search(r"<script src=\"(/api/docs/\?[^\"]*script=[^\"]*)\"", html)
    assert start, html
    script = visitor.get(start.group(1).replace("&amp;", "&"))
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_the_docs_assets_are_served(visitor: APIClient) -> None:
    html = visitor.get("/api/docs/").content.decode()
    bundle = re.search(r"src=\"(/static/[^\"]+swagger-ui-bundle\.js)\"", html)
    assert bundle

    response = visitor.get(bundle.group(1))

    assert response.status_code == 200


def _later(seconds: float) -> Any:
    """A stand-in for the ``time`` module of the local-memory cache, ``seconds`` ahead."""

    return type("Later", (), {"time": staticmethod(lambda: time.time() + seconds)})


def test_a_large_lists_count_is_reused_briefly_and_a_small_ones_never(
    visitor: APIClient, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:

    assert isinstance(caches["default"], locmem.LocMemCache)  # the clock below is its clock

    def count(**params: str) -> int:
        return visitor.get("/api/v1/feedback/", params).json()["count"]

    FeedbackFactory.create_batch(2, rating=5)
    FeedbackFactory(rating=1)
    assert count() == 3
    FeedbackFactory(rating=1)
    assert count() == 4  # small: always counted afresh
    monkeypatch.setattr(api, "LARGE_COUNT", 2)
    assert count() == 4  # counted, and now kept
    FeedbackFactory(rating=1)
    with django_assert_num_queries(1):  # the page only: the count came from the cache
        assert count() == 4  # one review behind, by design, for a while
    assert count(rating="5") == 2  # another query has a count of its own
    for clock in (locmem, api):  # the shared cache's, and the process's own copy's
        monkeypatch.setattr(clock, "time", _later(29))
    assert count() == 4  # still within the 30 s it is kept
    for clock in (locmem, api):
        monkeypatch.setattr(clock, "time", _later(31))
    assert count() == 5  # and no longer: counted again
