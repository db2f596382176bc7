from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Feedback
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory

pytestmark = pytest.mark.django_db


def review_form(**overrides: str) -> dict[str, str]:
    data = {
        "title": "Lovely",
        "name": "Ann",
        "date": "2024-05-06",
        "rating": "5",
        "text": "Fresh fruit.",
        "website": "",
    }
    data.update(overrides)
    return data


def test_the_directory_groups_people_by_department(client: Client) -> None:
    PersonFactory(name="Zed", department="Sales")
    PersonFactory(name="Amy", department="Engineering")
    PersonFactory(name="Gone", department="Sales", is_active=False)
    html = client.get(reverse("catalog:people-directory")).content.decode()
    assert html.index("Engineering") < html.index("Amy") < html.index("Sales") < html.index("Zed")
    assert "Gone" not in html


def test_the_directory_search_narrows_the_list(client: Client) -> None:
    PersonFactory(name="Ada Lovelace", username="ada")
    PersonFactory(name="Blaise Pascal", username="blaise")
    html = client.get(reverse("catalog:people-directory"), {"q": "lovelace"}).content.decode()
    assert "Ada Lovelace" in html
    assert "Blaise Pascal" not in html
    assert "1 result for" in html


def test_a_person_page_shows_phones_by_label(client: Client) -> None:
    person = PersonFactory(phone={"office": "802-867-5309", "cell": "802-867-5310"}, role="Lead")
    html = client.get(person.get_absolute_url()).content.decode()
    assert "Office phone" in html
    assert "802-867-5310" in html
    assert "Lead" in html


def test_an_inactive_person_has_no_page(client: Client) -> None:
    person = PersonFactory(is_active=False)
    assert client.get(person.get_absolute_url()).status_code == 404


def test_the_reviews_page_lists_published_reviews_newest_first(client: Client) -> None:
    FeedbackFactory(title="Old one", date=dt.date(2020, 1, 1))
    FeedbackFactory(title="New one", date=dt.date(2023, 1, 1))
    FeedbackFactory(title="Hidden one", status=Feedback.Status.HIDDEN)
    FeedbackFactory(title="Pending one", status=Feedback.Status.PENDING)
    html = client.get(reverse("catalog:review-list")).content.decode()
    assert html.index("New one") < html.index("Old one")
    assert "Hidden one" not in html
    assert "Pending one" not in html


def test_the_reviews_page_is_paginated(client: Client) -> None:
    for i in range(25):
        FeedbackFactory(title=f"Review number {i:02d}", date=dt.date(2020, 1, 1) + dt.timedelta(days=i))
    first = client.get(reverse("catalog:review-list")).content.decode()
    third = client.get(reverse("catalog:review-list"), {"page": 3}).content.decode()
    assert "Page 1 of 3" in first
    assert "Review number 24" in first
    assert "Review number 00" in third


def test_a_submitted_review_redirects_and_appears(client: Client) -> None:
    response = client.post(reverse("catalog:review-submit"), review_form(), follow=True)
    review = Feedback.objects.get()
    assert response.redirect_chain == [
        (f"{reverse('catalog:review-list')}?highlight={review.pk}#review-{review.pk}", 302)
    ]
    html = response.content.decode()
    assert "Your review is published" in html
    assert "Lovely" in html
    review = Feedback.objects.get()
    assert (review.source, review.status, review.rating) == (
        Feedback.Source.WEB,
        Feedback.Status.PUBLISHED,
        5,
    )


def test_an_invalid_review_keeps_what_was_typed_and_says_what_is_wrong(client: Client) -> None:
    response = client.post(reverse("catalog:review-submit"), review_form(title="", rating="9"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required." in html
    assert "less than or equal to 5" in html
    assert "Fresh fruit." in html
    assert Feedback.objects.count() == 0


def test_the_form_needs_a_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("catalog:review-submit"), review_form()).status_code == 403
    assert Feedback.objects.count() == 0


def test_a_bot_filling_the_honeypot_saves_nothing(client: Client) -> None:
    response = client.post(reverse("catalog:review-submit"), review_form(website="http://spam.example"))
    assert response.status_code == 302
    assert Feedback.objects.count() == 0


def test_reviews_wait_for_moderation_when_it_is_on(client: Client, settings: Any) -> None:
    settings.FEEDBACK_MODERATION = True
    response = client.post(reverse("catalog:review-submit"), review_form(), follow=True)
    html = response.content.decode()
    assert "once a moderator has read it" in html
    assert Feedback.objects.get().status == Feedback.Status.PENDING
    assert "Fresh fruit." not in html


def test_too_many_reviews_from_one_address_are_throttled(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.api import FeedbackThrottle

    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "2/min"})
    for _ in range(2):
        assert client.post(reverse("catalog:review-submit"), review_form()).status_code == 302
    response = client.post(reverse("catalog:review-submit"), review_form(title="Third"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Please wait" in response.content.decode()
    assert Feedback.objects.count() == 2


def test_a_future_date_is_refused(client: Client) -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    response = client.post(reverse("catalog:review-submit"), review_form(date=future))
    assert response.status_code == 400
    assert "cannot be in the future" in response.content.decode()


def test_a_product_page_shows_its_published_reviews(client: Client) -> None:
    product = ProductFactory(name="Mango", weight=300)
    FeedbackFactory(product=product, title="Juicy mangoes")
    FeedbackFactory(product=product, title="Secret", status=Feedback.Status.HIDDEN)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "Mango" in html
    assert "300 lbs" in html
    assert "Juicy mangoes" in html
    assert "Secret" not in html


def test_pages_cost_a_constant_number_of_queries(client: Client, django_assert_max_num_queries: Any) -> None:
    def counts() -> list[int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        result = []
        for name in ("home", "catalog:product-list", "catalog:review-list", "catalog:people-directory"):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(reverse(name)).status_code == 200
            result.append(len(ctx.captured_queries))
        return result

    PersonFactory.create_batch(2)
    ProductFactory.create_batch(2)
    FeedbackFactory.create_batch(2)
    few = counts()
    PersonFactory.create_batch(20)
    ProductFactory.create_batch(20)
    FeedbackFactory.create_batch(20)
    assert counts() == few
    assert max(few) <= 6


def test_the_home_page_shows_latest_reviews_and_people(client: Client) -> None:
    FeedbackFactory(title="Top notch")
    PersonFactory(name="Grace Hopper")
    html = client.get(reverse("home")).content.decode()
    assert "Top notch" in html
    assert "Grace Hopper" in html


def test_an_unknown_page_gets_the_sites_404_page(client: Client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_an_unknown_api_url_gets_a_json_404(client: Client) -> None:
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is nothing at this address."}
