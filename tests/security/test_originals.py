"""Originals are private: an anonymous visitor who follows every URL the API,
the pages and the course endpoints expose for an image, and tries the
guessable ones, never gets the original's bytes or its GPS position."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.conftest import BrowserSessionClient
from tests.factories import ImageFactory, ProductFactory, UserFactory, s3_store
from tests.portal.test_settings_ranges import load_settings
from tests.security.conftest import has_gps_or_camera, local_path, urls_in
from tests.uploads import corpus
from uploads import services, storage
from uploads.models import Image

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gps_upload(token_client: APIClient, commit: Any) -> tuple[Image, bytes]:
    data = corpus.jpeg_with_metadata((900, 700))
    assert has_gps_or_camera(data)
    with commit():
        response = token_client.post(
            "/api/v1/images/", {"file": _file(data, "holiday.jpg")}, format="multipart"
        )
    assert response.status_code == 201, response.content
    image = Image.objects.get(pk=response.json()["id"])
    assert image.status == Image.Status.READY
    ProductFactory(name="Holiday", image=image)  # shown by the catalog: the public reads it
    return image, data


def _file(data: bytes, name: str) -> Any:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _crawl(client: APIClient, start: list[str], limit: int = 400) -> dict[str, Any]:
    """Follow every same-site URL from the start pages, breadth first."""
    seen: dict[str, Any] = {}
    queue = list(start)
    while queue and len(seen) < limit:
        url = local_path(queue.pop(0))
        if url in seen or url.startswith(("/admin", "/static/")):
            continue
        response = client.get(url, HTTP_ACCEPT="text/html,application/json;q=0.9")
        seen[url] = response
        if response.status_code == 200:
            queue.extend(u for u in urls_in(response) if local_path(u) not in seen)
    return seen


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_no_url_an_anonymous_visitor_can_follow_returns_the_original(
    gps_upload: tuple[Image, bytes], visitor: APIClient
) -> None:
    image, original = gps_upload
    start = [
        "/", "/catalog/", "/people/", "/reviews/", "/api/v1/", "/api/v1/images/",
        f"/api/v1/images/{image.pk}/", "/api/v1/products/", "/api/v1/people/", "/fruits/", "/feedback/",
    ]  # fmt: skip
    crawled = _crawl(visitor, start)
    renditions = [url for url in crawled if url.startswith("/media/renditions/")]
    assert len(renditions) >= 4, "the crawl should reach the image's renditions"
    for url, response in crawled.items():
        body = _body(response)
        assert body != original, url
        assert image.sha256 not in body.decode("latin-1"), f"{url} reveals the original's hash"
        assert not has_gps_or_camera(body), f"{url} carries GPS or camera data"


def test_the_api_shows_the_hash_and_the_download_only_to_permitted_callers(
    gps_upload: tuple[Image, bytes], visitor: APIClient, token_client: APIClient, outsider: APIClient
) -> None:
    image, _ = gps_upload
    for client in (visitor, outsider):
        body = client.get(f"/api/v1/images/{image.pk}/").json()
        assert body["sha256"] is None
        assert body["original"] is None
    body = token_client.get(f"/api/v1/images/{image.pk}/").json()
    assert body["sha256"] == image.sha256
    assert body["original"].endswith(f"/api/v1/images/{image.pk}/original/")


def test_guessable_urls_of_the_original_return_nothing(
    gps_upload: tuple[Image, bytes], visitor: APIClient
) -> None:
    image, original = gps_upload
    key = image.file.name
    # Even a copy left in the public media (an older release kept them there)
    # is never served.
    storages["default"].save(key, ContentFile(original))
    guesses = [
        f"/media/{key}",
        f"/media/originals/{image.sha256[:2]}/{image.sha256}.jpg",
        f"/media/../private/{key}",
        f"/media/%2e%2e/private/{key}",
        f"/media/renditions/../{key}",
        f"/media/renditions/%2e%2e/%2e%2e/private/{key}",
        f"/media//{key}",
        f"/private/{key}",
        f"/{key}",
    ]
    for url in guesses:
        response = visitor.get(url)
        assert response.status_code == 404, url
        assert _body(response) != original
    assert visitor.get(f"/api/v1/images/{image.pk}/original/").status_code == 401


def test_a_caller_refused_an_original_is_told_which_permissions_it_takes(outsider: APIClient) -> None:
    """As the signed rendition URLs say it: staff refused learn what to ask for."""
    image = ImageFactory(size=(64, 48))

    response = outsider.get(f"/api/v1/images/{image.pk}/original/")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "The original of an image is for callers with the view or the change permission on "
        "images (uploads.view_image or uploads.change_image)."
    }


def test_staff_with_the_view_permission_download_the_untouched_original(
    gps_upload: tuple[Image, bytes], token_client: APIClient, outsider: APIClient, staff: APIClient
) -> None:
    image, original = gps_upload
    assert outsider.get(f"/api/v1/images/{image.pk}/original/").status_code == 403
    response = token_client.get(f"/api/v1/images/{image.pk}/original/")
    assert response.status_code == 200
    assert _body(response) == original
    admin = staff.get(f"/admin/uploads/image/{image.pk}/original/")
    assert admin.status_code == 200
    assert hashlib.sha256(_body(admin)).hexdigest() == image.sha256
    for download in (response, admin):
        # Saved, never shown (a browser is not to sniff the unchecked bytes)
        # and never kept by a cache.
        directives = {part.strip() for part in download["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, download["Cache-Control"]
        assert download["Content-Disposition"] == 'attachment; filename="holiday.jpg"'
        assert download["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("accept", ["application/octet-stream", "image/jpeg", "image/*"])
def test_a_download_asking_for_bytes_gets_them_and_its_refusals_stay_json(
    gps_upload: tuple[Image, bytes], token_client: APIClient, outsider: APIClient, accept: str
) -> None:
    # The schema gives the download as application/octet-stream: a client
    # built from it asks for that, and is not to be told 406.
    image, original = gps_upload

    response = token_client.get(f"/api/v1/images/{image.pk}/original/", HTTP_ACCEPT=accept)
    refused = outsider.get(f"/api/v1/images/{image.pk}/original/", HTTP_ACCEPT=accept)
    missing = token_client.get("/api/v1/images/999999/original/", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert _body(response) == original
    assert response["Content-Type"] == "application/octet-stream"
    assert (refused.status_code, refused["Content-Type"]) == (403, "application/json")
    assert "detail" in refused.json()
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})


def test_an_original_missing_from_the_store_is_not_found_rather_than_a_store_to_try_again(
    gps_upload: tuple[Image, bytes], token_client: APIClient, staff: APIClient
) -> None:
    image, _ = gps_upload
    storages["originals"].delete(image.file.name)
    response = token_client.get(f"/api/v1/images/{image.pk}/original/")
    assert response.status_code == 404
    assert response.json()["detail"] == f"The original of image {image.pk} is missing from the image store."
    assert "Retry-After" not in response
    admin = staff.get(f"/admin/uploads/image/{image.pk}/original/")
    assert admin.status_code == 404


def test_an_image_whose_file_is_cleared_by_a_save_of_its_row_has_no_original_to_give(
    gps_upload: tuple[Image, bytes], token_client: APIClient, staff: APIClient, commit: Any
) -> None:
    """A shell's ``image.file = None; image.save()``: asked for its original,
    the API and the admin say it is missing, as of one lost from the store."""
    image, _ = gps_upload
    with commit():
        image.file = None  # type: ignore[assignment]
        image.save()

    response = token_client.get(f"/api/v1/images/{image.pk}/original/")
    page = staff.get(f"/admin/uploads/image/{image.pk}/original/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response.json()["detail"] == f"The original of image {image.pk} is missing from the image store."
    assert page.status_code == 404
    assert f"The original of image {image.pk} is missing from the image store." in page.content.decode()


def test_the_admin_says_an_original_is_missing_from_the_store_not_that_the_page_is(
    gps_upload: tuple[Image, bytes], staff: APIClient
) -> None:
    image, _ = gps_upload
    storages["originals"].delete(image.file.name)

    page = staff.get(f"/admin/uploads/image/{image.pk}/original/", HTTP_ACCEPT="text/html")
    unknown = staff.get("/admin/uploads/image/999999/original/", HTTP_ACCEPT="text/html")

    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert f"The original of image {image.pk} is missing from the image store." in text
    assert "There is nothing at this address." not in text
    assert unknown.status_code == 404
    assert "There is nothing at this address." in unknown.content.decode()


def test_the_admin_change_page_links_the_download_not_a_media_url(
    gps_upload: tuple[Image, bytes], staff: APIClient
) -> None:
    image, _ = gps_upload
    page = staff.get(f"/admin/uploads/image/{image.pk}/change/").content.decode()
    assert f"/admin/uploads/image/{image.pk}/original/" in page
    assert f"/media/{image.file.name}" not in page


def test_an_original_left_in_the_public_media_by_an_older_release_is_moved_once(
    settings: Any, commit: Any
) -> None:
    with commit():
        image = services.image_upload(file=corpus.jpeg_with_metadata(), original_name="old.jpg")
    public, private = storages["default"], storages["originals"]
    data = private.open(image.file.name).read()
    private.delete(image.file.name)
    public.save(image.file.name, ContentFile(data))  # where an older release kept it

    assert storage.originals_make_private() == (1, 0)
    assert not public.exists(image.file.name)
    assert private.open(image.file.name).read() == data
    assert storage.originals_make_private() == (0, 1)


def test_a_move_of_an_original_cut_short_after_its_copy_is_finished_by_the_next_run_with_no_second_copy(
    settings: Any, commit: Any
) -> None:
    with commit():
        image = services.image_upload(file=corpus.jpeg_with_metadata(), original_name="old.jpg")
    public, private = storages["default"], storages["originals"]
    data = private.open(image.file.name).read()
    public.save(image.file.name, ContentFile(data))  # copied, not yet deleted from the public store

    assert storage.originals_make_private() == (1, 0)
    assert not public.exists(image.file.name)
    folder = Path(settings.STORAGES["originals"]["OPTIONS"]["location"])
    assert [str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()] == [
        image.file.name
    ]


def test_moving_originals_to_a_private_store_that_is_the_public_one_deletes_none(
    settings: Any, commit: Any
) -> None:
    """A store shared by both (a bucket with originals under originals/):
    the original found in the "public" store is the private one."""
    settings.STORAGES = {
        **settings.STORAGES,
        "originals": {
            **settings.STORAGES["originals"],
            "OPTIONS": {**settings.STORAGES["originals"]["OPTIONS"], "location": settings.MEDIA_ROOT},
        },
    }
    with commit():
        image = services.image_upload(file=corpus.jpeg_with_metadata(), original_name="only.jpg")

    assert storage.originals_make_private() == (0, 1)
    assert storages["originals"].exists(image.file.name)


def _user_with(username: str, *codenames: str, is_staff: bool = False) -> Any:
    user = UserFactory(username=username, is_staff=is_staff)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="uploads", codename__in=codenames)
    )
    return user


def test_staff_without_the_view_permission_cannot_download_from_the_admin(
    gps_upload: tuple[Image, bytes],
) -> None:
    image, original = gps_upload
    client = BrowserSessionClient()
    client.force_login(_user_with("clerk", is_staff=True))
    response = client.get(f"/admin/uploads/image/{image.pk}/original/")
    assert response.status_code == 403
    assert _body(response) != original


# Real commits: the crops are cut again as the new point commits, before the answer.
@pytest.mark.django_db(transaction=True)
def test_callers_who_may_change_an_image_may_view_it_and_see_its_hash_error_and_download(
    gps_upload: tuple[Image, bytes],
) -> None:
    # Django's admin counts the change permission as including view: the API
    # shows such callers what the admin shows them.
    image, _ = gps_upload
    Image.objects.filter(pk=image.pk).update(error="Decoded from /srv/private/secret-path.jpg")
    client = APIClient()
    client.force_login(_user_with("editor", "change_image", is_staff=True))
    response = client.patch(
        f"/api/v1/images/{image.pk}/", {"focal_point": {"x": 0.2, "y": 0.3}}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["focal_point"]["x"] == 0.2  # the change was made and answered
    assert (body["sha256"], body["error"]) == (image.sha256, "Decoded from /srv/private/secret-path.jpg")
    assert body["original"].endswith(f"/api/v1/images/{image.pk}/original/")
    listed = client.get("/api/v1/images/").json()["results"][0]
    assert (listed["sha256"], listed["original"]) == (image.sha256, body["original"])


@pytest.mark.parametrize(
    ("codenames", "allowed"),
    [
        (("view_image",), True),
        (("change_image",), True),
        (("add_image", "delete_image"), False),
        ((), False),
    ],
    ids=["view", "change", "add-and-delete", "none"],
)
def test_the_admin_and_the_api_agree_on_who_downloads_an_original(
    gps_upload: tuple[Image, bytes], codenames: tuple[str, ...], allowed: bool
) -> None:
    image, original = gps_upload
    client = BrowserSessionClient()
    client.force_login(_user_with("clerk", *codenames, is_staff=True))

    admin = client.get(f"/admin/uploads/image/{image.pk}/original/")
    api = client.get(f"/api/v1/images/{image.pk}/original/")

    assert (admin.status_code, api.status_code) == ((200, 200) if allowed else (403, 403))
    assert [_body(admin) == original, _body(api) == original] == [allowed, allowed]


def test_only_permitted_callers_see_why_an_image_failed(
    gps_upload: tuple[Image, bytes], visitor: APIClient, outsider: APIClient, token_client: APIClient
) -> None:
    image, _ = gps_upload
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="Decoded from /srv/secret.jpg")
    for client in (visitor, outsider):
        assert client.get(f"/api/v1/images/{image.pk}/").json()["error"] is None
        assert client.get("/api/v1/images/").json()["results"][0]["error"] is None
    assert token_client.get(f"/api/v1/images/{image.pk}/").json()["error"] == "Decoded from /srv/secret.jpg"


# A link to an original as the settings of an S3 set-up make it, signed on the
# spot (no server: signing needs only the keys).
SIGN_ORIGINAL = """
import django
django.setup()
from uploads import storage
print(storage.original_url("originals/ab/abcdef.jpg", expires=storage.settings.ORIGINAL_URL_SECONDS))
print(storage.storages["originals"].get_object_parameters("originals/ab/abcdef.jpg")["CacheControl"])
"""


def test_links_to_originals_are_signed_short_lived_and_never_on_the_public_domain(tmp_path: Path) -> None:
    """Whatever the media bucket's own links are (unsigned, on a CDN domain),
    an original's link is signed, expires after PORTAL_ORIGINAL_URL_SECONDS
    and points at the bucket; its object is stored as private."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
        "AWS_STORAGE_BUCKET_NAME": "media",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_CUSTOM_DOMAIN": "cdn.example.com",
        "AWS_QUERYSTRING_AUTH": "false",
        "PORTAL_ORIGINAL_URL_SECONDS": "123",
    }
    env.pop("AWS_PRIVATE_BUCKET_NAME", None)
    result = subprocess.run(
        [sys.executable, "-c", SIGN_ORIGINAL],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    url, cache_control = result.stdout.splitlines()
    assert url.startswith("http://127.0.0.1:9/media/originals/ab/abcdef.jpg?"), url
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=123&" in url + "&"
    assert cache_control.startswith("private")


@pytest.fixture
def signed_originals(settings: Any) -> None:
    """Originals in a bucket, their links signed on the spot (no server:
    signing needs only the keys), lasting an hour unless asked otherwise."""
    s3_store(
        settings,
        "originals",
        bucket="private",
        querystring_auth=True,
        querystring_expire=3600,
        signature_version="s3v4",
    )


@pytest.mark.usefixtures("signed_originals")
def test_a_link_to_an_original_lasts_as_long_as_it_is_asked_to() -> None:
    url = storage.original_url("originals/ab/abcdef.jpg", expires=30) or ""
    assert "X-Amz-Expires=30&" in url + "&"


@pytest.mark.usefixtures("signed_originals")
def test_a_signed_link_to_an_original_saves_it_under_the_uploaded_name() -> None:
    query = parse_qs(
        urlsplit(storage.original_url("originals/ab/abcdef.jpg", expires=30, filename="Été.jpg") or "").query
    )
    assert query["response-content-disposition"] == ["attachment; filename*=utf-8''%C3%89t%C3%A9.jpg"]
    assert query["response-content-type"] == ["application/octet-stream"]


def test_an_original_in_a_bucket_that_is_away_is_a_503_to_try_again_not_a_link(
    gps_upload: tuple[Image, bytes], signed_originals: None, staff: APIClient
) -> None:
    """Uploaded first, then its bucket is one that refuses connections: the
    link is signed only once the bucket says it holds the object."""
    image, _ = gps_upload
    api = staff.get(f"/api/v1/images/{image.pk}/original/")
    admin = staff.get(f"/admin/uploads/image/{image.pk}/original/")
    for response in (api, admin):
        assert response.status_code == 503
        assert response["Retry-After"]
        assert "Location" not in response
    assert api.json()["detail"] == "The file store is unavailable; please try again shortly."


@pytest.mark.parametrize("inside", ["", "private", "nested/private"])
def test_a_folder_of_originals_inside_the_media_root_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, inside: str
) -> None:
    """A proxy that serves the media root (PORTAL_SERVE_MEDIA off) would hand
    out every original kept under it."""
    media = tmp_path / "media"
    environment = {
        "AWS_STORAGE_BUCKET_NAME": "",
        "DJANGO_MEDIA_ROOT": str(media),
        "PORTAL_ORIGINALS_ROOT": str(media / inside),
    }
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(monkeypatch, environment)
    assert "PORTAL_ORIGINALS_ROOT" in str(refused.value)
    assert "DJANGO_MEDIA_ROOT" in str(refused.value)


def test_a_folder_of_originals_beside_the_media_root_is_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = {
        "AWS_STORAGE_BUCKET_NAME": "",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "PORTAL_ORIGINALS_ROOT": str(tmp_path / "mediaprivate"),
    }
    loaded = load_settings(monkeypatch, environment)
    assert loaded["STORAGES"]["originals"]["OPTIONS"]["location"] == tmp_path / "mediaprivate"
