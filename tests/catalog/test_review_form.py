"""After the reviews form: the poster lands on the page that holds their
review, marked; "today" is the site's local date everywhere."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog import services, views
from catalog.api import FeedbackThrottle
from catalog.forms import FeedbackForm
from catalog.models import Feedback
from portal import demo
from tests.factories import FeedbackFactory, ProductFactory
from tests.servers import free_port

pytestmark = pytest.mark.django_db

FORM = {"title": "Late to the party", "name": "Ann", "rating": "4", "text": "Still good.", "website": ""}


def highlighted(html: str) -> list[str]:
    """Titles of the reviews the page marks."""
    return re.findall(r'class="review review-highlight"[^>]*>.*?<h[23][^>]*>([^<]*)</h[23]>', html, re.DOTALL)


def test_a_review_with_an_old_date_leads_to_its_page_with_the_review_marked(client: Client) -> None:
    for i in range(25):
        FeedbackFactory(title=f"Newer {i:02d}", date=dt.date(2024, 1, 1) + dt.timedelta(days=i))
    FeedbackFactory(title="Oldest", date=dt.date(2010, 1, 1))

    response = client.post(reverse("catalog:review-submit"), {**FORM, "date": "2015-06-01"})

    review = Feedback.objects.get(title="Late to the party")
    assert response.status_code == 302
    assert response["Location"] == f"/reviews/?page=3&highlight={review.pk}#review-{review.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "Page 3 of 3" in page
    assert highlighted(page) == ["Late to the party"]
    assert f'id="review-{review.pk}"' in page
    assert "Your review" in page
    # The list keeps its order by date: the review sits between older and newer.
    assert page.index("Late to the party") < page.index("Oldest")
    assert "Newer 00" in page


def test_an_old_review_of_a_product_its_page_leaves_out_is_marked_among_the_products_reviews(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PRODUCT_REVIEWS", 5)
    product = ProductFactory()
    for i in range(12):
        FeedbackFactory(
            title=f"Newer {i:02d}", product=product, date=dt.date(2024, 1, 1) + dt.timedelta(days=i)
        )
    FeedbackFactory.create_batch(15, date=dt.date(2024, 6, 1))  # of other things, newer still

    response = client.post(
        reverse("catalog:review-submit"), {**FORM, "product": product.pk, "date": "2015-06-01"}
    )

    review = Feedback.objects.get(title="Late to the party")
    assert (
        response["Location"]
        == f"/reviews/?product={product.pk}&page=2&highlight={review.pk}#review-{review.pk}"
    )
    page = client.get(response["Location"]).content.decode()
    assert "Page 2 of 2" in page
    assert highlighted(page) == ["Late to the party"]


def test_a_review_of_today_leads_to_the_first_page(client: Client) -> None:
    FeedbackFactory.create_batch(12, date=dt.date(2020, 1, 1))
    response = client.post(reverse("catalog:review-submit"), FORM)
    review = Feedback.objects.get(title="Late to the party")
    assert response["Location"] == f"/reviews/?highlight={review.pk}#review-{review.pk}"
    assert highlighted(client.get(response["Location"]).content.decode()) == ["Late to the party"]


def test_reviews_of_the_same_day_are_placed_by_id(client: Client) -> None:
    day = dt.date(2022, 3, 3)
    FeedbackFactory.create_batch(10, date=day)
    response = client.post(reverse("catalog:review-submit"), {**FORM, "date": day.isoformat()})
    review = Feedback.objects.get(title="Late to the party")
    # Newest id first among equal dates: the new review opens page 1.
    assert response["Location"] == f"/reviews/?highlight={review.pk}#review-{review.pk}"


def test_the_list_marks_nothing_without_a_valid_highlight(client: Client) -> None:
    review = FeedbackFactory(title="Plain")
    for query in (
        "",
        "?highlight=abc",
        f"?highlight={review.pk + 1000}",
        "?highlight=²",
        "?highlight=" + "9" * 30,
    ):
        response = client.get(f"/reviews/{query}")
        assert response.status_code == 200, query
        assert highlighted(response.content.decode()) == [], query
        assert "Your review" not in response.content.decode()


@pytest.mark.parametrize("odd", ["²", "①", "9" * 30, "-1", "1.5"])
def test_an_odd_id_in_an_address_is_ignored_not_an_error(client: Client, odd: str) -> None:
    product = ProductFactory()
    FeedbackFactory(title="Kept", product=product)
    assert client.get(f"/catalog/{product.pk}/", {"highlight": odd}).status_code == 200
    form = client.get("/reviews/new/", {"product": odd})
    assert form.status_code == 200
    assert "Reviewing" not in form.content.decode()
    posted = client.post(
        "/reviews/new/", {"product": odd, "title": "T", "name": "N", "text": "Fine.", "rating": 5}
    )
    assert posted.status_code == 400
    assert "no longer in the catalog" in posted.content.decode()


# --- Line breaks as a browser sends them ---------------------------------------

# 5,000 characters in a textarea (its maxlength counts a line break as one),
# posted by the browser with each of its 50 line breaks as CRLF.
PARAGRAPHS = "\n".join(["x" * 98] * 51)[: 5000 - 1] + "."
FORM_ENCODED = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("address", "fields", "user"),
    [
        ("/reviews/new/", {**FORM, "text": ""}, None),
        (
            "/admin/catalog/feedback/add/",
            {"title": "T", "name": "N", "date": "2024-01-02", "status": "published", "text": ""},
            "admin",
        ),
        ("/api/v1/feedback/", {"title": "T", "name": "N", "text": ""}, None),
        ("/feedback/", {"title": "T", "name": "N", "date": "2024-01-02", "feedback": ""}, None),
    ],
    ids=["public-form", "admin", "api", "lab"],
)
def test_a_text_the_browser_allowed_is_taken_from_a_form_and_kept_with_lf(
    client: Client, admin_user: Any, address: str, fields: dict[str, str], user: str | None
) -> None:
    assert len(PARAGRAPHS) == 5000
    assert PARAGRAPHS.count("\n") == 50
    if user:
        client.force_login(admin_user)
    text_field = "feedback" if "feedback" in fields else "text"
    body = urlencode({**fields, text_field: PARAGRAPHS.replace("\n", "\r\n")})

    response = client.post(address, body, content_type=FORM_ENCODED)

    assert response.status_code in (201, 302), response.content.decode()[:2000]
    assert Feedback.objects.get().text == PARAGRAPHS


def test_a_text_over_5000_characters_with_line_breaks_counted_once_is_refused(client: Client) -> None:
    body = urlencode({**FORM, "text": (PARAGRAPHS + "!").replace("\n", "\r\n")})
    response = client.post("/reviews/new/", body, content_type=FORM_ENCODED)
    assert response.status_code == 400
    assert "at most 5000 characters (it has 5001)" in response.content.decode()
    assert not Feedback.objects.exists()


def fields(html: str) -> dict[str, str]:
    """What a browser would send back from the page's form, as it stands."""
    sent = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name, value = re.search(r'name="(\w+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name:
            sent[name.group(1)] = value.group(1) if value else ""
    sent.update(re.findall(r'<textarea [^>]*name="(\w+)"[^>]*>\s*([^<]*)</textarea>', html))
    return {name: unescape(value) for name, value in sent.items()}


def test_a_review_of_a_product_deleted_while_it_was_written_can_be_sent_as_a_review_of_the_store(
    client: Client,
) -> None:
    product = ProductFactory(name="Mango")
    form = client.get("/reviews/new/", {"product": product.pk}).content.decode()
    assert fields(form)["product"] == str(product.pk)
    product.delete()

    again = client.post("/reviews/new/", {**fields(form), **FORM})
    assert again.status_code == 400
    html = again.content.decode()
    assert "no longer in the catalog" in html
    kept = fields(html)
    assert (kept["title"], kept["name"], kept["text"]) == ("Late to the party", "Ann", "Still good.")
    assert kept.get("product", "") == ""

    sent = client.post("/reviews/new/", kept)
    assert sent.status_code == 302
    review = Feedback.objects.get()
    assert (review.title, review.text, review.product) == ("Late to the party", "Still good.", None)


@pytest.mark.parametrize(
    "address",
    ["/people/?q=%00", "/people/a%00b/", "/reviews/?page=%00", "/catalog/?x%00=1", "/admin/login/?next=%00"],
)
def test_a_null_character_in_an_address_is_a_400_that_says_so(client: Client, address: str) -> None:
    response = client.get(address)
    assert response.status_code == 400
    assert "Null characters are not allowed" in response.content.decode()


# --- One "today": the site's local date -----------------------------------------


@pytest.fixture
def zone_where_today_differs() -> Iterator[dt.date]:
    """A time zone whose date differs from the process clock's right now
    (UTC+14 or UTC-11: one of them always does), activated."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        with timezone.override(zone):
            if timezone.localdate() != dt.date.today():
                yield timezone.localdate()
                return
    pytest.fail("no time zone with another date found")


def test_a_review_without_a_date_is_dated_the_sites_today(zone_where_today_differs: dt.date) -> None:
    review = services.feedback_submit(title="t", name="n", text="x")
    assert review.date == zone_where_today_differs


def test_the_form_defaults_and_limits_the_date_by_the_sites_today(zone_where_today_differs: dt.date) -> None:
    form = FeedbackForm({"title": "t", "name": "n", "text": "x", "website": ""})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["date"] == zone_where_today_differs
    tomorrow = zone_where_today_differs + dt.timedelta(days=1)
    assert FeedbackForm({**form.data, "date": tomorrow.isoformat()}).is_valid()
    too_far = zone_where_today_differs + dt.timedelta(days=2)
    assert not FeedbackForm({**form.data, "date": too_far.isoformat()}).is_valid()


def test_demo_reviews_are_dated_back_from_the_sites_today(zone_where_today_differs: dt.date) -> None:

    assert demo.review_dates(2) == [
        zone_where_today_differs - dt.timedelta(days=1),
        zone_where_today_differs - dt.timedelta(days=4),
    ]


def test_a_review_of_a_product_deleted_after_the_form_checked_it_is_refused_the_same_way(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between the form's check and the write (another request's
    deletion): the review is not written against a product that is gone."""
    product = ProductFactory(name="Mango")

    def deleted_meanwhile(form: FeedbackForm) -> bool:
        product.delete()
        return False  # the check the view makes right before the write

    monkeypatch.setattr(FeedbackForm, "is_bot", property(deleted_meanwhile))

    response = client.post("/reviews/new/", {**FORM, "product": product.pk})

    assert response.status_code == 400
    assert "no longer in the catalog" in response.content.decode()
    assert not Feedback.objects.exists()


# --- A review's date as every path reads it -------------------------------------

# The date picker sends 2024-01-02; typed, a date is read as the course's
# endpoint and a review file read it, not in the locale's forms (10/25/2006,
# which reads another day where the day comes first).
TYPED_DATES = [
    ("2024-01-02", dt.date(2024, 1, 2)),
    (" 2024-1-2 ", dt.date(2024, 1, 2)),
    ("10/25/2006", None),
    ("01/02/2024", None),
    ("Oct 25 2006", None),
    ("20240102", None),
    ("2024-W01-2", None),
]


@pytest.mark.parametrize(("date", "day"), TYPED_DATES)
def test_the_review_form_reads_a_date_as_every_path_does(
    client: Client, date: str, day: dt.date | None
) -> None:
    response = client.post("/reviews/new/", {**FORM, "date": date})

    if day is None:
        assert response.status_code == 400
        assert "Enter a date in YYYY-MM-DD form." in response.content.decode()
        assert not Feedback.objects.exists()
    else:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Feedback.objects.get().date == day


@pytest.mark.parametrize("moderated", [False, True], ids=["published", "moderated"])
def test_a_review_sent_twice_by_a_second_click_is_posted_once(
    client: Client, settings: Any, moderated: bool
) -> None:
    """A second click on "Send" while the first is on its way sends the form
    again: the visitor lands where the first put them, and one review is kept."""
    settings.FEEDBACK_MODERATION = moderated
    product = ProductFactory()
    sent = {**FORM, "product": str(product.pk)}
    first = client.post(reverse("catalog:review-submit"), sent)
    again = client.post(reverse("catalog:review-submit"), sent)
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"]
    assert Feedback.objects.count() == 1


@pytest.mark.parametrize("moderated", [False, True], ids=["published", "moderated"])
def test_a_second_click_over_the_limit_lands_where_the_first_did(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, moderated: bool
) -> None:
    """The first click was the last post the limit let through: the second
    is answered as the first was, not with "Please wait", and posts nothing."""
    settings.FEEDBACK_MODERATION = moderated
    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "1/min"})
    sent = {**FORM, "product": str(ProductFactory().pk)}
    first = client.post(reverse("catalog:review-submit"), sent)
    again = client.post(reverse("catalog:review-submit"), sent)
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"]
    assert Feedback.objects.count() == 1


def test_a_client_over_the_limit_posts_no_other_review(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "1/min"})
    assert client.post(reverse("catalog:review-submit"), FORM).status_code == 302
    for other in ({**FORM, "text": "Still good, and cheap."}, {**FORM, "rating": "5"}):
        response = client.post(reverse("catalog:review-submit"), other)
        assert response.status_code == 429
        assert "Please wait" in response.content.decode()
    assert Feedback.objects.count() == 1


def test_a_client_over_the_limit_is_not_sent_to_a_review_another_client_posted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "1/min"})
    url = reverse("catalog:review-submit")
    assert Client().post(url, FORM, REMOTE_ADDR="203.0.113.7").status_code == 302
    other = Client()
    assert other.post(url, {**FORM, "title": "Mine"}, REMOTE_ADDR="203.0.113.8").status_code == 302
    assert other.post(url, FORM, REMOTE_ADDR="203.0.113.8").status_code == 429
    assert Feedback.objects.count() == 2


def test_a_second_click_over_the_limit_on_a_review_hidden_since_is_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "1/min"})
    client.post(reverse("catalog:review-submit"), FORM)
    Feedback.objects.update(status=Feedback.Status.HIDDEN)
    assert client.post(reverse("catalog:review-submit"), FORM).status_code == 429
    assert Feedback.objects.count() == 1


def test_the_same_words_are_a_review_of_their_own_for_another_product_rating_or_later(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = ProductFactory()
    client.post(reverse("catalog:review-submit"), FORM)
    client.post(reverse("catalog:review-submit"), {**FORM, "product": str(product.pk)})
    client.post(reverse("catalog:review-submit"), {**FORM, "rating": "5"})
    assert Feedback.objects.count() == 3
    later = timezone.now() + dt.timedelta(seconds=services.FORM_RESENT_SECONDS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    client.post(reverse("catalog:review-submit"), FORM)
    assert Feedback.objects.count() == 4


def test_a_review_hidden_by_a_moderator_is_not_the_one_a_form_sent_again_lands_on(client: Client) -> None:
    client.post(reverse("catalog:review-submit"), FORM)
    Feedback.objects.update(status=Feedback.Status.HIDDEN)
    client.post(reverse("catalog:review-submit"), FORM)
    assert list(Feedback.objects.values_list("status", flat=True).order_by("pk")) == [
        Feedback.Status.HIDDEN,
        Feedback.Status.PUBLISHED,
    ]


def _browser() -> Client:
    """A visitor's browser, which opened the form (and so holds its security
    cookie) before sending it, checked as a real browser's post is."""
    browser = Client(enforce_csrf_checks=True)
    browser.get(reverse("catalog:review-submit"))
    return browser


def _send(browser: Client, data: dict[str, str]) -> Any:
    token = browser.cookies["csrftoken"].value
    return browser.post(reverse("catalog:review-submit"), {**data, "csrfmiddlewaretoken": token})


def test_two_visitors_who_write_the_same_short_review_post_one_each() -> None:
    """Two Anns' "Great!" of one product at one rating within
    minutes is two reviews: a second click is one browser sending its form
    again, not another visitor's."""
    product = ProductFactory()
    short = {**FORM, "title": "Great!", "text": "Great!", "product": str(product.pk)}
    first, second = _browser(), _browser()

    assert _send(first, short).status_code == 302
    assert _send(first, short).status_code == 302  # its second click
    assert _send(second, short).status_code == 302

    assert Feedback.objects.count() == 2


@pytest.mark.parametrize("moderated", [False, True], ids=["published", "moderated"])
def test_a_second_click_is_posted_once_while_the_shared_cache_is_away(settings: Any, moderated: bool) -> None:
    """A fleet whose Redis is down: the first click's review is recognised
    by the database alone, and another browser's same words are still theirs."""
    settings.FEEDBACK_MODERATION = moderated
    away = {"BACKEND": "portal.cache.ResilientRedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    settings.CACHES = {**settings.CACHES, "shared": {**away, "OPTIONS": {"socket_connect_timeout": 0.2}}}
    caches["shared"].set("probe", True)
    assert caches["shared"].get("probe") is None  # away indeed
    short = {**FORM, "title": "Great!", "text": "Great!", "product": str(ProductFactory().pk)}
    first, other = _browser(), _browser()

    sent = _send(first, short)
    again = _send(first, short)
    assert sent.status_code == again.status_code == 302
    assert again["Location"] == sent["Location"]
    assert _send(other, short).status_code == 302

    assert Feedback.objects.count() == 2


def test_a_second_post_that_did_not_wait_for_the_first_finds_its_review(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two clicks at once, the second's look taken before the first's review
    committed: the database's unique digest gives the second the first's."""
    words = {"title": "Good", "name": "Ann", "text": "Fine.", "rating": 4, "product": ProductFactory()}
    review, created = services.feedback_submit_from_form(**words, sender="secret")
    monkeypatch.setattr(services, "feedback_sent_from_form", lambda **_: None)

    again, created_again = services.feedback_submit_from_form(**words, sender="secret")

    assert (created, created_again) == (True, False)
    assert again == review
    assert Feedback.objects.count() == 1


def _hidden(review: Feedback) -> None:
    Feedback.objects.filter(pk=review.pk).update(status=Feedback.Status.HIDDEN)


def _older_than_the_window(review: Feedback) -> None:
    before = timezone.now() - dt.timedelta(seconds=services.FORM_RESENT_SECONDS + 1)
    Feedback.objects.filter(pk=review.pk).update(created_at=before)


@pytest.mark.parametrize("since", [_hidden, _older_than_the_window], ids=["hidden", "older"])
def test_a_browser_s_review_that_is_no_match_any_more_gives_way_to_its_words_sent_again(
    since: Any,
) -> None:
    """Its digest goes to the new review, which a second click then lands on."""
    words = {"title": "Good", "name": "Ann", "text": "Fine.", "rating": 4, "product": ProductFactory()}
    first, _ = services.feedback_submit_from_form(**words, sender="secret")
    since(first)

    second, created = services.feedback_submit_from_form(**words, sender="secret")
    again, created_again = services.feedback_submit_from_form(**words, sender="secret")

    assert (created, created_again) == (True, False)
    assert second != first
    assert again == second
    first.refresh_from_db()
    assert first.form_digest is None
    assert Feedback.objects.count() == 2


@pytest.mark.parametrize("with_product", [False, True], ids=["of the store", "of a product"])
def test_the_digests_a_form_sent_review_is_recognised_by_keep_their_shape(with_product: bool) -> None:
    """The digest a review keeps, and the key the throttle notes it by:
    written otherwise by a new release, a second click just after it would
    post the review again."""
    product = ProductFactory() if with_product else None
    rating = 4 if with_product else None
    words = {"title": "Good", "name": "Ann", "text": "Fine.", "rating": rating, "product": product}

    review, created = services.feedback_submit_from_form(**words, sender="secret")

    assert created
    match = [review.fingerprint, str(product.pk) if product else "", str(rating or "")]
    assert services.feedback_form_key(**words) == ":".join(match)
    payload = "\x1f".join(["secret", *match]).encode()
    assert review.form_digest == hashlib.sha256(payload).hexdigest()
