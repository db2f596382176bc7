"""On PostgreSQL, a photo sent to /upload/ while a supplier import adds the
same photo (same name, bytes and preset) is held once, as it is when one
follows the other: the upload answers with the image the import added.

The import locked the photo's bytes and preset, the upload its bytes alone:
neither waited for the other, and an upload while the import's row was not
yet committed added a second image of the photo.

Each writer runs the portal's code on a thread of its own and is held after
a chosen statement (``Paused``) while the other runs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.integration.paused import PATIENCE, Paused, Writer, lock_waiters
from tests.servers import PostgresServer
from tests.uploads import corpus
from uploads import services as upload_services
from uploads.models import Image

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_photo_uploaded_while_the_import_adds_it_is_the_image_imported(
    postgres_database: PostgresServer,
) -> None:
    data = corpus.photo_jpeg(120, 80)
    # Held once it has added the image, before it commits.
    paused = Paused('INSERT INTO "uploads_image"')
    importer = Writer(
        postgres_database,
        paused,
        lambda: upload_services.image_import(data=data, original_name="fig.jpeg", preset="supplier"),
    )
    importer.start()
    paused.wait()

    def upload() -> Any:
        return Client(raise_request_exception=False).post(
            "/upload/", {"file": SimpleUploadedFile("fig.jpeg", data)}
        )

    uploader = Writer(postgres_database, Paused("never run"), upload)
    uploader.start()
    deadline = time.monotonic() + PATIENCE
    while uploader.is_alive() and not lock_waiters(postgres_database):
        assert time.monotonic() < deadline, "the upload neither ended nor waited"
        time.sleep(0.01)
    waited = uploader.is_alive()
    paused.go()

    imported, created = importer.outcome()
    response = uploader.outcome()
    assert response.status_code == 201, response.content
    assert created
    assert list(Image.objects.values_list("pk", flat=True)) == [imported.pk]
    assert response.json()["id"] == imported.pk
    assert waited, "the upload did not wait for the import"
