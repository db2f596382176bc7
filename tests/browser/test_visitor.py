"""A visitor's walks through the public site, in a real browser."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import storages
from PIL import Image as PILImage
from PIL import ImageChops
from playwright.sync_api import expect

from catalog.models import Feedback, Person, Product
from tests.browser.conftest import Browsing
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = (390, 844)


@pytest.fixture
def people(ready_image: Callable[..., Image]) -> dict[str, Person]:
    return {
        "ada": PersonFactory.create(
            name="Ada Lovelace",
            username="ada",
            department="Engineering",
            role="Principal Engineer",
            phone={"office": "802-867-5309", "cell": "802-555-0142"},
            photo=ready_image("ada.jpg", color=(40, 90, 160)),
        ),
        "grace": PersonFactory.create(
            name="Grace Hopper", username="grace", department="Engineering", role="Compiler Lead"
        ),
        "bob": PersonFactory.create(
            name="Bob Barker", username="bob", department="Sales", role="Account Manager"
        ),
        "gone": PersonFactory.create(
            name="Former Employee", username="gone", department="Sales", is_active=False
        ),
    }


@pytest.fixture
def products(ready_image: Callable[..., Image]) -> dict[str, Product]:
    apple = ProductFactory.create(
        name="Honeycrisp Apples",
        weight=500,
        description="Crisp and sweet, picked in October.",
        image=ready_image("001.jpeg", color=(190, 30, 40), alt="A crate of red apples"),
    )
    pear = ProductFactory.create(
        name="Bartlett Pears", weight=300, image=ready_image("002.jpeg", color=(160, 180, 40))
    )
    return {"apple": apple, "pear": pear}


def test_a_visitor_finds_a_colleague_in_the_directory_and_sees_their_page(
    browsing: Browsing, people: dict[str, Person]
) -> None:
    page = browsing.page
    browsing.visit("/", "home")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome to {django_settings.SITE_NAME}")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    expect(page).to_have_url(re.compile(r"/people/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    browsing.shot("directory")

    # Grouped by department, inactive people left out.
    departments = page.locator("section.department")
    expect(departments.locator("h2")).to_have_text(["Engineering", "Sales"])
    expect(departments.locator(".count")).to_have_text(["2 people", "1 person"])
    expect(departments.nth(0).locator(".card-title")).to_have_text(["Ada Lovelace", "Grace Hopper"])
    expect(departments.nth(1).locator(".card-title")).to_have_text(["Bob Barker"])
    expect(page.get_by_text("Former Employee")).to_have_count(0)
    browsing.assert_images_loaded(".person-card img", at_least=1)

    # The search narrows the directory.
    page.get_by_label("Search the directory").fill("lovelace")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/people/\?q=lovelace$"))
    expect(page.get_by_text("1 result for “lovelace”")).to_be_visible()
    expect(page.locator(".person-card .card-title")).to_have_text(["Ada Lovelace"])
    expect(page.locator("section.department h2")).to_have_text([re.compile("^Engineering")])
    browsing.shot("directory-search")

    page.locator(".person-card").get_by_text("Ada Lovelace").click()
    expect(page).to_have_url(re.compile(r"/people/ada/$"))
    profile = page.locator("article.profile")
    expect(profile.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(profile.locator(".lead")).to_have_text("Principal Engineer, Engineering")
    expect(profile.get_by_role("link", name="802-867-5309")).to_have_attribute("href", "tel:802-867-5309")
    expect(profile.get_by_text("Office phone")).to_be_visible()
    expect(profile.get_by_text("Cell phone")).to_be_visible()
    expect(profile.get_by_role("link", name="ada@example.com")).to_be_visible()
    photo = profile.locator(".profile-photo picture img")
    expect(photo).to_have_attribute("alt", "Ada Lovelace")
    browsing.assert_images_loaded(".profile-photo picture img")
    browsing.shot("person")


def test_a_person_without_a_photo_shows_their_initial(browsing: Browsing, people: dict[str, Person]) -> None:
    browsing.visit("/people/grace/", "person-without-photo")
    page = browsing.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    expect(page.locator(".profile-photo .initials")).to_have_text("G")
    expect(page.locator(".profile-photo img")).to_have_count(0)
    # An initial is a capital, whatever the name starts with.
    PersonFactory.create(name="élodie durand", username="elodie", department="Sales")
    browsing.visit("/people/", "initial-capital")
    expect(page.locator(".person-card", has_text="élodie durand").locator(".initials")).to_have_text("É")


def test_a_person_whose_photo_failed_shows_their_initial(
    browsing: Browsing, people: dict[str, Person], ready_image: Callable[..., Image]
) -> None:
    photo = ready_image("broken.jpg", color=(90, 90, 90))
    Image.objects.filter(pk=photo.pk).update(status=Image.Status.FAILED, error="Truncated file")
    Person.objects.filter(pk=people["bob"].pk).update(photo=photo)
    for path in ("/people/bob/", "/people/"):
        browsing.visit(path, "failed-photo")
        card = browsing.page.locator(".profile-photo, .card:has-text('Bob Barker')").first
        expect(card.locator(".initials")).to_have_text("B")
        expect(card.locator("img")).to_have_count(0)


def test_a_visitor_browses_the_catalog_to_a_product_and_its_reviews(
    browsing: Browsing, products: dict[str, Product]
) -> None:
    apple, pear = products["apple"], products["pear"]
    FeedbackFactory.create(
        title="Best apples in town", name="Maria", rating=5, product=apple, date=dt.date(2024, 3, 2)
    )
    FeedbackFactory.create(
        title="A bit small this year", name="Tom", rating=3, product=apple, date=dt.date(2024, 2, 1)
    )
    FeedbackFactory.create(title="Spam about apples", product=apple, status=Feedback.Status.HIDDEN)
    FeedbackFactory.create(title="Juicy pears", product=pear)
    page = browsing.page

    browsing.visit("/", "home")
    expect(page.locator(".products .card-title")).to_have_text(["Bartlett Pears", "Honeycrisp Apples"])
    browsing.assert_images_loaded(".products img", at_least=2)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    expect(page).to_have_url(re.compile(r"/catalog/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalog")
    cards = page.locator(".products .card")
    expect(cards).to_have_count(2)
    expect(cards.nth(1)).to_contain_text("Honeycrisp Apples")
    expect(cards.nth(1)).to_contain_text("500 lbs")
    browsing.assert_images_loaded(".products img", at_least=2)
    browsing.shot("catalog")

    cards.nth(1).get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/catalog/{apple.pk}/$"))
    product = page.locator("article.product")
    expect(product.get_by_role("heading", level=1)).to_have_text("Honeycrisp Apples")
    expect(product.locator(".lead")).to_have_text("500 lbs")
    expect(product).to_contain_text("Crisp and sweet, picked in October.")
    expect(product.locator("picture img")).to_have_attribute("alt", "Honeycrisp Apples")
    browsing.assert_images_loaded(".product-image picture img")

    reviews = page.locator("article.review")
    expect(reviews.locator("h3")).to_have_text(["Best apples in town", "A bit small this year"])
    expect(reviews.first.locator(".rating")).to_have_attribute("aria-label", "5 out of 5")
    expect(reviews.first.locator(".meta")).to_contain_text("Maria · March 2, 2024")
    expect(page.get_by_text("Spam about apples")).to_have_count(0)
    expect(page.get_by_text("Juicy pears")).to_have_count(0)
    browsing.shot("product")


def _open_review_form(browsing: Browsing) -> None:
    page = browsing.page
    browsing.visit("/", "home")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(page).to_have_url(re.compile(r"/reviews/$"))
    browsing.shot("reviews")
    page.get_by_role("link", name="Write a review").click()
    expect(page).to_have_url(re.compile(r"/reviews/new/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Write a review")
    browsing.shot("review-form")


def _fill_review(browsing: Browsing, *, title: str) -> None:
    page = browsing.page
    page.get_by_label("Title").fill(title)
    page.get_by_label("Your name").fill("Jamie Rivera")
    page.get_by_label("Rating (1–5)").fill("4")
    page.get_by_label("Your review").fill("The pears arrived ripe.\nWill order again.")


def test_a_visitor_submits_a_review_and_sees_it_listed(browsing: Browsing) -> None:
    FeedbackFactory.create(title="An older review", date=dt.date(2023, 5, 1))
    page = browsing.page
    _open_review_form(browsing)

    _fill_review(browsing, title="Ripe and sweet")
    page.get_by_role("button", name="Send review").click()

    expect(page).to_have_url(re.compile(r"/reviews/\?highlight=\d+#review-\d+$"))
    expect(page.get_by_role("status")).to_have_text("Thank you! Your review is published.")
    reviews = page.locator("article.review")
    expect(reviews.locator("h2")).to_have_text(["Ripe and sweet", "An older review"])
    expect(page.locator("article.review-highlight h2")).to_have_text("Ripe and sweet")
    expect(page.locator("article.review-highlight .review-badge")).to_have_text("Your review")
    expect(reviews.first.locator(".rating")).to_have_attribute("aria-label", "4 out of 5")
    expect(reviews.first.locator(".meta")).to_contain_text("Jamie Rivera")
    expect(reviews.first).to_contain_text("Will order again.")
    browsing.shot("review-published")
    assert Feedback.objects.get(title="Ripe and sweet").status == Feedback.Status.PUBLISHED


def test_a_review_with_an_old_date_is_shown_marked_on_its_page(browsing: Browsing) -> None:
    for i in range(25):
        FeedbackFactory.create(title=f"Recent {i:02d}", date=dt.date(2024, 1, 1) + dt.timedelta(days=i))
    page = browsing.page
    _open_review_form(browsing)

    _fill_review(browsing, title="Remembered late")
    page.get_by_label("Date").fill("2015-06-01")
    page.get_by_role("button", name="Send review").click()

    expect(page).to_have_url(re.compile(r"/reviews/\?page=3&highlight=\d+#review-\d+$"))
    expect(page.get_by_text("Page 3 of 3")).to_be_visible()
    marked = page.locator("article.review-highlight")
    expect(marked.locator("h2")).to_have_text("Remembered late")
    expect(marked).to_be_in_viewport()
    expect(marked.locator(".review-badge")).to_have_text("Your review")
    browsing.shot("review-old-date")


def test_a_visitor_reviews_a_product_from_its_page(browsing: Browsing) -> None:
    pear = ProductFactory.create(name="Bartlett Pears")
    FeedbackFactory.create(title="Juicy pears", product=pear, date=dt.date(2024, 3, 2))
    page = browsing.page
    browsing.visit(pear.get_absolute_url(), "product-before-review")

    page.get_by_role("link", name="Review this product").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review Bartlett Pears")
    browsing.shot("product-review-form")
    _fill_review(browsing, title="Ripe and sweet")
    page.get_by_role("button", name="Send review").click()

    expect(page).to_have_url(re.compile(rf"/catalog/{pear.pk}/\?highlight=\d+#review-\d+$"))
    expect(page.get_by_role("status")).to_have_text("Thank you! Your review is published.")
    expect(page.locator("article.review h3")).to_have_text(["Ripe and sweet", "Juicy pears"])
    expect(page.locator("article.review-highlight .review-badge")).to_have_text("Your review")
    browsing.shot("product-reviewed")
    assert Feedback.objects.get(title="Ripe and sweet").product == pear


def test_an_invalid_review_shows_the_error_and_keeps_what_was_typed(browsing: Browsing) -> None:
    page = browsing.page
    _open_review_form(browsing)

    _fill_review(browsing, title="")
    page.get_by_role("button", name="Send review").click()

    expect(page).to_have_url(re.compile(r"/reviews/new/$"))
    title = page.locator(".field.has-error")
    expect(title).to_have_count(1)
    expect(title.locator("label")).to_contain_text("Title")
    expect(title.locator(".field-error")).to_have_text("This field is required.")
    # Read out with the field by a screen reader, as is the help of another.
    expect(page.get_by_label("Title")).to_have_accessible_description("This field is required.")
    expect(page.get_by_label("Date")).to_have_accessible_description("Defaults to today.")
    expect(page.get_by_label("Rating (1–5)")).to_have_attribute("min", "1")
    expect(page.get_by_label("Your name")).to_have_value("Jamie Rivera")
    expect(page.get_by_label("Rating (1–5)")).to_have_value("4")
    expect(page.get_by_label("Your review")).to_have_value("The pears arrived ripe.\nWill order again.")
    browsing.shot("review-invalid")
    assert not Feedback.objects.exists()

    # Correcting the title is enough to send it.
    page.get_by_label("Title").fill("Ripe after all")
    page.get_by_role("button", name="Send review").click()
    expect(page).to_have_url(re.compile(r"/reviews/\?highlight=\d+#review-\d+$"))
    expect(page.locator("article.review h2")).to_have_text(["Ripe after all"])
    browsing.shot("review-corrected")


def test_with_moderation_on_a_submitted_review_waits_for_a_moderator(
    browsing: Browsing, settings: Any
) -> None:
    settings.FEEDBACK_MODERATION = True
    FeedbackFactory.create(title="Already published")
    page = browsing.page
    _open_review_form(browsing)

    _fill_review(browsing, title="Please moderate me")
    page.get_by_role("button", name="Send review").click()

    expect(page).to_have_url(re.compile(r"/reviews/$"))
    expect(page.get_by_role("status")).to_have_text(
        "Thank you! Your review will appear once a moderator has read it."
    )
    expect(page.locator("article.review h2")).to_have_text(["Already published"])
    expect(page.get_by_text("Please moderate me")).to_have_count(0)
    browsing.shot("review-pending")
    assert Feedback.objects.get(title="Please moderate me").status == Feedback.Status.PENDING


def test_the_api_docs_render_from_local_assets_only(browsing: Browsing) -> None:
    page = browsing.page
    browsing.visit("/api/docs/", "swagger")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/people/").first).to_be_visible()
    expect(page.locator(".swagger-ui .title").first).to_contain_text("Portal API")
    assert operations.count() >= 10
    page.wait_for_load_state("networkidle")
    browsing.shot("swagger-operations")

    local = browsing.base_url + "/static/drf_spectacular_sidecar/swagger-ui-dist/"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert any(url.startswith(local + asset) for url in browsing.requests), f"{asset} not served here"
    assert any(url.startswith(browsing.base_url + "/api/schema/") for url in browsing.requests)
    elsewhere = [
        url
        for url in browsing.requests
        if not url.startswith(browsing.base_url + "/") and not url.startswith("data:")
    ]
    assert not elsewhere, f"the docs fetched from outside the server: {elsewhere}"


@pytest.mark.parametrize("path", ["/", "/catalog/"], ids=["home", "catalog"])
def test_home_and_catalog_fit_a_phone_screen_without_sideways_scrolling(
    browsing: Browsing, path: str, products: dict[str, Product], people: dict[str, Person]
) -> None:
    FeedbackFactory.create(
        title="Worth every penny", text="Lovely fruit. " * 30, rating=5, product=products["apple"]
    )
    page = browsing.page
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    browsing.visit(path, "phone")
    browsing.assert_images_loaded(".products img", at_least=2)
    widths = page.evaluate(
        "() => ({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["inner"] == PHONE[0]
    assert widths["scroll"] <= widths["inner"], f"{path} scrolls sideways on a phone: {widths}"
    # The navigation stays reachable.
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews")
    ).to_be_in_viewport()


LONG_WORD = "Supercalifragilisticexpialidociousnessfruitwithoutanyspacesinthenameatall"


@pytest.mark.parametrize("kind", ["product", "person", "catalog", "people"])
def test_a_name_without_spaces_never_widens_a_phone_screen(browsing: Browsing, kind: str) -> None:
    product = ProductFactory.create(name=LONG_WORD, weight=2)
    PersonFactory.create(
        name=LONG_WORD, username="longname", department="Engineering", email=f"{LONG_WORD}@example.com"
    )
    path = {
        "product": f"/catalog/{product.pk}/",
        "person": "/people/longname/",
        "catalog": "/catalog/",
        "people": "/people/",
    }[kind]
    page = browsing.page
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    browsing.visit(path, "phone")
    widths = page.evaluate(
        "() => ({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{path} scrolls sideways on a phone: {widths}"
    # Broken onto lines, not cut off by its card: the whole name is there to read.
    for named in page.get_by_text(LONG_WORD, exact=True).all():
        hidden = named.evaluate("e => e.scrollWidth - e.clientWidth")
        assert hidden <= 1, f"{hidden} px of the name cut off on {path}"


def test_a_card_shows_where_the_keyboard_is(browsing: Browsing, products: dict[str, Product]) -> None:
    browsing.visit("/catalog/", "catalog")
    page = browsing.page
    card = page.locator(".card").first
    before = card.screenshot()
    card.locator("a").focus()
    page.keyboard.press("Shift+Tab")  # focus by keyboard: :focus-visible
    page.keyboard.press("Tab")
    expect(card.locator("a")).to_be_focused()
    after = card.screenshot()
    browsing.shot("focused-card")
    # A ring, not a pixel or two: hundreds of pixels change clearly.
    with PILImage.open(io.BytesIO(before)) as a, PILImage.open(io.BytesIO(after)) as b:
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    changed = sum(diff.point(lambda v: 255 if v > 60 else 0).histogram()[255:])
    assert changed > 500, f"focus changed only {changed} pixels"


def test_public_pages_log_no_console_errors(
    browsing: Browsing, products: dict[str, Product], people: dict[str, Person]
) -> None:
    FeedbackFactory.create(title="Crunchy", product=products["apple"], rating=4)
    pages = {
        "home": "/",
        "people": "/people/",
        "people-search": "/people/?q=engineer",
        "person": "/people/ada/",
        "catalog": "/catalog/",
        "product": f"/catalog/{products['apple'].pk}/",
        "reviews": "/reviews/",
        "review-form": "/reviews/new/",
        "api-docs": "/api/docs/",
    }
    for step, path in pages.items():
        browsing.visit(path, step)
        if browsing.page.locator("main img").count():
            browsing.assert_images_loaded("main img")
        browsing.page.wait_for_load_state("networkidle")
        browsing.assert_no_console_errors()


def test_person_cards_show_the_whole_role_and_department(
    browsing: Browsing, people: dict[str, Person]
) -> None:
    browsing.visit("/people/", "directory")
    clipped = browsing.page.evaluate(
        """() => [...document.querySelectorAll('.person-card')].flatMap(card => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll('.card-title, .card-sub')]
                .filter(el => el.getBoundingClientRect().right > box.right + 0.5 || el.scrollWidth > el.clientWidth)
                .map(el => el.textContent.trim());
        })"""
    )
    assert not clipped, f"text cut off in person cards: {clipped}"


FOCUSABLE = "a[href], button, input:not([type=hidden]):not([tabindex='-1']), textarea, select"


def _focus_ring_pixels(page: Any, element: Any) -> int:
    """How many pixels around an element change clearly when the keyboard
    focuses it."""
    element.scroll_into_view_if_needed()
    page.evaluate("document.activeElement?.blur()")
    box = element.bounding_box()
    assert box is not None
    margin = 8
    clip = {
        "x": max(box["x"] - margin, 0),
        "y": max(box["y"] - margin, 0),
        "width": box["width"] + 2 * margin,
        "height": box["height"] + 2 * margin,
    }
    before = page.screenshot(clip=clip, animations="disabled")
    element.evaluate("e => e.focus()")
    assert element.evaluate("e => e.matches(':focus-visible')")
    after = page.screenshot(clip=clip, animations="disabled")
    with PILImage.open(io.BytesIO(before)) as a, PILImage.open(io.BytesIO(after)) as b:
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    return sum(diff.point(lambda v: 255 if v > 60 else 0).histogram()[255:])


@pytest.mark.parametrize("path", ["/", "/people/", "/reviews/new/"])
def test_every_link_and_control_shows_where_the_keyboard_is(
    browsing: Browsing, path: str, products: dict[str, Product], people: dict[str, Person]
) -> None:
    browsing.visit(path, "page")
    page = browsing.page
    if page.locator("main img").count():
        browsing.assert_images_loaded("main img")
    page.keyboard.press("Tab")  # the keyboard is in use: focus shows as :focus-visible
    elements = page.locator(f"body {FOCUSABLE}").filter(visible=True).all()
    assert any(e.evaluate("e => !!e.closest('.site-header')") for e in elements)
    faint = {}
    for element in elements:
        changed = _focus_ring_pixels(page, element)
        if changed < 150:
            faint[element.evaluate("e => e.outerHTML.slice(0, 80)")] = changed
    assert not faint, f"focus hardly shows on {path}: {faint}"


def test_a_photo_still_being_processed_is_round_like_the_photo_it_stands_for(
    browsing: Browsing, people: dict[str, Person]
) -> None:
    Image.objects.filter(pk=people["ada"].photo_id).update(status=Image.Status.PENDING)
    browsing.visit("/people/", "pending-photo")
    placeholder = browsing.page.locator(".person-card", has_text="Ada Lovelace").locator(".avatar")
    expect(placeholder).to_have_attribute("data-status", "pending")
    shape = placeholder.evaluate(
        "e => ({radius: getComputedStyle(e).borderTopLeftRadius, box: e.getBoundingClientRect().toJSON()})"
    )
    assert shape["radius"] == "50%", shape
    assert shape["box"]["width"] == shape["box"]["height"] == 56, shape


# Where the first and the last character of an element's text are drawn.
ENDS_JS = """e => {
    const text = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (text.nextNode()) if (text.currentNode.data.trim()) nodes.push(text.currentNode);
    const range = document.createRange();
    const first = nodes[0], last = nodes[nodes.length - 1];
    range.setStart(first, 0); range.setEnd(first, 1);
    const start = range.getBoundingClientRect();
    range.setStart(last, last.data.trimEnd().length - 1); range.setEnd(last, last.data.trimEnd().length);
    const end = range.getBoundingClientRect();
    return {start: start.left, end: end.left, startRight: start.right, boxRight: e.getBoundingClientRect().right};
}"""


def test_names_and_reviews_in_a_right_to_left_script_read_right_to_left(browsing: Browsing) -> None:
    """Text that starts in Arabic reads from the right: a closing mark ends it
    on the left, and a Latin word in a name comes after the Arabic, instead
    of being laid out left to right like the page around it."""
    product = ProductFactory.create(name="برتقال Valencia")
    FeedbackFactory.create(
        title="رائع!", name="علي", text="اشتريت ثلاثة كيلو من البرتقال. جيد جدا!", product=product
    )
    PersonFactory.create(name="علي Hassan", username="ali", department="Sales")
    page = browsing.page
    browsing.visit(product.get_absolute_url(), "rtl-product")
    review = page.locator("article.review")
    for element in (page.locator("article.product h1"), review.locator("h3"), review.locator("p[dir]")):
        ends = element.evaluate(ENDS_JS)
        assert ends["end"] < ends["start"], f"{element.inner_text()!r} does not end on the left: {ends}"
    # A paragraph of it starts at the right edge, where it is read from.
    ends = review.locator("p[dir]").evaluate(ENDS_JS)
    assert abs(ends["startRight"] - ends["boxRight"]) <= 1, ends

    browsing.visit("/people/", "rtl-person")
    ends = page.locator(".person-card .card-title").evaluate(ENDS_JS)
    assert ends["end"] < ends["start"], f"the name does not end on the left: {ends}"


# Each person card's avatar (initial or photo) and text block, in px from the card's top.
CARD_GEOMETRY_JS = """() => [...document.querySelectorAll('.person-card')].map(card => {
    const box = card.getBoundingClientRect();
    const avatar = card.querySelector('.avatar').getBoundingClientRect();
    const lines = [...card.querySelectorAll('.card-title, .card-sub')].map(e => e.getBoundingClientRect());
    const top = Math.min(...lines.map(r => r.top)), bottom = Math.max(...lines.map(r => r.bottom));
    return {
        name: card.querySelector('.card-title').textContent.slice(0, 20),
        avatarMiddle: (avatar.top + avatar.bottom) / 2 - box.top,
        textMiddle: (top + bottom) / 2 - box.top,
        pastRight: Math.max(...lines.map(r => r.right)) - box.right,
        hidden: [...card.querySelectorAll('.card-title, .card-sub')].some(e => e.scrollWidth > e.clientWidth),
    };
})"""


@pytest.mark.parametrize("width", [1280, 768, 375, 320])
def test_a_person_cards_initial_is_centred_against_a_long_name_that_wraps_inside_it(
    browsing: Browsing, width: int, people: dict[str, Person]
) -> None:
    """Beside a name of 80 letters without a space, or of many words, the
    initial (or photo) sits level with the middle of the name and role, and
    the name wraps inside its card; so in every card of a row stretched to
    the tallest one."""
    PersonFactory.create(name="W" + "w" * 78 + "Z", username="unbroken", department="Engineering")
    PersonFactory.create(
        name="Maximilian Alexander Konstantin Friedrich von Hohenzollern-Sigmaringen the Third",
        username="spaced",
        department="Engineering",
        role="Principal Distinguished Senior Staff Engineer",
    )
    page = browsing.page
    page.set_viewport_size({"width": width, "height": 900})
    browsing.visit("/people/", f"long-names-{width}")
    cards = page.evaluate(CARD_GEOMETRY_JS)
    assert len(cards) == 5
    for card in cards:
        assert abs(card["avatarMiddle"] - card["textMiddle"]) <= 1, f"initial off-centre at {width}px: {card}"
        assert card["pastRight"] <= 0, f"name past its card's edge at {width}px: {card}"
        assert not card["hidden"], f"name cut off at {width}px: {card}"


def test_on_a_tablet_a_products_name_keeps_a_readable_column_beside_its_picture(
    browsing: Browsing, products: dict[str, Product]
) -> None:
    page = browsing.page
    page.set_viewport_size({"width": 768, "height": 1024})
    browsing.visit(products["apple"].get_absolute_url(), "tablet")
    title = page.locator("article.product h1").bounding_box()
    picture = page.locator("article.product .product-image").bounding_box()
    assert title is not None
    assert picture is not None
    assert title["x"] > picture["x"] + picture["width"], "the name is no longer beside the picture"
    assert title["width"] >= 256, f"the name has a column {title['width']}px wide"


@pytest.mark.parametrize("kind", ["product", "person"])
def test_a_picture_whose_files_are_lost_never_widens_a_phone_screen(
    browsing: Browsing, kind: str, products: dict[str, Product], people: dict[str, Person]
) -> None:
    """A broken <img> is no longer a picture that shrinks to its column: it
    is as wide as its width attribute (the rendition's, up to 1600 px) and
    would take the page's one column with it. It shows as the "No photo" box
    of a product without a picture, not as a broken image over its placeholder."""
    image = products["apple"].image if kind == "product" else people["ada"].photo
    assert image is not None
    for rendition in image.renditions.all():
        storages["default"].delete(rendition.storage_key)
    path = products["apple"].get_absolute_url() if kind == "product" else "/people/ada/"
    page = browsing.page
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    response = page.goto(browsing.base_url + path)
    assert response is not None
    assert response.ok
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    expect(page.locator('.picture-missing[data-status="lost"]')).to_have_text("No photo")
    broken = page.evaluate("() => [...document.images].filter(img => !img.naturalWidth).length")
    assert broken == 0, f"{path} shows a broken image"
    # The browser says the files are missing: that is the case under test.
    lost = [error for error in browsing.console_errors if "status of 404" in error]
    assert lost, "the picture's files were still served"
    browsing.console_errors[:] = [error for error in browsing.console_errors if error not in lost]
    browsing.shot("phone")
    widths = page.evaluate(
        "() => ({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{path} scrolls sideways on a phone: {widths}"
