"""When processing starts and when files go: the signal handlers and services."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import connection, transaction
from django.test import RequestFactory
from django.utils import timezone
from kombu.exceptions import OperationalError
from PIL import Image as PILImage

from tests.factories import ImageFactory
from tests.uploads import corpus
from tests.uploads.conftest import REPLACING, DiskFullStorage, on_a_disk_that_fills_up, replace_file
from uploads import dispatch, holders, sandbox, services, storage, tasks
from uploads.models import Image, Rendition
from uploads.tasks import sweep_stuck_images

pytestmark = pytest.mark.django_db


def test_processing_waits_for_the_commit(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    assert Image.objects.get(pk=image.pk).status == Image.Status.PENDING
    assert callbacks  # processing is queued, not run
    for callback in callbacks:
        callback()
    assert Image.objects.get(pk=image.pk).status == Image.Status.READY


def upload_then_roll_back() -> None:
    with transaction.atomic():
        services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
        raise RuntimeError("the caller changed its mind")


def test_a_rolled_back_upload_is_never_processed_and_its_file_is_swept(
    django_capture_on_commit_callbacks: Any, media_files: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        upload_then_roll_back()
    assert callbacks == []
    assert Image.objects.count() == 0
    assert storage.sweep_orphans(grace_seconds=3600) == []  # too young: may be an upload in flight
    assert len(storage.sweep_orphans(grace_seconds=0)) == 1
    assert media_files() == set()


def test_the_orphan_sweep_keeps_every_file_a_row_points_at(commit: Any, media_files: Any) -> None:
    with commit():
        services.image_upload(file=corpus.photo_jpeg(700, 500), original_name="a.jpg")
    kept = media_files()
    assert storage.sweep_orphans(grace_seconds=0) == []
    assert media_files() == kept


def test_renditions_replaced_while_the_orphan_sweep_runs_are_kept_as_long_as_any_other(
    commit: Any, media_files: Any, monkeypatch: pytest.MonkeyPatch, sweep_after: Any
) -> None:
    """The sweep lists a whole store, which takes a while: an image
    processed again meanwhile lets its old renditions go to be kept for the
    redirects that may point at them, not to be deleted by the sweep under way."""
    with commit():
        image = services.image_upload(file=corpus.photo_jpeg(800, 600), original_name="a.jpg")
    old = set(image.renditions.values_list("storage_key", flat=True))
    listing = storage.list_objects

    def listed_while_processed_again(store: Any, prefix: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        if prefix == storage.RENDITIONS_PREFIX:
            with commit():
                services.image_reprocess(images=[Image.objects.get(pk=image.pk)], preset="icon")
        return listing(store, prefix, **kwargs)

    monkeypatch.setattr(storage, "list_objects", listed_while_processed_again)
    assert storage.sweep_orphans(grace_seconds=0) == []
    assert old <= media_files()
    monkeypatch.undo()
    assert sweep_after(storage.REPLACED_KEEP_SECONDS) == sorted(old)


def test_reprocessing_passes_over_the_images_deleted_meanwhile(commit: Any) -> None:
    """A long run of reprocess_images, or an admin action, goes on with the
    others when staff delete one of its images meanwhile."""
    gone, kept = ImageFactory.create(processed=False), ImageFactory.create(processed=False)
    Image.objects.filter(pk=gone.pk).delete()
    with commit():
        assert services.image_reprocess(images=[gone, kept]) == 1
    assert list(Image.objects.values_list("pk", "status")) == [(kept.pk, Image.Status.READY)]


def test_saving_other_fields_does_not_queue_processing(django_capture_on_commit_callbacks: Any) -> None:
    image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    with django_capture_on_commit_callbacks() as callbacks:
        image = Image.objects.get(pk=image.pk)
        image.title = "New title"
        image.save()
    assert callbacks == []


def test_replacing_the_file_reprocesses_and_removes_the_old_files(
    commit: Any, media_files: Any, sweep_after: Any
) -> None:
    with commit():
        image = services.image_upload(file=corpus.photo_jpeg(800, 600), original_name="a.jpg")
    old = media_files()
    old_original = image.file.name
    image = Image.objects.get(pk=image.pk)
    new_data = corpus.photo_jpeg(640, 480, seed=3)
    with commit():
        image.file.save("ignored-name.jpg", ContentFile(new_data), save=False)
        image.save()
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    # The original goes at once (private: no redirect points at it); the old
    # renditions once no cached redirect may point at them.
    assert old & media_files() == old - {old_original}
    assert sweep_after(storage.REPLACED_KEEP_SECONDS - 60) == []
    assert sweep_after(60) == sorted(old - {old_original})
    assert not old & media_files()
    assert {image.file.name} | set(image.renditions.values_list("storage_key", flat=True)) == media_files()


@pytest.fixture
def uploaded(commit: Any) -> Image:
    """A photo uploaded in a transaction of its own, committed."""
    with commit():
        return services.image_upload(file=corpus.photo_jpeg(800, 600), original_name="a.jpg")


def replace_then_roll_back(image_id: int, data: bytes, how: str) -> None:
    with transaction.atomic():
        replace_file(Image.objects.get(pk=image_id), data, how)
        raise RuntimeError("the caller changed its mind")


@pytest.mark.parametrize("how", REPLACING)
def test_a_replacement_rolled_back_leaves_its_file_to_the_orphan_sweep(
    uploaded: Image, media_files: Any, token_client: Any, how: str
) -> None:
    image = uploaded
    kept = media_files()
    with pytest.raises(RuntimeError):
        replace_then_roll_back(image.pk, corpus.png(corpus.quadrants(320, 240)), how)
    assert len(media_files() - kept) == 1  # stored before the row was locked
    assert storage.sweep_orphans(grace_seconds=3600) == []  # too young: may be a save in flight
    assert len(storage.sweep_orphans(grace_seconds=0)) == 1
    assert media_files() == kept
    response = token_client.get(f"/api/v1/images/{image.pk}/original/")
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == image.sha256


@pytest.mark.parametrize("how", REPLACING)
def test_a_replacement_describes_the_new_file_in_its_own_save(
    django_capture_on_commit_callbacks: Any, uploaded: Image, how: str
) -> None:
    image = uploaded
    data = corpus.gif_animated(frames=3, size=(320, 240))
    with django_capture_on_commit_callbacks(execute=False):  # its run, which measures again, waits
        replace_file(Image.objects.get(pk=image.pk), data, how)
    image.refresh_from_db()
    sha = hashlib.sha256(data).hexdigest()
    assert image.status == Image.Status.PENDING
    assert (image.sha256, image.bytes, image.format) == (sha, len(data), "GIF")
    assert (image.width, image.height, image.frames) == (320, 240, 3)
    # Under the key an upload of the same bytes takes, where the sweep looks.
    assert image.file.name == storage.original_key(sha, "GIF")
    held, created = services.image_upload_once(file=data, original_name="a.jpg")
    assert (held.pk, created) == (image.pk, False)


@pytest.mark.parametrize("how", REPLACING)
def test_a_replacement_that_is_no_image_is_refused_as_an_upload_leaving_all_as_it_was(
    commit: Any, uploaded: Image, media_files: Any, how: str
) -> None:
    image = uploaded
    kept, row = media_files(), Image.objects.values().get(pk=image.pk)
    with commit(), pytest.raises(services.ImageInvalid, match="Unsupported file type"):
        replace_file(Image.objects.get(pk=image.pk), b"plain text, not a picture", how)
    assert Image.objects.values().get(pk=image.pk) == row
    assert media_files() == kept


def test_a_save_that_keeps_the_file_keeps_what_describes_it(uploaded: Image) -> None:
    image = uploaded
    described = ("sha256", "bytes", "format", "width", "height", "frames", "file", "status")
    before = Image.objects.values_list(*described).get(pk=image.pk)
    for update_fields in (None, ["title"]):
        edited = Image.objects.get(pk=image.pk)
        edited.title = "A new title"
        edited.save(update_fields=update_fields)
    assert Image.objects.values_list(*described).get(pk=image.pk) == before


def test_fixture_loading_does_not_trigger_processing(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    fixture = tmp_path / "images.json"
    fixture.write_text(
        '[{"model": "uploads.image", "pk": 99, "fields": {"file": "originals/x.jpg", "sha256": "x", '
        '"format": "JPEG", "width": 1, "height": 1, "bytes": 1, "created_at": "2024-01-01T00:00:00Z", '
        '"updated_at": "2024-01-01T00:00:00Z"}}]'
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("loaddata", str(fixture), stdout=io.StringIO())
    assert callbacks == []
    assert Image.objects.get(pk=99).status == Image.Status.PENDING


def test_processing_twice_is_harmless(commit: Any) -> None:
    with commit():
        image = services.image_upload(file=corpus.photo_jpeg(700, 500), original_name="a.jpg")
    keys = set(Image.objects.get(pk=image.pk).renditions.values_list("storage_key", flat=True))
    again = services.image_process(image_id=image.pk)
    assert again is not None
    assert again.attempts == 1  # a ready image is left alone
    forced = services.image_process(image_id=image.pk, force=True)
    assert forced is not None
    assert set(forced.renditions.values_list("storage_key", flat=True)) == keys


def test_processing_a_deleted_image_does_nothing() -> None:
    assert services.image_process(image_id=123456) is None


def test_every_processed_image_is_logged(commit: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="uploads"), commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    line = next(r.getMessage() for r in caplog.records if r.name == "uploads.services")
    assert f"id={image.pk}" in line
    assert f"sha256={image.sha256[:12]}" in line
    assert "outcome=ready" in line


def test_the_sweep_requeues_images_stuck_in_processing(settings: Any, commit: Any) -> None:

    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    Image.objects.filter(pk=image.pk).update(status=Image.Status.PROCESSING)
    settings.IMAGE_STUCK_AFTER_SECONDS = 0
    with commit():
        assert sweep_stuck_images() == 1
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    assert image.interruptions == 0  # no process was seen dying under it: not counted
    assert sweep_stuck_images() == 0


def test_an_image_a_live_process_is_working_on_is_not_taken_from_it(commit: Any) -> None:
    """The sweep lists candidates, then takes each over under its row's lock:
    one that turns out to be fresh, in the hands of a live process, is left
    alone at that point too."""
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    Image.objects.filter(pk=image.pk).update(status=Image.Status.PROCESSING, holder=holders.mine())
    with commit():
        assert services.image_take_over(image_id=image.pk) is None
        assert sweep_stuck_images() == 0
    image.refresh_from_db()
    assert image.status == Image.Status.PROCESSING
    assert image.attempts == 1  # not run again


def test_a_png_with_exif_after_its_pixels_keeps_the_size_it_is_shown_at(commit: Any) -> None:
    """Browsers ignore an eXIf chunk after the pixel data: shown as stored."""
    with commit():
        image = services.image_upload(file=corpus.png_exif_after_pixels(6), original_name="a.png")
    image.refresh_from_db()
    largest = image.renditions.order_by("-width").first()
    assert image.status == Image.Status.READY
    assert largest is not None
    assert (image.width, image.height) == (400, 300)
    assert (largest.width, largest.height) == (320, 240)  # the widest of the ladder that fits


def test_a_holder_is_gone_once_its_process_ends_or_its_pid_is_reused(ended_process: str) -> None:
    me = holders.mine()
    node, pid, start = me.rsplit(":", 2)
    _, dead_pid, dead_start = ended_process.rsplit(":", 2)

    assert node.startswith(socket.gethostname() + "/")
    assert pid == str(os.getpid())
    assert int(start) > 0
    assert not holders.gone(me)
    assert holders.gone(ended_process)
    assert holders.gone(f"{node}:{pid}:{int(start) + 1}")  # the pid, given to a newer process
    # Not ours to judge: another machine, or another pid namespace (a
    # container) on this one, where the same pid is another process.
    assert not holders.gone(f"elsewhere:{dead_pid}:{dead_start}")
    assert not holders.gone(f"{socket.gethostname()}:{dead_pid}:{dead_start}")
    assert not holders.gone(f"{node}0:{dead_pid}:{dead_start}")
    assert not holders.gone("")
    # Nobody's to judge either: a holder in garbled text (an edited row), not
    # an error that would stop the sweep.
    assert not holders.gone(f"{node}:99999999999999999999:{dead_start}")
    assert not holders.gone(f"{node}:-{dead_pid}:{dead_start}")
    assert not holders.gone(f"{node}:extra:{dead_pid}:{dead_start}")


def test_a_server_of_the_previous_release_can_still_insert_images() -> None:
    # It knows nothing of the holder column: a rolling deploy migrates under it.
    image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    columns = [f.column for f in Image._meta.concrete_fields if f.column not in ("id", "holder")]
    values = list(
        Image.objects.filter(pk=image.pk)
        .values_list(*[f.attname for f in Image._meta.concrete_fields if f.column in columns])
        .get()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO uploads_image ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608 - the model's own column names
            values,
        )
    assert Image.objects.exclude(pk=image.pk).get().holder == ""


def test_work_held_by_a_process_that_is_gone_is_taken_over_at_once(commit: Any, ended_process: str) -> None:
    with commit():
        held = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
        alive = services.image_upload(file=corpus.jpeg(quality=80), original_name="b.jpg")
    Image.objects.filter(pk=held.pk).update(status=Image.Status.PROCESSING, holder=ended_process)
    Image.objects.filter(pk=alive.pk).update(status=Image.Status.PENDING, holder=holders.mine())

    with commit():
        assert sweep_stuck_images() == 1  # long before IMAGE_STUCK_AFTER_SECONDS

    held.refresh_from_db()
    assert (held.status, held.interruptions) == (Image.Status.READY, 0)
    assert held.holder == holders.mine()
    assert Image.objects.get(pk=alive.pk).status == Image.Status.PENDING  # still in hand


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def left_unqueued(count: int) -> list[int]:
    """``count`` uploads of a broker outage: pending, their tasks never taken,
    an hour ago."""
    Image.objects.bulk_create(
        Image(
            file=f"originals/{n:02d}/{n:064d}.jpg",
            sha256=f"{n:064d}",
            format="JPEG",
            width=1,
            height=1,
            bytes=1,
            holder=holders.UNQUEUED,
        )
        for n in range(count)
    )
    Image.objects.update(updated_at=timezone.now() - dt.timedelta(hours=1))
    return list(Image.objects.order_by("pk").values_list("pk", flat=True))


def taken_over_in(monkeypatch: pytest.MonkeyPatch, clock: Clock, seconds: float) -> list[int]:
    """The images the sweep takes over from now on, each taking ``seconds``
    of ``clock`` (a round trip to a broker that is slow)."""
    taken: list[int] = []
    real = services.image_take_over

    def slow(*, image_id: int) -> str | None:
        taken.append(image_id)
        clock.now += seconds
        return real(image_id=image_id)

    monkeypatch.setattr(services, "time", clock)
    monkeypatch.setattr(services, "image_take_over", slow)
    return taken


def test_a_sweep_run_takes_over_what_fits_in_its_time_and_the_next_goes_on_with_the_rest(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # After a long broker outage, taking each of its uploads over all in one
    # run would outlast the worker's time limit: every run cut off at the same
    # place, with a traceback.
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120  # a budget of 30 s a run
    stuck = left_unqueued(12)
    taken = taken_over_in(monkeypatch, Clock(), 10)
    assert [sweep_stuck_images() for _ in range(5)] == [3, 3, 3, 3, 0]
    assert sorted(taken) == stuck  # each once
    assert not Image.objects.filter(holder=holders.UNQUEUED).exists()
    assert (
        "stuck images: its time was spent after going over 3 of 12; the next round goes on with the rest"
        in caplog.text
    )


def test_a_sweep_run_the_time_limit_cuts_off_ends_without_an_error_and_the_next_goes_on(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120
    stuck = left_unqueued(5)
    clock = Clock()
    taken = taken_over_in(monkeypatch, clock, 1)
    slow = services.image_take_over

    def cut_off_at_the_third(*, image_id: int) -> str | None:
        if len(taken) == 2:
            taken.append(image_id)
            raise SoftTimeLimitExceeded()
        return slow(image_id=image_id)

    monkeypatch.setattr(services, "image_take_over", cut_off_at_the_third)
    assert sweep_stuck_images() == 2  # ended, not failed
    assert "stuck images: cut off by the time limit after going over 2 of 5" in caplog.text
    assert Image.objects.filter(holder=holders.UNQUEUED).count() == 3  # the one cut off too
    assert sweep_stuck_images() == 3
    assert sorted(set(taken)) == stuck
    assert not Image.objects.filter(holder=holders.UNQUEUED).exists()


def test_an_import_run_again_finishes_what_a_killed_run_held(
    commit: Any, tmp_path: Path, ended_process: str
) -> None:
    (tmp_path / "001.jpeg").write_bytes(corpus.jpeg())
    with commit():
        call_command("import_images", str(tmp_path), stdout=io.StringIO())
    Image.objects.update(status=Image.Status.PROCESSING, holder=ended_process)

    with commit():
        call_command("import_images", str(tmp_path), stdout=io.StringIO())

    image = Image.objects.get()
    assert image.status == Image.Status.READY
    assert image.renditions.exists()


@pytest.fixture
def originals_away(settings: Any, tmp_path: Path) -> None:
    """The originals' folder cannot be made (a file stands where its parent
    should be): every write of an original fails as a lost disk would."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    settings.STORAGES = {
        **settings.STORAGES,
        "originals": {**settings.STORAGES["originals"], "OPTIONS": {"location": blocker / "private"}},
    }


@pytest.fixture
def disk_full(settings: Any) -> Iterator[type[DiskFullStorage]]:
    with on_a_disk_that_fills_up(settings, "originals") as disk:
        disk.full = True
        yield disk


def test_a_write_cut_short_by_a_full_disk_leaves_nothing_at_the_key(
    disk_full: type[DiskFullStorage], media_files: Any
) -> None:
    data = corpus.jpeg()
    key = storage.original_key(hashlib.sha256(data).hexdigest(), "JPEG")
    with pytest.raises(OSError, match="No space left"):
        storage.put(key, data)
    assert media_files() == set()

    disk_full.full = False
    assert storage.put(key, data) == key
    with storage.storage_for(key).open(key, "rb") as fh:
        assert fh.read() == data


def test_a_truncated_file_left_at_a_key_is_written_again(media_files: Any) -> None:
    data = corpus.jpeg()
    key = storage.original_key(hashlib.sha256(data).hexdigest(), "JPEG")
    store = storage.storage_for(key)
    Path(store.path(key)).parent.mkdir(parents=True)
    Path(store.path(key)).write_bytes(data[:100])
    storage.put(key, data)
    with store.open(key, "rb") as fh:
        assert fh.read() == data
    assert media_files() == {key}


@pytest.mark.usefixtures("originals_away")
def test_a_storage_outage_during_upload_leaves_no_row() -> None:
    with pytest.raises(services.StorageUnavailable, match="nothing was saved"):
        services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    assert Image.objects.count() == 0


@pytest.mark.usefixtures("originals_away")
def test_the_api_answers_503_when_the_store_is_away(token_client: Any) -> None:
    response = token_client.post(
        "/api/v1/images/", {"file": SimpleUploadedFile("a.jpg", corpus.jpeg())}, format="multipart"
    )
    assert response.status_code == 503
    assert "nothing was saved" in response.json()["detail"]
    assert Image.objects.count() == 0


def test_an_upload_is_kept_pending_when_the_broker_is_away(
    commit: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:

    def refused(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to redis")

    monkeypatch.setattr(tasks.process_image, "apply_async", refused)
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    assert Image.objects.get(pk=image.pk).status == Image.Status.PENDING
    monkeypatch.undo()
    # Taken over by the next sweep, not only once it has waited the cut-off.
    settings.IMAGE_STUCK_AFTER_SECONDS = 3600
    with commit():
        assert tasks.sweep_stuck_images() == 1
    assert Image.objects.get(pk=image.pk).status == Image.Status.READY


@pytest.mark.django_db(transaction=True)  # real commits: the publish is an on-commit hook
def test_the_broker_hears_of_an_upload_only_once_the_answer_has_gone_out(
    token_client: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Driven as a WSGI server drives the portal: the answer is read whole,
    then closed. The uploader does not wait for the broker."""
    settings.BROKER_CONFIGURED = True
    events: list[tuple[str, int]] = []
    monkeypatch.setattr(
        tasks.process_image, "apply_async", lambda args, **kwargs: events.append(("published", args[0]))
    )
    request = RequestFactory().post(
        "/api/v1/images/",
        {"file": SimpleUploadedFile("a.jpg", corpus.jpeg())},
        **token_client._credentials,
    )
    response = WSGIHandler()(request.environ, lambda status, headers: None)
    answer = json.loads(b"".join(response))
    assert response.status_code == 201
    events.append(("answered", answer["id"]))
    assert events == [("answered", answer["id"])]
    response.close()
    assert events == [("answered", answer["id"]), ("published", answer["id"])]


def test_processing_started_outside_a_request_is_published_at_once(
    token_client: Any, commit: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BROKER_CONFIGURED = True
    assert token_client.get("/api/v1/images/").status_code == 200  # a request answered before
    published: list[int] = []
    monkeypatch.setattr(tasks.process_image, "apply_async", lambda args, **kwargs: published.append(args[0]))
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    assert published == [image.pk]


def test_what_a_request_held_is_sent_by_the_next_one_had_its_response_never_been_closed(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BROKER_CONFIGURED = True
    published: list[int] = []
    monkeypatch.setattr(tasks.process_image, "apply_async", lambda args, **kwargs: published.append(args[0]))
    dispatch.hold_until_answered()
    assert dispatch.start(image_id=7)
    assert published == []
    dispatch.hold_until_answered()  # the next request, with no close in between
    assert published == [7]
    dispatch.publish_held()
    assert published == [7]


def test_an_upload_is_read_whole_whatever_size_it_states() -> None:
    data = corpus.photo_jpeg(320, 240)
    understated = SimpleUploadedFile("a.jpg", data)
    understated.size = 100
    image = services.image_upload(file=understated, original_name="a.jpg")
    assert image.bytes == len(data)
    with image.file.open("rb") as fh:
        assert fh.read() == data


def test_an_upload_over_the_limit_is_refused_whatever_size_it_states(settings: Any) -> None:
    settings.IMAGE_MAX_BYTES = 1000
    understated = SimpleUploadedFile("a.jpg", corpus.photo_jpeg(320, 240))
    understated.size = 100
    with pytest.raises(services.ImageTooLarge):
        services.image_upload(file=understated, original_name="a.jpg")
    assert Image.objects.count() == 0


def _meanwhile_processing(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """While the image is decoded, ``change`` runs: another request's write in
    the middle of a run, made deterministic."""
    real = sandbox.process

    def process_while_changed(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        change()
        return result

    monkeypatch.setattr(sandbox, "process", process_while_changed)


def test_a_run_whose_image_got_another_preset_meanwhile_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, media_files: Any, commit: Any
) -> None:
    image = services.image_upload(file=corpus.photo_jpeg(900, 600), original_name="a.jpg")  # pending
    before = media_files()
    _meanwhile_processing(monkeypatch, lambda: Image.objects.filter(pk=image.pk).update(preset="icon"))

    with commit():
        services.image_process(image_id=image.pk)

    assert not Rendition.objects.filter(image=image).exists()  # the web renditions of an icon image: dropped
    assert media_files() == before  # and their files with them
    assert Image.objects.get(pk=image.pk).status != Image.Status.READY


def test_a_run_whose_image_was_deleted_meanwhile_ends_quietly_and_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch, media_files: Any, commit: Any
) -> None:
    image = services.image_upload(file=corpus.photo_jpeg(900, 600), original_name="a.jpg")  # pending
    _meanwhile_processing(monkeypatch, lambda: services.image_delete(image=Image.objects.get(pk=image.pk)))

    with commit():
        assert services.image_process(image_id=image.pk) is None
    assert media_files() == set()


def test_an_image_whose_original_is_missing_from_the_store_ends_failed_at_once_saying_so(
    commit: Any, staff: Any
) -> None:
    """Restored from an older backup, or deleted by hand: tried again (about
    8 minutes of a worker's retries), it would be missing again."""
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    storage.storage_for(image.file.name).delete(image.file.name)
    tasks.process_image.push_request(retries=0, is_eager=False)  # a worker's first try
    try:
        assert tasks.process_image.run(image.pk, force=True) == "failed"  # no retry raised
    finally:
        tasks.process_image.pop_request()
    image.refresh_from_db()
    assert (image.status, image.error) == (Image.Status.FAILED, services.REASON_ORIGINAL_MISSING)
    assert staff.get(f"/api/v1/images/{image.pk}/").json()["error"] == (
        "Processing was given up: the original file is missing from the image store. Upload the image again."
    )


def test_an_image_whose_file_is_cleared_by_a_save_of_its_row_ends_failed_saying_so(
    commit: Any, media_files: Any
) -> None:
    """A shell's ``image.file = None; image.save()``: its run has no original
    to read, and ends the image failed, not stuck processing."""
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    old = image.file.name
    with commit():
        cleared = Image.objects.get(pk=image.pk)
        cleared.file = None  # type: ignore[assignment]
        cleared.save()
    image.refresh_from_db()
    assert (image.status, image.error) == (Image.Status.FAILED, services.REASON_ORIGINAL_MISSING)
    assert not image.renditions.exists()
    assert old not in media_files()


def test_a_run_whose_image_got_another_file_meanwhile_leaves_it_to_the_run_for_that_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old original is deleted once the new file commits: the run that
    finds it gone must not fail the image the other run is processing."""
    image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")  # pending
    claim = services._image_claim

    def claimed_then_replaced(**kwargs: Any) -> Any:
        claimed = claim(**kwargs)
        new_key = storage.put(storage.original_key("f" * 64, "PNG"), corpus.png())
        Image.objects.filter(pk=image.pk).update(file=new_key, format="PNG")
        storage.storage_for(image.file.name).delete(image.file.name)
        return claimed

    monkeypatch.setattr(services, "_image_claim", claimed_then_replaced)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert (image.status, image.error) == (Image.Status.PROCESSING, "")


def _stored_as_mpo(commit: Any) -> tuple[Image, bytes]:
    """A JPEG carrying a preview, as it was stored before it was read as a
    JPEG: format MPO, its original under a .bin key, its renditions made."""
    data = corpus.jpeg_with_preview()
    with PILImage.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO"
    with commit():
        image = services.image_upload(file=data, original_name="camera.jpg")
    old_key = storage.original_key(image.sha256, "MPO")
    storage.put(old_key, data)
    storage.storage_for(image.file.name).delete(image.file.name)
    Image.objects.filter(pk=image.pk).update(file=old_key, format="MPO")
    return Image.objects.get(pk=image.pk), data


def test_reprocessing_an_image_stored_as_mpo_stores_it_as_the_jpeg_it_is(
    commit: Any, media_files: Any
) -> None:
    image, data = _stored_as_mpo(commit)
    assert str(image.file.name).endswith(".bin")
    old_renditions = set(image.renditions.values_list("pk", flat=True))
    with commit():
        services.image_reprocess(images=[image])
    image.refresh_from_db()
    assert (image.status, image.format) == (Image.Status.READY, "JPEG")
    assert image.file.name == storage.original_key(image.sha256, "JPEG")
    assert image.file.name.endswith(".jpg")
    with image.file.open("rb") as fh:
        assert fh.read() == data
    assert storage.original_key(image.sha256, "MPO") not in media_files()
    assert image.file.name in media_files()
    renditions = image.renditions.all()
    assert renditions
    assert not old_renditions & {r.pk for r in renditions}
    assert {r.storage_key for r in renditions} <= media_files()


def test_an_mpo_image_whose_reprocessing_fails_half_way_keeps_its_original_and_leaves_no_copy(
    commit: Any, media_files: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _ = _stored_as_mpo(commit)
    old_key = image.file.name

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("the database went away")

    monkeypatch.setattr(services, "_recrop_if_moved", broken)
    with commit(), pytest.raises(OSError, match="went away"):
        services.image_process(image_id=image.pk, force=True)
    image.refresh_from_db()
    assert (image.format, image.file.name) == ("MPO", old_key)
    assert old_key in media_files()
    assert storage.original_key(image.sha256, "JPEG") not in media_files()
    monkeypatch.undo()
    with commit():
        services.image_process(image_id=image.pk, force=True)
    image.refresh_from_db()
    assert (image.status, image.format) == (Image.Status.READY, "JPEG")
    assert old_key not in media_files()


@pytest.mark.django_db(transaction=True)
def test_an_image_made_ready_stays_ready_when_the_deletion_of_what_it_replaced_fails_after(
    monkeypatch: pytest.MonkeyPatch, media_files: Any
) -> None:
    """Run in the server's process (no broker), the store that goes away as
    the old original is deleted, once the renditions have committed, does
    not turn the image failed under them. The old object is the orphan
    sweep's."""
    image, _ = _stored_as_mpo(contextlib.nullcontext)
    old_key = image.file.name
    delete = storage._delete

    def store_away_for_the_old_original(keys: list[str]) -> None:
        if old_key in keys:
            raise OSError("the store went away")
        delete(keys)

    monkeypatch.setattr(storage, "_delete", store_away_for_the_old_original)
    result = tasks.process_image.apply(args=[image.pk], kwargs={"force": True})
    assert result.result == "ready"
    image.refresh_from_db()
    assert (image.status, image.error, image.format) == (Image.Status.READY, "", "JPEG")
    assert {r.storage_key for r in image.renditions.all()} <= media_files()
    assert old_key in media_files()
    monkeypatch.undo()
    assert old_key in storage.sweep_orphans(grace_seconds=0)


def test_an_mpo_original_another_row_holds_is_kept_when_one_of_them_is_reprocessed(
    commit: Any, media_files: Any
) -> None:
    image, data = _stored_as_mpo(commit)
    with commit():
        twin = services.image_upload(file=data, original_name="camera.jpg", preset="icon")
    Image.objects.filter(pk=twin.pk).update(file=image.file.name, format="MPO")
    with commit():
        services.image_reprocess(images=[image])
    twin.refresh_from_db()
    assert (twin.format, twin.file.name) == ("MPO", storage.original_key(image.sha256, "MPO"))
    assert twin.file.name in media_files()
    with commit():
        services.image_reprocess(images=[twin])
    twin.refresh_from_db()
    assert twin.file.name == storage.original_key(image.sha256, "JPEG")
    assert storage.original_key(image.sha256, "MPO") not in media_files()
