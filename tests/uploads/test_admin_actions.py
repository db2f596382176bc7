"""The image admin's bulk actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core import admin_delete
from tests.factories import ImageFactory
from uploads import admin as uploads_admin
from uploads import services
from uploads.admin import ImageAdmin
from uploads.models import Image, Rendition

pytestmark = pytest.mark.django_db


def test_an_action_on_ids_that_are_not_ids_is_a_bad_request(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/uploads/image/", {"action": "reprocess", "_selected_action": ["abc"]}
    )
    assert response.status_code == 400


def test_reprocessing_images_all_deleted_meanwhile_says_so(admin_client: Client, commit: Any) -> None:
    image = ImageFactory(size=(64, 48))
    selected = [str(image.pk)]
    with commit():
        image.delete()

    response = admin_client.post(
        "/admin/uploads/image/?status=ready",
        {"action": "reprocess", "_selected_action": selected},
        follow=True,
    )

    assert response.redirect_chain == [("/admin/uploads/image/?status=ready", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "The selected images are no longer in the list (deleted, or changed out of its filters, meanwhile): "
        "nothing was done."
    ]


def test_deleting_more_images_than_are_listed_counts_their_renditions_too(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, commit: Any
) -> None:
    monkeypatch.setattr(admin_delete, "LISTED_MAX", 1)
    images = [ImageFactory(size=(64, 48)), ImageFactory(size=(64, 48))]
    renditions = Rendition.objects.count()
    assert renditions > 2
    selection = {"action": "delete_selected", "index": "0", "_selected_action": [str(i.pk) for i in images]}
    page = admin_client.post("/admin/uploads/image/", selection).content.decode()
    assert "there are too many to list them one by one" in page
    assert "<li>Images: 2</li>" in page
    assert f"<li>Renditions: {renditions}</li>" in page
    with commit():
        response = admin_client.post("/admin/uploads/image/", {**selection, "post": "yes", "rows": "2"})
    assert response.status_code == 302
    assert not Image.objects.exists()
    assert not Rendition.objects.exists()


@pytest.fixture
def two_images() -> list[Image]:
    return [ImageFactory.create(size=(64, 48)) for _ in range(2)]


def test_more_images_than_are_deleted_at_a_time_are_refused_saying_so(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, two_images: list[Image]
) -> None:
    monkeypatch.setattr(admin_delete, "LISTED_MAX", 1)
    monkeypatch.setattr(ImageAdmin, "delete_selected_max", 1)
    selection = {
        "action": "delete_selected",
        "index": "0",
        "_selected_action": [str(i.pk) for i in two_images],
    }
    for step in ({}, {"post": "yes", "rows": "2"}):
        response = admin_client.post("/admin/uploads/image/", {**selection, **step})
        assert response.status_code == 400
        assert "Images are deleted at most 1 at a time here" in response.content.decode()
        assert "This selection has 2." in response.content.decode()
    assert Image.objects.count() == 2


def test_more_images_than_are_reprocessed_at_a_time_are_refused_pointing_to_the_command(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, two_images: list[Image]
) -> None:
    monkeypatch.setattr(uploads_admin, "REPROCESS_MAX", 1)
    selection = {"action": "reprocess", "index": "0", "_selected_action": [str(i.pk) for i in two_images]}
    response = admin_client.post("/admin/uploads/image/", selection)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Images are reprocessed at most 1 at a time here; this selection has 2." in page
    assert "manage.py reprocess_images takes any number" in page
    assert set(Image.objects.values_list("status", flat=True)) == {Image.Status.READY}
    one = {**selection, "_selected_action": [str(two_images[0].pk)]}
    assert admin_client.post("/admin/uploads/image/", one).status_code == 302


def history(image: Image) -> list[tuple[str, int, str]]:
    return [
        (entry.user.username, entry.action_flag, entry.get_change_message())
        for entry in LogEntry.objects.filter(object_id=str(image.pk))
    ]


def test_images_reprocessed_in_bulk_have_it_in_their_history_written_at_once(admin_client: Client) -> None:
    images = [ImageFactory.create(size=(64, 48)) for _ in range(3)]
    left = ImageFactory.create(size=(64, 48))
    selection = {"action": "reprocess", "_selected_action": [str(image.pk) for image in images]}

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.post("/admin/uploads/image/", selection).status_code == 302

    for image in images:
        assert history(image) == [("admin", CHANGE, "Reprocessed by bulk action")]
    assert history(left) == []
    logged = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "django_admin_log"')]
    assert len(logged) == 1


def test_an_image_deleted_before_it_is_reprocessed_has_no_entry(admin_user: Any, commit: Any) -> None:
    gone, kept = (ImageFactory.create(size=(64, 48)) for _ in range(2))
    with commit():
        Image.objects.filter(pk=gone.pk).delete()

    count = services.image_reprocess(images=[gone, kept], user_id=admin_user.pk, change_message="Reprocessed")

    assert count == 1
    assert LogEntry.objects.filter(object_id=str(kept.pk), change_message="Reprocessed").exists()
    assert not LogEntry.objects.filter(object_id=str(gone.pk)).exists()
