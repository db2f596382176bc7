"""Originals stay private on a real S3 server (SeaweedFS): anonymous reads of
an original are refused whichever layout is used (a private bucket, or a
private prefix under the media bucket's policy), renditions are public, and a
staff member's signed link works and then expires."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import ProductFactory
from tests.security.conftest import has_gps_or_camera
from tests.servers import S3Server
from tests.uploads import corpus
from uploads.models import Image

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LINK_SECONDS = 2


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(params=["private-bucket", "private-prefix"])
def buckets(request: pytest.FixtureRequest, s3: S3Server, settings: Any) -> tuple[str, str]:
    """Media in S3 as production sets it up, in one of the two documented layouts."""
    media = s3.create_bucket(f"media-{request.param}-{time.monotonic_ns()}")
    private = s3.create_bucket(f"{media}-private") if request.param == "private-bucket" else media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3.storage_backend(media),
        "originals": s3.storage_backend(
            private, querystring_auth=True, querystring_expire=LINK_SECONDS, custom_domain=None
        ),
    }
    settings.ORIGINAL_URL_SECONDS = LINK_SECONDS
    call_command("media_bucket_policy", "--apply", stdout=io.StringIO())
    return media, private


def _anonymous_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_anonymous_reads_of_an_original_are_refused_and_of_a_rendition_allowed(
    s3: S3Server, buckets: tuple[str, str], token_client: APIClient, commit: Any
) -> None:
    media, private = buckets
    original = corpus.jpeg_with_metadata((900, 700))
    with commit():
        response = token_client.post(
            "/api/v1/images/", {"file": SimpleUploadedFile("trip.jpg", original)}, format="multipart"
        )
    assert response.status_code == 201
    image = Image.objects.get(pk=response.json()["id"])
    assert image.status == Image.Status.READY

    key = image.file.name
    for bucket in {private, media}:
        status, body = _anonymous_get(f"{s3.endpoint_url}/{bucket}/{key}")
        assert status in {403, 404}, bucket
        assert body != original
    head = s3.client().head_object(Bucket=private, Key=key)
    assert head["CacheControl"].startswith("private")

    with commit():
        ProductFactory(name="Holiday", image=image)  # shown by the catalog: the public reads it
    renditions = APIClient().get(f"/api/v1/images/{image.pk}/").json()["renditions"]
    assert renditions
    for rendition in renditions:
        assert rendition["url"].startswith(f"{s3.endpoint_url}/{media}/renditions/")
        status, body = _anonymous_get(rendition["url"])
        assert status == 200
        assert not has_gps_or_camera(body)


def test_staff_get_a_signed_link_to_the_original_that_expires(
    s3: S3Server, buckets: tuple[str, str], token_client: APIClient, commit: Any
) -> None:
    original = corpus.jpeg_with_metadata((400, 300))
    with commit():
        response = token_client.post(
            "/api/v1/images/", {"file": SimpleUploadedFile("trip.jpg", original)}, format="multipart"
        )
    image_id = response.json()["id"]
    assert APIClient().get(f"/api/v1/images/{image_id}/original/").status_code == 401

    redirect = token_client.get(f"/api/v1/images/{image_id}/original/")
    assert redirect.status_code == 302
    link = redirect["Location"]
    assert "X-Amz-Signature=" in link
    status, body = _anonymous_get(link)
    assert status == 200
    assert body == original
    time.sleep(LINK_SECONDS + 1.5)
    assert _anonymous_get(link)[0] == 403


def test_a_signed_link_saves_the_original_under_its_uploaded_name_as_the_local_download_does(
    s3: S3Server, buckets: tuple[str, str], token_client: APIClient, commit: Any
) -> None:
    """The same bytes uploaded twice are one object; each image's link names its own upload."""
    original = corpus.jpeg_with_metadata((400, 300))
    ids = []
    for name in ("trip.jpg", "Été à Paris.jpg"):
        with commit():
            response = token_client.post(
                "/api/v1/images/", {"file": SimpleUploadedFile(name, original)}, format="multipart"
            )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    for image_id, disposition in zip(
        ids,
        [
            'attachment; filename="trip.jpg"',
            "attachment; filename*=utf-8''%C3%89t%C3%A9%20%C3%A0%20Paris.jpg",
        ],
        strict=True,
    ):
        link = token_client.get(f"/api/v1/images/{image_id}/original/")["Location"]
        with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - loopback test server
            assert response.read() == original
            # Saved, never shown: the upload was never checked for what a browser might make of it.
            assert response.headers["Content-Disposition"] == disposition
            assert response.headers["Content-Type"] == "application/octet-stream"


def test_an_original_lost_from_the_bucket_is_not_found_rather_than_a_link_to_the_buckets_404(
    s3: S3Server, buckets: tuple[str, str], token_client: APIClient, staff: APIClient, commit: Any
) -> None:
    """Deleted by hand, or a restore of an older backup: the portal says so,
    as it does for a local original, instead of signing a link the bucket
    answers with its own XML."""
    _, private = buckets
    with commit():
        response = token_client.post(
            "/api/v1/images/",
            {"file": SimpleUploadedFile("trip.jpg", corpus.jpeg_with_metadata((400, 300)))},
            format="multipart",
        )
    image = Image.objects.get(pk=response.json()["id"])
    s3.client().delete_object(Bucket=private, Key=image.file.name)

    api = staff.get(f"/api/v1/images/{image.pk}/original/")
    admin = staff.get(f"/admin/uploads/image/{image.pk}/original/")

    assert (api.status_code, api["Content-Type"]) == (404, "application/json")
    assert api.json()["detail"] == f"The original of image {image.pk} is missing from the image store."
    assert "Location" not in api
    assert "Retry-After" not in api
    assert admin.status_code == 404
    assert "Location" not in admin
    assert f"The original of image {image.pk} is missing from the image store." in admin.content.decode()
