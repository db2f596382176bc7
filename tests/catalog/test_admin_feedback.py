"""Moderating reviews in the admin with the bulk actions."""

from __future__ import annotations

from typing import Any

import pytest
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
