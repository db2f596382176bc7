"""Staff in the admin, in a real browser: people, uploads and reprocessing."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import current_app
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Browser, FilePayload, Locator, Page, Route, expect
from pypdf import PdfReader

from catalog.models import Person, Product
from tests.browser.conftest import DESKTOP, TIMEOUT_MS, Browsing
from tests.factories import FeedbackFactory, PersonFactory, api_key, jpeg_bytes
from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long admin passphrase"
PROCESSING_DEADLINE_S = 30


@pytest.fixture
def superuser(transactional_db: None) -> Any:
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


def _log_in(browsing: Browsing, user: Any) -> None:
    page = browsing.page
    browsing.visit("/admin/", "login")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools strong")).to_have_text(user.get_short_name() or user.username)
    browsing.shot("admin-index")


@pytest.fixture
def browsing_without_script(browsing: Browsing, browser: Browser) -> Iterator[Browsing]:
    """Like ``browsing``, in a browser with scripts turned off."""
    context = browser.new_context(viewport=DESKTOP, base_url=browsing.base_url, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    yield Browsing(
        page=context.new_page(),
        base_url=browsing.base_url,
        shots=browsing.shots,
        test_name=browsing.test_name,
    )
    context.close()


def _jpeg_file(name: str, size: tuple[int, int], color: tuple[int, int, int]) -> FilePayload:
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg_bytes(size, color)}


def _row(page: Page, text: str) -> Locator:
    return page.locator("#result_list tbody tr", has_text=text)


def _reload_until_ready(browsing: Browsing, names: list[str]) -> None:
    """With no broker the upload request already processed the images; with a
    worker it takes a moment, so the list is reloaded until they are ready."""
    page = browsing.page
    deadline = time.monotonic() + PROCESSING_DEADLINE_S
    while True:
        statuses = [_row(page, name).locator("td.field-status").inner_text() for name in names]
        if all(status == "Ready" for status in statuses) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert statuses == ["Ready"] * len(names), dict(zip(names, statuses, strict=True))


def test_staff_log_in_and_see_people_with_photo_thumbnails(
    browsing: Browsing, superuser: Any, ready_image: Callable[..., Image]
) -> None:
    PersonFactory.create(
        name="Ada Lovelace", username="ada", department="Engineering", photo=ready_image("ada.jpg")
    )
    PersonFactory.create(name="Bob Barker", username="bob", department="Sales")
    page = browsing.page
    _log_in(browsing, superuser)

    page.locator("#content-main #catalog-person").get_by_role("link", name="People").click()
    expect(page).to_have_url(re.compile(r"/admin/catalog/person/$"))
    expect(page.locator("#result_list thead th.column-photo_thumbnail")).to_have_text("Photo")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    ada, bob = _row(page, "Ada Lovelace"), _row(page, "Bob Barker")
    expect(ada.locator(".field-department")).to_have_text("Engineering")
    expect(bob.locator(".field-photo_thumbnail")).to_have_text("—")
    thumbnail = ada.locator(".field-photo_thumbnail img")
    expect(thumbnail).to_have_attribute("width", "64")
    browsing.assert_images_loaded("#result_list .field-photo_thumbnail img")
    browsing.shot("people")
    assert Person.objects.count() == 2


def test_staff_upload_two_images_see_their_thumbnails_and_reprocess_one(
    browsing_without_script: Browsing, superuser: Any
) -> None:
    """The upload form posts as it always did when scripts are off."""
    browsing = browsing_without_script
    page = browsing.page
    _log_in(browsing, superuser)

    page.locator("#content-main #uploads-image").get_by_role("link", name="Images").click()
    expect(page).to_have_url(re.compile(r"/admin/uploads/image/$"))
    browsing.shot("images-empty")
    page.get_by_role("link", name="Upload images").click()
    expect(page).to_have_url(re.compile(r"/admin/uploads/image/upload/$"))
    expect(page.get_by_role("heading", name="Upload images")).to_be_visible()
    expect(page.locator("select[name=preset]")).to_have_value("web")
    browsing.shot("upload-form")

    files = page.locator("input[type=file][name=files]")
    expect(files).to_have_attribute("multiple", "")
    files.set_input_files(
        [
            _jpeg_file("sunrise.jpg", (1200, 800), (230, 120, 30)),
            _jpeg_file("harbour.jpg", (640, 960), (20, 90, 160)),
        ]
    )
    page.locator("select[name=preset]").select_option("web")
    page.get_by_label("Alt text").fill("A test picture")
    page.get_by_role("button", name="Upload").click()

    expect(page).to_have_url(re.compile(r"/admin/uploads/image/$"))
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        "2 image(s) uploaded; processing has started."
    )
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    _reload_until_ready(browsing, ["sunrise.jpg", "harbour.jpg"])
    expect(_row(page, "sunrise.jpg").locator(".field-dimensions")).to_have_text("1200×800")
    expect(_row(page, "harbour.jpg").locator(".field-dimensions")).to_have_text("640×960")
    assert browsing.assert_images_loaded("#result_list .field-preview img") == 2
    browsing.shot("uploaded")
    sunrise = Image.objects.get(original_name="sunrise.jpg")
    assert sunrise.uploaded_by == superuser
    assert sunrise.alt == "A test picture"
    first_processed_at = sunrise.processed_at

    row = _row(page, "sunrise.jpg")
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label="Reprocess selected images")
    browsing.shot("reprocess-selected")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("ul.messagelist li.success")).to_have_text("1 image(s) queued for processing.")
    _reload_until_ready(browsing, ["sunrise.jpg", "harbour.jpg"])
    assert browsing.assert_images_loaded("#result_list .field-preview img") == 2
    browsing.shot("reprocessed")
    sunrise.refresh_from_db()
    assert sunrise.status == Image.Status.READY
    assert first_processed_at is not None
    assert sunrise.processed_at is not None
    assert sunrise.processed_at > first_processed_at
    assert sunrise.attempts == 2

    _row(page, "sunrise.jpg").locator(".field-preview a").click()
    expect(page).to_have_url(re.compile(rf"/admin/uploads/image/{sunrise.pk}/change/$"))
    expect(page.locator(".field-status .readonly")).to_have_text("Ready")
    browsing.assert_images_loaded(".field-preview_large img")
    browsing.shot("image-detail")


def test_staff_download_the_supplier_report_for_a_day(browsing: Browsing, superuser: Any) -> None:

    Product.objects.create(name="Mango", weight=300, description="Ripe.", image_name="007.jpeg")
    _log_in(browsing, superuser)
    page = browsing.page
    browsing.visit("/admin/catalog/product/", "products")
    today = timezone.localdate()
    expect(page.get_by_label("Report for")).to_have_value(today.isoformat())
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"processed-{today.isoformat()}.pdf"
    path = download.path()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages)
    assert f"Processed Update on {today:%B %d, %Y}" in text
    assert "name: Mango" in text
    assert "weight: 300 lbs" in text


# --- Multiple upload with each file's progress, rendition URLs ---------------------


@pytest.fixture
def broker_busy() -> Iterator[None]:
    """A broker that takes tasks and a worker too busy to take them: uploads
    stay pending until the test processes them (the in-memory broker keeps the
    tasks)."""
    conf = current_app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    yield
    conf.task_always_eager = eager


class HeldUploads:
    """Holds the API upload of the files named, until released."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.held: list[Route] = []

    def __call__(self, route: Route) -> None:
        body = route.request.post_data_buffer or b""
        if route.request.method == "POST" and any(f'filename="{n}"'.encode() in body for n in self.names):
            self.held.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        held, self.held, self.names = self.held, [], set()
        for route in held:
            route.continue_()


def _forgive_logged_refusal(browsing: Browsing, url_part: str) -> None:
    """Chromium logs an HTTP 400 the page asked for; the test checks that
    answer itself, so that one log line is no error of the page."""
    refusals = [e for e in browsing.console_errors if "status of 400" in e and url_part in e]
    assert len(refusals) == 1, browsing.console_errors
    browsing.console_errors.remove(refusals[0])


def _upload_row(page: Page, name: str) -> Locator:
    return page.locator(".upload-file", has_text=name)


def test_staff_drop_several_files_and_watch_each_one_upload_then_turn_ready_or_failed(
    browsing: Browsing, superuser: Any, broker_busy: None
) -> None:
    page = browsing.page
    _log_in(browsing, superuser)
    browsing.visit("/admin/uploads/image/upload/", "upload-form")
    page.evaluate("window.__sameDocument = true")
    held = HeldUploads({"broken.jpg"})
    page.route("**/api/v1/images/", held)

    page.locator("input[type=file][name=files]").set_input_files(
        [
            _jpeg_file("beach.jpg", (1200, 800), (30, 140, 200)),
            {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": corpus.truncated_jpeg()},
            {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"shopping list: apples, pears\n"},
            _jpeg_file("forest.jpg", (800, 1200), (30, 120, 60)),
        ]
    )
    page.get_by_role("button", name="Upload").click()

    # The first file is in, the second on its way, the others wait their turn.
    expect(_upload_row(page, "beach.jpg")).to_have_attribute("data-state", "pending")
    expect(_upload_row(page, "broken.jpg")).to_have_attribute("data-state", "uploading")
    expect(_upload_row(page, "notes.jpg")).to_have_attribute("data-state", "queued")
    expect(_upload_row(page, "forest.jpg")).to_have_attribute("data-state", "queued")
    expect(_upload_row(page, "beach.jpg").locator("progress")).to_have_js_property("value", 100)
    expect(page.get_by_role("button", name="Upload")).to_be_disabled()
    browsing.shot("uploading")
    held.release()

    expect(_upload_row(page, "notes.jpg")).to_have_attribute("data-state", "refused")
    expect(_upload_row(page, "notes.jpg")).to_contain_text("allowed formats are")
    expect(_upload_row(page, "forest.jpg")).to_have_attribute("data-state", "pending")
    expect(page.locator(".upload-progress-summary")).to_have_text("0 ready, 1 refused, 3 to go.")
    _forgive_logged_refusal(browsing, "/api/v1/images/")
    browsing.shot("waiting-for-processing")
    images = {image.original_name: image for image in Image.objects.all()}
    assert sorted(images) == ["beach.jpg", "broken.jpg", "forest.jpg"]
    assert {image.status for image in images.values()} == {Image.Status.PENDING}

    # A worker gets to them: the page follows without a reload.
    for image in images.values():
        services.image_process(image_id=image.pk)
    expect(_upload_row(page, "beach.jpg")).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
    expect(_upload_row(page, "forest.jpg")).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
    expect(_upload_row(page, "broken.jpg")).to_have_attribute("data-state", "failed", timeout=TIMEOUT_MS)
    expect(_upload_row(page, "broken.jpg")).to_contain_text("could not be decoded")
    expect(_upload_row(page, "forest.jpg")).to_contain_text("800×1200")
    expect(page.locator(".upload-progress-summary")).to_contain_text("2 ready, 1 failed, 1 refused.")
    browsing.assert_images_loaded(".upload-file[data-state=ready] img", at_least=2)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    browsing.shot("settled")

    beach = images["beach.jpg"]
    _upload_row(page, "beach.jpg").get_by_role("link", name="beach.jpg").click()
    expect(page).to_have_url(re.compile(rf"/admin/uploads/image/{beach.pk}/change/$"))
    assert beach.uploaded_by == superuser


def test_staff_pick_the_fields_of_a_people_export_with_select_all(browsing: Browsing, superuser: Any) -> None:
    PersonFactory.create(name="Ada Lovelace", username="ada", department="Engineering")
    page = browsing.page
    _log_in(browsing, superuser)
    browsing.visit("/admin/catalog/person/export/", "export")
    fields = page.locator(".selectable-field-export-row input[type=checkbox]:visible")
    expect(fields.first).to_be_checked()

    page.locator("input.select-toggle").uncheck()

    assert fields.count() > 3
    for box in fields.all():
        expect(box).not_to_be_checked()
    browsing.shot("none-selected")
    page.locator("input.select-toggle").check()
    for box in fields.all():
        expect(box).to_be_checked()
    # The site's policy allows no inline script: nothing was blocked.
    assert not [e for e in browsing.console_errors if "Content Security Policy" in e], browsing.console_errors


def test_staff_get_a_signed_rendition_url_from_the_images_page(
    browsing: Browsing, superuser: Any, ready_image: Callable[..., Image]
) -> None:
    image = ready_image("harbour.jpg", color=(40, 110, 170))
    page = browsing.page
    _log_in(browsing, superuser)
    browsing.visit(f"/admin/uploads/image/{image.pk}/change/", "image-change")
    generator = page.locator("[data-rendition-url]")
    expect(generator.locator(".rendition-url-error")).to_be_hidden()  # no empty red box before an error
    generator.get_by_label("Operation").select_option("fill")
    generator.get_by_label("Width").fill("300")
    generator.get_by_label("Height").fill("200")
    generator.get_by_label("Format").select_option("webp")
    generator.get_by_role("button", name="Get URL").click()
    url = generator.get_by_label("Signed URL")
    expect(url).to_have_value(
        re.compile(rf"^{re.escape(browsing.base_url)}/img/[^/]+/{image.pk}/fill-300x200/webp/$")
    )
    expect(generator.locator(".rendition-url-size")).to_have_text(
        "300×200 px, webp (made on its first request)"
    )
    browsing.shot("signed-url")

    generator.get_by_label("Width").fill("9000")
    generator.get_by_role("button", name="Get URL").click()
    expect(generator.locator(".rendition-url-error")).to_contain_text(
        "the largest size made on demand is 4000 px"
    )
    _forgive_logged_refusal(browsing, "/url/?spec=fill-9000x200")
    browsing.shot("over-the-limit")

    signed = url.input_value()
    # As a page's <img> would ask for it: made on this first request.
    size = page.evaluate(
        """url => new Promise((done, failed) => {
            const img = new Image();
            img.onload = () => done([img.naturalWidth, img.naturalHeight]);
            img.onerror = () => failed(new Error("did not load"));
            img.src = url;
        })""",
        signed,
    )
    assert size == [300, 200]
    rendition = image.renditions.get(name="fill-300x200", format="webp")
    again = page.request.get(signed, max_redirects=0)
    assert again.status == 302
    assert again.headers["location"] == rendition.url

    # Listed on the image's page from now on, as a link that works without a script.
    browsing.visit(f"/admin/uploads/image/{image.pk}/change/", "listed")
    made = page.locator(".rendition-url-made a", has_text="fill-300x200 webp")
    expect(made).to_have_attribute("href", signed.removeprefix(browsing.base_url))
    expect(page.locator(".field-rendition_url .help")).to_contain_text("1 made so far")


@pytest.mark.parametrize("width", [1280, 375])
def test_the_rendition_url_generators_help_lines_up_under_its_boxes(
    browsing: Browsing, superuser: Any, ready_image: Callable[..., Image], width: int
) -> None:
    """Django indents the help of a box that follows its label by the width
    of the labels' column; the generator's boxes sit in a value's place, and
    so does its help: it was pushed 170 px to the right of them, on a phone
    into a strip of a few words a line."""
    image = ready_image("harbour.jpg", color=(40, 110, 170))
    page = browsing.page
    page.set_viewport_size({"width": width, "height": 900})
    _log_in(browsing, superuser)
    browsing.visit(f"/admin/uploads/image/{image.pk}/change/", f"image-change-{width}")
    generator = page.locator("[data-rendition-url]")
    boxes = generator.locator(".rendition-url-form").bounding_box()
    help_text = generator.locator(".help").bounding_box()
    assert boxes is not None
    assert help_text is not None
    assert abs(help_text["x"] - boxes["x"]) <= 1, f"help at {help_text['x']}, its boxes at {boxes['x']}"
    assert help_text["width"] >= boxes["width"] - 1, f"help {help_text['width']} px wide under {boxes}"


def test_a_persons_phone_numbers_show_whole_in_their_box(browsing: Browsing, superuser: Any) -> None:
    """Their labelled text, three numbers long, in a box as wide as a name's
    showed the first one and a half: the rest was cut off at its edge."""
    person = PersonFactory.create(
        name="Ada Lovelace",
        username="ada",
        phone={"office": "802-867-5309", "cell": "802-555-0142", "home": "802-555-0199"},
    )
    page = browsing.page
    _log_in(browsing, superuser)
    browsing.visit(f"/admin/catalog/person/{person.pk}/change/", "person-change")
    box = page.get_by_label("Phone")
    expect(box).to_have_value("office: 802-867-5309; cell: 802-555-0142; home: 802-555-0199")
    hidden = box.evaluate("input => input.scrollWidth - input.clientWidth")
    assert hidden <= 0, f"{hidden} px of the numbers cut off"


def test_a_long_name_without_spaces_wraps_in_the_admin_instead_of_widening_the_page(
    browsing: Browsing, superuser: Any
) -> None:
    long_name = "X" * 200
    product = Product.objects.create(name=long_name, weight=1)
    person = PersonFactory.create(name="N" * 200, username="longname")
    page = browsing.page
    _log_in(browsing, superuser)
    for path in (
        f"/admin/catalog/product/{product.pk}/change/",
        f"/admin/catalog/person/{person.pk}/change/",
        f"/admin/catalog/product/{product.pk}/delete/",
        f"/admin/catalog/product/{product.pk}/history/",
    ):
        browsing.visit(path, "long-name")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= DESKTOP["width"], f"{path} is {width}px wide"
        # The name's text stays clear of the buttons Django floats beside it.
        clashes = page.evaluate(
            """() => {
                const tools = document.querySelector('.object-tools');
                if (!tools) return 0;
                const b = tools.getBoundingClientRect();
                const text = document.createRange();
                text.selectNodeContents(document.querySelector('#content > h2'));
                return [...text.getClientRects()].filter(r =>
                    r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom
                ).length;
            }"""
        )
        assert clashes == 0, f"the name runs under the buttons on {path}"


# Every column of a change list stays within 16em (plus its padding), whatever
# it holds: this much, at the admin's 13px, with room to spare.
WIDEST_COLUMN_PX = 300
UNBROKEN = "Extraordinarilylongproductname" * 10


def test_change_lists_wrap_long_values_in_columns_of_bounded_width(
    browsing: Browsing, superuser: Any, ready_image: Callable[..., Image]
) -> None:
    """A 200-character name, an unbroken email or file name, a user's long
    name and a 5,000-character review each wrap in a column of bounded width
    (or, the review's text and the columns that describe a row, are cut short
    with an ellipsis) instead of widening the list until it scrolls in its
    box; the whole value is a click away."""
    product = Product.objects.create(name=UNBROKEN[:200], weight=3, image_name=UNBROKEN[:251] + ".jpg")
    PersonFactory.create(name=UNBROKEN[:200], username="longname", email=UNBROKEN[:60] + "@example.com")
    FeedbackFactory.create(title="Long unbroken", text="y" * 5000, product=product)
    image = ready_image(UNBROKEN[:250] + ".jpg")
    api_key(get_user_model().objects.create_user("u" * 150, password=PASSWORD))
    page = browsing.page
    _log_in(browsing, superuser)
    for path in (
        "/admin/catalog/person/",
        "/admin/catalog/product/",
        "/admin/catalog/feedback/",
        "/admin/uploads/image/",
        "/admin/authtoken/tokenproxy/",
    ):
        browsing.visit(path, "long-values")
        layout = page.evaluate(
            """() => ({
                columns: [...document.querySelectorAll('#result_list thead th')].map(
                    th => [th.textContent.trim(), Math.round(th.getBoundingClientRect().width)]),
                clipped: [...document.querySelectorAll('#result_list td, #result_list tbody th')]
                    .filter(cell => cell.scrollWidth > cell.clientWidth + 1
                        && getComputedStyle(cell).textOverflow !== 'ellipsis')
                    .map(cell => cell.className),
            })"""
        )
        wide = [(name, width) for name, width in layout["columns"] if width > WIDEST_COLUMN_PX]
        assert not wide, f"columns wider than {WIDEST_COLUMN_PX}px on {path}: {wide}"
        assert not layout["clipped"], f"values overflow their cells on {path}: {layout['clipped']}"

    # The review's row shows the start of its text; its page, the whole text.
    browsing.visit("/admin/catalog/feedback/", "review-excerpt")
    row = _row(page, "Long unbroken")
    excerpt = row.locator(".review-excerpt").inner_text()
    assert excerpt.startswith("yyyy"), excerpt[:20]
    assert excerpt.endswith("…"), excerpt[-20:]
    assert len(excerpt) <= 100, len(excerpt)
    row.get_by_role("link").click()
    expect(page.get_by_label("Text")).to_have_value("y" * 5000)

    # A read-only value as long wraps within its row instead of being cut off.
    browsing.visit(f"/admin/uploads/image/{image.pk}/change/", "long-file-name")
    cut = page.evaluate(
        """() => [...document.querySelectorAll('.form-row .readonly')].filter(value => {
            const row = value.closest('.form-row').getBoundingClientRect();
            return value.getBoundingClientRect().right > row.right + 1 || value.scrollWidth > value.clientWidth + 1;
        }).map(value => value.closest('.form-row').className)"""
    )
    assert not cut, f"read-only values cut off at the row's edge: {cut}"


def test_on_a_tablet_a_change_list_has_the_width_beside_the_sidebar_and_its_title_shows(
    browsing: Browsing, superuser: Any
) -> None:
    """Up to 1024px the filters go below the list, not beside it, and the
    buttons above the list keep clear of its title."""
    PersonFactory.create(name="Ada Lovelace", username="ada", department="Engineering")
    Product.objects.create(name="Honeycrisp Apples", weight=500)
    page = browsing.page
    page.set_viewport_size({"width": 768, "height": 1024})
    _log_in(browsing, superuser)
    for path in ("/admin/catalog/person/", "/admin/catalog/product/"):
        browsing.visit(path, "tablet")
        boxes = page.evaluate(
            """() => Object.fromEntries(['#changelist-form .results', '#changelist-filter', '#content > h1',
                '.object-tools'].map(s => [s, document.querySelector(s).getBoundingClientRect().toJSON()]))"""
        )
        results, filters = boxes["#changelist-form .results"], boxes["#changelist-filter"]
        title, tools = boxes["#content > h1"], boxes[".object-tools"]
        assert results["width"] >= 400, f"the list is {results['width']}px wide on {path}"
        assert filters["top"] >= results["bottom"], f"the filters sit beside the list on {path}"
        overlap = (
            title["left"] < tools["right"]
            and tools["left"] < title["right"]
            and title["top"] < tools["bottom"]
            and tools["top"] < title["bottom"]
        )
        assert not overlap, f"the buttons cover the title on {path}: {title} {tools}"


# Values as long as real ones get: a double-barrelled name, a work address
# of a department's subdomain, a product's full name as the supplier sends
# it, a camera's file name with the shot's description.
LONG_PEOPLE = [
    (
        "Maximiliana Featherstonehaugh-Wolfeschlegel",
        "maximiliana.featherstonehaugh-wolfeschlegel",
        "Research and Development, Advanced Materials",
        "Senior Principal Customer Success Engineering Manager",
    ),
    (
        "Bartholomew Aloysius Montgomery-Fitzwilliam III",
        "bartholomew.montgomery-fitzwilliam",
        "International Logistics and Supply Chain Operations",
        "Regional Director of Strategic Partnerships and Alliances",
    ),
    (
        "Anastasia Konstantinovna Rimsky-Korsakova",
        "anastasia.rimsky-korsakova",
        "Quality Assurance and Regulatory Compliance",
        "Lead Environmental Health and Safety Coordinator",
    ),
]
LONG_PRODUCTS = [
    "Organic Cold-Pressed Extra Virgin Olive Oil from the Hills of Tuscany, 750 ml Glass Bottle",
    "Hand-Harvested Wild Blueberries from the Coast of Maine, Frozen at Peak Ripeness, Family Pack",
    "Stone-Ground Whole Wheat Sourdough Bread with Sunflower, Pumpkin and Flax Seeds, Sliced",
]


def test_change_lists_fit_beside_the_open_sidebar_at_1280px(
    browsing: Browsing, superuser: Any, ready_image: Callable[..., Image]
) -> None:
    """On a laptop's screen, 1280 by 800, with the navigation sidebar open,
    every change list with several rows of long values fits in its box: no
    column out of sight at its edge, none to scroll sideways to. What a row
    leaves out or cuts short, its page shows whole."""
    images = [
        ready_image(f"{name.lower().replace(',', '').replace(' ', '-')}-front-view-on-white.jpg", alt=name)
        for name in LONG_PRODUCTS
    ]
    for (name, username, department, role), photo in zip(LONG_PEOPLE, images, strict=True):
        PersonFactory.create(
            photo=photo,
            name=name,
            username=username,
            email=f"{username}@research-development.example-corporation.com",
            department=department,
            role=role,
        )
        user = get_user_model().objects.create_user(
            username,
            email=f"{username}@research-development.example-corporation.com",
            first_name=name.split()[0],
            last_name=name.split(maxsplit=1)[1],
            password=PASSWORD,
        )
        api_key(user)
    for index, (name, image) in enumerate(zip(LONG_PRODUCTS, images, strict=True)):
        product = Product.objects.create(
            name=name, weight=750 + index, image=image, image_name=image.original_name
        )
        FeedbackFactory.create(
            title="Arrived on time and tasted exactly as described on the label",
            name="Bartholomew Montgomery-Fitzwilliam",
            text="The bottle was well packed and the oil was fresh and peppery. " * 20,
            product=product,
        )
    Group.objects.create(name="Regional Directors of Strategic Partnerships and Alliances")
    page = browsing.page
    page.set_viewport_size({"width": 1280, "height": 800})
    _log_in(browsing, superuser)
    for path in (
        "/admin/catalog/person/",
        "/admin/catalog/product/",
        "/admin/catalog/feedback/",
        "/admin/uploads/image/",
        "/admin/authtoken/tokenproxy/",
        "/admin/auth/user/",
        "/admin/auth/group/",
    ):
        browsing.visit(path, "sidebar-open")
        expect(page.locator("#nav-sidebar")).to_be_visible()
        expect(page.locator("#result_list tbody tr")).not_to_have_count(0)
        box = page.evaluate(
            """() => {
                const results = document.querySelector('#changelist-form .results');
                return {
                    scroll: results.scrollWidth,
                    client: results.clientWidth,
                    columns: [...document.querySelectorAll('#result_list thead th')].map(
                        th => [th.innerText.trim(), Math.round(th.getBoundingClientRect().width)]),
                };
            }"""
        )
        assert box["scroll"] <= box["client"], (
            f"{path}: the list is {box['scroll']}px wide in a box of {box['client']}px: {box['columns']}"
        )

    # A cell cut short shows its whole value when pointed at; one that fits
    # (the window grown since) shows none.
    browsing.visit("/admin/catalog/person/", "people-list")
    cell = page.locator("#result_list tbody tr", has_text=LONG_PEOPLE[0][0]).locator("td.field-role")
    cell.hover()
    expect(cell).to_have_attribute("title", LONG_PEOPLE[0][3])
    page.set_viewport_size({"width": 3200, "height": 800})
    page.locator("#result_list thead").hover()
    cell.hover()
    expect(cell).not_to_have_attribute("title", re.compile(".*"))
    page.set_viewport_size({"width": 1280, "height": 800})

    # What a row's columns leave out or cut short, its page shows whole.
    person = Person.objects.get(username=LONG_PEOPLE[0][1])
    browsing.visit(f"/admin/catalog/person/{person.pk}/change/", "person-whole")
    expect(page.get_by_label("Email")).to_have_value(person.email)
    expect(page.get_by_label("Role")).to_have_value(LONG_PEOPLE[0][3])
