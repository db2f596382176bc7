"""The image admin's list and change page: failed images first, with their
error, and renditions that staff see but cannot edit."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import ImageFactory
from tests.uploads import corpus
from uploads.models import Image
from uploads.processing import ALLOWED_FORMATS

pytestmark = pytest.mark.django_db

IMAGES = "/admin/uploads/image/"


@pytest.fixture
def one_of_each() -> dict[str, Image]:
    """Oldest first: a failed, a pending and a ready image."""
    failed: Image = ImageFactory.create(file=corpus.truncated_jpeg(), original_name="broken.jpg")
    pending: Image = ImageFactory.create(original_name="waiting.jpg", processed=False)
    ready: Image = ImageFactory.create(original_name="done.jpg")
    assert (failed.status, pending.status, ready.status) == ("failed", "pending", "ready")
    return {"failed": failed, "pending": pending, "ready": ready}


def _listed(client: Client, **query: str) -> list[str]:
    response = client.get(IMAGES, query)
    assert response.status_code == 200
    return [image.original_name for image in response.context["cl"].result_list]


def test_failed_images_are_listed_first_however_old(
    admin_client: Client, one_of_each: dict[str, Image]
) -> None:
    assert _listed(admin_client) == ["broken.jpg", "waiting.jpg", "done.jpg"]
    # A click on the Created column sorts by it alone.
    assert _listed(admin_client, o="-7") == ["done.jpg", "waiting.jpg", "broken.jpg"]


def test_the_status_filter_offers_failed_first_and_narrows_the_list(
    admin_client: Client, one_of_each: dict[str, Image]
) -> None:
    page = admin_client.get(IMAGES).content.decode()
    offered = re.findall(r'href="\?status=(\w+)"', page)
    assert offered == ["failed", "pending", "processing", "ready"]
    assert _listed(admin_client, status="failed") == ["broken.jpg"]
    assert _listed(admin_client, status="ready") == ["done.jpg"]


def test_a_failed_images_page_shows_its_error(admin_client: Client, one_of_each: dict[str, Image]) -> None:
    failed = one_of_each["failed"]
    assert failed.error
    page = admin_client.get(f"{IMAGES}{failed.pk}/change/").content.decode()
    error = re.search(r'field-error">.*?<div class="readonly">(.*?)</div>', page, re.S)
    assert error, "no error row"
    assert error.group(1) == failed.error


def test_renditions_are_shown_but_cannot_be_changed_added_or_removed(
    admin_client: Client, one_of_each: dict[str, Image]
) -> None:
    ready = one_of_each["ready"]
    before = list(ready.renditions.order_by("pk").values_list("pk", "name", "width", "storage_key"))
    url = f"{IMAGES}{ready.pk}/change/"
    page = admin_client.get(url).content.decode()
    for _, name, width, _ in before:
        assert re.search(rf'<td class="field-width">\s*<p>{width}</p>', page), (name, width)
    [inline] = admin_client.get(url).context["inline_admin_formsets"]
    assert inline.formset.max_num == 0
    assert not inline.formset.can_delete
    assert all(set(form.fields) <= {"id", "image"} for form in inline.formset.forms)

    # A crafted post changing a rendition and deleting another changes neither.
    data = {"title": "", "alt": ready.alt, "focal_x": "", "focal_y": "", "focal_radius": ""}
    data.update(re.findall(r'<input type="hidden" name="(renditions-[^"]+)" value="([^"]*)"', page))
    data.update({"renditions-0-width": "1", "renditions-0-name": "evil", "renditions-1-DELETE": "on"})
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert list(ready.renditions.order_by("pk").values_list("pk", "name", "width", "storage_key")) == before


def test_the_preset_and_format_filters_offer_the_known_ones_without_reading_every_image(
    admin_client: Client,
) -> None:
    ImageFactory.create(original_name="icon.jpg", preset="icon", processed=False)
    ImageFactory.create(original_name="web.jpg", processed=False)
    with CaptureQueriesContext(connection) as ran:
        page = admin_client.get(IMAGES).content.decode()

    assert not [q["sql"] for q in ran.captured_queries if "DISTINCT" in q["sql"]]
    # Every preset of the settings and every format an upload is accepted in,
    # those no image has included, as a filter of choices lists each one.
    assert re.findall(r'href="\?preset=(\w+)"', page) == sorted(settings.IMAGE_PRESETS)
    assert re.findall(r'href="\?format=(\w+)"', page) == sorted(ALLOWED_FORMATS)
    assert _listed(admin_client, preset="icon") == ["icon.jpg"]
    assert _listed(admin_client, format="JPEG") == ["web.jpg", "icon.jpg"]
    assert _listed(admin_client, format="PNG") == []


def test_a_chosen_preset_the_settings_no_longer_name_is_listed_as_chosen(admin_client: Client) -> None:
    ImageFactory.create(original_name="old.jpg", processed=False)
    Image.objects.update(preset="poster")

    response = admin_client.get(IMAGES, {"preset": "poster"})

    assert [image.original_name for image in response.context["cl"].result_list] == ["old.jpg"]
    # The chosen choice of the preset filter, by its own name: the "All" of
    # each other filter links to ?preset=poster too, and is chosen as well.
    chosen = re.findall(
        r'<li class="selected">\s*<a href="\?preset=\w+"[^>]*>([^<]*)</a>', response.content.decode()
    )
    assert "poster" in [name.strip() for name in chosen], "no chosen preset"
