"""API writes that meet other writes, and the limits writes must respect:
a row deleted or changed between a request's read and its write, a unique
value taken meanwhile, permissions of upserts, dates, and what a refusal says."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError, IntegrityError, OperationalError
from rest_framework.test import APIClient

from catalog.api import FeedbackViewSet, PersonSerializer, PersonViewSet, ProductViewSet
from catalog.models import Feedback, Person, Product
from catalog.services import feedback_import_files
from core.errors import dependency_unavailable
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

TOMORROW_BUT_ONE = dt.date.today() + dt.timedelta(days=3)


def client_with(*codenames: str) -> APIClient:
    user = UserFactory(username="-".join(codenames) or "nobody")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.force_authenticate(user)
    return client


def meanwhile(monkeypatch: pytest.MonkeyPatch, viewset: type, change: Any) -> None:
    """Between the view's read of its row and its write, ``change`` runs: the
    other request of a race, made deterministic."""
    read = viewset.get_object

    def read_then_change(self: Any) -> Any:
        row = read(self)
        change(row)
        return row

    monkeypatch.setattr(viewset, "get_object", read_then_change)


# --- Updates racing deletes and other updates ----------------------------------


@pytest.mark.parametrize(
    ("viewset", "factory", "path", "body"),
    [
        (PersonViewSet, PersonFactory, "/api/v1/people/{}/", {"name": "Renamed"}),
        (FeedbackViewSet, FeedbackFactory, "/api/v1/feedback/{}/", {"title": "Retitled"}),
        (ProductViewSet, ProductFactory, "/api/v1/products/{}/", {"name": "Renamed"}),
    ],
)
def test_an_update_of_a_row_deleted_meanwhile_is_a_404_and_brings_nothing_back(
    token_client: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    viewset: type,
    factory: Any,
    path: str,
    body: Any,
) -> None:
    row = factory()
    model = type(row)
    meanwhile(monkeypatch, viewset, lambda r: model.objects.filter(pk=r.pk).delete())

    response = token_client.patch(path.format(row.pk), body, format="json")

    assert response.status_code == 404, response.content
    assert not model.objects.filter(pk=row.pk).exists()


def test_a_deletion_of_a_product_deleted_meanwhile_is_done_and_deletes_nothing_else(
    token_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deletions of one product at once: the second finds its row gone
    once it is locked, and has nothing left to do."""
    product, other = ProductFactory(), ProductFactory()
    meanwhile(monkeypatch, ProductViewSet, lambda r: Product.objects.filter(pk=r.pk).delete())

    response = token_client.delete(f"/api/v1/products/{product.pk}/")

    assert response.status_code == 204, response.content
    assert list(Product.objects.values_list("pk", flat=True)) == [other.pk]


@pytest.mark.parametrize(
    ("viewset", "factory", "path", "sent", "other"),
    [
        (
            PersonViewSet,
            PersonFactory,
            "/api/v1/people/{}/",
            {"name": "Renamed"},
            {"email": "new@example.com"},
        ),
        (
            FeedbackViewSet,
            FeedbackFactory,
            "/api/v1/feedback/{}/",
            {"title": "Retitled"},
            {"status": "hidden"},
        ),
    ],
)
def test_concurrent_updates_of_different_fields_both_land(
    token_client: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    viewset: type,
    factory: Any,
    path: str,
    sent: dict[str, str],
    other: dict[str, str],
) -> None:
    row = factory()
    model = type(row)
    meanwhile(monkeypatch, viewset, lambda r: model.objects.filter(pk=r.pk).update(**other))

    response = token_client.patch(path.format(row.pk), sent, format="json")

    assert response.status_code == 200, response.content
    stored = model.objects.values(*sent, *other).get(pk=row.pk)
    assert stored == {**sent, **other}
    assert {k: response.json()[k] for k in other} == other


# --- Unique values taken meanwhile -----------------------------------------------


def test_a_username_taken_between_validation_and_the_write_is_a_400_on_the_field(
    token_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = PersonSerializer.is_valid
    taken: list[Person] = []

    def validate_then_lose_the_race(self: Any, *args: Any, **kwargs: Any) -> bool:
        valid = validate(self, *args, **kwargs)
        if not taken:
            taken.append(PersonFactory(username="race"))
        return valid

    monkeypatch.setattr(PersonSerializer, "is_valid", validate_then_lose_the_race)

    response = token_client.post("/api/v1/people/", {"name": "C", "username": "race"}, format="json")

    assert response.status_code == 400, response.content
    assert "The username 'race' is taken by " in response.json()["username"][0]
    assert list(Person.objects.values_list("pk", flat=True)) == [taken[0].pk]


def test_a_broken_constraint_is_not_reported_as_an_outage() -> None:
    assert dependency_unavailable(IntegrityError("duplicate key")) is None
    assert dependency_unavailable(OperationalError("server closed the connection")) == "database"
    assert dependency_unavailable(DatabaseError("gone")) == "database"


# --- Permissions -------------------------------------------------------------------


def test_posting_an_existing_product_needs_the_change_permission() -> None:
    existing = ProductFactory(name="Mango", image_name="010.jpeg", weight=300)
    adder = client_with("add_product", "view_product")
    body = {"name": "Mango", "weight": 999, "description": "changed", "image_name": "010.png"}

    refused = adder.post("/api/v1/products/", body, format="json")
    assert refused.status_code == 403
    assert "permission to change products" in refused.json()["detail"]
    assert Product.objects.get().weight == 300

    new = adder.post("/api/v1/products/", {**body, "image_name": "011.jpeg"}, format="json")
    assert new.status_code == 201
    assert new["Location"] == f"http://testserver/api/v1/products/{new.json()['id']}/"

    updated = client_with("add_product", "change_product").post("/api/v1/products/", body, format="json")
    assert updated.status_code == 200
    assert updated.json()["id"] == existing.pk
    assert Product.objects.get(pk=existing.pk).weight == 999


def test_reprocessing_needs_the_change_permission_alone() -> None:
    image = ImageFactory()
    path = f"/api/v1/images/{image.pk}/reprocess/"
    assert client_with("view_image").post(path, {}, format="json").status_code == 403
    assert APIClient().post(path, {}, format="json").status_code == 401
    response = client_with("change_image", "view_image").post(path, {}, format="json")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    ("codename", "path", "make"),
    [
        ("delete_feedback", "/api/v1/feedback/{}/", lambda: FeedbackFactory(status=Feedback.Status.HIDDEN)),
        ("delete_feedback", "/api/v1/feedback/{}/", lambda: FeedbackFactory(status=Feedback.Status.PENDING)),
        ("delete_person", "/api/v1/people/{}/", lambda: PersonFactory(is_active=False)),
    ],
    ids=["hidden-review", "pending-review", "inactive-person"],
)
def test_a_caller_who_may_delete_deletes_a_row_the_public_is_not_shown(
    codename: str, path: str, make: Any
) -> None:
    """The delete permission is enough to delete, as on images: a cleaning
    tool's token deletes the spam held for moderation or hidden, an
    offboarding tool the person already made inactive, not a 404 for a row
    it is not shown."""
    row = make()
    client = client_with(codename)
    url = path.format(row.pk)

    assert client.get(url).status_code == 404  # still not shown to it
    assert client.patch(url, {"name": "x"}, format="json").status_code == 403
    response = client.delete(url, HTTP_IF_MATCH="*")

    assert response.status_code == 204, response.content
    assert not type(row).objects.filter(pk=row.pk).exists()


def test_a_person_created_from_a_form_body_is_active_as_from_json(token_client: APIClient) -> None:
    form = token_client.post("/api/v1/people/", {"name": "F", "username": "form1"})
    multipart = token_client.post("/api/v1/people/", {"name": "M", "username": "multi1"}, format="multipart")
    assert form.status_code == multipart.status_code == 201
    assert form.json()["is_active"] is multipart.json()["is_active"] is True
    assert Person.objects.filter(is_active=True).count() == 2


@pytest.mark.parametrize("body", ["json", "multipart"])
def test_a_put_that_leaves_out_is_active_keeps_it_as_it_keeps_other_fields(
    token_client: APIClient, body: str
) -> None:
    person = PersonFactory(is_active=False, role="Boss")

    response = token_client.put(
        f"/api/v1/people/{person.pk}/", {"name": "A2", "username": person.username}, format=body
    )

    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert (person.name, person.role, person.is_active) == ("A2", "Boss", False)
    assert response.json()["is_active"] is False


def test_a_username_in_any_script_is_taken_and_the_schema_does_not_refuse_it(token_client: APIClient) -> None:
    response = token_client.post("/api/v1/people/", {"name": "Ü", "username": "ü1"}, format="json")
    assert response.status_code == 201, response.content
    schemas = token_client.get("/api/schema/?format=json").json()["components"]["schemas"]
    # JSON Schema's \w is ASCII alone: any pattern built from Django's
    # validator would refuse what the API answers.
    for name in ("Person", "PersonRequest", "PatchedPersonRequest"):
        assert "pattern" not in schemas[name]["properties"]["username"], name


# --- Dates of reviews ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/feedback/", "/feedback/"])
def test_a_review_dated_in_the_future_is_refused_on_every_path(visitor: APIClient, path: str) -> None:
    body = {"title": "t", "name": "n", "date": TOMORROW_BUT_ONE.isoformat(), "text": "x", "feedback": "x"}
    response = visitor.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["date"] == ["The date cannot be in the future."]
    assert not Feedback.objects.exists()


def test_an_imported_review_dated_in_the_future_is_rejected_with_the_reason(tmp_path: Any) -> None:
    (tmp_path / "001.txt").write_text(f"Title\nAnn\n{TOMORROW_BUT_ONE.isoformat()}\nToo early.\n")
    (tmp_path / "002.txt").write_text("Title\nBob\n2017-12-21\nFine.\n")
    summary = feedback_import_files(sorted(tmp_path.iterdir()))
    assert summary.created == 1
    assert summary.rejected == [("001.txt", "date: The date cannot be in the future.")]


@pytest.mark.parametrize(
    ("date", "day"),
    [
        ("2024-01-02", dt.date(2024, 1, 2)),
        ("2024-1-2", dt.date(2024, 1, 2)),  # strptime's month and day of one digit
        # What date.fromisoformat() reads too on Python 3.11, and no client of
        # the course's endpoint could send.
        ("20240102", None),
        ("2024-W01-2", None),
        ("2024W012", None),
        ("2024-W01", None),
        ("02/01/2024", None),
    ],
)
def test_a_review_date_is_read_alike_from_a_file_and_from_a_post(
    visitor: APIClient, tmp_path: Any, date: str, day: dt.date | None
) -> None:
    (tmp_path / "001.txt").write_text(f"From a file\nAnn\n{date}\nGood.\n")
    summary = feedback_import_files([tmp_path / "001.txt"])
    body = {"title": "Posted", "name": "Bob", "date": date, "feedback": "Good."}
    response = visitor.post("/feedback/", body, format="json")
    if day is None:
        assert summary.rejected == [("001.txt", f"line 3 is not a date in YYYY-MM-DD form: {date!r}")]
        assert response.status_code == 400, response.content
        assert response.json()["date"] == [
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
        ]
        assert not Feedback.objects.exists()
    else:
        assert (summary.created, response.status_code) == (1, 201), (summary.rejected, response.content)
        assert list(Feedback.objects.values_list("date", flat=True)) == [day, day]


# --- What a refusal says ----------------------------------------------------------------


def test_the_schema_documents_409_and_413_for_writes(visitor: APIClient) -> None:
    schema = visitor.get("/api/schema/", {"format": "json"}).json()
    for path, method in [
        ("/api/v1/people/", "post"),
        ("/feedback/", "post"),
        ("/api/v1/people/{id}/", "patch"),
    ]:
        responses = schema["paths"][path][method]["responses"]
        assert {"409", "413"} <= set(responses), (path, method)
