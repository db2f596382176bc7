"""Renditions on demand at signed URLs: any size within the limits is made
once, stored like the others, listed among the image's renditions, and served
afterwards without processing; anything not signed by the portal is refused
clearly, never with a 5xx."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.cache import cache
from django.test import Client
from PIL import Image as PILImage
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.fleet import Servers, fleet, running_servers
from tests.uploads import corpus
from tests.uploads.conftest import REPLACING, replace_file
from uploads import ondemand, processing, sandbox, selectors, services, storage
from uploads.models import Image, Rendition, ReplacedObject
from uploads.templatetags import images

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_image(commit: Any) -> Callable[..., Image]:
    """An image uploaded and processed as a committed upload would be."""

    def make(data: bytes | None = None, name: str = "photo.jpg") -> Image:
        with commit():
            image = services.image_upload(file=data or corpus.photo_jpeg(1200, 900), original_name=name)
        image.refresh_from_db()
        assert image.status == Image.Status.READY, image.error
        return image

    return make


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The preset name of every decode on demand from now on (the real decode runs)."""
    seen: list[str] = []
    real = sandbox.process

    def counted(data: bytes, preset: processing.Preset, **kwargs: Any) -> processing.Result:
        if preset.name.startswith("on-demand"):
            seen.append(preset.name)
        return real(data, preset, **kwargs)

    monkeypatch.setattr(sandbox, "process", counted)
    return seen


def decoded(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img


def media_bytes(settings: Any, url: str) -> bytes:
    assert url.startswith("/media/"), url
    return (Path(settings.MEDIA_ROOT) / url.removeprefix("/media/")).read_bytes()


# --- Specs and limits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("fill-480x320", ondemand.Spec("fill", 480, 320)),
        ("width-640", ondemand.Spec("width", 640)),
        ("max-800x600", ondemand.Spec("max", 800, 600)),
    ],
)
def test_a_spec_is_read_into_its_canonical_name(text: str, spec: ondemand.Spec) -> None:
    assert ondemand.parse_spec(text) == spec
    assert spec.name == text


@pytest.mark.parametrize(
    "text",
    ["fill-480", "width-640x480", "crop-10x10", "fill-0480x320", "fill-0x10", "width--5", "", "max-1x1/"],
)
def test_a_malformed_spec_is_refused_with_the_forms_allowed(text: str) -> None:
    with pytest.raises(ondemand.SpecInvalid, match="use fill-WxH"):
        ondemand.parse_spec(text)


@pytest.mark.parametrize(
    ("read", "text"),
    [(ondemand.parse_spec, "fill-" + "9x" * 500), (ondemand.parse_format, "png" * 400)],
    ids=["size", "format"],
)
def test_a_long_refused_spec_is_quoted_cut_with_its_length(read: Callable[[str], object], text: str) -> None:
    """Its start alone would read as the whole of what was asked for."""
    with pytest.raises(ondemand.SpecInvalid) as refused:
        read(text)
    assert f"{text[:60]!r}… ({len(text):,} characters):" in str(refused.value)


def test_a_size_over_the_limit_is_refused_naming_the_limit(settings: Any) -> None:
    settings.IMAGE_ONDEMAND_MAX_SIZE = 2000
    assert ondemand.parse_spec("fill-2000x10").width == 2000
    with pytest.raises(ondemand.SpecInvalid, match="2001 px; the largest size made on demand is 2000 px"):
        ondemand.parse_spec("max-10x2001")


def test_formats_are_those_of_the_settings(settings: Any) -> None:
    assert ondemand.parse_format("JPG") == "jpeg"
    settings.IMAGE_ONDEMAND_FORMATS = ["webp"]
    with pytest.raises(ondemand.SpecInvalid, match="made as webp"):
        ondemand.parse_format("png")


@pytest.mark.parametrize(
    ("spec", "display", "size"),
    [
        ("fill-480x320", (1200, 900), (480, 320)),
        ("fill-1600x400", (800, 600), (800, 200)),  # never upscaled: the shape kept
        ("fill-100x900", (800, 600), (67, 600)),
        ("width-640", (1200, 900), (640, 480)),
        ("width-3000", (1200, 900), (1200, 900)),
        ("max-300x300", (1200, 900), (300, 225)),
        ("max-4000x4000", (1200, 900), (1200, 900)),
        # A sliver keeps one pixel of its thin side, as processing makes it.
        ("width-1", (4000, 10), (1, 1)),
        ("max-10x10", (4000, 10), (10, 1)),
        ("fill-4000x1", (100, 100), (100, 1)),
    ],
)
def test_the_size_is_known_beforehand_and_never_beyond_the_source(
    spec: str, display: tuple[int, int], size: tuple[int, int]
) -> None:
    assert ondemand.parse_spec(spec).size(display) == size


# --- Signatures ---------------------------------------------------------------


def test_a_signed_url_names_the_image_spec_and_format() -> None:
    path = ondemand.url_path(42, ondemand.Spec("fill", 480, 320), "webp")
    signature, rest = path.removeprefix("/img/").split("/", 1)
    assert rest == "42/fill-480x320/webp/"
    assert len(signature) >= 40
    assert ondemand.signature_valid(signature, "42", "fill-480x320", "webp")
    for other in (
        ("43", "fill-480x320", "webp"),
        ("42", "fill-480x321", "webp"),
        ("42", "fill-480x320", "png"),
    ):
        assert not ondemand.signature_valid(signature, *other)


def test_a_signature_depends_on_the_secret_key_and_survives_its_rotation(settings: Any) -> None:
    before = ondemand.signature(1, "width-640", "webp")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    assert ondemand.signature(1, "width-640", "webp") != before
    assert ondemand.signature_valid(before, "1", "width-640", "webp")  # the old key, among the fallbacks
    settings.SECRET_KEY_FALLBACKS = []
    assert not ondemand.signature_valid(before, "1", "width-640", "webp")


def test_a_signature_the_portal_makes_for_anything_else_is_no_signature_here() -> None:
    """Salted: the same text signed elsewhere in the portal (unsalted, or
    under another salt) signs no rendition."""
    message = "42/fill-480x320/webp"
    for signer in (signing.Signer(), signing.Signer(salt="elsewhere")):
        elsewhere = signer.sign(message).rsplit(":", 1)[1]
        assert not ondemand.signature_valid(elsewhere, "42", "fill-480x320", "webp")
    assert ondemand.signature_valid(
        ondemand.signature(42, "fill-480x320", "webp"), "42", "fill-480x320", "webp"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.replace("/fill-480x320/", "/fill-4000x4000/"),
        lambda p: p.replace("/webp/", "/png/"),
        lambda p: "/img/" + "A" * 43 + p[len("/img/") + 43 :],
        lambda p: p.replace("/img/", "/img/x"),
    ],
    ids=["bigger size", "other format", "forged signature", "changed signature"],
)
def test_a_tampered_url_is_refused_with_403_and_makes_nothing(
    client: Client, make_image: Callable[..., Image], renders: list[str], tamper: Callable[[str], str]
) -> None:
    image = make_image()
    path = tamper(ondemand.url_path(image.pk, ondemand.Spec("fill", 480, 320), "webp"))
    response = client.get(path)
    assert response.status_code == 403
    assert "not signed for this image, size and format" in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert renders == []
    assert not image.renditions.filter(ondemand.on_demand_names()).exists()


def test_another_images_id_under_a_signature_is_refused(
    client: Client, make_image: Callable[..., Image]
) -> None:
    first, second = (
        make_image(corpus.photo_jpeg(600, 400, seed=1)),
        make_image(corpus.photo_jpeg(600, 400, seed=2)),
    )
    path = ondemand.url_path(first.pk, "width-100", "webp").replace(f"/{first.pk}/", f"/{second.pk}/")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/img/", "/img/abc/", "/img/abc/1/fill-10x10/", "/img/a/b/c/d/e/", "/img/sig/1/width-10/webp/extra"],
)
def test_an_unsigned_or_incomplete_address_is_a_clear_404(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "are handed out by the portal" in response.content.decode()


def test_a_non_numeric_id_is_refused_not_looked_up(client: Client) -> None:
    response = client.get("/img/abc/one/width-10/webp/")
    assert response.status_code == 403


def test_a_script_asking_for_json_gets_json(client: Client) -> None:
    response = client.get("/img/abc/1/width-10/webp/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "not signed" in response.json()["detail"]


# --- Made once, then served without processing --------------------------------


def test_the_first_request_makes_it_and_later_ones_redirect_without_processing(
    client: Client, make_image: Callable[..., Image], renders: list[str], settings: Any
) -> None:
    image = make_image()
    before = {(r.name, r.format) for r in image.renditions.all()}
    path = ondemand.url_path(image.pk, "fill-480x320", "webp")

    first = client.get(path)
    assert first.status_code == 200
    assert first["Content-Type"] == "image/webp"
    assert first["Cache-Control"] == "public, max-age=3600"
    made = decoded(first.content)
    assert (made.format, made.size) == ("WEBP", (480, 320))
    assert renders == ["on-demand fill-480x320"]

    rendition = Rendition.objects.get(image=image, name="fill-480x320", format="webp")
    assert (rendition.width, rendition.height, rendition.bytes) == (480, 320, len(first.content))
    assert rendition.storage_key == storage.rendition_key(first.content, "webp")
    assert {(r.name, r.format) for r in image.renditions.all()} == before | {("fill-480x320", "webp")}

    for _ in range(3):
        again = client.get(path)
        assert again.status_code == 302
        assert again["Location"] == rendition.url
        assert again["Cache-Control"] == "public, max-age=3600"
    assert renders == ["on-demand fill-480x320"]  # no processing after the first
    assert media_bytes(settings, rendition.url) == first.content
    assert client.get(rendition.url)["Cache-Control"] == storage.IMMUTABLE


def test_the_trailing_slash_is_optional(client: Client, make_image: Callable[..., Image]) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-200", "jpeg")
    assert client.get(path.rstrip("/")).status_code == 200
    assert client.get(path).status_code == 302


def test_a_head_request_answers_like_get_and_a_post_is_refused(
    client: Client, make_image: Callable[..., Image]
) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-200", "jpeg")
    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


@pytest.mark.parametrize(
    ("spec", "fmt", "size", "pillow_format"),
    [
        ("width-500", "jpeg", (500, 375), "JPEG"),
        ("width-5000", "png", (1200, 900), "PNG"),  # not upscaled
        ("max-300x300", "avif", (300, 225), "AVIF"),
        ("fill-2000x500", "webp", (1200, 300), "WEBP"),  # not upscaled, shape kept
    ],
)
def test_every_operation_and_format_comes_out_as_promised(
    client: Client,
    make_image: Callable[..., Image],
    settings: Any,
    spec: str,
    fmt: str,
    size: tuple[int, int],
    pillow_format: str,
) -> None:
    settings.IMAGE_ONDEMAND_MAX_SIZE = 5000
    image = make_image()
    parsed = ondemand.parse_spec(spec)
    assert parsed.size((image.width, image.height)) == size
    response = client.get(ondemand.url_path(image.pk, parsed, fmt))
    assert response.status_code == 200, response.content
    made = decoded(response.content)
    assert (made.format, made.size) == (pillow_format, size)
    assert response["Content-Type"] == processing.content_type(fmt)
    rendition = image.renditions.get(name=spec, format=fmt)
    assert (rendition.width, rendition.height) == size


def test_a_fill_keeps_the_focal_point_in_frame(client: Client, make_image: Callable[..., Image]) -> None:
    # Quadrants: red top-left, green top-right, blue bottom-left, white bottom-right.
    image = make_image(corpus.png(corpus.quadrants(800, 600)), "quadrants.png")
    services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.9, 0.8))
    response = client.get(ondemand.url_path(image.pk, "fill-100x100", "png"))
    assert response.status_code == 200
    made = decoded(response.content).convert("RGB")
    # The 600x600 square around (720, 480) is the right part: white below, green above.
    assert made.getpixel((80, 90)) == corpus.BOTTOM_RIGHT
    assert made.getpixel((80, 10)) == corpus.TOP_RIGHT
    # Cut, not squeezed: its x=40 is x=440 of the picture (squeezed whole, x=320, on the left).
    assert made.getpixel((40, 90)) == corpus.BOTTOM_RIGHT
    services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.05, 0.2))
    response = client.get(ondemand.url_path(image.pk, "fill-101x100", "png"))
    left = decoded(response.content).convert("RGB")
    assert left.getpixel((10, 10)) == corpus.TOP_LEFT


def test_moving_the_focal_point_cuts_the_fills_again_on_their_next_request(
    client: Client, make_image: Callable[..., Image], commit: Any, media_files: Any, sweep_after: Any
) -> None:
    image = make_image(corpus.png(corpus.quadrants(800, 600)), "quadrants.png")
    fill = ondemand.url_path(image.pk, "fill-100x100", "png")
    width = ondemand.url_path(image.pk, "width-100", "png")
    services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.05, 0.2))
    assert decoded(client.get(fill).content).convert("RGB").getpixel((10, 10)) == corpus.TOP_LEFT
    assert client.get(width).status_code == 200
    old_key = image.renditions.get(name="fill-100x100").storage_key
    with commit():
        services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.95, 0.2))
    assert not image.renditions.filter(name="fill-100x100").exists()
    assert image.renditions.filter(name="width-100").exists()  # not cut around anything: kept
    assert old_key in media_files()  # for the redirects to it that may be cached
    assert old_key in sweep_after(storage.REPLACED_KEEP_SECONDS)  # with the preset's crops cut anew
    assert old_key not in media_files()
    again = client.get(fill)
    assert again.status_code == 200
    assert decoded(again.content).convert("RGB").getpixel((90, 10)) == corpus.TOP_RIGHT


def test_a_fill_cut_while_the_focal_point_moved_is_not_kept(
    client: Client, make_image: Callable[..., Image], commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image(corpus.png(corpus.quadrants(800, 600)), "quadrants.png")
    services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.05, 0.2))
    fill = ondemand.url_path(image.pk, "fill-100x100", "png")
    real = sandbox.process
    moves: list[bool] = []

    def staff_move_it_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not moves:  # once: the crops cut around the new point come through here too
            moves.append(True)
            with commit():
                services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.95, 0.2))
        return result

    monkeypatch.setattr(sandbox, "process", staff_move_it_meanwhile)
    cut_around_the_old_point = client.get(fill)
    assert cut_around_the_old_point.status_code == 202
    assert "moved" in cut_around_the_old_point.content.decode()
    assert not image.renditions.filter(name="fill-100x100").exists()
    assert storage.sweep_orphans(grace_seconds=0) == []  # its file went with it

    monkeypatch.undo()
    again = client.get(fill)
    assert again.status_code == 200
    assert decoded(again.content).convert("RGB").getpixel((90, 10)) == corpus.TOP_RIGHT
    assert client.get(fill).status_code == 302


def test_metadata_never_reaches_an_on_demand_rendition(
    client: Client, make_image: Callable[..., Image]
) -> None:
    exif = PILImage.Exif()
    exif[0x010F] = "SecretCam"  # camera maker
    source = corpus.photo(800, 600)
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", exif=exif.tobytes())
    image = make_image(buffer.getvalue())
    response = client.get(ondemand.url_path(image.pk, "width-300", "jpeg"))
    assert b"SecretCam" not in response.content
    assert not decoded(response.content).getexif()


def test_the_api_lists_them_among_the_renditions_but_not_in_the_srcset(
    token_client: APIClient, make_image: Callable[..., Image], client: Client
) -> None:
    image = make_image()
    assert client.get(ondemand.url_path(image.pk, "width-480", "jpeg")).status_code == 200
    rendition = image.renditions.get(name="width-480")
    detail = token_client.get(f"/api/v1/images/{image.pk}/").json()
    [listed] = [r for r in detail["renditions"] if r["name"] == "width-480"]
    assert (listed["format"], listed["width"], listed["height"]) == ("jpeg", 480, 360)
    assert listed["url"] == rendition.url
    [summary] = token_client.get("/api/v1/images/").json()["results"]
    for body in (detail, summary):
        assert " 480w" not in body["srcset"]
        assert rendition.url not in body["srcset"]


# --- States of the image -------------------------------------------------------


def test_a_pending_image_answers_202_with_retry_after(
    client: Client, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.IMAGE_ONDEMAND_WAIT_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=False):
        image = services.image_upload(file=corpus.photo_jpeg(400, 300), original_name="p.jpg")
    response = client.get(ondemand.url_path(image.pk, "width-100", "webp"))
    assert response.status_code == 202
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert "still being processed" in response.content.decode()
    assert not Rendition.objects.filter(image=image).exists()


def test_a_failed_image_is_404_with_the_reason(client: Client, commit: Any) -> None:
    with commit():
        image = services.image_upload(file=corpus.truncated_jpeg(), original_name="broken.jpg")
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED
    response = client.get(ondemand.url_path(image.pk, "width-100", "webp"))
    assert response.status_code == 404
    assert "failed to process" in response.content.decode()


def test_a_rendition_made_before_its_image_failed_is_no_longer_served(
    client: Client, make_image: Callable[..., Image]
) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-100", "webp")
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 302
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="reprocessed: broken")

    response = client.get(path)
    assert response.status_code == 404
    assert "failed to process" in response.content.decode()


def test_with_the_cache_away_the_first_request_makes_it_instead_of_waiting(
    client: Client, make_image: Callable[..., Image], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image()
    settings.CACHES = {
        "default": {"BACKEND": "portal.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }

    def waits(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a claim that nobody holds")

    monkeypatch.setattr(ondemand, "_pause", waits)
    response = client.get(ondemand.url_path(image.pk, "width-100", "webp"))
    assert response.status_code == 200, response.content
    assert Rendition.objects.filter(image=image, name="width-100").count() == 1


def test_a_deleted_image_is_404(client: Client, make_image: Callable[..., Image]) -> None:
    image = make_image()
    image_id = image.pk
    path = ondemand.url_path(image_id, "width-100", "webp")
    services.image_delete(image=image)
    response = client.get(path)
    assert response.status_code == 404
    assert f"no image {image_id}" in response.content.decode()


def test_an_image_whose_original_is_lost_from_the_store_is_404_saying_so_not_a_store_to_retry(
    client: Client, make_image: Callable[..., Image], media_files: Any, caplog: pytest.LogCaptureFixture
) -> None:
    image = make_image()
    original = image.file.name
    image.file.delete(save=False)  # restored from an older backup, deleted by hand
    files = media_files()
    path = ondemand.url_path(image.pk, "width-100", "webp")
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 404
        assert "Retry-After" not in response
        assert f"original of image {image.pk} is missing" in response.content.decode()
    logged = [
        r.getMessage() for r in caplog.records if r.levelname == "ERROR" and r.name == "uploads.ondemand"
    ]
    assert logged == [f"image id={image.pk}: its original {original} is missing from the store"] * 2
    assert not image.renditions.filter(name="width-100").exists()
    assert media_files() == files
    assert cache.get(f"ondemand:{image.pk}:width-100:webp") is None  # the claim is released


@pytest.mark.parametrize(
    ("meanwhile", "refusal", "answer"),
    [
        ("moved", ondemand.NotReady, "moved meanwhile"),  # services._image_rekey, then its old key deleted
        ("deleted", ondemand.Gone, "no longer exists"),
    ],
)
def test_an_original_gone_from_under_a_make_is_told_apart_from_one_lost_from_the_store(
    make_image: Callable[..., Image],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    meanwhile: str,
    refusal: type[Exception],
    answer: str,
) -> None:
    """Only an original the image's row still names is missing from the
    store: one moved to another key is there (asked again, 202), one whose
    image was deleted is not to be looked for."""
    image = make_image()
    real_render = ondemand._render

    def gone_meanwhile(image: Image, spec: ondemand.Spec, fmt: str) -> processing.Output:
        if meanwhile == "moved":
            Image.objects.filter(pk=image.pk).update(file="originals/elsewhere.jpg")
        else:
            Image.objects.filter(pk=image.pk).delete()
        image.file.storage.delete(image.file.name)
        return real_render(image, spec, fmt)

    monkeypatch.setattr(ondemand, "_render", gone_meanwhile)
    with pytest.raises(refusal, match=answer):
        ondemand.rendition_get_or_make(image_id=image.pk, spec=ondemand.Spec("width", 100), fmt="webp")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize(
    "gave_up",
    [sandbox.TimedOut(30), sandbox.OutOfMemory(512), sandbox.Died(-9)],
    ids=["out of time", "out of memory", "killed"],
)
def test_a_rendition_that_cannot_be_made_now_is_a_503_and_leaves_nothing(
    client: Client,
    make_image: Callable[..., Image],
    monkeypatch: pytest.MonkeyPatch,
    media_files: Any,
    gave_up: Exception,
) -> None:
    image = make_image()
    files = media_files()

    def gives_up(*args: Any, **kwargs: Any) -> processing.Result:
        raise gave_up

    monkeypatch.setattr(sandbox, "process", gives_up)
    response = client.get(ondemand.url_path(image.pk, "width-100", "webp"))
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "could not be made now; try again shortly" in response.content.decode()
    assert not image.renditions.filter(name="width-100").exists()
    assert media_files() == files
    assert cache.get(f"ondemand:{image.pk}:width-100:webp") is None  # the claim is released


@pytest.mark.parametrize(
    "refusal",
    [
        processing.ProcessingError(
            "The image could not be encoded.", detail="encoding error 5: Image size exceeds WebP limit"
        ),
        processing.ImageRejected(
            "The image could not be read.", code="corrupt", detail="WebP chunk too large"
        ),
    ],
    ids=["encoder", "decoder"],
)
def test_a_rendition_the_image_cannot_give_is_refused_for_good_not_retried(
    client: Client,
    make_image: Callable[..., Image],
    monkeypatch: pytest.MonkeyPatch,
    media_files: Any,
    refusal: Exception,
) -> None:
    image = make_image()
    files = media_files()
    calls: list[str] = []

    def refused(data: bytes, preset: processing.Preset, **kwargs: Any) -> processing.Result:
        calls.append(preset.name)
        raise refusal

    remembered: list[tuple[str, float]] = []
    real_set = cache.set

    def remember(key: str, value: Any, timeout: float, **kwargs: Any) -> None:
        remembered.append((key, timeout))
        real_set(key, value, timeout=timeout, **kwargs)

    monkeypatch.setattr(sandbox, "process", refused)
    monkeypatch.setattr(cache, "set", remember)
    path = ondemand.url_path(image.pk, "width-100", "webp")
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 422
        assert "Retry-After" not in response
        assert f"width-100.webp cannot be made of image {image.pk}" in response.content.decode()
        assert "WebP" not in response.content.decode()  # no decoder's text in the answer
    assert calls == ["on-demand width-100"]  # remembered: the original is not decoded again
    assert [timeout for _, timeout in remembered] == [3600]  # for an hour, as docs/deploy.md says
    assert not image.renditions.filter(name="width-100").exists()
    assert media_files() == files
    # Another size or format of the same image is still tried.
    assert client.get(ondemand.url_path(image.pk, "width-101", "webp")).status_code == 422
    assert client.get(ondemand.url_path(image.pk, "width-100", "png")).status_code == 422
    assert len(calls) == 3


def test_a_rendition_refused_for_good_is_tried_again_once_its_image_is_reprocessed(
    client: Client, make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, commit: Any
) -> None:
    image = make_image()
    calls: list[str] = []
    real = sandbox.process

    def refused_on_demand(data: bytes, preset: processing.Preset, **kwargs: Any) -> processing.Result:
        if not preset.name.startswith("on-demand"):
            return real(data, preset, **kwargs)  # the reprocess's own renditions
        calls.append(preset.name)
        raise processing.ProcessingError("The image could not be encoded.")

    monkeypatch.setattr(sandbox, "process", refused_on_demand)
    path = ondemand.url_path(image.pk, "width-100", "webp")
    assert [client.get(path).status_code for _ in range(2)] == [422, 422]
    assert calls == ["on-demand width-100"]
    with commit():
        services.image_reprocess(images=[image])
    image.refresh_from_db()
    assert image.status == Image.Status.READY, image.error
    assert client.get(path).status_code == 422
    assert calls == ["on-demand width-100"] * 2  # decoded afresh, not refused from memory


# --- Limits --------------------------------------------------------------------


def test_an_image_has_at_most_the_cap_of_on_demand_renditions(
    client: Client, make_image: Callable[..., Image], settings: Any, renders: list[str]
) -> None:
    settings.IMAGE_ONDEMAND_MAX_PER_IMAGE = 2
    image = make_image()
    preset_renditions = image.renditions.count()
    first = ondemand.url_path(image.pk, "width-100", "webp")
    assert client.get(first).status_code == 200
    assert client.get(ondemand.url_path(image.pk, "width-100", "jpeg")).status_code == 200
    over = client.get(ondemand.url_path(image.pk, "width-101", "webp"))
    assert over.status_code == 403
    assert "already has 2 renditions made on demand, the most one image may have" in over.content.decode()
    assert client.get(first).status_code == 302  # the ones made are still served
    assert image.renditions.count() == preset_renditions + 2
    assert len(renders) == 2


def test_the_cap_holds_against_another_size_recorded_while_this_one_was_made(
    make_image: Callable[..., Image], settings: Any, monkeypatch: pytest.MonkeyPatch, media_files: Any
) -> None:
    """Both counted under the cap when they started: the one recorded second
    is refused, and its object goes with it."""
    settings.IMAGE_ONDEMAND_MAX_PER_IMAGE = 1
    image = make_image()
    real_render = ondemand._render
    rival = ondemand.Spec("width", 200)
    started: list[bool] = []

    def render_while_another_size_is_recorded(
        image: Image, spec: ondemand.Spec, fmt: str
    ) -> processing.Output:
        output = real_render(image, spec, fmt)
        if not started:  # once: the rival's own make comes through here too
            started.append(True)
            ondemand.rendition_get_or_make(image_id=image.pk, spec=rival, fmt=fmt)
        return output

    monkeypatch.setattr(ondemand, "_render", render_while_another_size_is_recorded)
    with pytest.raises(ondemand.OverLimit, match="already has 1 renditions made on demand"):
        ondemand.rendition_get_or_make(image_id=image.pk, spec=ondemand.Spec("width", 100), fmt="webp")
    assert [r.name for r in ondemand.made(image)] == ["width-200"]
    assert media_files() == {image.file.name, *image.renditions.values_list("storage_key", flat=True)}


@pytest.mark.parametrize("preset", ["icon", "removed from the settings since"])
def test_a_rendition_is_cut_from_the_displayed_image_whatever_its_preset(
    client: Client, commit: Any, preset: str
) -> None:
    """The icon preset turns its own renditions a quarter; a preset no longer
    in the settings leaves the default qualities."""
    with commit():
        image = services.image_upload(file=corpus.photo_jpeg(1200, 900), original_name="p.jpg", preset="icon")
    Image.objects.filter(pk=image.pk).update(preset=preset)
    response = client.get(ondemand.url_path(image.pk, "width-300", "jpeg"))
    assert response.status_code == 200, response.content
    assert decoded(response.content).size == (300, 225)


def test_a_url_signed_before_the_limits_were_lowered_is_refused_with_them(
    client: Client, make_image: Callable[..., Image], settings: Any
) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-900", "webp")
    settings.IMAGE_ONDEMAND_MAX_SIZE = 800
    response = client.get(path)
    assert response.status_code == 403
    assert "the largest size made on demand is 800 px" in response.content.decode()


@pytest.fixture
def tall(make_image: Callable[..., Image]) -> Image:
    """A 50x5000 image: width-50 of it would be 5000 px tall, past the 4000 px limit."""
    return make_image(corpus.png(PILImage.new("L", (50, 5000), 128)), name="tall.png")


def test_a_width_that_would_make_a_side_over_the_limit_is_refused_naming_both(
    client: Client, tall: Image, renders: list[str]
) -> None:
    with pytest.raises(ondemand.SpecInvalid, match="would be 50x5000 px; the largest side made on demand"):
        ondemand.check_size(ondemand.parse_spec("width-50"), (50, 5000))
    assert ondemand.check_size(ondemand.parse_spec("width-40"), (50, 5000)) == (40, 4000)
    # A URL signed before this was checked: refused like one past a lowered limit, nothing decoded.
    response = client.get(ondemand.url_path(tall.pk, "width-50", "jpeg"))
    assert response.status_code == 403
    assert "width-50 of this 50x5000 image would be 50x5000 px" in response.content.decode()
    assert "4000 px" in response.content.decode()
    assert renders == []
    assert client.get(ondemand.url_path(tall.pk, "width-40", "jpeg")).status_code == 200
    made = tall.renditions.get(name="width-40")
    assert (made.width, made.height) == (40, 4000)


def test_the_api_signs_no_width_that_would_make_a_side_over_the_limit(
    token_client: APIClient, tall: Image
) -> None:
    response = url_of(token_client, tall, spec="width-50", format="jpeg")
    assert response.status_code == 400
    message = response.json()["spec"][0]
    assert "would be 50x5000 px" in message
    assert "the largest side made on demand is 4000 px" in message
    assert url_of(token_client, tall, spec="width-40").json()["height"] == 4000
    assert url_of(token_client, tall, spec="max-50x4000").json()["width"] == 40


def test_a_page_asking_for_a_width_too_tall_gets_it_within_the_limit(client: Client, tall: Image) -> None:
    html = images.picture(tall, spec="width-50")
    assert "width-50" not in html
    assert ondemand.url_path(tall.pk, "max-50x4000", "jpeg") in html
    assert 'width="40" height="4000"' in html
    assert client.get(ondemand.url_path(tall.pk, "max-50x4000", "jpeg")).status_code == 200


def test_on_demand_renditions_stay_out_of_the_pages_srcset(
    client: Client, make_image: Callable[..., Image]
) -> None:

    image = make_image()
    client.get(ondemand.url_path(image.pk, "fill-480x320", "webp"))
    image = selectors.images_with_renditions().get(pk=image.pk)
    for source_set in selectors.source_sets(image):
        assert "480w" not in source_set.srcset


def test_reprocessing_drops_them_and_the_next_request_makes_them_again(
    client: Client, make_image: Callable[..., Image], commit: Any, renders: list[str]
) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-300", "webp")
    assert client.get(path).status_code == 200
    with commit():
        services.image_reprocess(images=[image])
    assert not image.renditions.filter(name="width-300").exists()
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 302
    assert renders.count("on-demand width-300") == 2


@pytest.fixture
def reprocessed(
    client: Client, make_image: Callable[..., Image], django_capture_on_commit_callbacks: Any
) -> Callable[[str], tuple[Image, str, Callable[[], None]]]:
    """An image with a rendition made on demand, queued for processing again
    (then in the status asked for), its run yet to come: the path of that
    rendition, and what runs it."""

    def make(status: str) -> tuple[Image, str, Callable[[], None]]:
        image = make_image()
        path = ondemand.url_path(image.pk, "width-300", "webp")
        assert client.get(path).status_code == 200
        with django_capture_on_commit_callbacks(execute=False) as queued:
            services.image_reprocess(images=[image])
        Image.objects.filter(pk=image.pk).update(status=status)
        image.refresh_from_db()
        assert image.renditions.filter(name="width-300").exists()  # until the run ends

        def run() -> None:
            with django_capture_on_commit_callbacks(execute=True):
                for callback in queued:
                    callback()

        return image, path, run

    return make


@pytest.mark.parametrize("status", [Image.Status.PENDING, Image.Status.PROCESSING])
def test_an_image_being_processed_again_is_202_not_a_redirect_to_what_the_run_before_made(
    client: Client, reprocessed: Callable[..., Any], settings: Any, status: str, renders: list[str]
) -> None:
    """Its renditions on demand are of the run before (of an original since
    replaced, perhaps) until this run ends and deletes them."""
    settings.IMAGE_ONDEMAND_WAIT_SECONDS = 0
    _, path, _ = reprocessed(status)
    response = client.get(path)
    assert response.status_code == 202, response.content
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert "still being processed" in response.content.decode()
    assert renders == ["on-demand width-300"]  # the first request's, before


def test_a_request_waiting_for_an_image_processed_again_gets_a_rendition_of_the_new_run(
    client: Client, reprocessed: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, renders: list[str]
) -> None:
    image, path, run = reprocessed(Image.Status.PROCESSING)
    before = image.renditions.get(name="width-300")
    monkeypatch.setattr(ondemand, "_pause", lambda seconds: run())  # the run ends while it waits
    response = client.get(path)
    assert response.status_code == 200, response.content
    [made] = image.renditions.filter(name="width-300")
    assert made.pk != before.pk
    assert renders == ["on-demand width-300"] * 2
    assert client.get(path)["Location"] == made.url


def test_a_rendition_cut_while_its_image_was_processed_again_is_not_kept(
    make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, commit: Any, media_files: Any
) -> None:
    """Cut from what the image was before the run that ended meanwhile, which
    deleted the renditions on demand of its time: recorded now, it would be
    served as of the image the run made."""
    image = make_image()
    real_render = ondemand._render

    def render_while_reprocessed(image: Image, spec: ondemand.Spec, fmt: str) -> processing.Output:
        output = real_render(image, spec, fmt)
        with commit():
            services.image_reprocess(images=[image])
        assert Image.objects.get(pk=image.pk).status == Image.Status.READY
        return output

    monkeypatch.setattr(ondemand, "_render", render_while_reprocessed)
    with pytest.raises(ondemand.NotReady, match="processed again"):
        ondemand.rendition_get_or_make(image_id=image.pk, spec=ondemand.Spec("width", 300), fmt="webp")
    assert not image.renditions.filter(name="width-300").exists()
    assert media_files() == {image.file.name, *image.renditions.values_list("storage_key", flat=True)}


def test_the_api_presents_none_of_them_as_made_while_the_image_is_processed_again(
    token_client: APIClient, reprocessed: Callable[..., Any], settings: Any
) -> None:
    image, _, run = reprocessed(Image.Status.PROCESSING)
    settings.IMAGE_ONDEMAND_MAX_PER_IMAGE = 1  # the one made before is gone once the run ends
    body = url_of(token_client, image, spec="width-300", format="webp").json()
    assert body["made"] is False
    assert url_of(token_client, image, spec="width-301", format="webp").status_code == 200
    detail = token_client.get(f"/api/v1/images/{image.pk}/").json()
    assert [r for r in detail["renditions"] if r["name"] == "width-300"] == []
    assert detail["renditions"]  # the preset's, as before
    run()
    assert url_of(token_client, image, spec="width-300", format="webp").json()["made"] is False


def test_the_admin_lists_none_of_them_as_made_while_the_image_is_processed_again(
    admin_client: Client, reprocessed: Callable[..., Any]
) -> None:
    image, path, _ = reprocessed(Image.Status.PENDING)
    page = admin_client.get(f"/admin/uploads/image/{image.pk}/change/").content.decode()
    assert "0 made so far" in page
    assert path not in page


@pytest.mark.parametrize("how", REPLACING)
def test_an_image_whose_file_is_replaced_serves_nothing_of_the_old_picture_until_its_run_ends(
    client: Client,
    token_client: APIClient,
    make_image: Callable[..., Image],
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    media_files: Any,
    renders: list[str],
    how: str,
) -> None:
    settings.IMAGE_ONDEMAND_WAIT_SECONDS = 0
    image = make_image(corpus.photo_jpeg(1200, 900))
    path = ondemand.url_path(image.pk, "width-300", "webp")
    assert client.get(path).status_code == 200
    old = set(image.renditions.values_list("storage_key", flat=True))
    old_original = image.file.name
    with django_capture_on_commit_callbacks(execute=False) as queued:
        replace_file(Image.objects.get(pk=image.pk), corpus.photo_jpeg(600, 800, seed=3), how)
    image.refresh_from_db()
    assert image.status == Image.Status.PENDING
    assert (image.placeholder, image.dominant_color) == ("", "")  # both of the old picture
    response = client.get(path)
    assert response.status_code == 202, response.content
    assert "still being processed" in response.content.decode()
    assert client.get(ondemand.url_path(image.pk, "width-200", "webp")).status_code == 202
    assert renders == ["on-demand width-300"]  # nothing cut meanwhile, of either original
    detail = token_client.get(f"/api/v1/images/{image.pk}/").json()
    assert (detail["status"], detail["src"], detail["renditions"]) == ("pending", None, [])
    assert url_of(token_client, image, spec="width-300", format="webp").json()["made"] is False
    page = images.picture(selectors.images_with_renditions().get(pk=image.pk))
    assert not [key for key in old if key in page]
    assert "Image processing" in page
    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    assert (image.width, image.height) == (600, 800)
    response = client.get(path)
    assert response.status_code == 200  # made now, of the new original
    assert decoded(response.content).size == (300, 400)
    # The old renditions are kept for the redirects cached to them, then swept.
    assert old <= set(ReplacedObject.objects.values_list("key", flat=True))
    assert old_original not in media_files()


def test_a_save_that_keeps_the_file_keeps_the_image_ready_and_its_renditions(
    client: Client, make_image: Callable[..., Image], django_capture_on_commit_callbacks: Any
) -> None:
    image = make_image()
    path = ondemand.url_path(image.pk, "width-300", "webp")
    assert client.get(path).status_code == 200
    before = list(image.renditions.values_list("pk", "storage_key"))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        edited = Image.objects.get(pk=image.pk)
        edited.title = "A new title"
        edited.save()
    assert queued == []
    image.refresh_from_db()
    assert (image.status, image.title) == (Image.Status.READY, "A new title")
    assert image.placeholder
    assert list(image.renditions.values_list("pk", "storage_key")) == before
    assert client.get(path).status_code == 302
    assert not ReplacedObject.objects.exists()


# --- Once, however many ask -----------------------------------------------------
# Concurrent requests on a real fleet (PostgreSQL, Redis, S3, several gunicorn
# workers) are at the end of this file; the in-memory SQLite of unit tests
# locks whole tables between threads.


def test_a_maker_that_lost_the_race_keeps_the_winners_row_and_leaves_no_orphan(
    make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, media_files: Any, renders: list[str]
) -> None:
    """Web processes without a shared cache cannot see each other's claim:
    both make the rendition, the first to record it wins, the other's object
    goes (unless it is the very same object)."""
    image = make_image()
    spec = ondemand.Spec("fill", 300, 200)
    monkeypatch.setattr(cache, "add", lambda *args, **kwargs: True)
    real_render = ondemand._render
    rival: list[ondemand.Made] = []
    started: list[bool] = []

    def render_then_lose(image: Image, spec: ondemand.Spec, fmt: str) -> processing.Output:
        output = real_render(image, spec, fmt)
        if not started:  # another process records the same rendition meanwhile, from other bytes
            started.append(True)
            with monkeypatch.context() as patch:
                patch.setattr(storage, "rendition_key", lambda data, ext: f"renditions/zz/rival.{ext}")
                rival.append(ondemand.rendition_get_or_make(image_id=image.pk, spec=spec, fmt=fmt))
        return output

    monkeypatch.setattr(ondemand, "_render", render_then_lose)
    made = ondemand.rendition_get_or_make(image_id=image.pk, spec=spec, fmt="webp")
    assert made.rendition.pk == rival[0].rendition.pk
    assert made.rendition.storage_key == "renditions/zz/rival.webp"
    assert made.data is None  # the winner's object is served, not this request's bytes
    assert Rendition.objects.filter(image=image, name="fill-300x200").count() == 1
    assert renders == ["on-demand fill-300x200"] * 2
    referenced = {image.file.name, *image.renditions.values_list("storage_key", flat=True)}
    assert media_files() == referenced


def test_a_request_finding_the_rendition_being_made_waits_for_it_instead_of_making_it_again(
    make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, renders: list[str]
) -> None:
    image = make_image()
    spec = ondemand.Spec("width", 300)
    cache.set(f"ondemand:{image.pk}:width-300:webp", "another request", 60)
    pauses: list[float] = []

    def the_other_request_finishes(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:  # it records its rendition while this one waits
            output = ondemand._render(image, spec, "webp")
            key = storage.put(storage.rendition_key(output.data, output.extension), output.data)
            ondemand._record(
                image_id=image.pk,
                spec=spec,
                fmt="webp",
                output=output,
                key=key,
                cut_around=None,
                processed_at=image.processed_at,
            )

    monkeypatch.setattr(ondemand, "_pause", the_other_request_finishes)
    made = ondemand.rendition_get_or_make(image_id=image.pk, spec=spec, fmt="webp")
    assert made.data is None  # found, not made
    assert made.rendition.name == "width-300"
    assert len(pauses) == 3
    assert renders == ["on-demand width-300"]  # the other request's, once


def test_a_request_that_waited_for_a_make_that_failed_for_good_is_refused_without_decoding_again(
    client: Client, make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that came while the first one decoded wait for it: when it
    finds the image cannot give the rendition, they are refused as it was,
    not each in turn handed the claim to decode the original again."""
    image = make_image()
    claim = f"ondemand:{image.pk}:width-300:webp"
    cache.set(claim, "another request", 60)
    calls: list[str] = []

    def refused(data: bytes, preset: processing.Preset, **kwargs: Any) -> processing.Result:
        calls.append(preset.name)
        raise processing.ProcessingError("encoding error 5: Image size exceeds WebP limit of 16383 pixels")

    monkeypatch.setattr(sandbox, "process", refused)
    pauses: list[float] = []

    def the_other_request_fails(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:  # it finds the rendition cannot be made, and lets its claim go
            with pytest.raises(ondemand.Unmakeable):
                ondemand._make(image, ondemand.Spec("width", 300), "webp")
            cache.delete(claim)

    monkeypatch.setattr(ondemand, "_pause", the_other_request_fails)
    response = client.get(ondemand.url_path(image.pk, "width-300", "webp"))
    assert response.status_code == 422, response.content
    assert f"width-300.webp cannot be made of image {image.pk}" in response.content.decode()
    assert calls == ["on-demand width-300"]  # the other request's decode alone
    assert cache.get(claim) is None


def test_a_request_that_waited_for_a_make_that_gave_up_answers_503_rather_than_making_it_past_its_time(
    client: Client, make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, renders: list[str]
) -> None:
    """The request it waited for ran out of time (or memory) and let its claim
    go with no rendition: made now, on top of the time already waited, it
    would hold its web worker past the server's timeout and be killed."""
    image = make_image()
    claim = f"ondemand:{image.pk}:width-300:webp"
    cache.set(claim, "another request", 60)
    pauses: list[float] = []

    def the_other_request_gives_up(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            cache.delete(claim)

    monkeypatch.setattr(ondemand, "_pause", the_other_request_gives_up)
    path = ondemand.url_path(image.pk, "width-300", "webp")
    response = client.get(path)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "10"
    assert "try again shortly" in response.content.decode()
    assert renders == []
    assert not image.renditions.filter(name="width-300").exists()
    assert cache.get(claim) is None  # the next request makes it
    assert client.get(path).status_code == 200
    assert renders == ["on-demand width-300"]


def test_a_claim_is_held_and_waited_for_the_time_limit_and_the_margin_of_the_settings(
    make_image: Callable[..., Image], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """What the settings check against the web server's timeout is what a
    request waits: the time limit and the claim margin they set."""
    settings.IMAGE_ONDEMAND_TIME_LIMIT_SECONDS = 7
    settings.IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS = 3
    image = make_image()
    held: list[float] = []
    real_add = cache.add

    def add(key: str, value: Any, timeout: float, **kwargs: Any) -> bool:
        held.append(timeout)
        return bool(real_add(key, value, timeout=timeout, **kwargs))

    monkeypatch.setattr(cache, "add", add)
    ondemand.rendition_get_or_make(image_id=image.pk, spec=ondemand.Spec("width", 300), fmt="webp")
    assert held == [10]

    cache.set(f"ondemand:{image.pk}:width-200:webp", "another request", 60)
    now = [0.0]
    monkeypatch.setattr(ondemand, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0])}))

    def waits(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(ondemand, "_pause", waits)
    with pytest.raises(ondemand.Busy, match="still being made"):
        ondemand.rendition_get_or_make(image_id=image.pk, spec=ondemand.Spec("width", 200), fmt="webp")
    assert 10 < now[0] <= 10.5


# --- The API hands out the URLs -------------------------------------------------


def url_of(client: APIClient, image: Image, **query: str) -> Any:
    return client.get(f"/api/v1/images/{image.pk}/url/", query)


def test_the_api_hands_a_signed_url_to_a_permitted_caller(
    token_client: APIClient, make_image: Callable[..., Image], client: Client
) -> None:
    image = make_image()
    response = url_of(token_client, image, spec="fill-480x320", format="webp")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {
        "url": "http://testserver" + ondemand.url_path(image.pk, "fill-480x320", "webp"),
        "spec": "fill-480x320",
        "format": "webp",
        "width": 480,
        "height": 320,
        "made": False,
    }
    assert client.get(body["url"].removeprefix("http://testserver")).status_code == 200
    assert url_of(token_client, image, spec="fill-480x320", format="webp").json()["made"] is True


def test_no_shared_cache_keeps_a_signed_url_handed_to_a_permitted_caller(
    token_client: APIClient, staff: APIClient, make_image: Callable[..., Image]
) -> None:
    """Only permitted callers are handed signed URLs: a proxy cache that kept
    one answer would hand the URL (and the power to make renditions) to
    anyone asking the same address."""
    image = make_image()
    for caller in (token_client, staff):
        response = url_of(caller, image, spec="width-100")
        assert response.status_code == 200, response.content
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, response["Cache-Control"]
        varies = {v.strip().lower() for v in response["Vary"].split(",")}
        assert {"authorization", "cookie"} <= varies, response["Vary"]


def test_the_api_spells_the_format_and_defaults_to_webp(
    staff: APIClient, make_image: Callable[..., Image], settings: Any
) -> None:
    image = make_image()
    assert url_of(staff, image, spec="width-300", format="jpg").json()["format"] == "jpeg"
    assert url_of(staff, image, spec="width-300").json()["format"] == "webp"
    assert url_of(staff, image, spec="width-3000").json()["width"] == 1200  # not upscaled
    settings.IMAGE_ONDEMAND_FORMATS = ["png", "webp"]
    assert url_of(staff, image, spec="width-300").json()["format"] == "webp"  # wherever it is listed


def test_without_webp_among_the_formats_the_api_defaults_to_the_first_one_made(
    staff: APIClient, make_image: Callable[..., Image], settings: Any
) -> None:
    # A caller that names no format is not refused for one it never asked for.
    image = make_image()
    settings.IMAGE_ONDEMAND_FORMATS = ["JPEG", "png"]
    response = url_of(staff, image, spec="width-300")
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "jpeg"


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"spec": "fill-480"}, "spec", "use fill-WxH"),
        ({"spec": "fill-5000x10"}, "spec", "the largest size made on demand is 4000 px"),
        ({"spec": "width-10", "format": "gif"}, "format", "made as webp, jpeg, avif, png"),
        ({}, "spec", "required"),
    ],
)
def test_the_api_refuses_sizes_outside_the_limits_saying_why(
    token_client: APIClient, make_image: Callable[..., Image], query: dict[str, str], field: str, words: str
) -> None:
    response = url_of(token_client, make_image(), **query)
    assert response.status_code == 400
    assert words in response.json()[field][0]


def test_the_api_says_when_the_image_has_all_it_may_have(
    token_client: APIClient, make_image: Callable[..., Image], settings: Any, client: Client
) -> None:
    settings.IMAGE_ONDEMAND_MAX_PER_IMAGE = 1
    image = make_image()
    made = url_of(token_client, image, spec="width-100").json()["url"]
    client.get(made.removeprefix("http://testserver"))
    assert url_of(token_client, image, spec="width-100").status_code == 200  # that one is made
    for other in ({"spec": "width-101"}, {"spec": "width-100", "format": "jpeg"}):  # a format is one too
        response = url_of(token_client, image, **other)
        assert response.status_code == 400
        assert "the most one image may have" in response.json()["spec"][0]


def test_no_url_is_signed_for_an_image_that_failed(
    token_client: APIClient, make_image: Callable[..., Image]
) -> None:
    image = make_image()
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="Truncated file")
    response = url_of(token_client, image, spec="width-100")
    assert response.status_code == 400
    assert (
        response.json()["detail"]
        == f"Image {image.pk} failed to process; reprocess it before asking for renditions."
    )


def url_operation(client: APIClient) -> Any:
    return client.get("/api/schema/", {"format": "json"}).json()["paths"]["/api/v1/images/{id}/url/"]["get"]


def test_the_schema_offers_the_formats_of_the_settings(visitor: APIClient, settings: Any) -> None:
    def offered() -> list[str]:
        [parameter] = [p for p in url_operation(visitor)["parameters"] if p["name"] == "format"]
        return list(parameter["schema"]["enum"])

    assert offered() == ["avif", "jpeg", "png", "webp"]
    settings.IMAGE_ONDEMAND_FORMATS = ["JPEG", "png"]
    assert offered() == ["jpeg", "png"]


def test_the_schema_describes_the_refusal_of_an_image_that_failed(
    visitor: APIClient, token_client: APIClient, make_image: Callable[..., Image]
) -> None:
    documented = url_operation(visitor)["responses"]["400"]
    component = documented["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = visitor.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"][component][
        "properties"
    ]
    assert properties["detail"]["type"] == "string"
    assert properties["spec"]["type"] == properties["format"]["type"] == "array"
    assert "failed" in documented["description"]
    image = make_image()
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="Truncated file")
    refused = url_of(token_client, image, spec="width-100")
    assert refused.status_code == 400
    assert set(refused.json()) <= set(properties)


def test_signed_urls_are_for_authenticated_callers_with_the_view_permission(
    visitor: APIClient, outsider: APIClient, make_image: Callable[..., Image]
) -> None:
    image = make_image()
    assert url_of(visitor, image, spec="width-100").status_code == 401
    response = url_of(outsider, image, spec="width-100")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Signed rendition URLs are for callers with the view or the change permission on images."
    )


def test_a_caller_who_may_change_images_gets_signed_urls_as_in_the_admin(
    make_image: Callable[..., Image],
) -> None:
    # The admin's change page, which such a caller may open, asks for them.
    user = UserFactory(username="editor")
    user.user_permissions.set(Permission.objects.filter(codename="change_image"))
    client = APIClient()
    client.force_authenticate(user)
    response = url_of(client, make_image(), spec="width-100")
    assert response.status_code == 200, response.content


def test_an_unknown_image_is_404_in_the_api(token_client: APIClient) -> None:
    assert token_client.get("/api/v1/images/999999/url/", {"spec": "width-10"}).status_code == 404
    assert token_client.get("/api/v1/images/abc/url/", {"spec": "width-10"}).status_code == 404


# --- On a fleet -------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


@pytest.mark.integration
@pytest.mark.slow
def test_concurrent_first_requests_on_a_fleet_make_it_once_into_the_bucket(
    servers: Servers, tmp_path: Path
) -> None:
    with fleet(servers, tmp_path) as portal:
        portal.start_web(workers=4)
        portal.start_worker()
        uploaded = portal.upload(corpus.photo_jpeg(2400, 1600), "wide.jpg")
        assert uploaded.status_code == 201, uploaded.text
        image_id = uploaded.json()["id"]
        [image] = portal.wait_for_images([image_id])
        assert image["status"] == "ready", image["error"]
        query = {"spec": "fill-640x480", "format": "webp"}
        url = portal.api("GET", f"/api/v1/images/{image_id}/url/", params=query).json()["url"]
        assert url.startswith(portal.web_url + "/img/")

        start = threading.Barrier(8)

        def ask(_: int) -> requests.Response:
            start.wait(timeout=30)
            return requests.get(url, allow_redirects=False, timeout=60)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(8)))
        assert sorted(a.status_code for a in answers) == [200] + [302] * 7, [a.text for a in answers]
        [made] = [a for a in answers if a.status_code == 200]
        assert made.headers["Content-Type"] == "image/webp"
        log = (tmp_path / "gunicorn.log").read_text()
        assert log.count("rendition=fill-640x480.webp") == 1, log[-3000:]

        renditions = portal.api("GET", f"/api/v1/images/{image_id}/").json()["renditions"]
        [rendition] = [r for r in renditions if r["name"] == "fill-640x480"]
        assert (rendition["format"], rendition["width"], rendition["height"]) == ("webp", 640, 480)
        assert {a.headers["Location"] for a in answers if a.status_code == 302} == {rendition["url"]}
        key = rendition["url"].split(f"/{portal.bucket}/", 1)[1]
        head = servers.s3.client().head_object(Bucket=portal.bucket, Key=key)
        assert head["ContentType"] == "image/webp"
        assert head["CacheControl"] == storage.IMMUTABLE
        assert requests.get(rendition["url"], timeout=30).content == made.content

        assert portal.api("DELETE", f"/api/v1/images/{image_id}/").status_code == 204
        assert portal.bucket_keys() == set()


def test_a_rendition_on_demand_is_decoded_under_the_limits_of_the_settings(
    client: Client, make_image: Callable[..., Image], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoding child's memory ceiling, time limit and pixel limit (each
    proven in tests/uploads/test_poison.py) are the settings' for a rendition
    made on its first request too."""
    image = make_image()
    settings.IMAGE_MEMORY_LIMIT_MB = 321
    settings.IMAGE_ONDEMAND_TIME_LIMIT_SECONDS = 7
    settings.IMAGE_MAX_PIXELS = 12_345_678
    limits: list[dict[str, Any]] = []
    real = sandbox.process

    def spy(*args: Any, **kwargs: Any) -> processing.Result:
        limits.append({name: kwargs[name] for name in ("memory_limit_mb", "time_limit", "max_pixels")})
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox, "process", spy)
    assert client.get(ondemand.url_path(image.pk, "width-100", "webp")).status_code == 200
    assert limits == [{"memory_limit_mb": 321, "time_limit": 7, "max_pixels": 12_345_678}]
