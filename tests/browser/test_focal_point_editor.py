"""Staff set an image's focal point in the admin by clicking on the picture."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long admin passphrase"
SUBJECT_AT = (0.85, 0.2)
MARKER_AT = (0.1, 0.8)


@pytest.fixture
def marked_image(transactional_db: None) -> Image:
    """Processed at once (no broker): a red disc top right, a blue square bottom left."""
    picture = corpus.with_marker(corpus.subject_off_centre((1600, 900), SUBJECT_AT, 0.06), MARKER_AT, 0.025)
    image = services.image_upload(file=corpus.jpeg(picture, quality=92), original_name="desk.jpg")
    image.refresh_from_db()
    assert image.status == Image.Status.READY, image.error
    return image


def log_in(browsing: Browsing) -> None:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)
    page = browsing.page
    browsing.visit("/admin/login/?next=/admin/", "login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def test_staff_click_the_subject_see_the_square_crop_and_save_it(
    browsing: Browsing, marked_image: Image
) -> None:
    page = browsing.page
    log_in(browsing)
    browsing.visit(f"/admin/uploads/image/{marked_image.pk}/change/", "change-page")

    editor = page.locator("[data-focal-editor]")
    picture = editor.locator(".focal-editor-image")
    marker = editor.locator(".focal-editor-marker")
    # Before any click: the automatic point, on the red subject.
    expect(marker).to_be_visible()
    expect(marker).to_have_class(re.compile("focal-editor-marker-auto"))
    expect(editor.locator(".focal-editor-state")).to_have_text("Estimated automatically.")
    box = picture.bounding_box()
    mark = marker.bounding_box()
    assert box is not None
    assert mark is not None
    centre = (
        (mark["x"] + mark["width"] / 2 - box["x"]) / box["width"],
        (mark["y"] + mark["height"] / 2 - box["y"]) / box["height"],
    )
    assert centre == pytest.approx(SUBJECT_AT, abs=0.05)
    # The preview shows the square cut at the right edge.
    crop = editor.locator(".focal-editor-crop")
    window = editor.locator(".focal-editor-window").bounding_box()
    shown = crop.bounding_box()
    assert window is not None
    assert shown is not None
    assert shown["x"] + shown["width"] == pytest.approx(window["x"] + window["width"], abs=1.5)

    picture.click(position={"x": MARKER_AT[0] * box["width"], "y": MARKER_AT[1] * box["height"]})
    assert float(page.locator("#id_focal_x").input_value()) == pytest.approx(MARKER_AT[0], abs=0.01)
    assert float(page.locator("#id_focal_y").input_value()) == pytest.approx(MARKER_AT[1], abs=0.01)
    expect(marker).not_to_have_class(re.compile("focal-editor-marker-auto"))
    expect(editor.locator(".focal-editor-state")).to_have_text("Set by staff.")
    shown = crop.bounding_box()
    assert shown is not None
    # Now the square is cut at the left edge, where the marker is.
    assert shown["x"] == pytest.approx(window["x"], abs=1.5)
    browsing.shot("point-set")

    old_thumb = marked_image.renditions.get(name="thumb", format="jpeg").storage_key
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    browsing.shot("saved")
    marked_image.refresh_from_db()
    assert (marked_image.focal_x, marked_image.focal_y) == pytest.approx(MARKER_AT, abs=0.01)
    assert marked_image.renditions.get(name="thumb", format="jpeg").storage_key != old_thumb
    expect(page.locator(".focal-editor-state")).to_have_text("Set by staff.")

    # Back to the automatic point.
    page.get_by_role("button", name="Use the automatic point").click()
    expect(page.locator(".focal-editor-state")).to_have_text("Estimated automatically.")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    marked_image.refresh_from_db()
    assert marked_image.focal_point is None
    browsing.shot("automatic-again")


def test_the_editor_waits_for_processing(browsing: Browsing, transactional_db: None) -> None:
    image = services.image_upload(file=corpus.jpeg(), original_name="cut.jpg")
    Image.objects.filter(pk=image.pk).update(status=Image.Status.PENDING)
    log_in(browsing)
    browsing.visit(f"/admin/uploads/image/{image.pk}/change/", "pending")
    expect(browsing.page.get_by_text("Shown once the image is processed.")).to_be_visible()
