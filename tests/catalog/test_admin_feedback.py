"""Moderating reviews in the admin with the bulk actions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from catalog.models import Feedback
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory

pytestmark = pytest.mark.django_db

REVIEWS = "/admin/catalog/feedback/"


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
def test_publishing_every_review_selected_across_pages_is_one_statement_whatever_their_number(
    admin_client: Client, sqlite_limit: Callable[[int, int], None]
) -> None:
    """SQLite takes a bounded number of values in one statement (32,766 in
    its own builds, 250,000 in Debian's): lowered to 100 here, so that 150
    reviews stand for a selection past it."""
    sqlite_limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
    hidden = FeedbackFactory.create_batch(150, status=Feedback.Status.HIDDEN)

    response = admin_client.post(
        REVIEWS,
        {"action": "publish", "select_across": "1", "index": "0", "_selected_action": [str(hidden[0].pk)]},
    )

    assert response.status_code == 302
    assert Feedback.objects.filter(status=Feedback.Status.PUBLISHED).count() == len(hidden)
