from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog import views
from catalog.api import FeedbackThrottle
from catalog.models import Feedback, Person, Product
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, ProductFactory
from uploads.models import Image

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


def test_the_directory_search_ignores_the_spaces_around_it(client: Client) -> None:
    PersonFactory(name="Ada Lovelace", username="ada")
    PersonFactory(name="Blaise Pascal", username="blaise")
    html = client.get(reverse("catalog:people-directory"), {"q": "   "}).content.decode()
    assert "Ada Lovelace" in html
    assert "Blaise Pascal" in html
    assert "result" not in html  # everyone, as with no search: not "2 results for “   ”"
    html = client.get(reverse("catalog:people-directory"), {"q": "  lovelace "}).content.decode()
    assert "1 result for “<bdi>lovelace</bdi>”" in html
    assert 'value="lovelace"' in html


def test_the_directory_is_paginated_keeping_the_search_and_the_grouping(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PEOPLE_PER_PAGE", 3)
    for name in ("Ann", "Bea", "Cid", "Dee"):
        PersonFactory(name=f"{name} Lee", department="Engineering")
    PersonFactory(name="Eve Lee", department="Sales")
    PersonFactory(name="Not Matching", department="Engineering")
    first = client.get(reverse("catalog:people-directory"), {"q": "lee"}).content.decode()
    assert "5 results for" in first
    assert "Page 1 of 2" in first
    assert first.count('class="card person-card"') == 3
    assert 'href="?q=lee&amp;page=2"' in first
    second = client.get(reverse("catalog:people-directory"), {"q": "lee", "page": 2}).content.decode()
    assert second.count('class="card person-card"') == 2
    # The department is named again where its people go on, sized across pages.
    assert '<bdi>Engineering</bdi></h2> <p class="count">4 people</p>' in second
    assert second.index("Dee Lee") < second.index("Sales") < second.index("Eve Lee")
    assert "Not Matching" not in first + second
    assert 'href="?q=lee&amp;page=1"' in second


def test_people_without_a_department_are_listed_last_as_other(client: Client) -> None:
    PersonFactory(name="Aaron Nodept", department="")
    PersonFactory(name="Zoe Sales", department="Sales")
    PersonFactory(name="Amy Engineer", department="Engineering")
    html = client.get(reverse("catalog:people-directory")).content.decode()
    assert (
        html.index("Amy Engineer")
        < html.index("Zoe Sales")
        < html.index("Other")
        < html.index("Aaron Nodept")
    )


def test_a_search_for_other_finds_the_people_without_a_department(client: Client) -> None:
    PersonFactory(name="Aaron Nodept", department="")
    PersonFactory(name="Zoe Sales", department="Sales")
    html = client.get(reverse("catalog:people-directory"), {"q": " oTHer"}).content.decode()
    assert "1 result for" in html
    assert "Aaron Nodept" in html
    assert "Zoe Sales" not in html
    assert '<bdi>Other</bdi></h2> <p class="count">1 person</p>' in html


def test_people_of_a_department_named_other_are_listed_with_those_without_one(client: Client) -> None:
    """One group under the one name, last, not two groups called Other."""
    PersonFactory(name="Ann Other", department=Person.NO_DEPARTMENT)
    PersonFactory(name="Bob Nodept", department="")
    PersonFactory(name="Cy Sales", department="Sales")
    for query in ["", "other"]:
        html = client.get(reverse("catalog:people-directory"), {"q": query}).content.decode()
        heads = re.findall(r'<h2><bdi>([^<]*)</bdi></h2> <p class="count">([^<]*)</p>', html)
        assert heads == ([("Sales", "1 person")] if not query else []) + [("Other", "2 people")], query
        assert html.index("Ann Other") < html.index("Bob Nodept")  # by name, as in any group


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


def test_each_list_names_its_page_links_after_its_order(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REVIEWS_PER_PAGE", "PRODUCTS_PER_PAGE", "PEOPLE_PER_PAGE"):
        monkeypatch.setattr(views, name, 1)
    for n in range(3):
        FeedbackFactory(date=dt.date(2024, 1, 1 + n))
        ProductFactory()
        PersonFactory()
    labels = {}
    for page in ("catalog:review-list", "catalog:product-list", "catalog:people-directory"):
        html = client.get(reverse(page), {"page": 2}).content.decode()
        labels[page] = re.findall(r'rel="(?:prev|next)">([^<]*)</a>', html)
    assert labels == {
        "catalog:review-list": ["← Newer", "Older →"],
        "catalog:product-list": ["← Previous", "Next →"],
        "catalog:people-directory": ["← Previous", "Next →"],
    }


def test_a_submitted_review_redirects_and_appears(client: Client) -> None:
    response = client.post(reverse("catalog:review-submit"), review_form(), follow=True)
    review = Feedback.objects.get()
    assert response.redirect_chain == [
        (f"{reverse('catalog:review-list')}?highlight={review.pk}#review-{review.pk}", 302)
    ]
    html = response.content.decode()
    assert "Your review is published" in html
    assert "Lovely" in html
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


@pytest.mark.parametrize(
    "website",
    ["http://spam.example", "http://spam.example/" + "x" * 300, "spam\x00"],
    ids=["short", "longer-than-any-url-field", "null-character"],
)
def test_a_bot_filling_the_honeypot_saves_nothing_and_is_answered_as_a_person(
    client: Client, website: str
) -> None:
    """Whatever fills the field, the answer is the one a review gets, so a
    bot cannot tell from it that it was caught."""
    response = client.post(reverse("catalog:review-submit"), review_form(website=website))
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:review-list")
    assert Feedback.objects.count() == 0


def test_a_bot_filling_the_honeypot_is_answered_as_a_review_held_for_moderation(
    client: Client, settings: Any
) -> None:
    """Not with a bare redirect a published or held review never gets: the
    same page and message as a review that waits for a moderator."""
    product = ProductFactory()
    caught = client.post(
        reverse("catalog:review-submit"), review_form(website="http://spam.example", product=str(product.pk))
    )
    caught_page = client.get(caught["Location"]).content.decode()
    settings.FEEDBACK_MODERATION = True
    held = client.post(reverse("catalog:review-submit"), review_form(product=str(product.pk)))
    held_page = client.get(held["Location"]).content.decode()

    assert caught["Location"] == held["Location"] == product.get_absolute_url()
    assert "once a moderator has read it" in caught_page
    assert "once a moderator has read it" in held_page
    assert Feedback.objects.get().status == Feedback.Status.PENDING  # the person's alone


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

    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "2/min"})
    for title in ("First", "Second"):
        assert client.post(reverse("catalog:review-submit"), review_form(title=title)).status_code == 302
    response = client.post(reverse("catalog:review-submit"), review_form(title="Third"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Please wait" in response.content.decode()
    assert Feedback.objects.count() == 2


def test_the_throttled_form_names_the_limit_and_keeps_what_was_typed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeedbackThrottle, "THROTTLE_RATES", {"feedback": "1/min"})
    assert client.post(reverse("catalog:review-submit"), review_form()).status_code == 302
    response = client.post(reverse("catalog:review-submit"), review_form(text="My second thoughts."))
    assert response.status_code == 429
    html = response.content.decode()
    assert "the limit is 1 per minute" in html
    assert "My second thoughts." in html


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


def test_a_product_without_a_usable_image_says_it_has_no_photo_wherever_it_shows(client: Client) -> None:
    ProductFactory(name="Bare")
    broken = ImageFactory()
    Image.objects.filter(pk=broken.pk).update(status=Image.Status.FAILED)
    ProductFactory(name="Broken", image=broken)
    for product in Product.objects.all():
        html = client.get(product.get_absolute_url()).content.decode()
        box = re.search(r'<div class="product-image">(.*?)</div>', html, re.DOTALL)
        assert box is not None
        assert "No photo" in box.group(1), product.name
        assert 'role="img"' not in box.group(1)
    for page in ("home", "catalog:product-list"):
        html = client.get(reverse(page)).content.decode()
        assert html.count('class="picture-placeholder picture-missing') == 2, page
        assert 'aria-label="Broken"' not in html


def test_a_visitor_reviews_a_product_from_its_page(client: Client) -> None:
    product = ProductFactory(name="Mango")
    page = client.get(product.get_absolute_url()).content.decode()
    link = f"{reverse('catalog:review-submit')}?product={product.pk}"
    assert f'href="{link}"' in page
    form = client.get(link).content.decode()
    assert "<h1>Review <bdi>Mango</bdi></h1>" in form
    assert f'name="product" value="{product.pk}"' in form

    response = client.post(reverse("catalog:review-submit"), review_form(product=str(product.pk)))
    review = Feedback.objects.get()
    assert review.product == product
    assert response["Location"] == f"{product.get_absolute_url()}?highlight={review.pk}#review-{review.pk}"
    html = client.get(response["Location"]).content.decode()
    assert "Your review" in html
    assert "Fresh fruit." in html


def test_a_review_of_a_product_whose_page_lists_it_no_more_goes_to_the_list(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PRODUCT_REVIEWS", 1)
    product = ProductFactory()
    FeedbackFactory(product=product, date=dt.date(2024, 6, 1))
    response = client.post(reverse("catalog:review-submit"), review_form(product=str(product.pk)))
    review = Feedback.objects.get(title="Lovely")
    assert response["Location"] == (
        f"{reverse('catalog:review-list')}?product={product.pk}&highlight={review.pk}#review-{review.pk}"
    )
    html = client.get(response["Location"]).content.decode()
    assert "Your review" in html
    assert "Fresh fruit." in html


def test_a_product_page_counts_its_reviews_and_links_to_those_it_leaves_out(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PRODUCT_REVIEWS", 2)
    product = ProductFactory(name="Mango")
    for day in range(1, 4):
        FeedbackFactory(product=product, title=f"Day {day}", date=dt.date(2024, 5, day))
    FeedbackFactory(product=product, title="Hidden", status=Feedback.Status.HIDDEN)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "The newest 2 of 3 reviews." in html
    assert f'href="{reverse("catalog:review-list")}?product={product.pk}"' in html
    assert "Day 3" in html
    assert "Day 1" not in html

    monkeypatch.setattr(views, "PRODUCT_REVIEWS", 50)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "3 reviews" in html
    assert "?product=" not in html.replace(f"/reviews/new/?product={product.pk}", "")


def test_the_reviews_page_lists_one_products_reviews_page_by_page(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "REVIEWS_PER_PAGE", 2)
    mango, lime = ProductFactory(name="Mango"), ProductFactory(name="Lime")
    for day in range(1, 4):
        FeedbackFactory(product=mango, title=f"Mango day {day}", date=dt.date(2024, 5, day))
    FeedbackFactory(product=lime, title="Lime review")
    FeedbackFactory(title="Store review")
    first = client.get(reverse("catalog:review-list"), {"product": mango.pk}).content.decode()
    assert "<h1>Reviews of <bdi>Mango</bdi></h1>" in first
    assert "3 reviews, newest first." in first
    assert "Mango day 3" in first
    assert "Lime review" not in first
    assert "Store review" not in first
    assert "Page 1 of 2" in first
    assert f'href="?product={mango.pk}&amp;page=2"' in first
    second = client.get(reverse("catalog:review-list"), {"product": mango.pk, "page": 2}).content.decode()
    assert "Mango day 1" in second
    assert "Mango day 3" not in second


@pytest.mark.parametrize("product", ["999999", "x", "9" * 30])
def test_the_reviews_of_a_product_that_is_not_there_are_a_404(client: Client, product: str) -> None:
    assert client.get(reverse("catalog:review-list"), {"product": product}).status_code == 404


def test_a_pending_review_of_a_product_returns_to_its_page(client: Client, settings: Any) -> None:
    settings.FEEDBACK_MODERATION = True
    product = ProductFactory()
    response = client.post(reverse("catalog:review-submit"), review_form(product=str(product.pk)))
    assert response["Location"] == product.get_absolute_url()


def test_a_review_of_a_product_gone_meanwhile_says_so_and_keeps_the_text(client: Client) -> None:
    product = ProductFactory(name="Mango")
    gone = product.pk
    product.delete()
    response = client.post(reverse("catalog:review-submit"), review_form(product=str(gone)))
    assert response.status_code == 400
    html = response.content.decode()
    assert "no longer in the catalog" in html
    assert "Fresh fruit." in html
    assert "<h1>Write a review</h1>" in html
    assert 'name="product" value' not in html  # sent again, it reviews the store
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize("product", ["999999", "99999999999999999999999", "x"])
def test_a_link_to_a_product_that_is_not_there_opens_the_plain_form(client: Client, product: str) -> None:
    response = client.get(reverse("catalog:review-submit"), {"product": product})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Write a review</h1>" in html
    assert 'name="product" value' not in html


LIST_PAGES = ("home", "catalog:product-list", "catalog:review-list", "catalog:people-directory")
# Each a round trip to the store once media live in S3; ``url`` is computed
# locally (FileSystemStorage, or S3 without query-string auth) and allowed.
ROUND_TRIPS = (
    "exists", "size", "open", "listdir", "save", "delete", "path",
    "get_modified_time", "get_accessed_time", "get_created_time",
)  # fmt: skip


def forbid_storage_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, any round trip to any media store fails the test."""

    def forbidden(alias: str, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"storages[{alias!r}].{name}() called while rendering a page")

        return call

    for alias in settings.STORAGES:
        if alias == "staticfiles":
            continue
        store = storages[alias]
        for name in ROUND_TRIPS:
            if hasattr(store, name):
                monkeypatch.setattr(store, name, forbidden(alias, name))


def add_content(people: int, products: int, reviews: int) -> None:
    """People with portraits and products with pictures, processed through the
    upload services; their reviews."""
    for _ in range(people):
        PersonFactory(photo=ImageFactory(size=(120, 160)))
    for _ in range(products):
        FeedbackFactory.create_batch(
            reviews // max(products, 1), product=ProductFactory(image=ImageFactory())
        )


def render(client: Client) -> dict[str, tuple[int, str]]:
    """Each list page: the queries it took and its HTML."""

    pages = {}
    for name in LIST_PAGES:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse(name))
        assert response.status_code == 200
        pages[name] = (len(ctx.captured_queries), response.content.decode())
    return pages


def test_pages_cost_a_constant_number_of_queries_and_ask_the_storage_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_content(people=2, products=2, reviews=4)
    forbid_storage_calls(monkeypatch)
    few = render(client)
    monkeypatch.undo()
    add_content(people=10, products=10, reviews=20)
    forbid_storage_calls(monkeypatch)
    many = render(client)

    assert {page: queries for page, (queries, _) in many.items()} == {
        page: queries for page, (queries, _) in few.items()
    }
    assert max(queries for queries, _ in few.values()) <= 6
    # The pictures are there, each from its renditions: the prefetch was used.
    pictures = {page: html.count("<picture") for page, (_, html) in many.items()}
    assert pictures == {
        "home": 8 + 6,  # the latest products and people
        "catalog:product-list": 12,
        "catalog:review-list": 0,
        "catalog:people-directory": 12,
    }
    for page, (_, html) in many.items():
        assert html.count("/media/renditions/") >= 2 * pictures[page], page


def test_detail_pages_ask_the_storage_nothing(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    person = PersonFactory(photo=ImageFactory(size=(120, 160)))
    product = ProductFactory(image=ImageFactory())
    FeedbackFactory(product=product)
    forbid_storage_calls(monkeypatch)
    for url in (person.get_absolute_url(), product.get_absolute_url()):
        html = client.get(url).content.decode()
        assert html.count("<picture") == 1, url
        assert "/media/renditions/" in html


def test_the_home_page_shows_latest_reviews_and_people(client: Client) -> None:
    FeedbackFactory(title="Top notch")
    PersonFactory(name="Grace Hopper")
    html = client.get(reverse("home")).content.decode()
    assert "Top notch" in html
    assert "Grace Hopper" in html


def test_a_card_names_its_product_or_person_once_to_a_screen_reader(client: Client) -> None:
    product = ProductFactory(name="Lime", image=ImageFactory(alt="A lime"))
    PersonFactory(name="Grace Hopper", photo=ImageFactory(size=(120, 160)))
    for page in ("home", "catalog:product-list", "catalog:people-directory"):
        html = client.get(reverse(page)).content.decode()
        cards = re.findall(r'<li class="card.*?</li>', html, re.DOTALL)
        assert cards, page
        for card in cards:
            assert re.findall(r'<img [^>]*alt="([^"]*)"', card) == [""], (page, card)
    # Beside its name on its own page, the picture has its own alt text.
    html = client.get(product.get_absolute_url()).content.decode()
    assert 'alt="Lime"' in html


def test_review_titles_are_the_headings_below_the_pages_title(client: Client) -> None:
    FeedbackFactory(title="Crunchy")
    html = client.get(reverse("catalog:review-list")).content.decode()
    assert '<h2 dir="auto">Crunchy</h2>' in html
    assert "<h3" not in html
    home = client.get(reverse("home")).content.decode()
    assert "<h2>Latest reviews</h2>" in home
    assert '<h3 dir="auto">Crunchy</h3>' in home


def test_a_department_heading_is_its_name_alone(client: Client) -> None:
    PersonFactory.create_batch(2, department="Engineering")
    PersonFactory(department="Sales")
    html = client.get(reverse("catalog:people-directory")).content.decode()
    assert re.findall(r"<h2>(.*?)</h2>", html) == ["<bdi>Engineering</bdi>", "<bdi>Sales</bdi>"]
    assert '<p class="count">2 people</p>' in html
    assert '<p class="count">1 person</p>' in html


def test_empty_pages_say_so_in_a_sentence(client: Client) -> None:
    home = client.get(reverse("home")).content.decode()
    assert "<h2>People</h2>" not in home
    directory = client.get(reverse("catalog:people-directory")).content.decode()
    assert "The directory is empty." in directory
    assert "No one matches" not in directory
    catalog = client.get(reverse("catalog:product-list")).content.decode()
    assert "<p>The catalog is empty.</p>" in catalog
    assert '<ul class="grid' not in catalog  # a sentence across the page, not squeezed into a card's cell

    PersonFactory(name="Ada Lovelace")
    searched = client.get(reverse("catalog:people-directory"), {"q": "zzz"}).content.decode()
    assert "No one matches “<bdi>zzz</bdi>”." in searched
    assert "0 results" not in searched
    assert "<h2>People</h2>" in client.get(reverse("home")).content.decode()


def test_an_unknown_page_gets_the_sites_404_page(client: Client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.parametrize(
    ("method", "url"), [("get", "/no/such/page/"), ("get", "/catalog/0/"), ("put", "/catalog/")]
)
def test_an_error_answered_as_a_page_or_as_json_by_what_the_client_accepts_varies_by_accept(
    client: Client, method: str, url: str
) -> None:
    """A cache in front of the portal keeps the page and the JSON apart:
    a script's JSON error is not what the next browser is shown."""
    page = getattr(client, method)(url, HTTP_ACCEPT="text/html")
    script = getattr(client, method)(url, HTTP_ACCEPT="application/json")
    assert page["Content-Type"].startswith("text/html")
    assert script["Content-Type"] == "application/json"
    assert "Accept" in page["Vary"]
    assert "Accept" in script["Vary"]


def test_an_unknown_api_url_gets_a_json_404(client: Client) -> None:
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is nothing at this address."}
