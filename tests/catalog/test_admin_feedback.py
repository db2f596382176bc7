"""Moderating reviews in the admin with the bulk actions."""

from __future__ import annotations

import datetime as dt
import html
import re
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import services
from catalog.admin import FeedbackAdmin
from catalog.models import Feedback
from core import admin_dates
from core.admin_counts import EstimatedCountPaginator
from core.admin_dates import walk_dates
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory

pytestmark = pytest.mark.django_db

REVIEWS = "/admin/catalog/feedback/"
FORM = "application/x-www-form-urlencoded"


def test_hiding_the_selected_reviews(admin_client: Client) -> None:
    review = FeedbackFactory(status=Feedback.Status.PUBLISHED)
    response = admin_client.post(REVIEWS, {"action": "hide", "_selected_action": [str(review.pk)]})
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == Feedback.Status.HIDDEN


@pytest.mark.parametrize("selected", ["abc", "1.5", ""])
def test_an_action_on_ids_that_are_not_ids_is_a_bad_request(admin_client: Client, selected: str) -> None:
    review = FeedbackFactory(status=Feedback.Status.PUBLISHED)
    response = admin_client.post(REVIEWS, {"action": "hide", "_selected_action": [str(review.pk), selected]})
    assert response.status_code == 400
    assert "not valid ids" in response.content.decode()
    review.refresh_from_db()
    assert review.status == Feedback.Status.PUBLISHED


@pytest.mark.parametrize(
    ("changelist", "make"),
    [("/admin/catalog/person/", PersonFactory), ("/admin/catalog/product/", ProductFactory)],
    ids=["people", "products"],
)
def test_the_stock_delete_action_on_ids_that_are_not_ids_is_a_bad_request(
    admin_client: Client, changelist: str, make: Any
) -> None:
    kept = make()
    selection = {"action": "delete_selected", "_selected_action": [str(kept.pk), "abc"], "post": "yes"}
    response = admin_client.post(changelist, selection)
    assert response.status_code == 400
    assert "not valid ids" in response.content.decode()
    assert type(kept).objects.filter(pk=kept.pk).exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a limit of SQLite's")
def test_publishing_every_review_selected_across_pages_stays_within_sqlite_s_limit_on_values(
    admin_client: Client, sqlite_limit: Callable[[int, int], None]
) -> None:
    """SQLite takes a bounded number of values in one statement (32,766 in
    its own builds, 250,000 in Debian's): lowered here to the 999 Django
    counts on for its own bulk writes (the history's among them), so that
    1,100 reviews stand for a selection past it, taken in batches (each
    counted in the number the moderator is told)."""
    sqlite_limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    Feedback.objects.bulk_create(
        Feedback(title=f"Review {i}", date=dt.date(2024, 1, 1), text="Fine.", status=Feedback.Status.HIDDEN)
        for i in range(1100)
    )

    response = admin_client.post(
        REVIEWS,
        {"action": "publish", "select_across": "1", "index": "0", "_selected_action": ["1"]},
        follow=True,
    )

    assert response.redirect_chain == [(REVIEWS, 302)]
    assert [str(m) for m in response.context["messages"]] == ["1100 review(s) published."]
    assert Feedback.objects.filter(status=Feedback.Status.PUBLISHED).count() == 1100
    assert LogEntry.objects.count() == 1100


def history(review: Feedback) -> list[tuple[str, int, str]]:
    """Who changed the review in the admin, how, and what they said of it."""
    return [
        (entry.user.username, entry.action_flag, entry.get_change_message())
        for entry in LogEntry.objects.filter(object_id=str(review.pk))
    ]


def test_a_review_published_or_hidden_in_bulk_has_it_in_its_history(admin_client: Client) -> None:
    waiting = FeedbackFactory(status=Feedback.Status.PENDING)
    shown = FeedbackFactory(status=Feedback.Status.PUBLISHED)
    hidden = FeedbackFactory(status=Feedback.Status.HIDDEN)
    selected = [str(review.pk) for review in (waiting, shown, hidden)]

    admin_client.post(REVIEWS, {"action": "publish", "_selected_action": selected})
    admin_client.post(REVIEWS, {"action": "hide", "_selected_action": [str(waiting.pk)]})

    assert history(waiting) == [
        ("admin", CHANGE, "Hidden by bulk action"),
        ("admin", CHANGE, "Published by bulk action"),
    ]
    # The rows the action did not change have no entry for it.
    assert history(shown) == []
    assert history(hidden) == [("admin", CHANGE, "Published by bulk action")]
    page = admin_client.get(f"{REVIEWS}{waiting.pk}/history/").content.decode()
    assert "Published by bulk action" in page
    assert "Hidden by bulk action" in page


def test_the_history_of_thousands_of_reviews_published_at_once_is_written_in_batches(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    """One statement per review was 5,000 statements for 5,000 reviews."""
    Feedback.objects.bulk_create(
        Feedback(title=f"Review {i}", date=dt.date(2024, 1, 1), text="Fine.", status=Feedback.Status.HIDDEN)
        for i in range(5000)
    )
    selection = {"action": "publish", "select_across": "1", "index": "0", "_selected_action": ["1"]}

    with django_assert_max_num_queries(100):
        response = admin_client.post(REVIEWS, selection)

    assert response.status_code == 302
    assert Feedback.objects.filter(status=Feedback.Status.PUBLISHED).count() == 5000
    logged = LogEntry.objects.filter(change_message="Published by bulk action", user__username="admin")
    assert sorted(map(int, logged.values_list("object_id", flat=True))) == sorted(
        Feedback.objects.values_list("pk", flat=True)
    )


# --- Deleting thousands -------------------------------------------------------


def confirm_form(page: str) -> str:
    """The confirmation's form as a browser sends it (its hidden fields)."""
    form = page[page.index('<form method="post"', page.index('id="content"')) :]
    form = form[: form.index("</form>")]
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return urlencode([(name, html.unescape(value)) for name, value in fields])


def ask_to_delete(client: Client, changelist: str, **selection: Any) -> Any:
    return client.post(changelist, {"action": "delete_selected", "index": "0", **selection})


def confirm(client: Client, changelist: str, page: Any) -> Any:
    return client.post(changelist, confirm_form(page.content.decode()), content_type=FORM)


@pytest.fixture
def many_reviews() -> list[int]:
    """More reviews than Django lets a form post fields (1,000)."""
    Feedback.objects.bulk_create(
        Feedback(title=f"Review {i}", date=dt.date(2024 if i % 2 else 2023, 1, 1), text="Fine.")
        for i in range(1100)
    )
    return sorted(Feedback.objects.values_list("pk", flat=True))


def test_deleting_every_review_selected_across_pages_is_confirmed_by_counts(
    admin_client: Client, many_reviews: list[int]
) -> None:
    page = ask_to_delete(
        admin_client, REVIEWS, select_across="1", _selected_action=[str(pk) for pk in many_reviews[-100:]]
    )
    assert page.status_code == 200
    html_page = page.content.decode()
    assert "Are you sure you want to delete the 1,100 selected feedback?" in html_page
    assert "<li>Feedback: 1,100</li>" in html_page
    assert "Review 5" not in html_page  # counted, not listed
    assert len(parse_qsl(confirm_form(html_page))) < 110
    assert confirm(admin_client, REVIEWS, page).status_code == 302
    assert not Feedback.objects.exists()


def test_deleting_every_review_of_a_filtered_list_deletes_those_only(
    admin_client: Client, many_reviews: list[int]
) -> None:
    changelist = f"{REVIEWS}?date__year=2024"
    page = ask_to_delete(
        admin_client, changelist, select_across="1", _selected_action=[str(many_reviews[-1])]
    )
    assert "<li>Feedback: 550</li>" in page.content.decode()
    assert confirm(admin_client, changelist, page).status_code == 302
    assert set(Feedback.objects.values_list("date__year", flat=True)) == {2023}
    assert Feedback.objects.count() == 550


def test_a_selection_that_grew_after_its_confirmation_is_not_deleted(
    admin_client: Client, many_reviews: list[int]
) -> None:
    page = ask_to_delete(admin_client, REVIEWS, select_across="1", _selected_action=[str(many_reviews[-1])])
    FeedbackFactory(title="Written meanwhile")
    again = confirm(admin_client, REVIEWS, page)
    assert again.status_code == 200
    assert "it now holds 1,101 rows. Nothing was deleted; confirm again." in again.content.decode()
    assert Feedback.objects.count() == 1101
    assert confirm(admin_client, REVIEWS, again).status_code == 302
    assert not Feedback.objects.exists()


def test_a_few_reviews_are_listed_one_by_one_before_they_are_deleted(admin_client: Client) -> None:
    reviews = FeedbackFactory.create_batch(3)
    page = ask_to_delete(admin_client, REVIEWS, _selected_action=[str(r.pk) for r in reviews[:2]])
    html_page = page.content.decode()
    assert all(r.title in html_page for r in reviews[:2])
    assert confirm(admin_client, REVIEWS, page).status_code == 302
    assert list(Feedback.objects.all()) == [reviews[2]]


def test_publishing_the_selected_reviews(admin_client: Client) -> None:
    waiting = FeedbackFactory(status=Feedback.Status.PENDING)
    hidden = FeedbackFactory(status=Feedback.Status.HIDDEN)
    left = FeedbackFactory(status=Feedback.Status.PENDING)
    selection = {"action": "publish", "_selected_action": [str(waiting.pk), str(hidden.pk)]}
    response = admin_client.post(REVIEWS, selection, follow=True)
    assert "2 review(s) published." in response.content.decode()
    statuses = dict(Feedback.objects.values_list("pk", "status"))
    assert statuses == {waiting.pk: "published", hidden.pk: "published", left.pk: "pending"}


def test_a_status_reviews_do_not_have_is_refused_in_bulk_changing_none() -> None:
    review = FeedbackFactory(status=Feedback.Status.PENDING)
    with pytest.raises(ValidationError, match="Unknown status 'archived'"):
        services.feedback_set_status(reviews=Feedback.objects.all(), status="archived")
    assert Feedback.objects.get(pk=review.pk).status == Feedback.Status.PENDING


def test_a_review_published_or_hidden_in_bulk_is_dated_as_changed(admin_client: Client) -> None:
    """As a review changed on its page: its ``updated_at`` (the API's and the
    change page's) is the time it was published or hidden, not its last save
    before that."""
    before = timezone.now() - dt.timedelta(days=3)
    waiting = FeedbackFactory(status=Feedback.Status.PENDING)
    shown = FeedbackFactory(status=Feedback.Status.PUBLISHED)
    kept = FeedbackFactory(status=Feedback.Status.HIDDEN)
    Feedback.objects.update(updated_at=before)

    admin_client.post(REVIEWS, {"action": "publish", "_selected_action": [str(waiting.pk)]})
    admin_client.post(REVIEWS, {"action": "hide", "_selected_action": [str(shown.pk), str(kept.pk)]})

    updated = dict(Feedback.objects.values_list("pk", "updated_at"))
    assert updated[waiting.pk] > before
    assert updated[shown.pk] > before
    # Hidden already: not changed, so not dated anew.
    assert updated[kept.pk] == before


def _listed(client: Client, **query: str) -> set[str]:
    response = client.get(REVIEWS, query)
    assert response.status_code == 200
    return {review.title for review in response.context["cl"].result_list}


def test_the_review_list_filters_by_status_date_and_rating(admin_client: Client) -> None:
    FeedbackFactory(title="Old and glowing", date=dt.date(2023, 5, 2), rating=5)
    FeedbackFactory(title="Hidden rant", date=dt.date(2024, 3, 9), rating=1, status=Feedback.Status.HIDDEN)
    FeedbackFactory(title="Waiting", date=dt.date(2024, 3, 20), rating=None, status=Feedback.Status.PENDING)
    page = admin_client.get(REVIEWS).content.decode()
    for link in ("?status__exact=hidden", "?rating=5", "?rating__isnull=True", "?date__gte="):
        assert f'href="{link}' in page, link
    assert _listed(admin_client, status__exact="hidden") == {"Hidden rant"}
    assert _listed(admin_client, status__exact="pending") == {"Waiting"}
    assert _listed(admin_client, rating="5") == {"Old and glowing"}
    assert _listed(admin_client, rating__isnull="True") == {"Waiting"}
    assert _listed(admin_client, date__gte="2024-03-10", date__lt="2024-03-31") == {"Waiting"}


# Filters of the review list by numbers no column can hold: SQLite and
# PostgreSQL refuse them differently (tests/integration/test_odd_requests_postgres.py).
NUMBERS_NO_COLUMN_HOLDS = pytest.mark.parametrize(
    "query",
    [
        {"rating": "-1"},
        {"rating__exact": "9" * 20},
        {"product__id__exact": "9" * 20},
        {"date__month": "9" * 20},
        {"date__day": "-" + "9" * 20},
    ],
    ids=["negative-rating", "huge-rating", "huge-product", "huge-month", "huge-day"],
)


@NUMBERS_NO_COLUMN_HOLDS
def test_a_filter_by_a_number_no_column_can_hold_lists_no_review(
    admin_client: Client, query: dict[str, str]
) -> None:
    FeedbackFactory(title="Fine", date=dt.date(2024, 3, 9), rating=4)

    # The drill-down by date, above the list, finds no period either.
    assert _listed(admin_client, **query) == set()


def test_the_review_list_walks_down_the_dates_year_by_month(admin_client: Client) -> None:
    FeedbackFactory(title="Spring 2023", date=dt.date(2023, 5, 2))
    FeedbackFactory(title="March 2024", date=dt.date(2024, 3, 9))
    FeedbackFactory(title="April 2024", date=dt.date(2024, 4, 1))
    years = admin_client.get(REVIEWS).content.decode()
    assert 'href="?date__year=2023"' in years
    assert 'href="?date__year=2024"' in years
    months = admin_client.get(REVIEWS, {"date__year": "2024"}).content.decode()
    assert 'href="?date__month=3&amp;date__year=2024"' in months
    assert _listed(admin_client, date__year="2024") == {"March 2024", "April 2024"}
    assert _listed(admin_client, date__year="2024", date__month="3") == {"March 2024"}


def _drill_down(page: str) -> list[str]:
    """The drill-down's links to a period, as their query strings."""
    bar = re.search(r'<nav class="toplinks">(.*?)</nav>', page, re.S)
    assert bar, "no drill-down"
    links = re.findall(r'<a href="\?([^"]*)">', bar.group(1))
    return [html.unescape(link) for link in links]


def test_the_drill_down_lists_the_periods_with_reviews_without_reading_every_review(
    admin_client: Client,
) -> None:
    for day in (dt.date(2021, 6, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 29), dt.date(2024, 2, 29)):
        FeedbackFactory(date=day)
    FeedbackFactory(date=dt.date(2024, 12, 31), status=Feedback.Status.HIDDEN)

    pages, ran = [], []
    for query in (
        {},
        {"date__year": "2024"},
        {"date__year": "2024", "date__month": "2"},
        {"status__exact": "hidden"},
    ):
        with CaptureQueriesContext(connection) as queries:
            pages.append(admin_client.get(REVIEWS, query).content.decode())
        ran += [q["sql"] for q in queries.captured_queries]  # before the next request clears them
    years, months, days, hidden = pages

    assert len(ran) >= 4 * 3
    assert not [sql for sql in ran if "DISTINCT" in sql]
    # The years with reviews, not those between them.
    assert _drill_down(years) == ["date__year=2021", "date__year=2024"]
    assert _drill_down(months) == [
        "date__month=1&date__year=2024",
        "date__month=2&date__year=2024",
        "date__month=12&date__year=2024",
    ]
    assert _drill_down(days) == ["date__day=29&date__month=2&date__year=2024"]
    # A filtered list drills down into its own reviews: all on one day, shown at once.
    assert _drill_down(hidden) == ["date__day=31&date__month=12&date__year=2024&status__exact=hidden"]


def reviews_at_the_calendar_s_ends() -> None:
    """Reviews on the first and last days a date can be, and between."""
    FeedbackFactory(title="First day", date=dt.date(1, 1, 1))
    FeedbackFactory(title="Now", date=dt.date(2024, 3, 9))
    FeedbackFactory(title="Last June", date=dt.date(9999, 6, 1))
    FeedbackFactory(title="Last day", date=dt.date(9999, 12, 31))


# A drill-down at the calendar's ends: the reviews it lists, and its links onwards.
DRILL_DOWNS_AT_THE_CALENDAR_S_ENDS = pytest.mark.parametrize(
    ("query", "listed", "links"),
    [
        (
            {},
            {"First day", "Now", "Last June", "Last day"},
            ["date__year=1", "date__year=2024", "date__year=9999"],
        ),
        (
            {"date__year": "9999"},
            {"Last June", "Last day"},
            ["date__month=6&date__year=9999", "date__month=12&date__year=9999"],
        ),
        (
            {"date__year": "9999", "date__month": "12"},
            {"Last day"},
            ["date__day=31&date__month=12&date__year=9999"],
        ),
        ({"date__year": "9999", "date__month": "12", "date__day": "31"}, {"Last day"}, []),
        (
            {"date__year": "9999", "date__month": "6"},
            {"Last June"},
            ["date__day=1&date__month=6&date__year=9999"],
        ),
        ({"date__year": "1"}, {"First day"}, ["date__month=1&date__year=1"]),
        ({"date__year": "1", "date__month": "1", "date__day": "1"}, {"First day"}, []),
        # With the date filter's own bounds (which Django's links onwards leave behind).
        (
            {"date__year": "9999", "date__lt": "9999-12-31"},
            {"Last June"},
            ["date__month=6&date__year=9999"],
        ),
        (
            {"date__gte": "9999-12-31"},
            {"Last day"},
            ["date__day=31&date__month=12&date__year=9999"],
        ),
        (
            {"date__lt": "0001-01-02"},
            {"First day"},
            ["date__day=1&date__month=1&date__year=1"],
        ),
    ],
    ids=[
        "years",
        "last-year",
        "last-month",
        "last-day",
        "month-of-the-last-year",
        "first-year",
        "first-day",
        "last-year-before-its-last-day",
        "filter-from-the-last-day",
        "filter-before-the-second-day",
    ],
)


@DRILL_DOWNS_AT_THE_CALENDAR_S_ENDS
def test_a_drill_down_at_the_calendar_s_ends_lists_its_reviews(
    admin_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    query: dict[str, str],
    listed: set[str],
    links: list[str],
) -> None:
    reviews_at_the_calendar_s_ends()
    # Counted up to one review: more are counted as a list past the bound is.
    monkeypatch.setattr(EstimatedCountPaginator, "count_up_to", 1)

    response = admin_client.get(REVIEWS, query)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert {review.title for review in changelist.result_list} == listed
    assert changelist.result_count == len(listed)
    page = response.content.decode()
    assert _drill_down(page) == links


@pytest.mark.parametrize(
    ("drill_down", "kept"),
    [
        ({"date__year": "2024"}, {"Now"}),
        ({"date__year": "2024", "date__month": "3", "date__day": "9"}, {"Now"}),
        ({"date__year": "9999"}, {"Last June", "Last day"}),
        ({"date__year": "9999", "date__month": "12"}, {"Last day"}),
    ],
    ids=["year", "day", "last-year", "last-month"],
)
def test_clearing_the_filters_of_a_drill_down_keeps_the_drill_down(
    admin_client: Client, drill_down: dict[str, str], kept: set[str]
) -> None:
    """The link lists the drill-down's period as its own links do, not by
    the bounds Django turns it into (``?date__gte=2024-01-01 00:00:00``),
    which the date filter refuses as no day."""
    reviews_at_the_calendar_s_ends()
    query = {**drill_down, "status__exact": "published", "date__gte": "0001-01-01", "o": "3"}
    page = admin_client.get(REVIEWS, query).content.decode()
    link = re.search(r'<a href="\?([^"]*)">&#10006; Clear all filters</a>', page)
    assert link, "no link to clear the filters"

    assert dict(parse_qsl(html.unescape(link.group(1)), keep_blank_values=True)) == {**drill_down, "o": "3"}
    response = admin_client.get(f"{REVIEWS}?{html.unescape(link.group(1))}")
    assert response.status_code == 200
    assert {review.title for review in response.context["cl"].result_list} == kept


@pytest.mark.parametrize("kind", ["year", "month", "day"])
@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_the_walk_of_the_dates_finds_what_dates_finds(kind: str, order: str) -> None:
    days = [dt.date(2019, 12, 31), dt.date(2020, 1, 1), dt.date(2020, 2, 29), dt.date(2020, 3, 1)]
    days += [dt.date(2020, 3, 1), dt.date(2020, 3, 31), dt.date(2023, 7, 14), dt.date(2023, 7, 15)]
    for i, day in enumerate(days):
        FeedbackFactory(date=day, status=Feedback.Status.HIDDEN if i % 2 else Feedback.Status.PUBLISHED)

    for reviews in (
        Feedback.objects.all(),
        Feedback.objects.filter(status=Feedback.Status.HIDDEN),
        Feedback.objects.filter(date__year=2020),
        Feedback.objects.filter(date__year=2022),
        # A number out of its column's range: the ORM knows no row matches.
        Feedback.objects.filter(rating=-1),
    ):
        assert walk_dates(reviews, "date", kind, order) == list(reviews.dates("date", kind, order))


def test_the_list_offers_every_rating_without_reading_every_review_for_them(admin_client: Client) -> None:
    FeedbackFactory(rating=4, title="Four stars")
    FeedbackFactory(rating=None, title="No stars")
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(REVIEWS).content.decode()
    assert not [
        q["sql"] for q in queries.captured_queries if 'DISTINCT "catalog_feedback"."rating"' in q["sql"]
    ]
    for rating in range(1, 6):
        assert f'href="?rating={rating}"' in page
    assert 'href="?rating__isnull=True"' in page
    fours = admin_client.get(f"{REVIEWS}?rating=4").content.decode()
    assert "Four stars" in fours
    assert "No stars" not in fours


def _pages_by_product(client: Client, order: str) -> tuple[list[str], list[str]]:
    """The titles of every page of the list sorted by product (the seventh
    column, after the selection box), in the order shown, and the statements
    that read them."""
    titles: list[str] = []
    statements: list[str] = []
    page = 1
    while True:
        with CaptureQueriesContext(connection) as ran:
            response = client.get(REVIEWS, {"o": order, "p": str(page)})
        assert response.status_code == 200
        changelist = response.context["cl"]
        titles += [review.title for review in changelist.result_list]
        statements += [query["sql"] for query in ran]
        if page >= changelist.paginator.num_pages:
            return titles, statements
        page += 1


@pytest.mark.parametrize("order", ["7", "-7"], ids=["ascending", "descending"])
def test_the_review_list_sorted_by_product_pages_by_product_name_and_reads_no_outer_join_in_that_order(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    monkeypatch.setattr(FeedbackAdmin, "list_per_page", 3)
    cherry, apple, banana = (ProductFactory(name=name) for name in ("Cherry", "Apple", "Banana"))
    for title, product in [
        ("cherry 1", cherry),
        ("none 1", None),
        ("apple 1", apple),
        ("banana 1", banana),
        ("none 2", None),
        ("apple 2", apple),
        ("cherry 2", cherry),
        ("none 3", None),
    ]:
        FeedbackFactory(title=title, product=product)
    # SQLite sorts an empty product first going up, PostgreSQL last, as their
    # one query of a short list does.
    empty = ["none 1", "none 2", "none 3"]
    named = ["apple 1", "apple 2", "banana 1", "cherry 1", "cherry 2"]
    up = named + empty if connection.features.nulls_order_largest else empty + named

    titles, statements = _pages_by_product(admin_client, order)

    assert titles == (up if order == "7" else up[::-1])
    assert [r.title for r in Feedback.objects.order_by(f"{order[:-1]}product", f"{order[:-1]}pk")] == titles
    sorted_over_outer_join = [
        s for s in statements if "LEFT OUTER JOIN" in s and 'ORDER BY "catalog_product"."name"' in s
    ]
    assert not sorted_over_outer_join


def _reviews_by_product(names: dict[str, int], empty: int) -> list[str]:
    """Reviews of the products named (so many each) and of none, titled by
    product and number; their titles in the order of the list sorted by
    product going up."""
    named = []
    for name, reviews in names.items():
        product = ProductFactory(name=name)
        for i in range(1, reviews + 1):
            FeedbackFactory(title=f"{name.lower()} {i}", product=product)
            named.append(f"{name.lower()} {i}")
    nothing = [f"none {i}" for i in range(1, empty + 1)]
    for title in nothing:
        FeedbackFactory(title=title, product=None)
    return named + nothing if connection.features.nulls_order_largest else nothing + named


@pytest.mark.parametrize("bound", [1, 2, 3, 4, 5, 100])
@pytest.mark.parametrize("order", ["7", "-7"], ids=["ascending", "descending"])
def test_the_review_list_sorted_by_product_shows_the_same_pages_whatever_it_counts_up_to(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, order: str, bound: int
) -> None:
    monkeypatch.setattr(FeedbackAdmin, "list_per_page", 3)
    monkeypatch.setattr(EstimatedCountPaginator, "count_up_to", bound)
    up = _reviews_by_product({"Apple": 2, "Banana": 3, "Cherry": 1}, empty=4)

    titles, _ = _pages_by_product(admin_client, order)

    assert titles == (up if order == "7" else up[::-1])


def test_a_page_of_the_review_list_sorted_by_product_past_its_reviews_of_no_product_counts_them_up_to_the_bound(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeedbackAdmin, "list_per_page", 3)
    monkeypatch.setattr(EstimatedCountPaginator, "count_up_to", 3)
    up = _reviews_by_product({"Apple": 2, "Banana": 3, "Cherry": 1}, empty=3)
    # The direction the three reviews of no product come first in.
    order = "-7" if connection.features.nulls_order_largest else "7"

    for page, shown in [(2, slice(3, 6)), (3, slice(6, 9))]:
        with CaptureQueriesContext(connection) as ran:
            response = admin_client.get(REVIEWS, {"o": order, "p": str(page)})
        titles = [review.title for review in response.context["cl"].result_list]
        assert titles == (up if order == "7" else up[::-1])[shown]
        of_none = [q["sql"] for q in ran if '"catalog_feedback"."product_id" IS NULL' in q["sql"]]
        # Counted once, up to the bound, and none of their rows read to be skipped.
        assert len(of_none) == 1, of_none
        assert of_none[0].startswith("SELECT COUNT(*)"), of_none
        assert "LIMIT 4" in of_none[0], of_none


# --- A review's date as every path reads it ---------------------------------------


@pytest.mark.parametrize(
    ("date", "day"),
    [
        ("2024-01-02", dt.date(2024, 1, 2)),
        (" 2024-1-2 ", dt.date(2024, 1, 2)),
        ("10/25/2006", None),
        ("01/02/2024", None),
        ("20240102", None),
        ("2024-W01-2", None),
    ],
)
def test_a_review_date_is_changed_in_the_admin_as_every_path_reads_it(
    admin_client: Client, date: str, day: dt.date | None
) -> None:
    review = FeedbackFactory(title="Dated", date=dt.date(2023, 5, 2))
    change = f"{REVIEWS}{review.pk}/change/"
    assert 'value="2023-05-02"' in admin_client.get(change).content.decode()  # as the calendar writes it
    fields = {"title": "Dated", "name": review.name, "text": review.text, "status": review.status}

    response = admin_client.post(change, {**fields, "date": date})

    review.refresh_from_db()
    if day is None:
        assert response.status_code == 200
        assert "Enter a date in YYYY-MM-DD form." in response.content.decode()
        assert review.date == dt.date(2023, 5, 2)
    else:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert review.date == day


def test_a_review_date_past_tomorrow_is_refused_in_the_admin(admin_client: Client) -> None:
    review = FeedbackFactory(date=dt.date(2023, 5, 2))
    too_far = timezone.localdate() + dt.timedelta(days=2)
    fields = {"title": review.title, "name": review.name, "text": review.text, "status": review.status}

    response = admin_client.post(f"{REVIEWS}{review.pk}/change/", {**fields, "date": too_far.isoformat()})

    assert response.status_code == 200
    assert "The date cannot be in the future." in response.content.decode()
    review.refresh_from_db()
    assert review.date == dt.date(2023, 5, 2)


@pytest.mark.parametrize("day", ["20240102", "2024-W01-2", "2024-1-2", "10/25/2006"])
def test_the_review_list_filters_by_a_day_only_as_its_links_give_it(admin_client: Client, day: str) -> None:
    FeedbackFactory(title="New year", date=dt.date(2024, 1, 5))
    assert _listed(admin_client, date__gte="2024-01-02", date__lt="2024-01-09") == {"New year"}

    for query in ({"date__gte": day}, {"date__gte": "2024-01-02", "date__lt": day}):
        listed = admin_client.get(REVIEWS, query)
        exported = admin_client.get(f"{REVIEWS}export/", query)

        # Refused as the admin refuses any filter it cannot apply.
        assert (listed.status_code, listed["Location"]) == (302, f"{REVIEWS}?e=1"), query
        assert exported.status_code == 400, query


def five_digit_years(day: str, *modifiers: str) -> str | None:
    """SQLite's DATE() for the drill-down's steps, as a build that writes a
    year past 9999 in five digits (SQLite leaves it undefined) gives them."""
    date = dt.date.fromisoformat(day)
    year, month, number = date.year, date.month, date.day
    for modifier in modifiers:
        if modifier == "start of year":
            month = number = 1
        elif modifier == "start of month":
            number = 1
        elif modifier == "+1 years":
            year += 1
        elif modifier == "+1 months":
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        elif modifier == "+1 days":
            if date == dt.date.max:
                year, month, number = 10000, 1, 1
            else:
                after = date + dt.timedelta(days=1)
                year, month, number = after.year, after.month, after.day
        else:
            return None
    return f"{year:04}-{month:02}-{number:02}"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's DATE() alone is undefined past 9999")
@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_the_walk_of_the_dates_ends_where_a_date_past_9999_has_five_digits(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in (dt.date(2024, 5, 1), dt.date(9999, 12, 31)):
        FeedbackFactory(date=day)
    connection.ensure_connection()
    sqlite = connection.connection
    # Under a name of its own: SQLite's DATE() cannot be had back once replaced.
    for arguments in (2, 3):
        sqlite.create_function("FIVE_DIGIT_DATE", arguments, five_digit_years, deterministic=True)
    steps = {k: v.replace("DATE(", "FIVE_DIGIT_DATE(") for k, v in admin_dates._NEXT_PERIOD["sqlite"].items()}
    monkeypatch.setitem(admin_dates._NEXT_PERIOD, "sqlite", steps)
    calls = 0

    def stop_a_walk_without_end() -> int:
        nonlocal calls
        calls += 1
        return int(calls > 10_000)

    sqlite.set_progress_handler(stop_a_walk_without_end, 100)
    try:
        found = walk_dates(Feedback.objects.all(), "date", kind)
    finally:
        sqlite.set_progress_handler(None, 0)

    assert found == list(Feedback.objects.dates("date", kind))


@pytest.mark.parametrize(
    ("changelist", "make", "action"),
    [
        (REVIEWS, FeedbackFactory, "export_admin_action"),
        (REVIEWS, FeedbackFactory, "publish"),
        (REVIEWS, FeedbackFactory, "delete_selected"),
        ("/admin/catalog/person/", PersonFactory, "delete_selected"),
        ("/admin/catalog/product/", ProductFactory, "delete_selected"),
    ],
)
def test_an_action_on_rows_all_deleted_meanwhile_says_so_and_does_nothing(
    admin_client: Client, changelist: str, make: Any, action: str
) -> None:
    """Another admin deleted every selected row while the list was open:
    the export led to a page refusing its own address (400), and a deletion
    asked to confirm the deletion of nothing."""
    rows = [make(), make()]
    kept = make()
    selected = [str(row.pk) for row in rows]
    type(kept).objects.filter(pk__in=selected).delete()

    response = admin_client.post(changelist, {"action": action, "_selected_action": selected}, follow=True)

    assert response.redirect_chain == [(changelist, 302)]
    told = [str(m) for m in response.context["messages"]]
    assert any("meanwhile" in line and "nothing was done" in line for line in told), told
    assert type(kept).objects.filter(pk=kept.pk).exists()


def test_an_action_on_rows_some_deleted_meanwhile_acts_on_the_others(admin_client: Client) -> None:
    gone, left = (
        FeedbackFactory(status=Feedback.Status.HIDDEN),
        FeedbackFactory(status=Feedback.Status.HIDDEN),
    )
    selected = [str(gone.pk), str(left.pk)]
    gone.delete()

    response = admin_client.post(REVIEWS, {"action": "publish", "_selected_action": selected}, follow=True)

    assert [str(m) for m in response.context["messages"]] == ["1 review(s) published."]
    left.refresh_from_db()
    assert left.status == Feedback.Status.PUBLISHED


def test_a_demo_review_a_moderator_changes_or_publishes_in_the_admin_stays_demo(admin_client: Client) -> None:
    """As through the API: moderating an invented review makes it no real
    customer's, and ``seed_demo --remove`` takes it with the rest."""
    edited = FeedbackFactory(is_demo=True, title="Old", date=dt.date(2023, 5, 2))
    published = FeedbackFactory(is_demo=True, status=Feedback.Status.PENDING)
    fields = {"title": "New", "name": edited.name, "text": edited.text, "status": edited.status}

    changed = admin_client.post(f"{REVIEWS}{edited.pk}/change/", {**fields, "date": "2023-05-02"})
    acted = admin_client.post(REVIEWS, {"action": "publish", "_selected_action": [str(published.pk)]})

    assert (changed.status_code, acted.status_code) == (302, 302)
    edited.refresh_from_db()
    published.refresh_from_db()
    assert (edited.is_demo, edited.title) == (True, "New")
    assert (published.is_demo, published.status) == (True, Feedback.Status.PUBLISHED)
    services.demo_remove()
    assert not Feedback.objects.filter(pk__in=[edited.pk, published.pk]).exists()
