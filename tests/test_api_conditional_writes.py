"""Writes conditional on ``If-Match``: a client that read a row, with its
``ETag``, and sends the tag back with its change or deletion has it made only
if the row is still what it read; else ``412 Precondition Failed`` and
nothing is written, so no one's change is overwritten unseen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.api import FeedbackViewSet, PersonViewSet, ProductViewSet
from catalog.models import Feedback, Person, Product
from core import reads
from tests.factories import (
    FeedbackFactory,
    ImageFactory,
    PersonFactory,
    ProductFactory,
    UserFactory,
    jpeg_bytes,
    s3_store,
)
from uploads.api import ImageViewSet
from uploads.models import Image

pytestmark = pytest.mark.django_db

PEOPLE, PRODUCTS, IMAGES = "/api/v1/people/{}/", "/api/v1/products/{}/", "/api/v1/images/{}/"
REVIEWS = "/api/v1/feedback/{}/"

# (path, factory, a change to send, another change made by someone else)
CHANGES = [
    (PEOPLE, PersonFactory, {"role": "Lead"}, {"department": "Moved meanwhile"}),
    (PRODUCTS, ProductFactory, {"weight": 7}, {"description": "Changed meanwhile."}),
    (IMAGES, ImageFactory, {"focal_point": {"x": 0.2, "y": 0.3}}, {"title": "Retitled meanwhile"}),
    (REVIEWS, FeedbackFactory, {"status": "hidden"}, {"title": "Retitled meanwhile"}),
]
MODELS: dict[str, type[Any]] = {PEOPLE: Person, PRODUCTS: Product, IMAGES: Image, REVIEWS: Feedback}
VIEWSETS = [PersonViewSet, ProductViewSet, ImageViewSet, FeedbackViewSet]


def tag_of(client: APIClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return str(response["ETag"])


@pytest.mark.parametrize(("path", "factory", "sent", "other"), CHANGES)
def test_a_change_sent_with_the_tag_of_a_row_changed_since_is_a_412_and_writes_nothing(
    token_client: APIClient, path: str, factory: Any, sent: dict[str, Any], other: dict[str, Any]
) -> None:
    row = factory()
    url = path.format(row.pk)
    tag = tag_of(token_client, url)
    MODELS[path].objects.filter(pk=row.pk).update(**other)
    before = MODELS[path].objects.values().get(pk=row.pk)

    response = token_client.patch(url, sent, format="json", HTTP_IF_MATCH=tag)

    assert response.status_code == 412, response.content
    assert "If-Match" in response.json()["detail"]
    assert MODELS[path].objects.values().get(pk=row.pk) == before


@pytest.mark.parametrize(("path", "factory", "sent", "other"), CHANGES)
def test_a_change_sent_with_the_current_tag_is_made(
    token_client: APIClient, path: str, factory: Any, sent: dict[str, Any], other: dict[str, Any]
) -> None:
    row = factory()
    url = path.format(row.pk)

    tag = tag_of(token_client, url)

    response = token_client.patch(url, sent, format="json", HTTP_IF_MATCH=tag)

    assert response.status_code in {200, 202}, response.content  # 202: crops still to cut
    assert tag_of(token_client, url) != tag


@pytest.mark.parametrize(
    ("viewset", "path", "factory", "sent", "other"),
    [(v, *change) for v, change in zip(VIEWSETS, CHANGES, strict=True)],
)
def test_a_row_changed_between_the_read_and_the_write_of_a_conditional_change_is_a_412(
    token_client: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    viewset: type,
    path: str,
    factory: Any,
    sent: dict[str, Any],
    other: dict[str, Any],
) -> None:
    row = factory()
    url = path.format(row.pk)
    tag = tag_of(token_client, url)
    read = viewset.get_object

    def read_then_change(self: Any) -> Any:
        found = read(self)
        MODELS[path].objects.filter(pk=found.pk).update(**other)
        return found

    monkeypatch.setattr(viewset, "get_object", read_then_change)

    response = token_client.patch(url, sent, format="json", HTTP_IF_MATCH=tag)

    assert response.status_code == 412, response.content
    stored = MODELS[path].objects.values(*other).get(pk=row.pk)
    assert stored == other


@pytest.mark.parametrize(("path", "factory"), [(p, f) for p, f, _, _ in CHANGES])
def test_a_deletion_with_a_stale_tag_is_a_412_and_one_with_the_current_tag_deletes(
    token_client: APIClient, path: str, factory: Any
) -> None:
    row = factory()
    url = path.format(row.pk)
    stale = tag_of(token_client, url)
    field = "name" if path in {PEOPLE, PRODUCTS} else "title"
    MODELS[path].objects.filter(pk=row.pk).update(**{field: "Changed meanwhile"})

    assert token_client.delete(url, HTTP_IF_MATCH=stale).status_code == 412
    assert MODELS[path].objects.filter(pk=row.pk).exists()

    response = token_client.delete(url, HTTP_IF_MATCH=tag_of(token_client, url))
    assert response.status_code == 204, response.content
    assert not MODELS[path].objects.filter(pk=row.pk).exists()


def test_if_match_compares_tags_strongly_and_takes_a_star_for_any(token_client: APIClient) -> None:
    person = PersonFactory()
    url = PEOPLE.format(person.pk)
    tag = tag_of(token_client, url)

    weak = token_client.patch(url, {"role": "Lead"}, format="json", HTTP_IF_MATCH=f"W/{tag}")
    assert weak.status_code == 412
    listed = token_client.patch(url, {"role": "Lead"}, format="json", HTTP_IF_MATCH=f'"other", {tag}')
    assert listed.status_code == 200, listed.content
    star = token_client.patch(url, {"role": "Chief"}, format="json", HTTP_IF_MATCH="*")
    assert star.status_code == 200, star.content
    unconditional = token_client.put(url, {"name": "N", "username": person.username}, format="json")
    assert unconditional.status_code == 200, unconditional.content


def test_a_conditional_write_of_a_row_that_is_not_there_is_a_404(token_client: APIClient) -> None:
    response = token_client.patch(PEOPLE.format(9999), {"role": "x"}, format="json", HTTP_IF_MATCH='"x"')

    assert response.status_code == 404


def test_the_schema_documents_if_match_and_412_on_changes_and_deletions(visitor: APIClient) -> None:
    schema = visitor.get("/api/schema/", {"format": "json"}).json()
    for path, methods in [
        ("/api/v1/people/{id}/", ["put", "patch", "delete"]),
        ("/api/v1/products/{id}/", ["put", "patch", "delete"]),
        ("/api/v1/images/{id}/", ["patch", "delete"]),
    ]:
        for method in methods:
            operation = schema["paths"][path][method]
            assert "412" in operation["responses"], (path, method)
            assert "400" in operation["responses"], (path, method)  # an If-Match of no ETags
            headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
            assert headers == ["If-Match"], (path, method)
    reads = schema["paths"]["/api/v1/people/{id}/"]["get"]
    assert "412" not in reads["responses"]


# Empty, or commas alone: a client that sends the tag it never kept.
@pytest.mark.parametrize("header", ["abc123", "W/abc", '"ok", abc123', "'abc123'", "", ",", " , "])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_an_if_match_that_is_no_list_of_etags_is_a_400_saying_so_not_a_412(
    token_client: APIClient, header: str, method: str
) -> None:
    # A tag sent without its quotes names no ETag: a 412 saying the row
    # changed since it was read would have the client read it again and
    # send it again, unquoted again, for ever.
    person = PersonFactory(role="Engineer")
    url = PEOPLE.format(person.pk)
    tag_of(token_client, url)

    send = getattr(token_client, method)
    response = send(url, {"role": "Lead"}, format="json", HTTP_IF_MATCH=header)

    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": 'If-Match is "*" or a list of ETags, each in double quotes as an ETag '
        'header gives it (e.g. "1a2b"); nothing was written.'
    }
    assert Person.objects.values_list("role", flat=True).get(pk=person.pk) == "Engineer"


@pytest.mark.parametrize(("path", "factory"), [(p, f) for p, f, _, _ in CHANGES])
@pytest.mark.parametrize("query", ["?_=1732441178000", "?search=other+words&ordering=-id"])
def test_a_row_read_at_its_address_with_a_query_has_the_tag_a_write_to_it_takes(
    token_client: APIClient, path: str, factory: Any, query: str
) -> None:
    """A row's address answers that row whatever the query says (a script's
    cache buster, the list's parameters kept on a link): the tag it answers
    is the row's, not one that a change sent without the query calls stale."""
    row = factory()
    url = path.format(row.pk)
    read = token_client.get(url + query)
    assert read.status_code == 200, read.content

    assert read["ETag"] == tag_of(token_client, url)
    assert token_client.get(url + query, HTTP_IF_NONE_MATCH=read["ETag"]).status_code == 304
    response = token_client.delete(url, HTTP_IF_MATCH=read["ETag"])
    assert response.status_code == 204, response.content


@pytest.mark.parametrize(("path", "factory", "sent", "other"), CHANGES)
@pytest.mark.parametrize(
    ("suffix", "accept"),
    [(".json", None), ("/", "application/json; indent=2"), ("/", "text/html")],
    ids=["format-suffix", "accept-with-parameters", "browsable"],
)
def test_a_row_read_in_another_form_has_a_tag_a_write_to_it_takes(
    token_client: APIClient,
    path: str,
    factory: Any,
    sent: dict[str, Any],
    other: dict[str, Any],
    suffix: str,
    accept: str | None,
) -> None:
    """A row read at its address with a format suffix, with parameters in
    ``Accept`` or in the browsable API is the row a change of its address
    finds: its tag is another answer's (no 304 across them) but names the
    same row, not one changed since, which would be a 412 for ever."""
    row = factory()
    url = path.format(row.pk)
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    read = token_client.get(url.removesuffix("/") + suffix, **headers)
    assert read.status_code == 200, read.content
    assert token_client.get(url, HTTP_IF_NONE_MATCH=read["ETag"]).status_code == 200

    response = token_client.patch(url, sent, format="json", HTTP_IF_MATCH=read["ETag"])

    assert response.status_code in {200, 202}, response.content  # 202: crops still to cut
    stale = token_client.delete(url, HTTP_IF_MATCH=read["ETag"])
    assert stale.status_code == 412, stale.content


# --- The tag a write answers with -----------------------------------------------


def _jpeg() -> SimpleUploadedFile:
    return SimpleUploadedFile("a.jpg", jpeg_bytes((64, 48)), content_type="image/jpeg")


# (what is written, a write that answers with the row: returns the answer
# and the row's address, the status it answers)
WRITES: dict[str, tuple[Callable[[APIClient], tuple[Any, str]], set[int]]] = {
    "person-created": (
        lambda c: _created(c.post("/api/v1/people/", {"name": "Ann", "username": "ann"}, format="json")),
        {201},
    ),
    "person-replaced": (
        lambda c: _changed(c.put, PEOPLE, PersonFactory(), {"name": "Ann", "username": "ann"}),
        {200},
    ),
    "person-changed": (lambda c: _changed(c.patch, PEOPLE, PersonFactory(), {"role": "Lead"}), {200}),
    "product-created": (
        lambda c: _created(c.post("/api/v1/products/", {"name": "Fig", "weight": 3}, format="json")),
        {201},
    ),
    "product-posted-again": (
        lambda c: _created(
            c.post(
                "/api/v1/products/",
                {"name": "Fig", "weight": 9, "image_name": ProductFactory(image_name="fig.jpg").image_name},
                format="json",
            )
        ),
        {200},
    ),
    "product-replaced": (
        lambda c: _changed(c.put, PRODUCTS, ProductFactory(), {"name": "Fig", "weight": 4}),
        {200},
    ),
    "product-changed": (lambda c: _changed(c.patch, PRODUCTS, ProductFactory(), {"weight": 7}), {200}),
    "review-created": (
        lambda c: _created(
            c.post("/api/v1/feedback/", {"title": "T", "name": "N", "text": "x"}, format="json")
        ),
        {201},
    ),
    "review-moderated": (
        lambda c: _changed(c.patch, REVIEWS, FeedbackFactory(), {"status": "hidden"}),
        {200},
    ),
    "image-uploaded": (
        lambda c: _created(c.post("/api/v1/images/", {"file": _jpeg()}, format="multipart")),
        {201},
    ),
    "image-focal-point-changed": (
        lambda c: _changed(
            c.patch, IMAGES, ImageFactory(size=(64, 48)), {"focal_point": {"x": 0.2, "y": 0.3}}
        ),
        {200, 202},
    ),
    "image-focal-point-set": (
        lambda c: _action(c, ImageFactory(size=(64, 48)), "focal-point", {"x": 0.2, "y": 0.3}),
        {200, 202},
    ),
    "image-reprocessed": (lambda c: _action(c, ImageFactory(size=(64, 48)), "reprocess", {}), {202}),
}


def _created(response: Any) -> tuple[Any, str]:
    return response, f"{response.wsgi_request.path}{response.json()['id']}/"


def _changed(send: Any, path: str, row: Any, body: dict[str, Any]) -> tuple[Any, str]:
    url = path.format(row.pk)
    return send(url, body, format="json"), url


def _action(client: APIClient, image: Image, name: str, body: dict[str, Any]) -> tuple[Any, str]:
    url = IMAGES.format(image.pk)
    return client.post(f"{url}{name}/", body, format="json"), url


@pytest.mark.parametrize("write", WRITES)
def test_a_write_answers_with_the_tag_a_read_of_its_row_gives_and_a_next_change_takes_it(
    token_client: APIClient, write: str
) -> None:
    """A client making several conditional changes in a row sends each the
    tag the last one answered with: no read between them."""
    make, statuses = WRITES[write]

    response, url = make(token_client)

    assert response.status_code in statuses, response.content
    assert response["ETag"] == tag_of(token_client, url)
    assert token_client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    deleted = token_client.delete(url, HTTP_IF_MATCH=response["ETag"])
    assert deleted.status_code == 204, deleted.content


def test_a_write_s_tag_is_of_the_row_as_the_write_left_it_not_as_changed_since(
    token_client: APIClient,
) -> None:
    person = PersonFactory(role="Engineer")
    url = PEOPLE.format(person.pk)
    first = token_client.patch(url, {"role": "Lead"}, format="json", HTTP_IF_MATCH=tag_of(token_client, url))
    second = token_client.patch(url, {"department": "Ops"}, format="json", HTTP_IF_MATCH=first["ETag"])
    assert second.status_code == 200, second.content
    Person.objects.filter(pk=person.pk).update(role="Moved meanwhile")

    stale = token_client.patch(url, {"role": "Chief"}, format="json", HTTP_IF_MATCH=second["ETag"])

    assert first["ETag"] != second["ETag"]
    assert stale.status_code == 412, stale.content


def test_a_review_the_public_posts_is_held_and_answered_without_a_tag(
    visitor: APIClient, settings: Any
) -> None:
    """Held for moderation, the review is a 404 to whoever posted it: there
    is no tag of it to read, nor to answer with."""
    settings.FEEDBACK_MODERATION = True

    response = visitor.post("/api/v1/feedback/", {"title": "T", "name": "N", "text": "x"}, format="json")

    assert response.status_code == 201, response.content
    assert visitor.get(response["Location"]).status_code == 404
    assert "ETag" not in response


def test_an_upload_by_a_caller_who_may_not_read_it_is_answered_without_a_tag(visitor: APIClient) -> None:
    uploader = UserFactory(username="uploader")
    uploader.user_permissions.set(Permission.objects.filter(codename__in=["add_image", "delete_image"]))
    visitor.force_authenticate(uploader)

    response = visitor.post("/api/v1/images/", {"file": _jpeg()}, format="multipart")

    assert response.status_code == 201, response.content
    assert visitor.get(response["Location"]).status_code == 404  # tied to nothing yet
    assert "ETag" not in response


def test_a_write_s_tag_is_of_its_answer_s_form_and_of_the_half_hour_of_its_signed_urls(
    token_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag of a write is made of what a read's is: the row, the form of
    the answer (a row read at ``.json`` has another) and, where rendition
    URLs are signed, the half of their lifetime the answer was made in."""
    person = PersonFactory(photo=ImageFactory(size=(64, 48)))
    url = PEOPLE.format(person.pk)
    s3_store(
        settings,
        querystring_auth=True,
        querystring_expire=3600,
        addressing_style="path",
        signature_version="s3v4",
    )
    start = 1_800_000_000.0  # the start of a half hour
    _tags_at(monkeypatch, start + 60)

    changed = token_client.patch(url, {"role": "Lead"}, format="json")
    read = token_client.get(url)
    suffixed = token_client.patch(url.removesuffix("/") + ".json", {"role": "Chief"}, format="json")
    suffixed_read = token_client.get(url.removesuffix("/") + ".json")
    before = token_client.get(url)["ETag"]
    _tags_at(monkeypatch, start + 1800)
    later = token_client.get(url, HTTP_IF_NONE_MATCH=before)

    assert "X-Amz-Signature=" in changed.content.decode()
    assert changed["ETag"] == read["ETag"]
    assert changed["ETag"].endswith(f'-{int(start // 1800)}"')
    assert suffixed["ETag"] == suffixed_read["ETag"] != before
    assert later.status_code == 200  # its URLs are signed anew, in the next half hour


def _tags_at(monkeypatch: pytest.MonkeyPatch, at: float) -> None:
    """The tags' clock, stopped at ``at``."""
    monkeypatch.setattr(reads, "time", type("Clock", (), {"time": staticmethod(lambda: at)}))


def test_the_schema_documents_the_tag_of_each_write_and_the_location_of_each_creation(
    visitor: APIClient,
) -> None:
    schema = visitor.get("/api/schema/", {"format": "json"}).json()
    writes = [
        ("/api/v1/people/", "post", ["201"]),
        ("/api/v1/people/{id}/", "put", ["200"]),
        ("/api/v1/people/{id}/", "patch", ["200"]),
        ("/api/v1/products/", "post", ["200", "201"]),
        ("/api/v1/products/{id}/", "put", ["200"]),
        ("/api/v1/products/{id}/", "patch", ["200"]),
        ("/api/v1/feedback/", "post", ["201"]),
        ("/api/v1/feedback/{id}/", "patch", ["200"]),
        ("/api/v1/images/", "post", ["201"]),
        ("/api/v1/images/{id}/", "patch", ["200", "202"]),
        ("/api/v1/images/{id}/focal-point/", "post", ["200", "202"]),
        ("/api/v1/images/{id}/reprocess/", "post", ["202"]),
    ]
    for path, method, codes in writes:
        responses = schema["paths"][path][method]["responses"]
        for code, response in responses.items():
            headers = response.get("headers", {})
            assert ("ETag" in headers) == (code in codes), (path, method, code)
            assert ("Location" in headers) == (code == "201"), (path, method, code)
        if "201" in codes:
            location = responses["201"]["headers"]["Location"]
            assert (location["required"], location["schema"]) == (True, {"type": "string", "format": "uri"})
    for path, method in [("/api/v1/people/{id}/", "delete"), ("/api/v1/people/{id}/", "get")]:
        assert "Location" not in schema["paths"][path][method]["responses"][
            "200" if method == "get" else "204"
        ].get("headers", {})
