"""The admin's lists of large tables count a whole table by the planner's
estimate and say "about"; anything else, and SQLite, is counted exactly. A
page is read wherever the estimate puts the end, and a page past the end
leads to the last one. (The estimate itself is PostgreSQL's:
tests/integration/test_admin_plans_postgres.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from catalog.models import Feedback, Product
from core import admin_counts
from core.admin_counts import EstimatedCountPaginator, PastTheEnd
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
