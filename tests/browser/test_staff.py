"""Staff in the admin, in a real browser: people, uploads and reprocessing."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import FilePayload, Locator, Page, expect

from catalog.models import Person
from tests.browser.conftest import Browsing
from tests.factories import PersonFactory, jpeg_bytes
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
    browsing: Browsing, superuser: Any
) -> None:
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
    import io

    from django.utils import timezone
    from pypdf import PdfReader

    from catalog.models import Product

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
