"""Reads of the API (``/api/v1/``): lists and details are built from rows, and
say exactly what the serializers would; conditional GET (ETag, 304); how old a
list's count may be; the cursor-paginated feedback; the JSON renderer."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.auth
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.test import APIClient

from catalog.api import FeedbackSerializer, FeedbackViewSet, PersonSerializer, ProductSerializer
from catalog.models import Feedback, Person, Product
from catalog.selectors import feedback_visible, people_visible, products_with_images
from core import api, reads
from core.renderers import JSONRenderer
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, ProductFactory, s3_store
from uploads import rows
from uploads.api import ImageSerializer
from uploads.models import Image, Rendition
from uploads.selectors import images_visible

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _counts_forgotten() -> Iterator[None]:
    """Counts a process keeps outlive a test's rows; each test starts without them."""
    api.forget_counts()
    yield
    api.forget_counts()


def _content() -> None:
    """Rows of every kind the representations treat apart."""
    ready = ImageFactory(size=(700, 500))
    pending = ImageFactory(size=(80, 60), processed=False)
    failed = ImageFactory(size=(90, 60), processed=False)
    Image.objects.filter(pk=failed.pk).update(status=Image.Status.FAILED, error="Truncated file")
    # Processed again: what the run before made on demand is not served.
    again = ImageFactory(size=(120, 80))
    again.renditions.create(
        name="width-50", format="webp", width=50, height=33, bytes=9, storage_key="k.webp"
    )
    Image.objects.filter(pk=again.pk).update(status=Image.Status.PROCESSING)
    Image.objects.filter(pk=ready.pk).update(focal_x=0.25, focal_y=0.75, focal_radius=0.1)
    PersonFactory(username="josé.ñ+1@x", photo=ready, phone={"office": "802-867-5309", "ext": 12})
    PersonFactory(photo=pending, phone={})
    PersonFactory(is_active=False)
    PersonFactory(is_active=False, photo=ImageFactory(size=(60, 80)))  # a portrait the public is not shown
    PersonFactory()
    apple = ProductFactory(name="Apple", image=ready)
    ProductFactory(name="Banana", image=failed)
    ProductFactory(name="Cherry")
    FeedbackFactory(product=apple, rating=5, date=dt.date(2024, 2, 29))
    FeedbackFactory(rating=None)
    FeedbackFactory(status=Feedback.Status.HIDDEN)
    FeedbackFactory(status=Feedback.Status.PENDING, product=apple)


def _expected(endpoint: str, user: Any) -> dict[int, Any]:
    """What the serializers make of every row this caller may see, by id."""
    request = Request(RequestFactory().get(endpoint))
    request.user = user
    staff = user.is_authenticated and user.has_perm("catalog.change_person")
    serializer: BaseSerializer[Any]
    if endpoint.endswith("people/"):
        serializer = PersonSerializer(people_visible(staff=staff), many=True, context={"request": request})
    elif endpoint.endswith("feedback/"):
        serializer = FeedbackSerializer(
            feedback_visible(staff=staff), many=True, context={"request": request}
        )
    elif endpoint.endswith("products/"):
        serializer = ProductSerializer(products_with_images(), many=True, context={"request": request})
    else:
        images = images_visible(staff=api.may_view(user, Image))
        serializer = ImageSerializer(images, many=True, context={"request": request})
    rendered = json.loads(JSONRenderer().render(serializer.data))
    return {item["id"]: item for item in rendered}


ENDPOINTS = ["/api/v1/people/", "/api/v1/feedback/", "/api/v1/products/", "/api/v1/images/"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("persona", ["visitor", "token_client"])
def test_lists_and_details_say_what_the_serializers_would(
    request: pytest.FixtureRequest, endpoint: str, persona: str
) -> None:
    client: APIClient = request.getfixturevalue(persona)
    _content()
    listing = client.get(endpoint, {"page_size": 100})
    assert listing.status_code == 200
    user = Token.objects.get().user if persona == "token_client" else AnonymousUser()
    expected = _expected(endpoint, user)

    got = {item["id"]: item for item in listing.json()["results"]}

    assert got == expected
    assert len(got) >= 2
    for pk, item in expected.items():
        assert client.get(f"{endpoint}{pk}/").json() == item


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns"])
def test_dates_and_times_are_written_as_drf_writes_them(visitor: APIClient, settings: Any, zone: str) -> None:
    settings.TIME_ZONE = zone
    review = FeedbackFactory(date=dt.date(2024, 2, 29))
    Feedback.objects.filter(pk=review.pk).update(
        created_at=dt.datetime(2024, 3, 1, 12, 30, 0, 0, tzinfo=dt.UTC),
        updated_at=dt.datetime(2024, 7, 1, 23, 59, 59, 123456, tzinfo=dt.UTC),
    )

    body = visitor.get(f"/api/v1/feedback/{review.pk}/").json()
    expected = _expected("/api/v1/feedback/", AnonymousUser())[review.pk]

    assert body == expected
    assert body["date"] == "2024-02-29"
    if zone == "UTC":
        assert (body["created_at"], body["updated_at"]) == (
            "2024-03-01T12:30:00Z",
            "2024-07-01T23:59:59.123456Z",
        )
    else:
        assert body["created_at"] == "2024-03-01T09:00:00-03:30"
        assert body["updated_at"] == "2024-07-01T21:29:59.123456-02:30"


def test_a_persons_page_url_is_quoted_as_reverse_quotes_it(visitor: APIClient) -> None:
    person = PersonFactory(username="zoë+o'neil@x")

    body = visitor.get(f"/api/v1/people/{person.pk}/").json()

    assert body["url"] == person.get_absolute_url() == "/people/zo%C3%AB+o'neil@x/"


def test_only_permitted_callers_see_what_fetches_an_original(
    visitor: APIClient, token_client: APIClient
) -> None:
    image = ImageFactory(size=(64, 48))
    ProductFactory(image=image)

    anonymous = visitor.get(f"/api/v1/images/{image.pk}/")
    permitted = token_client.get(f"/api/v1/images/{image.pk}/")

    assert (anonymous.json()["sha256"], anonymous.json()["original"]) == (None, None)
    assert permitted.json()["sha256"] == image.sha256
    assert permitted.json()["original"].endswith(f"/api/v1/images/{image.pk}/original/")
    assert anonymous["ETag"] != permitted["ETag"]


# --- Rendition URLs -----------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"custom_domain": "media.example.com"},
        {"location": "site"},
    ],
)
def test_rendition_urls_are_the_storages_own(settings: Any, options: dict[str, Any]) -> None:
    image = ImageFactory(size=(700, 500))
    s3_store(settings, querystring_auth=False, addressing_style="path", **options)
    renditions = list(Rendition.objects.filter(image=image))
    url = rows.rendition_url_maker()

    assert renditions
    assert [url(r.storage_key) for r in renditions] == [r.url for r in renditions]


def test_signed_rendition_urls_are_left_to_the_storage(settings: Any) -> None:
    s3_store(settings, querystring_auth=True)

    url = rows.rendition_url_maker()("renditions/ab/abc.webp")

    assert "?" in url
    assert "Signature=" in url


# --- Conditional GET ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_matching_etag_is_a_304_without_a_body(visitor: APIClient, endpoint: str) -> None:
    _content()
    first = visitor.get(endpoint)
    tag = first["ETag"]
    pk = first.json()["results"][0]["id"]
    detail = visitor.get(f"{endpoint}{pk}/")

    again = visitor.get(endpoint, HTTP_IF_NONE_MATCH=tag)
    weak = visitor.get(endpoint, HTTP_IF_NONE_MATCH=f'"other", W/{tag}')
    other = visitor.get(endpoint, HTTP_IF_NONE_MATCH='"something-else"')
    detail_again = visitor.get(f"{endpoint}{pk}/", HTTP_IF_NONE_MATCH=detail["ETag"])

    assert tag.startswith('"')
    assert tag.endswith('"')
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", tag)
    assert weak.status_code == 304
    assert other.status_code == 200
    assert other.json() == first.json()
    assert detail["ETag"] != tag
    assert (detail_again.status_code, detail_again.content) == (304, b"")
    assert "Authorization" in again["Vary"]
    assert "Cookie" in again["Vary"]
    assert again["Cache-Control"] == "private, no-cache"


def test_a_304_is_decided_before_any_row_becomes_json(
    visitor: APIClient, monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    FeedbackFactory.create_batch(3)
    tag = visitor.get("/api/v1/feedback/")["ETag"]

    def refuse(*args: Any) -> Any:
        raise AssertionError("serialized for a 304")

    monkeypatch.setattr(FeedbackViewSet, "represent_rows", refuse)
    with django_assert_max_num_queries(2):
        response = visitor.get("/api/v1/feedback/", HTTP_IF_NONE_MATCH=tag)

    assert response.status_code == 304


Change = Callable[[], Any]


def _changes() -> dict[str, tuple[str, Change]]:
    """Per endpoint: a URL and a change to what it shows."""
    review = FeedbackFactory(title="Before")
    person = PersonFactory(photo=ImageFactory(size=(64, 48)))
    product = ProductFactory(image=ImageFactory(size=(64, 48)))
    assert product.image is not None
    assert person.photo is not None
    image_pk, photo_pk = product.image.pk, person.photo.pk
    return {
        "feedback title": (
            "/api/v1/feedback/",
            lambda: Feedback.objects.filter(pk=review.pk).update(title="After"),
        ),
        "feedback status": (
            "/api/v1/feedback/",
            lambda: Feedback.objects.filter(pk=review.pk).update(status=Feedback.Status.HIDDEN),
        ),
        "person name": ("/api/v1/people/", lambda: Person.objects.filter(pk=person.pk).update(name="Other")),
        "person's photo alt text": (
            "/api/v1/people/",
            lambda: Image.objects.filter(pk=photo_pk).update(alt="New"),
        ),
        "product weight": (
            "/api/v1/products/",
            lambda: Product.objects.filter(pk=product.pk).update(weight=7),
        ),
        "product picture's renditions": (
            "/api/v1/products/",
            lambda: Rendition.objects.filter(image_id=image_pk, format="jpeg").delete(),
        ),
        "image focal point": (
            "/api/v1/images/",
            lambda: Image.objects.filter(pk=image_pk).update(focal_x=0.1, focal_y=0.2),
        ),
        "a new row": ("/api/v1/feedback/", lambda: FeedbackFactory(date=dt.date(2030, 1, 1))),
    }


@pytest.mark.parametrize(
    "change",
    [
        "feedback title",
        "feedback status",
        "person name",
        "person's photo alt text",
        "product weight",
        "product picture's renditions",
        "image focal point",
        "a new row",
    ],
)
def test_a_change_to_what_a_page_shows_changes_its_etag(visitor: APIClient, change: str) -> None:
    url, make_change = _changes()[change]
    before = visitor.get(url)
    assert visitor.get(url)["ETag"] == before["ETag"]  # stable while nothing changes

    make_change()
    after = visitor.get(url, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert after.json() != before.json()


def test_moderators_and_visitors_get_different_tags_for_the_same_rows(
    visitor: APIClient, token_client: APIClient
) -> None:
    FeedbackFactory.create_batch(2)

    seen_by_visitor = visitor.get("/api/v1/feedback/")
    seen_by_moderator = token_client.get("/api/v1/feedback/")

    assert seen_by_visitor.json() == seen_by_moderator.json()
    assert seen_by_visitor["ETag"] != seen_by_moderator["ETag"]
    assert (
        token_client.get("/api/v1/feedback/", HTTP_IF_NONE_MATCH=seen_by_visitor["ETag"]).status_code == 200
    )


def test_a_tag_is_keyed_by_the_sites_secret(visitor: APIClient, settings: Any) -> None:
    # An image's row holds its sha256, hidden from visitors: an unkeyed hash
    # of the rows would let anyone with a candidate file confirm it offline.
    ImageFactory(size=(64, 48))
    url = "/api/v1/images/"
    tag = visitor.get(url)["ETag"]
    secret = settings.SECRET_KEY

    settings.SECRET_KEY = secret + "-another"
    elsewhere = visitor.get(url)
    settings.SECRET_KEY = secret
    again = visitor.get(url)

    assert elsewhere.json() == again.json()
    assert elsewhere["ETag"] != tag
    assert again["ETag"] == tag  # servers sharing the secret agree


@pytest.mark.parametrize("endpoint", ["/api/v1/people/", "/api/v1/products/", "/api/v1/images/"])
def test_a_media_store_moved_changes_the_tags_of_what_shows_rendition_urls(
    visitor: APIClient, settings: Any, endpoint: str
) -> None:
    """The same rows read from a store moved elsewhere (a CDN's domain, a
    bucket instead of local files) give other rendition URLs: a client that
    revalidates gets them, not a 304 that keeps the old ones."""
    _content()
    before = visitor.get(endpoint)
    assert "/media/renditions/" in before.content.decode()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "base_url": "https://cdn.example.com/m/"},
        },
    }

    after = visitor.get(endpoint, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert "https://cdn.example.com/m/renditions/" in after.content.decode()
    assert visitor.get(endpoint, HTTP_IF_NONE_MATCH=after["ETag"]).status_code == 304


def _signed_media(settings: Any, bucket: str = "media") -> None:
    """Rendition URLs signed for an hour, as with ``AWS_QUERYSTRING_AUTH``."""
    s3_store(
        settings,
        bucket=bucket,
        querystring_auth=True,
        querystring_expire=3600,
        addressing_style="path",
        signature_version="s3v4",
    )


def _signing_at(monkeypatch: pytest.MonkeyPatch, at: float) -> None:
    """The tags' and the signatures' clocks, both stopped at ``at``."""
    monkeypatch.setattr(reads, "time", _clock(at))
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: dt.datetime.fromtimestamp(at, dt.UTC))


@pytest.mark.parametrize("endpoint", ["/api/v1/people/", "/api/v1/products/", "/api/v1/images/"])
def test_signed_rendition_urls_change_the_tag_only_before_they_expire(
    visitor: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    """Each read signs the URLs anew: the tag stays while the rows and the
    store do, so a client revalidating gets a 304, but only for URLs with
    half their hour left, never for ones about to expire."""
    _content()
    _signed_media(settings)
    start = 1_800_000_000.0  # the start of a half hour
    _signing_at(monkeypatch, start)
    first = visitor.get(endpoint)
    _signing_at(monkeypatch, start + 60)
    again = visitor.get(endpoint)
    detail = visitor.get(f"{endpoint}{first.json()['results'][0]['id']}/")
    _signing_at(monkeypatch, start + 1799)
    not_modified = visitor.get(endpoint, HTTP_IF_NONE_MATCH=first["ETag"])
    detail_again = visitor.get(f"{endpoint}{detail.json()['id']}/", HTTP_IF_NONE_MATCH=detail["ETag"])
    _signing_at(monkeypatch, start + 1800)
    later = visitor.get(endpoint, HTTP_IF_NONE_MATCH=first["ETag"])

    assert "X-Amz-Signature=" in first.content.decode()
    assert first.content != again.content  # signed at another time
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "private, no-cache"
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert detail_again.status_code == 304
    assert later.status_code == 200
    assert later["ETag"] != first["ETag"]
    assert "X-Amz-Date=20270115T083000Z" in later.content.decode()


def test_with_signed_urls_a_change_of_the_rows_or_the_store_still_changes_the_tag(
    visitor: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = ProductFactory(image=ImageFactory(size=(64, 48))).image
    assert image is not None
    _signed_media(settings)
    _signing_at(monkeypatch, 1_800_000_000.0)
    url = f"/api/v1/images/{image.pk}/"
    before = visitor.get(url)

    Image.objects.filter(pk=image.pk).update(alt="New")
    changed = visitor.get(url, HTTP_IF_NONE_MATCH=before["ETag"])
    _signed_media(settings, bucket="elsewhere")
    moved = visitor.get(url, HTTP_IF_NONE_MATCH=changed["ETag"])

    assert changed.status_code == 200
    assert changed["ETag"] != before["ETag"]
    assert moved.status_code == 200
    assert "/elsewhere/renditions/" in moved.content.decode()


def test_with_signed_urls_a_change_sent_with_a_tag_of_any_half_hour_before_is_made(
    token_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If-Match asks whether the row is as read: a tag that changed only as
    the URLs' signing moved on still says so, however long ago it was read
    (a form left open for two hours). Only a tag of the row as it was
    before a change is refused, as without signed URLs."""
    product = ProductFactory(image=ImageFactory(size=(64, 48)))
    _signed_media(settings)
    start = 1_800_000_000.0
    _signing_at(monkeypatch, start + 1000)
    url = f"/api/v1/products/{product.pk}/"
    read = token_client.get(url)
    _signing_at(monkeypatch, start + 1800 + 1000)
    changed = token_client.patch(url, {"weight": 7}, format="json", HTTP_IF_MATCH=read["ETag"])
    read_again = token_client.get(url)
    _signing_at(monkeypatch, start + 4 * 1800 + 1000)
    later = token_client.patch(url, {"weight": 8}, format="json", HTTP_IF_MATCH=read_again["ETag"])
    stale = token_client.patch(url, {"weight": 9}, format="json", HTTP_IF_MATCH=read_again["ETag"])

    assert read["ETag"] != read_again["ETag"]
    assert changed.status_code == 200, changed.content
    assert later.status_code == 200, later.content
    assert stale.status_code == 412
    assert "changed since it was read" in stale.json()["detail"]
    assert Product.objects.get(pk=product.pk).weight == 8


def test_if_none_match_star_is_a_304_for_what_exists(visitor: APIClient) -> None:
    review = FeedbackFactory()

    assert visitor.get(f"/api/v1/feedback/{review.pk}/", HTTP_IF_NONE_MATCH="*").status_code == 304
    assert visitor.get("/api/v1/feedback/999999/", HTTP_IF_NONE_MATCH="*").status_code == 404


# --- Counts -------------------------------------------------------------------


def test_a_list_says_how_old_its_count_is(visitor: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    FeedbackFactory.create_batch(3)
    assert visitor.get("/api/v1/feedback/")["Count-Cached-For"] == "0"  # small: always counted
    monkeypatch.setattr(api, "LARGE_COUNT", 2)
    start = time.time()
    monkeypatch.setattr(api, "time", _clock(start))

    counted = visitor.get("/api/v1/feedback/")
    FeedbackFactory()
    monkeypatch.setattr(api, "time", _clock(start + 12.5))
    reused = visitor.get("/api/v1/feedback/")
    not_modified = visitor.get("/api/v1/feedback/", HTTP_IF_NONE_MATCH=reused["ETag"])
    monkeypatch.setattr(api, "time", _clock(start + 30))
    recounted = visitor.get("/api/v1/feedback/")

    assert (counted["Count-Cached-For"], counted.json()["count"]) == ("0", 3)
    assert (reused["Count-Cached-For"], reused.json()["count"]) == ("13", 3)
    assert (not_modified.status_code, not_modified["Count-Cached-For"]) == (304, "13")
    assert (recounted["Count-Cached-For"], recounted.json()["count"]) == ("0", 4)


def test_a_count_is_kept_apart_per_caller_and_filter(
    visitor: APIClient, token_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "LARGE_COUNT", 1)
    FeedbackFactory.create_batch(2, rating=5)
    FeedbackFactory(status=Feedback.Status.HIDDEN, rating=1)

    def count(client: APIClient, **params: Any) -> int:
        return int(client.get("/api/v1/feedback/", params).json()["count"])

    assert [count(visitor), count(token_client), count(visitor, rating=5), count(token_client, rating=1)] == [
        2,
        3,
        2,
        1,
    ]
    # Paging and ordering do not change what is counted: the count is reused.
    response = visitor.get("/api/v1/feedback/", {"ordering": "rating", "page_size": 1})
    assert (response.json()["count"], response["Count-Cached-For"]) == (2, "1")


def test_a_count_is_kept_apart_for_a_parameter_given_twice_in_another_order(
    visitor: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A filter given twice reads its last value: rating=1&rating=5 lists the fives.
    monkeypatch.setattr(api, "LARGE_COUNT", 1)
    FeedbackFactory.create_batch(2, rating=5)
    FeedbackFactory(rating=1)

    def count(query: str) -> int:
        return int(visitor.get(f"/api/v1/feedback/?{query}").json()["count"])

    assert count("rating=1&rating=5") == 2
    assert count("rating=5&rating=1") == 1


def _clock(at: float) -> Any:
    """A stand-in for the ``time`` module, stopped at ``at``."""
    return type("Clock", (), {"time": staticmethod(lambda: at)})


def test_the_schema_documents_conditional_get_and_the_counts_age(visitor: APIClient) -> None:
    document = json.loads(visitor.get("/api/schema/", {"format": "json"}).content)
    paths = document["paths"]

    for endpoint in ENDPOINTS:
        listing = paths[endpoint]["get"]
        detail = paths[f"{endpoint}{{id}}/"]["get"]
        for operation in (listing, detail):
            assert "304" in operation["responses"]
            assert "If-None-Match" in {p["name"] for p in operation["parameters"]}
            assert "ETag" in operation["responses"]["200"]["headers"]
        assert "Count-Cached-For" in listing["responses"]["200"]["headers"]
        assert "Count-Cached-For" not in detail["responses"]["200"].get("headers", {})
    schemas = document["components"]["schemas"]
    assert set(schemas["PaginatedFeedbackList"]["properties"]) == {"count", "next", "previous", "results"}
    cursor = paths["/api/v1/feedback/cursor/"]["get"]
    page = cursor["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/CursorPaginatedFeedbackList"
    assert set(schemas["CursorPaginatedFeedbackList"]["properties"]) == {"next", "previous", "results"}
    assert "cursor" in {p["name"] for p in cursor["parameters"]}


# --- Cursor pages -------------------------------------------------------------


def test_the_cursor_form_walks_every_visible_review_newest_first(
    visitor: APIClient, django_assert_max_num_queries: Any
) -> None:
    for day in range(1, 8):
        FeedbackFactory.create_batch(3, date=dt.date(2024, 1, day))
    hidden = FeedbackFactory(status=Feedback.Status.HIDDEN, date=dt.date(2024, 1, 4))

    seen: list[dict[str, Any]] = []
    url: str | None = "/api/v1/feedback/cursor/?page_size=4"
    pages = 0
    while url:
        with django_assert_max_num_queries(1):
            body = visitor.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        seen += body["results"]
        url = body["next"]
        pages += 1

    expected = list(
        Feedback.objects.filter(status="published").order_by("-date", "-id").values_list("id", flat=True)
    )
    assert [row["id"] for row in seen] == expected
    assert hidden.pk not in expected
    assert pages == 6
    assert seen[0] == visitor.get(f"/api/v1/feedback/{seen[0]['id']}/").json()


def test_the_cursor_form_filters_like_the_list(visitor: APIClient) -> None:
    FeedbackFactory.create_batch(3, rating=5)
    FeedbackFactory.create_batch(2, rating=1)

    body = visitor.get("/api/v1/feedback/cursor/", {"rating": 5}).json()
    invalid = visitor.get("/api/v1/feedback/cursor/", {"cursor": "not-a-cursor"})

    assert len(body["results"]) == 3
    assert {row["rating"] for row in body["results"]} == {5}
    assert invalid.status_code == 404
    assert "detail" in invalid.json()


def _walk(client: APIClient, url: str | None, link: str) -> list[dict[str, Any]]:
    """Every page from ``url`` on, following ``link`` (``next`` or
    ``previous``) until there is none."""
    pages: list[dict[str, Any]] = []
    while url:
        assert len(pages) < 50, "the walk does not end"
        pages.append(client.get(url).json())
        url = pages[-1][link]
    return pages


def _ids(pages: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for page in pages for row in page["results"]]


def test_the_cursor_form_walks_a_day_of_more_reviews_than_an_offset_could_skip(
    visitor: APIClient, token_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    day = dt.date(2020, 5, 5)
    Feedback.objects.bulk_create(Feedback(title=f"Review {n}", date=day) for n in range(1_150))
    FeedbackFactory(date=day, status=Feedback.Status.HIDDEN)
    FeedbackFactory(date=day - dt.timedelta(days=1))
    FeedbackFactory(date=day + dt.timedelta(days=1))
    url = "/api/v1/feedback/cursor/?page_size=100&date_after=2020-05-05&date_before=2020-05-05"
    published = Feedback.objects.filter(date=day, status="published").values_list("id", flat=True)
    every = Feedback.objects.filter(date=day).values_list("id", flat=True)

    with django_assert_max_num_queries(1):
        visitor.get(url)
    forward = _walk(visitor, url, "next")
    backward = _walk(visitor, forward[-1]["previous"], "previous")
    moderated = _walk(token_client, url, "next")

    assert _ids(forward) == sorted(published, reverse=True)
    assert len(forward) == 12
    assert backward == forward[-2::-1]
    assert _ids(moderated) == sorted(every, reverse=True)


def test_the_cursor_form_pages_back_and_forth_over_the_same_rows(visitor: APIClient) -> None:
    for day in range(1, 4):
        FeedbackFactory.create_batch(3, date=dt.date(2024, 1, day))
    url = "/api/v1/feedback/cursor/?page_size=4"

    first = visitor.get(url).json()
    second = visitor.get(first["next"]).json()
    third = visitor.get(second["next"]).json()
    back = visitor.get(third["previous"]).json()
    again = visitor.get(back["previous"]).json()

    assert (first["previous"], third["next"]) == (None, None)
    assert [len(page["results"]) for page in (first, second, third)] == [4, 4, 1]
    assert back == second
    assert again["results"] == first["results"]
    assert again["previous"] is None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
@pytest.mark.parametrize(
    ("caller", "index"),
    [("visitor", "catalog_fee_status_95413d_idx"), ("token_client", "catalog_feedback_date_idx")],
)
def test_a_cursor_page_is_read_through_an_index_on_date_and_id(
    request: pytest.FixtureRequest, caller: str, index: str
) -> None:
    client: APIClient = request.getfixturevalue(caller)
    FeedbackFactory.create_batch(3)
    second = client.get("/api/v1/feedback/cursor/?page_size=2").json()["next"]

    with CaptureQueriesContext(connection) as captured:
        client.get(second)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {captured.captured_queries[-1]['sql']}")
        plan = " ".join(str(row) for row in cursor.fetchall())

    assert f"USING INDEX {index}" in plan
    assert "TEMP B-TREE" not in plan


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="not base64"),
        pytest.param("é", id="not ascii"),
        # b64decode left to itself drops what is not base64: junk alone would be
        # the first page, and junk around a cursor the page that cursor names.
        pytest.param("!!!", id="junk alone"),
        pytest.param(_cursor("p=2020-05-05&p=7") + "!!!", id="junk after a cursor"),
        pytest.param("cD0yMDIw.LTA1LTA1JnA9Nw==", id="junk inside a cursor"),
        *(
            pytest.param(_cursor(text), id=text)
            for text in [
                "p=2020-05-05",  # the date alone, as DRF's own cursor holds it
                "o=100&p=2020-05-05",
                "p=2020-05-05&p=7&p=7",
                "p=2020-02-30&p=7",
                "p=&p=7",
                "p=2020-05-05&p=seven",
                "r=2&p=2020-05-05&p=7",
                "r=1&r=1&p=2020-05-05&p=7",
                "p=2020-05-05&p=7&admin=1",
            ]
        ),
    ],
)
def test_a_tampered_cursor_is_not_found(visitor: APIClient, cursor: str) -> None:
    FeedbackFactory.create_batch(3)

    response = visitor.get("/api/v1/feedback/cursor/", {"cursor": cursor})

    assert (response.status_code, response.json()) == (404, {"detail": "Invalid cursor"})


def test_a_cursor_at_a_row_that_is_gone_goes_on_after_its_place(visitor: APIClient) -> None:
    older = FeedbackFactory(date=dt.date(2024, 1, 1))
    newer = FeedbackFactory(date=dt.date(2024, 1, 3))
    gone = f"p=2024-01-02&p={newer.pk + 1}"

    after = visitor.get("/api/v1/feedback/cursor/", {"cursor": _cursor(gone)}).json()
    before = visitor.get("/api/v1/feedback/cursor/", {"cursor": _cursor(f"r=1&{gone}")}).json()

    assert [row["id"] for row in after["results"]] == [older.pk]
    assert [row["id"] for row in before["results"]] == [newer.pk]
    assert (after["next"], before["previous"]) == (None, None)


def test_a_cursor_page_whose_rows_stay_but_whose_links_change_is_not_a_304(visitor: APIClient) -> None:
    # The page's rows are the same, but a review dated before them now
    # follows them: a client holding the old answer must learn of ``next``.
    FeedbackFactory.create_batch(3, date=dt.date(2024, 1, 2))
    url = "/api/v1/feedback/cursor/?page_size=3"
    before = visitor.get(url)
    assert before.json()["next"] is None

    FeedbackFactory(date=dt.date(2000, 1, 1))
    after = visitor.get(url, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert after.json()["results"] == before.json()["results"]
    assert after.json()["next"] is not None


# --- Renderer -----------------------------------------------------------------


def test_the_renderer_writes_integer_keys_as_the_standard_encoder_does() -> None:
    data = {"phone": {0: ["Not a valid string."]}, "when": dt.date(2024, 5, 1)}

    assert json.loads(JSONRenderer().render(data)) == json.loads(json.dumps(data, default=str))
