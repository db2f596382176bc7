"""Photos as phones send them: HEIC (and AVIF) accepted on every upload path,
turned upright, converted to sRGB, stripped of their metadata and published
in the web formats."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from PIL import Image as PILImage
from PIL import ImageCms
from rest_framework.test import APIClient

from tests.uploads import corpus
from uploads import processing, storage
from uploads.models import Image

RGB = tuple[int, int, int]
WEB = processing.DEFAULT_PRESETS["web"]
# Lossy 4:2:0 codecs at both ends: flat colours come back within a few levels.
TOLERANCE = 10


def p3_to_srgb(color: RGB) -> RGB:
    """The reference conversion, by LittleCMS straight from the profile's bytes."""
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(corpus.display_p3_profile())),
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
    )
    converted = ImageCms.applyTransform(PILImage.new("RGB", (1, 1), color), transform)
    assert converted is not None
    pixel = converted.getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def close_to(actual: Any, expected: RGB, tolerance: int = TOLERANCE) -> bool:
    return all(abs(int(a) - int(e)) <= tolerance for a, e in zip(actual[:3], expected, strict=True))


def opened(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img


def quadrant_centres(size: tuple[int, int]) -> dict[str, tuple[int, int]]:
    w, h = size
    return {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }


EXPECTED_P3 = {
    "top_left": corpus.TOP_LEFT,
    "top_right": corpus.TOP_RIGHT,
    "bottom_left": corpus.BOTTOM_LEFT,
    "bottom_right": corpus.BOTTOM_RIGHT,
}

# Anything of the upload's metadata that must not reach a public file.
PRIVATE_BYTES = (
    b"Exif",
    corpus.PHONE_MAKE.encode(),
    corpus.PHONE_SERIAL.encode(),
    b"Secret Photographer",
    b"xpacket",
    b"Display P3",
)


def assert_stripped(output: processing.Output) -> None:
    img = opened(output.data)
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"} & set(img.info), (
        output.name,
        img.info.keys(),
    )
    assert not img.getexif(), output.name
    for marker in PRIVATE_BYTES:
        assert marker not in output.data, (output.name, output.format, marker)


PHONE_PHOTOS = {"heic": corpus.heic_rotated_p3, "avif": corpus.avif_rotated_p3}


# --- Processing ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PHONE_PHOTOS))
def test_a_phone_photo_is_identified_from_its_header_with_its_upright_size(kind: str) -> None:
    info = processing.probe(PHONE_PHOTOS[kind](size=(96, 72)), max_pixels=1_000_000)
    assert info.format == {"heic": "HEIF", "avif": "AVIF"}[kind]
    # Stored 72 wide and 96 high, shown 96 wide once turned upright.
    assert (info.width, info.height) == (96, 72)


@pytest.mark.parametrize("kind", sorted(PHONE_PHOTOS))
def test_a_phone_photo_comes_out_upright_in_srgb_without_its_metadata(kind: str) -> None:
    result = processing.process(PHONE_PHOTOS[kind](size=(96, 72)), WEB)
    assert {(o.name, o.format) for o in result.outputs} == {
        ("w96", "webp"),
        ("w96", "jpeg"),
        ("thumb", "webp"),
        ("thumb", "jpeg"),
    }
    for output in result.outputs:
        assert_stripped(output)
    for output in (o for o in result.outputs if o.name == "w96"):
        img = opened(output.data)
        assert img.size == (96, 72)
        for corner, xy in quadrant_centres(img.size).items():
            expected = p3_to_srgb(EXPECTED_P3[corner])
            assert close_to(img.getpixel(xy), expected), (output.format, corner, img.getpixel(xy), expected)


def test_the_p3_conversion_is_visible_so_the_colour_check_can_fail() -> None:
    """The P3 red of the fixture is well away from the same numbers read as sRGB."""
    assert not close_to(p3_to_srgb(corpus.TOP_LEFT), corpus.TOP_LEFT)


@pytest.mark.parametrize("build", [corpus.heic_alpha, corpus.avif_alpha], ids=["heic", "avif"])
def test_alpha_is_kept_in_webp_and_flattened_onto_white_in_jpeg(build: Any) -> None:
    result = processing.process(build(size=(64, 48)), WEB)
    [webp] = [o for o in result.outputs if o.name == "w64" and o.format == "webp"]
    [jpeg] = [o for o in result.outputs if o.name == "w64" and o.format == "jpeg"]
    transparent_side, opaque_side = (8, 24), (56, 24)
    img = opened(webp.data)
    assert img.mode == "RGBA"
    assert img.getpixel(transparent_side)[3] == 0  # type: ignore[index]
    assert img.getpixel(opaque_side)[3] == 255  # type: ignore[index]
    assert close_to(img.getpixel(opaque_side), (0, 0, 255))
    flat = opened(jpeg.data)
    assert flat.mode == "RGB"
    assert close_to(flat.getpixel(transparent_side), (255, 255, 255))
    assert close_to(flat.getpixel(opaque_side), (0, 0, 255))


def test_the_pixel_limit_is_read_from_a_heic_header() -> None:
    with pytest.raises(processing.ImageRejected) as refused:
        processing.probe(corpus.heic_rotated_p3(size=(96, 72)), max_pixels=96 * 72 - 1)
    assert refused.value.code == "pixels"
    assert str(96 * 72 - 1) in refused.value.message


def _garbled_pixel_data(data: bytes) -> bytes:
    """The same file with the coded picture (the ``mdat`` box's payload)
    overwritten by noise: the container is intact, the pixels are not."""
    at = data.index(b"mdat") + 4
    payload = len(data) - at
    assert payload > 100, "mdat is expected last, holding the picture"
    return data[:at] + bytes((i * 151 + 7) % 256 for i in range(payload))


def test_a_heic_is_checked_without_decoding_and_a_garbled_one_fails_to_decode() -> None:
    garbled = _garbled_pixel_data(corpus.heic_rotated_p3(size=(640, 480)))
    # The header alone answers: the picture is not decoded to probe...
    info = processing.probe(garbled, max_pixels=1_000_000)
    assert (info.format, info.width, info.height) == ("HEIF", 640, 480)
    # ... but decoding it fails, with the reason.
    with pytest.raises(processing.ProcessingError, match="could not be decoded"):
        processing.process(garbled, WEB)


def test_of_several_pictures_in_a_heif_the_primary_one_is_published() -> None:
    data = corpus.heic_primary_second(size=(80, 60))
    info = processing.probe(data, max_pixels=1_000_000)
    assert (info.width, info.height, info.frames) == (80, 60, 2)
    [w80] = [o for o in processing.process(data, WEB).outputs if o.name == "w80" and o.format == "webp"]
    img = opened(w80.data)
    assert img.size == (80, 60)
    for corner, xy in quadrant_centres(img.size).items():
        assert close_to(img.getpixel(xy), EXPECTED_P3[corner]), corner


def test_importing_the_pipeline_alone_is_enough_to_read_heic() -> None:
    """Decoding processes (workers, the sandbox) import only uploads.processing:
    it registers the HEIF plugin itself. A fresh interpreter proves it, as
    the test process may have registered the plugin to make its samples."""
    script = (
        "import sys; from uploads import processing; "
        "info = processing.probe(sys.stdin.buffer.read(), max_pixels=10**6); "
        "print(info.format, info.width, info.height)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=corpus.heic_rotated_p3(size=(96, 72)),
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().split() == ["HEIF", "96", "72"]


def test_originals_of_phone_formats_have_their_own_type_and_extension() -> None:
    assert (processing.content_type("HEIF"), processing.extension("HEIF")) == ("image/heic", "heic")
    assert (processing.content_type("AVIF"), processing.extension("AVIF")) == ("image/avif", "avif")


# --- Every upload path ---------------------------------------------------------


def assert_ready_and_upright(image: Image, fmt: str) -> None:
    """Processed, the original kept under its format's extension, every
    rendition upright, in sRGB and without the phone's metadata."""
    image.refresh_from_db()
    assert image.status == Image.Status.READY, image.error
    assert image.format == fmt
    assert (image.width, image.height) == (96, 72)
    assert (image.file.name or "").endswith(f".{processing.extension(fmt)}")
    renditions = list(image.renditions.all())
    assert renditions
    for rendition in renditions:
        with storage.storage_for(rendition.storage_key).open(rendition.storage_key) as fh:
            data = fh.read()
        img = opened(data)
        assert (img.width, img.height) == (rendition.width, rendition.height)
        for marker in PRIVATE_BYTES:
            assert marker not in data, (rendition.name, marker)
        if rendition.name in {"thumb", "icon"}:
            continue
        centres = quadrant_centres(img.size)
        assert close_to(img.getpixel(centres["top_left"]), p3_to_srgb(corpus.TOP_LEFT)), rendition
        assert close_to(img.getpixel(centres["bottom_right"]), p3_to_srgb(corpus.BOTTOM_RIGHT)), rendition


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "name", "fmt"), [("heic", "IMG_0001.HEIC", "HEIF"), ("avif", "pic.avif", "AVIF")]
)
def test_the_api_takes_phone_photos(
    token_client: APIClient, commit: Any, kind: str, name: str, fmt: str
) -> None:
    with commit():
        response = token_client.post(
            "/api/v1/images/",
            {"file": SimpleUploadedFile(name, PHONE_PHOTOS[kind](size=(96, 72)))},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    body = token_client.get(f"/api/v1/images/{response.json()['id']}/").json()
    assert (body["format"], body["status"], body["width"], body["height"]) == (fmt, "ready", 96, 72)
    assert_ready_and_upright(Image.objects.get(pk=body["id"]), fmt)


@pytest.mark.django_db
def test_the_course_upload_endpoint_takes_a_heic_with_the_supplier_preset(
    client: Client, commit: Any
) -> None:
    with commit():
        response = client.post("/upload/", {"file": SimpleUploadedFile("010.heic", corpus.heic_rotated_p3())})
    assert response.status_code == 201, response.content
    image = Image.objects.get()
    assert image.preset == "supplier"
    assert_ready_and_upright(image, "HEIF")
    assert [(r.name, r.format) for r in image.renditions.all()] == [("fit", "jpeg")]


@pytest.mark.django_db
def test_import_images_takes_heic_and_avif_files(tmp_path: Path, commit: Any) -> None:
    (tmp_path / "IMG_0001.HEIC").write_bytes(corpus.heic_rotated_p3())
    (tmp_path / "IMG_0002.avif").write_bytes(corpus.avif_rotated_p3())
    out = io.StringIO()
    with commit():
        call_command("import_images", str(tmp_path), stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("2 images imported, 0 already there, 0 files skipped")
    assert_ready_and_upright(Image.objects.get(original_name="IMG_0001.HEIC"), "HEIF")
    assert_ready_and_upright(Image.objects.get(original_name="IMG_0002.avif"), "AVIF")


@pytest.mark.django_db
def test_the_admin_file_picker_offers_heic_and_avif_files(staff_user: Any) -> None:
    client = Client()
    client.force_login(staff_user)
    page = client.get("/admin/uploads/image/upload/").content.decode()
    [accept] = re.findall(r'<input type="file"[^>]* accept="([^"]*)"', page)
    assert {".heic", ".heif", ".avif"} <= set(accept.split(","))
    assert "HEIC/HEIF or AVIF" in page


@pytest.mark.django_db
def test_the_admin_upload_takes_a_heic(staff_user: Any, commit: Any) -> None:
    client = Client()
    client.force_login(staff_user)
    with commit():
        response = client.post(
            "/admin/uploads/image/upload/",
            {"files": [SimpleUploadedFile("IMG_0003.HEIC", corpus.heic_rotated_p3())], "preset": "web"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_ready_and_upright(Image.objects.get(), "HEIF")
