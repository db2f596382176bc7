"""The images API, fed the odd and hostile corpus: every file is either
processed correctly or refused clearly, never a 5xx, nothing left behind."""

from __future__ import annotations

import hashlib
import types
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from PIL import Image as PILImage
from rest_framework.test import APIClient

from core import api, limits
from tests.factories import ProductFactory
from tests.uploads import corpus
from uploads import services, storage
from uploads.models import Image, Rendition, ReplacedObject

pytestmark = pytest.mark.django_db

URL = "/api/v1/images/"


def upload(client: APIClient, data: bytes, name: str = "photo.jpg", **fields: str) -> Any:
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


@pytest.fixture
def uploaded(token_client: APIClient, commit: Any) -> Any:
    """Upload through the API and let the commit run processing."""

    def run(data: bytes, name: str = "photo.jpg", **fields: str) -> Any:
        with commit():
            return upload(token_client, data, name, **fields)

    return run


# Words a refusal's message must contain, per ImageRejected code.
REFUSAL_WORDS = {
    "empty": "empty",
    "format": "allowed formats are",
    "pixels": "the limit is",
    "chunks": "the limit is 10,000",
    "corrupt": "is damaged or uses a variant that cannot be read",
}


@pytest.mark.parametrize("sample", corpus.SAMPLES, ids=lambda s: s.name)
def test_every_corpus_file_is_processed_or_refused_clearly(
    uploaded: Any, sample: corpus.Sample, media_files: Any
) -> None:
    response = uploaded(sample.build(), sample.filename)
    if sample.expect == "rejected":
        assert response.status_code == 400, response.content
        [message] = response.json()["file"]
        assert REFUSAL_WORDS[str(sample.code)] in message, message
        assert Image.objects.count() == 0
        assert media_files() == set()
        return
    assert response.status_code == 201, response.content
    image = Image.objects.get()
    if sample.expect == "error":
        assert image.status == Image.Status.FAILED
        assert "could not be decoded" in image.error
        assert image.file.storage.exists(image.file.name)  # the original is kept for staff
        assert image.renditions.count() == 0
    else:
        assert sample.expect == "ok"
        assert image.status == Image.Status.READY, image.error
        assert image.renditions.count() > 0
        stored = media_files()
        assert all(r.storage_key in stored for r in image.renditions.all())


def test_a_jpeg_with_a_preview_is_stored_and_listed_as_a_jpeg(uploaded: Any, token_client: APIClient) -> None:
    response = uploaded(corpus.jpeg_with_preview(), "camera.jpg")
    assert response.status_code == 201, response.content
    image = Image.objects.get()
    assert image.status == Image.Status.READY, image.error
    assert image.format == "JPEG"
    assert str(image.file.name).endswith(".jpg")
    listed = token_client.get(URL, {"format": "jpeg"}).json()
    assert [item["id"] for item in listed["results"]] == [image.id]


def test_a_refusal_names_the_limit_it_broke(token_client: APIClient, settings: Any) -> None:
    settings.IMAGE_MAX_PIXELS = 1000
    response = upload(token_client, corpus.jpeg(corpus.quadrants(80, 60)))
    assert response.status_code == 400
    assert "1000" in response.json()["file"][0]


def test_an_upload_over_the_byte_limit_gets_413_naming_the_limit(
    token_client: APIClient, settings: Any, media_files: Any
) -> None:
    settings.IMAGE_MAX_BYTES = 2000
    response = upload(token_client, corpus.photo_jpeg(400, 300))
    assert response.status_code == 413
    assert "2,000 bytes" in response.json()["detail"]
    assert Image.objects.count() == 0
    assert media_files() == set()


@pytest.mark.parametrize("kept", ["in memory", "in a temporary file"])
def test_an_upload_is_hashed_as_it_arrives_not_again_once_read(
    token_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch, kept: str
) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10**8 if kept == "in memory" else 0
    data = corpus.photo_jpeg(400, 300)
    hashed: list[int] = []

    def sha256(content: bytes = b"") -> Any:
        hashed.append(len(content))
        return hashlib.sha256(content)

    monkeypatch.setattr(services, "hashlib", types.SimpleNamespace(sha256=sha256))
    response = upload(token_client, data)
    assert response.status_code == 201, response.content
    assert hashed == []
    image = Image.objects.get()
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.file.name == storage.original_key(image.sha256, "JPEG")


def _parsed(data: bytes, settings: Any, *, in_memory: bool) -> Any:
    """The file a multipart request carrying ``data`` is parsed into."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10**8 if in_memory else 0
    request = RequestFactory().post("/", {"file": SimpleUploadedFile("photo.jpg", data)})
    return request.FILES["file"]


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_received_digest_is_given_only_for_the_file_as_its_handler_left_it(
    settings: Any, in_memory: bool
) -> None:
    data = corpus.photo_jpeg(200, 150)
    digest = limits.ReceivedDigest(hashlib.sha256(data).hexdigest(), len(data))
    assert limits.received_digest(_parsed(data, settings, in_memory=in_memory)) == digest

    taken = _parsed(data, settings, in_memory=in_memory)
    assert limits.received_digest(taken) == digest
    assert limits.received_digest(taken) is None  # given once

    read = _parsed(data, settings, in_memory=in_memory)
    read.read(10)
    assert limits.received_digest(read) is None

    written = _parsed(data, settings, in_memory=in_memory)
    written.seek(0, 2)
    written.write(b"more")
    written.seek(0)
    assert limits.received_digest(written) is None

    assert limits.received_digest(SimpleUploadedFile("photo.jpg", data)) is None
    assert limits.received_digest(data) is None


def test_an_upload_changed_after_it_arrived_is_hashed_as_stored(settings: Any, media_files: Any) -> None:
    data = corpus.photo_jpeg(200, 150)
    other = corpus.photo_jpeg(200, 150, seed=7)
    assert len(other) != len(data) or other != data
    changed = _parsed(data, settings, in_memory=False)
    changed.seek(0)
    changed.truncate()
    changed.write(other)
    changed.seek(0)
    image = services.image_upload(file=changed, original_name="photo.jpg")
    assert image.sha256 == hashlib.sha256(other).hexdigest()
    assert storages["originals"].open(image.file.name).read() == other


def test_a_json_body_gets_415(token_client: APIClient) -> None:
    assert token_client.post(URL, {"file": "x"}, format="json").status_code == 415


def test_no_file_gets_400(token_client: APIClient) -> None:
    response = token_client.post(URL, {"title": "nothing"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_an_unknown_preset_gets_400(token_client: APIClient) -> None:
    response = upload(token_client, corpus.jpeg(), preset="poster")
    assert response.status_code == 400
    assert "preset" in response.json()


def test_a_visitor_cannot_upload(visitor: APIClient) -> None:
    assert upload(visitor, corpus.jpeg()).status_code == 401


def test_the_upload_answers_with_the_image_and_its_renditions(token_client: APIClient, uploaded: Any) -> None:
    response = uploaded(corpus.photo_jpeg(2000, 1500), "summer.jpg", title="Summer", alt="A field")
    assert response.status_code == 201
    assert response.json()["status"] == "pending"  # answered before processing
    image_id = response.json()["id"]
    detail = token_client.get(f"{URL}{image_id}/").json()
    assert detail["status"] == "ready"
    assert (detail["title"], detail["alt"], detail["original_name"]) == ("Summer", "A field", "summer.jpg")
    assert (detail["width"], detail["height"], detail["format"]) == (2000, 1500, "JPEG")
    names = {(r["name"], r["format"]) for r in detail["renditions"]}
    assert names == {(f"w{w}", f) for w in (320, 640, 1024, 1600) for f in ("webp", "jpeg")} | {
        ("thumb", "webp"),
        ("thumb", "jpeg"),
    }
    w640 = next(r for r in detail["renditions"] if r["name"] == "w640" and r["format"] == "jpeg")
    assert (w640["width"], w640["height"]) == (640, 480)
    assert w640["url"].startswith("/media/renditions/")
    assert detail["srcset"].count("w,") == 3
    assert detail["srcset"].endswith("1600w")
    assert detail["placeholder"]
    assert detail["dominant_color"].startswith("#")


def test_the_rendition_files_are_what_the_rows_say(uploaded: Any, settings: Any) -> None:
    uploaded(corpus.photo_jpeg(1200, 800), "a.jpg")
    for rendition in Rendition.objects.all():
        with PILImage.open(f"{settings.MEDIA_ROOT}/{rendition.storage_key}") as img:
            assert img.size == (rendition.width, rendition.height)
            assert (img.format or "").lower() == rendition.format
        assert rendition.bytes == (settings.MEDIA_ROOT / rendition.storage_key).stat().st_size


def test_the_users_file_name_never_becomes_a_path(uploaded: Any, media_files: Any) -> None:
    uploaded(corpus.jpeg(), "../../../etc/passwd.jpg")
    image = Image.objects.get()
    assert image.original_name == "passwd.jpg"
    assert image.file.name == f"originals/{image.sha256[:2]}/{image.sha256}.jpg"
    assert all(path.startswith(("originals/", "renditions/")) for path in media_files())


def test_reading_images_asks_the_storage_nothing(
    uploaded: Any, visitor: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for response in (uploaded(corpus.jpeg(), "a.jpg"), uploaded(corpus.png(), "b.png")):
        ProductFactory(image_id=response.json()["id"])  # shown by the catalog, so public

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("storage was asked at render time")

    for method in ("exists", "size", "open", "listdir"):
        monkeypatch.setattr(storages["default"], method, forbidden)
    response = visitor.get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_reprocess_makes_the_same_renditions_again_without_duplicates(
    token_client: APIClient, uploaded: Any, commit: Any, media_files: Any
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    before = set(Rendition.objects.values_list("name", "format", "storage_key"))
    files_before = media_files()
    with commit():
        response = token_client.post(f"{URL}{image_id}/reprocess/", {}, format="json")
    assert response.status_code == 202
    assert set(Rendition.objects.values_list("name", "format", "storage_key")) == before
    assert media_files() == files_before
    assert Image.objects.get().attempts == 2


def test_reprocessing_an_image_deleted_meanwhile_is_a_404_not_the_database_away(
    token_client: APIClient, uploaded: Any, commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    reprocess = services.image_reprocess

    def deleted_first(*, images: Any, preset: str | None = None) -> int:
        with commit():
            Image.objects.get(pk=image_id).delete()  # by another request, after this one found it
        return reprocess(images=images, preset=preset)

    monkeypatch.setattr(services, "image_reprocess", deleted_first)
    with commit():
        response = token_client.post(f"{URL}{image_id}/reprocess/", {}, format="json")
    assert response.status_code == 404, response.content
    assert not Image.objects.exists()


def test_reprocess_with_another_preset_replaces_the_renditions(
    token_client: APIClient, uploaded: Any, commit: Any, media_files: Any, sweep_after: Any
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    old_keys = set(Rendition.objects.values_list("storage_key", flat=True))
    with commit():
        token_client.post(f"{URL}{image_id}/reprocess/", {"preset": "icon"}, format="json")
    image = Image.objects.get()
    assert image.preset == "icon"
    assert list(image.renditions.values_list("name", "width", "height")) == [("icon", 128, 128)]
    # A cached redirect may still point at the old objects: they stay an hour.
    assert old_keys <= media_files()
    assert sweep_after(storage.REPLACED_KEEP_SECONDS) == sorted(old_keys)
    assert not old_keys & media_files()


def test_delete_removes_the_row_and_every_file(
    token_client: APIClient, uploaded: Any, commit: Any, media_files: Any
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    assert len(media_files()) > 1
    with commit():
        assert token_client.delete(f"{URL}{image_id}/").status_code == 204
    assert Image.objects.count() == 0
    assert Rendition.objects.count() == 0
    assert media_files() == set()


def test_deleting_an_image_deletes_at_once_the_objects_it_replaced(
    token_client: APIClient, uploaded: Any, commit: Any, media_files: Any
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    with commit():
        token_client.post(f"{URL}{image_id}/reprocess/", {"preset": "icon"}, format="json")
    kept = ReplacedObject.objects.filter(image_id=image_id)
    assert set(kept.values_list("key", flat=True)) <= media_files()
    assert kept.count() > 1
    with commit():
        assert token_client.delete(f"{URL}{image_id}/").status_code == 204
    assert media_files() == set()
    assert not ReplacedObject.objects.exists()


def test_the_same_bytes_uploaded_twice_share_files_until_both_are_gone(
    token_client: APIClient, uploaded: Any, commit: Any, media_files: Any
) -> None:
    data = corpus.photo_jpeg(700, 500)
    first = uploaded(data, "one.jpg").json()["id"]
    second = uploaded(data, "two.jpg").json()["id"]
    shared = media_files()
    with commit():
        token_client.delete(f"{URL}{first}/")
    assert media_files() == shared
    with commit():
        token_client.delete(f"{URL}{second}/")
    assert media_files() == set()


def _scan_zeroed() -> bytes:
    data = corpus.jpeg(corpus.quadrants(400, 300))
    return data[:200] + bytes(len(data) - 200)  # header intact, scan data zeroed


@pytest.mark.parametrize("build", [_scan_zeroed, corpus.truncated_jpeg], ids=["scan-zeroed", "truncated"])
def test_a_file_that_fails_to_decode_ends_failed_with_its_original_kept(
    uploaded: Any, token_client: APIClient, media_files: Any, build: Any
) -> None:
    data = build()
    response = uploaded(data, "broken.jpg")
    assert response.status_code == 201  # the header passed: accepted, then processed
    image = Image.objects.get()
    assert image.status == Image.Status.FAILED
    assert image.error == "The image could not be decoded: the JPEG file " + (
        "is truncated." if build is corpus.truncated_jpeg else "has damaged pixel data."
    )
    with image.file.storage.open(image.file.name, "rb") as kept:
        assert kept.read() == data  # the original is kept whole, for staff to see and reprocess
    assert image.renditions.count() == 0
    assert not {path for path in media_files() if path.startswith("renditions/")}
    detail = token_client.get(f"{URL}{image.pk}/").json()
    assert (detail["status"], detail["renditions"]) == ("failed", [])
    assert detail["error"] == image.error


# What a reader's own words bring along: codecs, offsets, buffers, errno,
# tracebacks, paths, chunk names, addresses.
READER_WORDS = (
    "codec",
    "position",
    "offset",
    "buffer",
    "unpack",
    "Errno",
    "Traceback",
    "0x",
    "b'",
    "/",
    "chunk",
    "broken",
    "not processed",
    "Invalid input",
    "Failed to",
    "decoder",
    "Missing",
)


@pytest.mark.parametrize("fmt", sorted(corpus.FUZZ_BASES))
def test_a_damaged_file_is_refused_or_fails_with_a_fixed_reason_not_its_readers_words(
    uploaded: Any, token_client: APIClient, fmt: str
) -> None:
    for variant, data in corpus.fuzzed(corpus.FUZZ_BASES[fmt](), seed=fmt):
        response = uploaded(data, f"fuzzed.{fmt}")
        if response.status_code == 400:
            [said] = response.json()["file"]
        else:
            assert response.status_code == 201, (variant, response.content)
            said = token_client.get(f"{URL}{response.json()['id']}/").json()["error"] or ""
            assert said == (Image.objects.get(pk=response.json()["id"]).error or "")
        assert not [words for words in READER_WORDS if words in said], (variant, said)


def test_the_readers_words_for_a_refused_or_failed_file_go_to_the_log_with_its_name_or_id(
    uploaded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="uploads.services")
    refused = uploaded(corpus.heic_rotated_p3()[:30], "cut.heic")
    assert refused.json() == {"file": ["The HEIF file is truncated."]}
    [logged] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert logged.startswith("upload of 'cut.heic' refused: The HEIF file is truncated. (")

    caplog.clear()
    failed = uploaded(corpus.truncated_jpeg(), "cut.jpg")
    image = Image.objects.get(pk=failed.json()["id"])
    assert image.error == "The image could not be decoded: the JPEG file is truncated."
    [logged] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert logged.startswith(f"image id={image.pk} failed: {image.error} (OSError: image file is truncated")


def test_an_image_that_failed_after_a_good_run_lists_none_of_that_runs_renditions(
    uploaded: Any, token_client: APIClient
) -> None:
    image_id = uploaded(corpus.photo_jpeg(900, 600)).json()["id"]
    assert token_client.get(f"{URL}{image_id}/").json()["renditions"]
    services.image_mark_failed(image_id=image_id, reason="The reprocess took too long.")
    assert Rendition.objects.filter(image_id=image_id).exists()  # kept, for a reprocess to replace
    detail = token_client.get(f"{URL}{image_id}/").json()
    (listed,) = token_client.get(URL).json()["results"]
    for shown in (detail, listed):
        assert (shown["status"], shown["renditions"], shown["src"]) == ("failed", [], None)


def test_images_can_be_filtered_by_format_with_counts_kept_apart(
    token_client: APIClient, uploaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "LARGE_COUNT", 1)  # counts kept, per filter
    uploaded(corpus.jpeg(), "a.jpg")
    uploaded(corpus.png(), "b.png")
    uploaded(corpus.png(corpus.solid((9, 9, 9))), "c.png")

    def listed(**params: str) -> tuple[str, int, list[str]]:
        response = token_client.get(URL, params)
        body = response.json()
        return response["Content-Type"], body["count"], sorted(r["format"] for r in body["results"])

    assert listed() == ("application/json", 3, ["JPEG", "PNG", "PNG"])
    assert listed(format="PNG") == ("application/json", 2, ["PNG", "PNG"])
    assert listed(format="JPEG") == ("application/json", 1, ["JPEG"])
    # Named as the on-demand URLs name formats: any case, jpg for jpeg.
    assert listed(format="png") == ("application/json", 2, ["PNG", "PNG"])
    assert listed(format="jpg") == listed(format=" Jpeg ") == ("application/json", 1, ["JPEG"])


@pytest.mark.parametrize("asked", ["heic", "HEIF", "heif"])
def test_a_phones_heic_photo_is_found_by_the_name_its_files_carry(
    token_client: APIClient, uploaded: Any, asked: str
) -> None:
    # Pillow calls the format of a phone's .heic file HEIF, as it is stored.
    uploaded(corpus.jpeg(), "a.jpg")
    photo = uploaded(corpus.png(), "IMG_0001.HEIC").json()
    Image.objects.filter(pk=photo["id"]).update(format="HEIF")

    found = token_client.get(URL, {"format": asked}).json()
    assert [r["id"] for r in found["results"]] == [photo["id"]]


def test_images_can_be_filtered_by_status(token_client: APIClient, uploaded: Any) -> None:
    uploaded(corpus.jpeg(), "ok.jpg")
    Image.objects.update(status=Image.Status.FAILED, error="x")
    assert token_client.get(URL, {"status": "failed"}).json()["count"] == 1
    assert token_client.get(URL, {"status": "ready"}).json()["count"] == 0


def test_a_long_file_name_is_cut_before_its_extension() -> None:
    image = services.image_upload(file=corpus.png(), original_name="a" * 300 + ".png")
    assert image.original_name == "a" * 251 + ".png"
    assert Image.objects.get().stem == "a" * 251
