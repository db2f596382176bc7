"""The admin's lists of large tables count a whole table by the planner's
estimate and say "about"; anything else, and SQLite, is counted exactly. A
page is read wherever the estimate puts the end, and a page past the end
leads to the last one. (The estimate itself is PostgreSQL's:
tests/integration/test_admin_plans_postgres.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Feedback, Product
from core import admin_counts
from core.admin_counts import EstimatedCountPaginator, PastTheEnd
from core.admin_delete import LISTED_MAX
from tests.factories import FeedbackFactory, ProductFactory

pytestmark = pytest.mark.django_db

REVIEWS = "/admin/catalog/feedback/"


@pytest.fixture
def estimate(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``estimate(n)``: the planner's estimate of any whole table is n rows."""
    whole = admin_counts.is_whole_table

    def set_estimate(rows: int | None) -> None:
        monkeypatch.setattr(
            admin_counts, "table_estimate", lambda queryset: rows if whole(queryset) else None
        )

    return set_estimate


def products(count: int) -> Any:
    ProductFactory.create_batch(count)
    return Product.objects.order_by("name", "id")


class Small(EstimatedCountPaginator):
    estimate_above = 10


def test_on_sqlite_a_whole_table_is_counted_exactly() -> None:
    paginator = EstimatedCountPaginator(products(12), 5)

    assert paginator.count == 12
    assert not paginator.estimated
    assert admin_counts.table_estimate(Product.objects.all()) is None


def test_a_table_estimated_above_the_threshold_is_not_counted(estimate: Any) -> None:
    estimate(40)
    paginator = Small(products(12), 5)

    assert paginator.count == 40
    assert paginator.estimated


def test_a_table_estimated_at_most_at_the_threshold_is_counted(estimate: Any) -> None:
    estimate(10)
    paginator = Small(products(12), 5)

    assert paginator.count == 12
    assert not paginator.estimated


def test_a_filtered_list_is_counted_exactly(estimate: Any) -> None:
    estimate(40)
    ProductFactory.create_batch(12)
    paginator = Small(Product.objects.filter(pk__gt=0).order_by("id"), 5)

    assert paginator.count == 12
    assert not paginator.estimated


def test_an_estimate_past_the_end_settles_on_the_last_page_read(estimate: Any) -> None:
    estimate(40)  # 8 pages of 5; 23 rows, 5 pages
    listed = products(23)

    page = Small(listed, 5).page(5)

    assert [p.pk for p in page] == [p.pk for p in listed[20:23]]
    assert page.paginator.count == 23
    assert not page.paginator.estimated
    assert not page.has_next()


def test_a_page_past_the_end_of_an_estimate_names_the_last_page(estimate: Any) -> None:
    estimate(40)
    paginator = Small(products(23), 5)

    with pytest.raises(PastTheEnd) as end:
        paginator.page(8)

    assert end.value.last == 5
    assert paginator.count == 23
    assert not paginator.estimated


def test_an_estimate_short_of_the_end_still_leads_to_every_page(estimate: Any) -> None:
    estimate(12)  # 3 pages of 5; 25 rows, 5 full pages
    listed = products(25)
    paginator = Small(listed, 5)

    third = paginator.page(3)
    assert third.has_next()
    assert paginator.estimated
    last = Small(listed, 5).page(5)
    assert [p.pk for p in last] == [p.pk for p in listed[20:25]]
    assert last.paginator.count == 25
    assert not last.has_next()
    with pytest.raises(PastTheEnd) as end:
        Small(listed, 5).page(6)
    assert end.value.last == 5


def test_a_page_before_the_estimated_end_keeps_the_estimate(estimate: Any) -> None:
    estimate(40)
    paginator = Small(products(23), 5)

    page = paginator.page(2)

    assert len(page) == 5
    assert paginator.count == 40
    assert paginator.estimated


def test_a_page_past_the_end_of_an_exact_count_names_the_last_page() -> None:
    paginator = Small(products(12), 5)

    with pytest.raises(PastTheEnd) as end:
        paginator.page(4)

    assert end.value.last == 3


@pytest.mark.parametrize("page", ["2", "10000", "9" * 20])
def test_the_search_for_a_product_to_link_answers_a_page_past_the_end_as_not_found(
    admin_client: Client, page: str
) -> None:
    ProductFactory.create_batch(3)
    search = {"app_label": "catalog", "model_name": "feedback", "field_name": "product", "term": ""}

    assert len(admin_client.get("/admin/autocomplete/", search).json()["results"]) == 3
    # As with Django's own paginator, not a 500.
    assert admin_client.get("/admin/autocomplete/", {**search, "page": page}).status_code == 404


@pytest.mark.parametrize(("rows", "shown"), [(100_000, 100_000), (123_456, 120_000), (10_499, 10_000)])
def test_an_estimate_is_told_to_two_figures(estimate: Any, rows: int, shown: int) -> None:
    estimate(rows)
    paginator = EstimatedCountPaginator(Product.objects.all(), 100)

    assert paginator.about == shown


def visible_text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


@pytest.fixture
def reviews() -> None:
    """One page of 100 and one more."""
    FeedbackFactory.create_batch(101)


def test_the_list_of_reviews_tells_an_estimate_as_one(
    admin_client: Client, estimate: Any, reviews: None
) -> None:
    estimate(100_000)

    response = admin_client.get(REVIEWS)

    text = visible_text(response.content.decode())
    assert response.status_code == 200
    assert "about 100,000 feedback" in text
    assert "Select all (about 100,000) feedback" in text
    assert "All (about 100,000) selected" in text
    assert not re.search(r"\d[\d,]* results? \(", text), "a filtered count was shown"
    assert "100000" not in text


def test_the_last_page_of_an_estimated_list_tells_the_exact_count(
    admin_client: Client, estimate: Any, reviews: None
) -> None:
    estimate(100_000)

    text = visible_text(admin_client.get(REVIEWS, {"p": "2"}).content.decode())

    assert "101 feedback" in text
    assert "about 1" not in text


def test_a_page_past_the_end_of_an_estimated_list_leads_to_the_last_page(
    admin_client: Client, estimate: Any, reviews: None
) -> None:
    estimate(100_000)

    response = admin_client.get(REVIEWS, {"p": "1000", "o": "3"})

    assert response.status_code == 302
    assert response["Location"] == f"{REVIEWS}?p=2&o=3"


@pytest.mark.parametrize("far", ["3000", "9" * 30])
def test_a_page_far_past_an_estimate_is_counted_and_leads_to_the_last_page(
    admin_client: Client, estimate: Any, reviews: None, far: str
) -> None:
    estimate(100_000)

    response = admin_client.get(REVIEWS, {"p": far})

    assert response.status_code == 302
    assert response["Location"] == f"{REVIEWS}?p=2"


def test_a_page_past_the_end_of_an_exact_list_leads_to_the_last_page(
    admin_client: Client, reviews: None
) -> None:
    response = admin_client.get(REVIEWS, {"p": "7"})

    assert response.status_code == 302
    assert response["Location"] == f"{REVIEWS}?p=2"
    assert admin_client.get(response["Location"]).status_code == 200


def test_on_sqlite_the_list_of_reviews_is_counted_exactly(admin_client: Client, reviews: None) -> None:
    text = visible_text(admin_client.get(REVIEWS).content.decode())

    assert "101 feedback" in text
    assert "about 1" not in text


def test_a_filtered_list_of_reviews_tells_its_results_without_counting_the_table(
    admin_client: Client, estimate: Any, reviews: None
) -> None:
    estimate(100_000)
    Feedback.objects.filter(pk__in=Feedback.objects.order_by("pk").values("pk")[:3]).update(
        status=Feedback.Status.HIDDEN
    )

    text = visible_text(
        admin_client.get(REVIEWS, {"status__exact": "hidden", "q": "Review"}).content.decode()
    )

    assert "3 results ( Show all )" in text
    assert not re.search(r"\d[\d,]* total", text), "the whole table was counted"
    assert "3 feedback" in text


@pytest.fixture
def page_and_a_half() -> None:
    """150 reviews: one page of 100 and a half."""
    FeedbackFactory.create_batch(150)


def show_all_link(page: str) -> str:
    found = re.search(r'href="([^"]*)" class="showall"', page)
    assert found, "no link to show all"
    return found.group(1).replace("&amp;", "&")


def test_show_all_of_a_list_estimated_far_too_high_shows_every_row(
    admin_client: Client, estimate: Any, page_and_a_half: None
) -> None:
    estimate(100_000)  # stale: the table has 150 rows

    # The last page finds the list's end, and offers to show it all.
    page = admin_client.get(REVIEWS, {"p": "2"}).content.decode()
    response = admin_client.get(f"{REVIEWS}{show_all_link(page)}")

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert len(changelist.result_list) == 150
    assert "150 feedback" in visible_text(response.content.decode())
    assert 'class="showall"' not in response.content.decode()


@pytest.mark.parametrize("page", [{}, {"p": "1"}, {"p": "1000"}])
def test_show_all_of_any_page_of_a_list_estimated_far_too_high_shows_every_row(
    admin_client: Client, estimate: Any, page_and_a_half: None, page: dict[str, str]
) -> None:
    estimate(100_000)

    response = admin_client.get(REVIEWS, {"all": "", **page}, follow=True)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 150


def test_the_last_page_link_of_a_list_estimated_far_too_high_leads_to_its_last_rows(
    admin_client: Client, estimate: Any, page_and_a_half: None
) -> None:
    estimate(100_000)
    first = admin_client.get(REVIEWS)
    last = max(int(n) for n in re.findall(r'href="\?p=(\d+)"', first.content.decode()))

    response = admin_client.get(REVIEWS, {"p": str(last)}, follow=True)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    assert "150 feedback" in visible_text(response.content.decode())


@pytest.fixture
def count_up_to(monkeypatch: pytest.MonkeyPatch) -> int:
    """A filtered list is counted up to 100 rows (10,000 in use): a page."""
    monkeypatch.setattr(EstimatedCountPaginator, "count_up_to", 100)
    return 100


def test_a_filtered_list_is_counted_up_to_a_bound(count_up_to: int) -> None:
    ProductFactory.create_batch(12)
    filtered = Product.objects.filter(pk__gt=0).order_by("id")

    class Smaller(EstimatedCountPaginator):
        count_up_to = 10

    with CaptureQueriesContext(connection) as ran:
        paginator = Smaller(filtered, 5)
        assert paginator.count == 11
    assert paginator.estimated
    assert paginator.told == "more than 10"
    assert [q["sql"] for q in ran if "COUNT(" in q["sql"].upper()] == [
        q["sql"] for q in ran if "LIMIT 11" in q["sql"]
    ]
    assert Smaller(filtered, 5).page(3).paginator.count == 12  # the last page finds the end


def test_a_filtered_list_of_reviews_past_the_bound_tells_more_than_it(
    admin_client: Client, estimate: Any, reviews: None, count_up_to: int
) -> None:
    estimate(100_000)

    with CaptureQueriesContext(connection) as ran:
        response = admin_client.get(REVIEWS, {"q": "Review"})

    text = visible_text(response.content.decode())
    assert "more than 100 results ( Show all )" in text
    assert "more than 100 feedback" in text
    assert "Select all (more than 100) feedback" in text
    assert "All (more than 100) selected" in text
    assert not re.search(r"\b101 (results|feedback|total)", text), "the list was counted whole"
    counts = [q["sql"] for q in ran if "COUNT(" in q["sql"].upper()]
    assert counts, "nothing was counted"
    assert all("LIMIT 101" in statement for statement in counts), counts
    last = visible_text(admin_client.get(REVIEWS, {"q": "Review", "p": "2"}).content.decode())
    assert "101 results ( Show all )" in last
    assert "101 feedback" in last


def test_a_filtered_list_of_reviews_within_the_bound_is_counted_exactly(
    admin_client: Client, estimate: Any, reviews: None, count_up_to: int
) -> None:
    estimate(100_000)
    Feedback.objects.filter(pk__in=Feedback.objects.order_by("pk").values("pk")[:50]).update(
        status=Feedback.Status.HIDDEN
    )

    text = visible_text(admin_client.get(REVIEWS, {"status__exact": "hidden"}).content.decode())

    assert "50 results ( Show all )" in text
    assert "more than" not in text


def test_every_review_selected_across_a_list_past_the_bound_is_acted_on_and_counted(
    admin_client: Client, estimate: Any, count_up_to: int
) -> None:
    estimate(100_000)
    FeedbackFactory.create_batch(LISTED_MAX + 20, status=Feedback.Status.PUBLISHED)
    FeedbackFactory.create_batch(3, status=Feedback.Status.HIDDEN)
    changelist = f"{REVIEWS}?status__exact=published"
    one = str(Feedback.objects.filter(status=Feedback.Status.PUBLISHED).first().pk)  # type: ignore[union-attr]

    asked = admin_client.post(
        changelist,
        {"action": "delete_selected", "index": "0", "select_across": "1", "_selected_action": [one]},
    )
    hidden = admin_client.post(
        changelist,
        {"action": "hide", "index": "0", "select_across": "1", "_selected_action": [one]},
        follow=True,
    )

    assert (
        f"Are you sure you want to delete the {LISTED_MAX + 20} selected feedback?" in asked.content.decode()
    )
    assert f"{LISTED_MAX + 20} review(s) hidden." in hidden.content.decode()
    assert Feedback.objects.filter(status=Feedback.Status.HIDDEN).count() == LISTED_MAX + 23


@pytest.mark.parametrize("changelist", [REVIEWS, "/admin/catalog/product/", "/admin/uploads/image/"])
def test_the_lists_of_large_tables_offer_no_counts_of_their_filters(
    admin_client: Client, reviews: None, changelist: str
) -> None:
    offered = admin_client.get(changelist).content.decode()
    with CaptureQueriesContext(connection) as ran:
        asked = admin_client.get(changelist, {"_facets": "True"})

    assert "Show counts" not in offered
    assert asked.status_code == 200
    assert "Hide counts" not in asked.content.decode()
    assert not asked.context["cl"].add_facets
    # A facet is a count of each choice: COUNT(...) FILTER (WHERE ...), or COUNT(CASE WHEN ...).
    facets = [q["sql"] for q in ran if re.search(r"COUNT\((CASE WHEN|.*?\) FILTER \(WHERE)", q["sql"])]
    assert not facets


def test_the_list_of_people_still_offers_counts_of_its_filters(admin_client: Client) -> None:
    assert "Show counts" in admin_client.get("/admin/catalog/person/").content.decode()
