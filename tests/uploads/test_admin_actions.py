"""The image admin's bulk actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core import admin_delete
from tests.factories import ImageFactory
from uploads.models import Image, Rendition

pytestmark = pytest.mark.django_db


def test_an_action_on_ids_that_are_not_ids_is_a_bad_request(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/uploads/image/", {"action": "reprocess", "_selected_action": ["abc"]}
    )
    assert response.status_code == 400


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
