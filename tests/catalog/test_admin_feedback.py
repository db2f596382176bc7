"""Moderating reviews in the admin with the bulk actions."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Feedback
from tests.factories import FeedbackFactory

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
