"""Writes conditional on ``If-Match``: a client that read a row, with its
``ETag``, and sends the tag back with its change or deletion has it made only
if the row is still what it read; else ``412 Precondition Failed`` and
nothing is written, so no one's change is overwritten unseen."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from catalog.api import FeedbackViewSet, PersonViewSet, ProductViewSet
from catalog.models import Feedback, Person, Product
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, ProductFactory
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
