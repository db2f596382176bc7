"""Writes to images: upload, process, reprocess, delete.

Uploads are checked from the header before anything is stored; the file is
written under a content-addressed key, then the row is created. Processing is
started by the ``post_save`` handler once the row commits, or by reprocessing,
both through ``uploads.dispatch``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from core import dropfolder, limits, locks, sweeps
from core.errors import DependencyUnavailable
from uploads import dispatch, holders, processing, sandbox, storage
from uploads.models import WAITING, Image, Rendition, crops_owed, file_stem

logger = logging.getLogger(__name__)

# The states of an image whose processing is still to come.


class ImageTooLarge(Exception):
    """The upload is over the byte limit (HTTP 413)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The file is {size:,} bytes; the limit is {limit:,} bytes ({limit / 1024 / 1024:.0f} MB)."
        )
        self.size = size
        self.limit = limit


class StorageUnavailable(DependencyUnavailable):
    """The file could not be stored (HTTP 503); nothing was saved."""


class ImageInvalid(Exception):
    """The upload is not an image the portal accepts (HTTP 400); says why."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


# The names the accepted formats go by: a file so named that is refused was
# meant as an image, not a stray file beside the images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
    | {".avif", ".heic", ".heif"}
)


def image_refusal_is_rejection(name: str, exc: ImageInvalid | ImageTooLarge) -> bool:
    """Whether an import that refused this file failed at something it was
    asked to do (a broken photo, one over a limit: the run exits 2) rather
    than passing over a stray file (a LICENSE beside the photos: skipped).

    A file is taken for an image when its name says so, or when its content
    was recognised as one (only its header or size was wrong).
    """
    if isinstance(exc, ImageInvalid) and exc.code in ("format", "empty"):
        return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    return True


def image_file_read(*, path: Path) -> bytes:
    """The bytes of a file an import takes for an image. One over the byte
    limit raises ImageTooLarge having read no more than the limit: a 3 GB
    file left in a folder was read into memory whole before it was refused.
    ChangedWhileRead when it was written to while it was read, or its name
    no longer leads to a file of its folder (dropfolder.opened): it is not
    imported this run; OSError when it cannot be read."""
    limit = settings.IMAGE_MAX_BYTES
    with dropfolder.opened(path) as (fh, before):
        if before.st_size > limit:
            raise ImageTooLarge(before.st_size, limit)
        data = fh.read(limit + 1)
        dropfolder.check_unchanged(path, fh.fileno(), before)
    if len(data) > limit:  # not a regular file
        raise ImageTooLarge(len(data), limit)
    return data


def presets() -> dict[str, processing.Preset]:
    return {name: processing.Preset.from_dict(name, spec) for name, spec in settings.IMAGE_PRESETS.items()}


def preset_get(name: str) -> processing.Preset:
    available = presets()
    if name not in available:
        raise ValidationError(
            {"preset": f"Unknown preset {name!r}; choose one of {', '.join(sorted(available))}."}
        )
    return available[name]


def _read_limited(source: IO[bytes] | bytes) -> bytes:
    limit = settings.IMAGE_MAX_BYTES
    if isinstance(source, bytes):
        data = source
    else:
        size = getattr(source, "size", None)
        if size is not None and size > limit:
            raise ImageTooLarge(size, limit)
        if hasattr(source, "seek"):
            source.seek(0)
        # One byte past the size the file states: asked for the limit, read()
        # would set aside all of it first (25 MB, ms for a 4 MB photo).
        data = source.read((limit if size is None else size) + 1)
        if size is not None and len(data) > size:  # more than it stated
            data += source.read(limit + 1 - len(data))
    if len(data) > limit:
        raise ImageTooLarge(getattr(source, "size", None) or len(data), limit)
    return data


def image_upload(
    *,
    file: IO[bytes] | bytes,
    original_name: str,
    preset: str | None = None,
    title: str = "",
    alt: str = "",
    user: Any = None,
) -> Image:
    """Check and store an upload; processing starts once the row commits.

    Raises ImageTooLarge (413) or ImageInvalid / ValidationError (400); a
    refused upload leaves no row and no object behind.
    """
    image, data, key = _image_checked(
        file=file, original_name=original_name, preset=preset, title=title, alt=alt, user=user
    )
    with storage.writing({key}):
        _image_store(image, data, key)
        with _dropped_unless_saved(key):
            # One INSERT, atomic by itself: no BEGIN and COMMIT around it.
            image.save()
    return image


def _image_held_as(image: Image) -> Image | None:
    """The newest usable image of this unsaved one's file-name stem, as
    products link it, if it is this one already: the same name, bytes and
    preset."""
    newest = (
        Image.objects.filter(name_stem=file_stem(image.original_name), is_demo=False)
        .exclude(status=Image.Status.FAILED)
        .order_by("-created_at", "-pk")
        .first()
    )
    if newest is not None and (newest.original_name, newest.sha256, newest.preset) == (
        image.original_name,
        image.sha256,
        image.preset,
    ):
        return newest
    return None


def image_upload_once(
    *,
    file: IO[bytes] | bytes,
    original_name: str,
    preset: str | None = None,
    user: Any = None,
) -> tuple[Image, bool]:
    """``image_upload``, unless the newest image of this file name holds these
    bytes with this preset already: then that one. Returns (image, created).

    A supplier's uploader run again over its folder adds no image; a new
    photo under the name, or an old one sent again after another replaced
    it, is a new image, the one its product links to."""
    image, data, key = _image_checked(file=file, original_name=original_name, preset=preset, user=user)
    if held := _image_held_as(image):
        return held, False
    with storage.writing({key}):
        # The same bytes are stored under the same key: one held keeps it.
        _image_store(image, data, key)
        # The same upload twice at once, or an import of the same photo (which
        # takes this key too): the second waits here, then finds the first.
        with _dropped_unless_saved(key), locks.serialized(_bytes_key(image.preset, image.sha256)):
            if held := _image_held_as(image):
                return held, False
            image.save()
    return image, True


@contextlib.contextmanager
def _dropped_unless_saved(key: str | None) -> Iterator[None]:
    """On an error, the object stored under ``key`` for an image goes, unless
    a row holds it (an identical upload's)."""
    try:
        yield
    except BaseException:
        if key:
            storage.delete_unreferenced({key})
        raise


def _image_checked(
    *,
    file: IO[bytes] | bytes,
    original_name: str,
    preset: str | None = None,
    title: str = "",
    alt: str = "",
    user: Any = None,
) -> tuple[Image, bytes, str]:
    """The checked upload, its bytes and the key of its file (already its
    file's name); nothing stored yet."""
    preset_name = preset or settings.IMAGE_DEFAULT_PRESET
    preset_get(preset_name)
    image = Image(
        original_name=_fit_name(original_name.replace("\\", "/").rsplit("/", 1)[-1], 255),
        title=title[:200],
        alt=alt[:300],
        preset=preset_name,
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
        holder=holders.mine(),
    )
    data, key = _image_file_read(image, file)
    # Nothing an upload sets can break the table's constraints (they bound the
    # focal point, unset here) and its uploader is the caller the request
    # authenticated: neither is asked of the database again.
    image.full_clean(exclude=["file", "uploaded_by"], validate_constraints=False)
    image.file.name = key
    return image, data, key


def _image_file_read(image: Image, file: IO[bytes] | bytes) -> tuple[bytes, str]:
    """Read and check a file to be the image's original, and set the
    image's columns that describe it (Image.DESCRIBED_BY_FILE). Returns its
    bytes and the key it is stored under; raises ImageTooLarge or
    ImageInvalid."""
    # Hashed as it arrived when it is an upload its handler left untouched.
    received = limits.received_digest(file)
    data = _read_limited(file)
    try:
        info = processing.probe(data, max_pixels=settings.IMAGE_MAX_PIXELS)
    except processing.ImageRejected as exc:
        if exc.detail:
            logger.info("upload of %r refused: %s", image.original_name, processing.logged(exc))
        raise ImageInvalid(str(exc), code=exc.code) from exc
    if received is not None and received.size == len(data):
        image.sha256 = received.sha256
    else:
        image.sha256 = hashlib.sha256(data).hexdigest()
    image.bytes = len(data)
    image.format, image.width, image.height, image.frames = info.format, info.width, info.height, info.frames
    return data, storage.original_key(image.sha256, info.format)


@contextlib.contextmanager
def image_file_storing(*, image: Image, content: IO[bytes]) -> Iterator[str]:
    """Around giving an image its original by a save of its row
    (``Image.save``, ``OriginalFile.save``): ``content`` is checked and
    stored as an upload is, under the key of its bytes (yielded), and the
    image's columns that describe its file are set from it.

    The row saved inside the block commits (in autocommit) before a
    deletion of the key may run (``storage.writing``); a block that fails
    lets the object go unless a row holds it. One stored for a row that is
    not saved, or rolled back later, is under the originals' prefix, where
    the orphan sweep deletes it once IMAGE_ORPHAN_GRACE_SECONDS old.
    """
    data, key = _image_file_read(image, content)
    with storage.writing({key}):
        _image_store(image, data, key)
        del data
        with _dropped_unless_saved(key):
            yield key


def _image_store(image: Image, data: bytes, key: str) -> None:
    """Store the checked upload's bytes under its file's key."""
    try:
        storage.put(key, data, sha256=image.sha256)
    except storage.UNAVAILABLE as exc:
        logger.warning("storage unavailable, upload of %r refused: %s", image.original_name, exc)
        # A bucket that timed out may have stored the bytes all the same.
        storage.discard_unconfirmed(key)
        raise StorageUnavailable(
            "The image store is unavailable; nothing was saved. Please try again shortly."
        ) from exc


def _fit_name(name: str, limit: int) -> str:
    """The file name cut to ``limit`` characters, its extension kept (the
    stem is what suppliers link by; the extension says what the file is).
    A name too long is trimmed of whitespace before it is cut: that
    whitespace is no part of its stem (``models.file_stem``), its last
    characters are."""
    if len(name) <= limit:
        return name
    name = name.strip()
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        return name[:limit]
    return f"{stem[: limit - len(extension) - 1]}.{extension}"


def _bytes_key(preset: str, sha: str) -> str:
    """The lock of the adders of these bytes with this preset: an import and
    an upload of one photo at once each wait for the other, then find it."""
    return f"uploads.image:{preset}:{sha}"


def image_import(*, data: bytes, original_name: str, preset: str | None = None) -> tuple[Image, bool]:
    """Upload unless the same bytes were already imported with the same preset.

    Returns (image, created); re-running an import therefore changes nothing.
    A demo image of the same bytes is not one imported: ``seed_demo --remove``
    would take it away (as ``image_upload_once`` never holds one either).
    """
    preset_name = preset or settings.IMAGE_DEFAULT_PRESET
    sha = hashlib.sha256(data).hexdigest()
    imported = Image.objects.filter(sha256=sha, preset=preset_name, is_demo=False).order_by("pk")
    existing = imported.first()
    if existing is None:
        image, data, key = _image_checked(file=data, original_name=original_name, preset=preset_name)
        with storage.writing({key}):
            # Stored before the transaction: a slow store holds no lock.
            _image_store(image, data, key)
            # Another import of the same bytes at once (a cron run that overlaps
            # the last one) waits here, then finds this row.
            with _dropped_unless_saved(key), locks.serialized(_bytes_key(preset_name, sha)):
                existing = imported.first()
                if existing is None:
                    image.save()
        if existing is None:
            return image, True
    # An earlier import killed before its images were processed: this
    # run finishes them (without a server, nothing else would soon).
    if existing.status in WAITING and image_take_over(image_id=existing.pk) == "requeued":
        existing.refresh_from_db()
    return existing, False


def _outputs_keyed(result: processing.Result) -> list[tuple[processing.Output, str]]:
    """Each output with the key it is stored under."""
    return [(output, storage.rendition_key(output.data, output.extension)) for output in result.outputs]


def _outputs_to_rows(image: Image, keyed: list[tuple[processing.Output, str]]) -> list[Rendition]:
    """Store the outputs; their rows, not saved. Call it inside
    ``storage.writing`` of their keys, and save the rows there too."""
    rows = []
    for output, key in keyed:
        storage.put(key, output.data)
        rows.append(
            Rendition(
                image=image,
                name=output.name,
                format=output.format,
                width=output.width,
                height=output.height,
                bytes=len(output.data),
                storage_key=key,
            )
        )
    return rows


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def reason_died(times: int) -> str:
    return f"Processing was given up: the worker processing it died {_plural(times, 'time')}."


def reason_too_slow(seconds: float) -> str:
    return f"Processing took longer than {seconds:g} s and was stopped."


def reason_out_of_memory(limit_mb: int) -> str:
    limit = f" (limit {limit_mb} MB)" if limit_mb else ""
    return f"Processing ran out of memory{limit}."


def _tries(tries: int, seconds: int) -> str:
    over = f" over {max(1, round(seconds / 60))} min" if seconds else ""
    counted = "1 try" if tries == 1 else f"{tries} tries"
    return f"{counted}{over}"


def reason_unavailable(what: str, *, tries: int, seconds: int = 0) -> str:
    """Why an image was given up whose store or database stayed away: in
    words, never the error's own text, which names internal hosts and paths
    (it goes to the log)."""
    return f"Processing was given up: the {what} was unavailable ({_tries(tries, seconds)}). Reprocess the image once it is back."


def reason_not_started(*, tries: int, seconds: int = 0) -> str:
    """Why an image was given up whose decoding child the worker's machine
    could not start (sandbox.NotStarted): short of processes or memory."""
    return (
        f"Processing was given up: the worker could not start the process to decode it "
        f"({_tries(tries, seconds)}); its machine was short of processes or memory. Reprocess the image "
        f"once it has room."
    )


def reason_database_error(kind: str, *, tries: int, seconds: int = 0) -> str:
    """Why an image was given up whose work the database answered with an
    error other than being away (a value it refuses, a constraint broken):
    the error's kind, never its text, which may hold the values."""
    return (
        f"Processing was given up: the database answered with an error ({kind}; {_tries(tries, seconds)}). "
        f"Reprocess the image once that is fixed."
    )


def _image_claim(*, image_id: int, force: bool) -> tuple[Image | None, bool]:
    """Mark the image as being processed; returns (image, whether to go on).

    An image found ``processing`` was interrupted. Once the process processing
    it has died under it IMAGE_MAX_ATTEMPTS times (see image_count_death) it
    ends failed here instead of harming another worker.
    """
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None:
            return None, False
        if image.status in (Image.Status.READY, Image.Status.FAILED) and not force:
            # Done already: a duplicate delivery or a late sweep changes nothing.
            return image, False
        if image.status == Image.Status.PROCESSING:
            if image.interruptions >= settings.IMAGE_MAX_ATTEMPTS:
                _set_failed(image, reason_died(image.interruptions), elapsed=None)
                return image, False
            # Otherwise tried again; a whole worker or server that went away
            # (a deploy, a lost machine) is not the image's fault and not counted.
        elif image.status != Image.Status.PENDING:
            # Done, and processed again (its file replaced): a fresh count.
            # A pending one is new (none counted yet) or left so by a try
            # that found the store away (image_mark_pending): the deaths
            # before that try still count.
            image.interruptions = 0
        image.status = Image.Status.PROCESSING
        image.attempts += 1
        image.holder = holders.mine()
        image.save(update_fields=["status", "attempts", "interruptions", "holder", "updated_at"])
    return image, True


def image_process(*, image_id: int, force: bool = False, time_limit: bool = True) -> Image | None:
    """Make the image's renditions. Idempotent: a ready or failed image is left
    alone unless ``force``; a repeated run rewrites nothing (same bytes, same keys).

    The image is decoded under the memory ceiling and, unless the caller
    enforces its own (a Celery worker's soft time limit: ``time_limit=False``),
    the time limit (_decoding_time_limit), counted from the start of the run;
    see uploads.sandbox. Storage and database errors propagate
    so the task can retry; an image that cannot be decoded, or that runs out of
    memory or time, ends ``failed`` with the reason, its original kept.
    """
    # A worker's hard limit counts from the start of the task: the claim too.
    run_started = time.monotonic()
    while True:
        image, claimed = _image_claim(image_id=image_id, force=force)
        if image is None or not claimed:
            return image
        try:
            return _image_render(image, time_limit=time_limit, run_started=run_started)
        except sandbox.Died as exc:
            # The next claim gives up at the cap.
            logger.warning("image id=%s: %s", image_id, exc)
            image_count_death(image_id=image_id)


def image_count_death(*, image_id: int) -> None:
    """The process processing the image died under it, as seen by the process
    that started it and outlived it: a Celery worker's main process (a pool
    process lost, or killed at the hard time limit), or the process that
    forked the decoding child. Counted towards IMAGE_MAX_ATTEMPTS."""
    Image.objects.filter(pk=image_id, status=Image.Status.PROCESSING).update(
        interruptions=F("interruptions") + 1
    )


# What a run keeps of the hard time limit, when no soft one is set, for what
# follows a decoding child stopped at its own limit: killing and reaping it,
# and recording the image failed, a transaction that may wait for a row lock
# or for the database to be connected to again (DATABASE_CONNECT_TIMEOUT,
# 10 s by default). At most a quarter of the hard limit, however short that is.
HARD_LIMIT_MARGIN_SECONDS = 15


def _decoding_time_limit() -> float:
    """Seconds a run may take to decode an image where no Celery soft time
    limit stops it (embedded, commands, a worker whose soft limit is 0): the
    soft limit, else the hard one less HARD_LIMIT_MARGIN_SECONDS. In a worker
    the hard limit kills the pool process: an image stopped there would be
    counted as its worker dying, and end failed as "died 3 times" after three
    runs of the whole hard limit, rather than as too slow after one."""
    if soft := settings.CELERY_TASK_SOFT_TIME_LIMIT:
        return float(soft)
    hard = settings.CELERY_TASK_TIME_LIMIT
    return hard - min(HARD_LIMIT_MARGIN_SECONDS, hard / 4)


def _image_render(image: Image, *, time_limit: bool, run_started: float) -> Image | None:
    started = time.monotonic()
    limit_mb = settings.IMAGE_MEMORY_LIMIT_MB
    limit = _decoding_time_limit() if time_limit else None
    rendered = (image.preset, image.file.name)
    try:
        preset = preset_get(image.preset)
        try:
            if not image.file:  # cleared by a save of its row: none to read
                raise FileNotFoundError
            with image.file.open("rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            # Not a store briefly away, which raises other errors: tried
            # again, it would be missing again.
            return _image_original_missing(image, started=started)
        focal_point = image.focal_point
        result = sandbox.process(
            data,
            preset,
            max_pixels=settings.IMAGE_MAX_PIXELS,
            memory_limit_mb=limit_mb,
            # What is left of the run's limit once claimed and read.
            time_limit=None if limit is None else max(limit - (time.monotonic() - run_started), 0.001),
            focal_point=focal_point,
            nice=settings.IMAGE_NICE,
        )
    except (processing.ImageRejected, processing.ProcessingError) as exc:
        if exc.detail:  # the decoder's own words: for the log, not the reason staff see
            logger.warning("image id=%s failed: %s", image.pk, processing.logged(exc))
        return image_mark_failed(image_id=image.pk, reason=str(exc), started=started)
    except ValidationError as exc:
        return image_mark_failed(image_id=image.pk, reason=str(exc), started=started)
    except sandbox.TimedOut as exc:
        reason = reason_too_slow(exc.seconds if limit is None else limit)
        return image_mark_failed(image_id=image.pk, reason=reason, started=started)
    except sandbox.OutOfMemory:
        return image_mark_failed(image_id=image.pk, reason=reason_out_of_memory(limit_mb), started=started)
    keyed = _outputs_keyed(result)
    # An image stored before its format was read as it is now (a JPEG
    # carrying a preview was "MPO", its original kept as .bin) is brought up
    # to date: its original copied under the key of its format, the row
    # pointed at the copy, the old object deleted once that has committed.
    rekeyed = None
    if result.info.format != image.format:
        rekeyed = storage.original_key(image.sha256, result.info.format)
    with (
        storage.writing([key for _, key in keyed] + ([rekeyed] if rekeyed else [])),
        _dropped_unless_saved(rekeyed),
    ):
        if rekeyed:
            storage.put(rekeyed, data, sha256=image.sha256)
        del data
        rows = _outputs_to_rows(image, keyed)
        elapsed = int((time.monotonic() - started) * 1000)
        with transaction.atomic():
            current = Image.objects.select_for_update().filter(pk=image.pk).first()
            if current is None or (current.preset, current.file.name) != rendered:
                # Deleted, or given another preset or file while this ran: what
                # was made is not its renditions. A run for what it is now
                # writes those (or has), so this one's objects go, unless shared.
                made = {row.storage_key for row in rows} | ({rekeyed} if rekeyed else set())
                transaction.on_commit(lambda: storage.delete_unreferenced(made))
                logger.info("image id=%s: changed while processed; this run's renditions dropped", image.pk)
                return current
            image = current
            # Old renditions' objects are kept a while after commit (a cached
            # redirect may point at them), then swept; see the signal handler.
            image.renditions.all().delete()
            Rendition.objects.bulk_create(rows)
            image.status = Image.Status.READY
            image.error = ""
            # The header can mislead: a PNG's EXIF orientation may follow its
            # pixels, and only the decode finds it.
            image.width, image.height = result.info.width, result.info.height
            image.placeholder = result.placeholder
            image.dominant_color = result.dominant_color
            image.focal_auto_x, image.focal_auto_y = result.focal_point.x, result.focal_point.y
            # Cut around staff's point, else around the estimate just made.
            _crops_cut_around(image, focal_point or result.focal_point)
            _recrop_if_moved(image)
            image.processing_ms = elapsed
            image.processed_at = timezone.now()
            image.save()
            if rekeyed:
                _image_rekey(image, key=rekeyed, image_format=result.info.format)
    _log(image, "ready", elapsed)
    return image


REASON_ORIGINAL_MISSING = (
    "Processing was given up: the original file is missing from the image store. Upload the image again."
)


def _image_original_missing(image: Image, *, started: float) -> Image | None:
    """The run's original is not in the store. Unless the image got another
    file meanwhile (its old one deleted once that committed: the run for the
    new one processes it), it ends failed at once: lost (restored from an
    older backup, deleted by hand), it will not come back by itself."""
    with transaction.atomic():
        current = Image.objects.select_for_update().filter(pk=image.pk).first()
        if current is None or current.file.name != image.file.name:
            return current
        logger.error("image id=%s: its original %s is missing from the store", image.pk, image.file.name)
        _set_failed(current, REASON_ORIGINAL_MISSING, elapsed=int((time.monotonic() - started) * 1000))
    return current


def _image_rekey(image: Image, *, key: str, image_format: str) -> None:
    """Point the image at its original copied under ``key``; the object at its
    old key goes once this commits, unless another row holds it. Updated
    without a save, whose signal would queue processing again: the renditions
    just made are the copy's."""
    old = image.file.name
    Image.objects.filter(pk=image.pk).update(file=key, format=image_format)
    image.file.name, image.format = key, image_format
    if old:
        transaction.on_commit(lambda: storage.delete_unreferenced({old}))


def _set_failed(image: Image, reason: str, *, elapsed: int | None) -> None:
    image.status = Image.Status.FAILED
    image.error = reason[:2000]
    image.processing_ms = elapsed
    image.processed_at = timezone.now()
    image.save()
    _log(image, f"failed: {reason}", elapsed)


def image_mark_failed(*, image_id: int, reason: str, started: float | None = None) -> Image | None:
    elapsed = int((time.monotonic() - started) * 1000) if started else None
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None:
            return None
        _set_failed(image, reason, elapsed=elapsed)
    return image


def image_give_up(*, image_id: int, reason: str) -> Image | None:
    """End failed the run a task could not finish (out of time, its store
    away), unless the image is no longer waiting for it: one made ready
    (by this run, whose error came once its renditions had committed, as
    the deletion of the original they replaced; or by another run) keeps
    them, and its status says so."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or image.status not in WAITING:
            return image
        _set_failed(image, reason, elapsed=None)
    return image


def image_mark_pending(*, image_id: int) -> None:
    """A try ended without an outcome and will be retried (a storage outage):
    the next try must not count it as a worker that died."""
    Image.objects.filter(pk=image_id, status=Image.Status.PROCESSING).update(
        status=Image.Status.PENDING, updated_at=timezone.now()
    )


def _stuck_before() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.IMAGE_STUCK_AFTER_SECONDS)


def _abandoned(image: Image, stuck_before: dt.datetime) -> bool:
    return image.updated_at < stuck_before or holders.gone(image.holder)


def image_take_over(*, image_id: int) -> str | None:
    """Process again an image left pending or processing by work that was
    lost: its holder process is gone (uploads.holders), or it has waited
    IMAGE_STUCK_AFTER_SECONDS (a task lost with the broker, a worker killed
    at the hard time limit). One whose worker died under it IMAGE_MAX_ATTEMPTS
    times ends failed instead.

    Returns "requeued", "failed", or None for an image nobody lost.
    """
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id, status__in=WAITING).first()
        if image is None or not _abandoned(image, _stuck_before()):
            return None  # finished meanwhile, or still in hand
        if image.status == Image.Status.PROCESSING and image.interruptions >= settings.IMAGE_MAX_ATTEMPTS:
            _set_failed(image, reason_died(image.interruptions), elapsed=None)
            return "failed"
        # Touched and held by this process: the next sweep leaves it alone.
        image.holder = holders.mine()
        image.save(update_fields=["holder", "updated_at"])
        dispatch.process_after_commit(image_id=image_id)
        return "requeued"


def image_sweep_stuck(*, cut_off_by: tuple[type[BaseException], ...] = ()) -> int:
    """Take over every image whose work was lost (image_take_over): at once
    where its holder process on this host is gone or the broker never took
    its task, else once it has waited IMAGE_STUCK_AFTER_SECONDS.

    None is taken over once the round's budget is spent (sweeps.budget): a
    broker back after a long outage leaves thousands of images to queue
    again, each a round trip to it (a slow one while it is still away), and
    the rest wait for the next round. The oldest go first, and an image taken
    over is touched, so the next round goes on with the others. ``cut_off_by``
    is what the run's time limit raises (Celery's SoftTimeLimitExceeded): the
    run ends with what it did, without an error; the image it was taking over
    is taken over by a later round. Returns how many images it re-queued or
    failed.
    """
    started = time.monotonic()
    candidates = list(
        Image.objects.filter(status__in=WAITING)
        .filter(
            Q(updated_at__lt=_stuck_before())
            | Q(holder__startswith=holders.this_host())
            | Q(holder=holders.UNQUEUED)
        )
        .order_by("updated_at", "pk")
        .only("pk", "holder", "updated_at")
    )
    outcomes: dict[str | None, list[int]] = {}
    gone_over = 0
    stopped = ""
    try:
        for image in candidates:
            # The first always: a round that did nothing would leave the next the same.
            if gone_over and time.monotonic() - started >= sweeps.budget():
                stopped = "its time was spent"
                break
            if _abandoned(image, _stuck_before()):
                outcomes.setdefault(image_take_over(image_id=image.pk), []).append(image.pk)
            gone_over += 1
    except cut_off_by:
        stopped = "cut off by the time limit"
    if requeued := outcomes.get("requeued"):
        logger.warning("re-queued %d images whose processing was lost: %s", len(requeued), requeued)
    if failed := outcomes.get("failed"):
        logger.warning("gave up on %d images whose worker kept dying: %s", len(failed), failed)
    if stopped:
        logger.warning(
            "stuck images: %s after going over %d of %d; the next round goes on with the rest",
            stopped,
            gone_over,
            len(candidates),
        )
    return len(outcomes.get("requeued", ())) + len(outcomes.get("failed", ()))


def _log(image: Image, outcome: str, elapsed: int | None) -> None:
    logger.info(
        "image id=%s sha256=%s format=%s size=%sx%s bytes=%s preset=%s ms=%s outcome=%s",
        image.pk,
        image.sha256[:12],
        image.format,
        image.width,
        image.height,
        image.bytes,
        image.preset,
        elapsed,
        outcome,
    )


def image_reprocess(
    *,
    images: Iterable[Image],
    preset: str | None = None,
    user_id: int | None = None,
    change_message: str = "",
) -> int:
    """Queue images for processing again (optionally with another preset),
    each with a fresh count of tries; processing starts once each commits.
    An image deleted since the caller read it is passed over, not counted.

    With ``user_id``, each image queued gets an entry in its admin history
    saying ``change_message``, written together at the end (a few
    statements, not one per image), those queued before a failure included.
    Without it nothing is kept of the images queued: a command's run may
    queue any number."""
    count = 0
    queued: list[Image] = []
    try:
        for image in images:
            with transaction.atomic():
                # Locked, so that a deletion cannot come between the check and
                # the write (which would find no row to update).
                if not Image.objects.select_for_update().filter(pk=image.pk).exists():
                    continue
                fields = []
                if preset:
                    preset_get(preset)
                    image.preset = preset
                    fields.append("preset")
                image.save(update_fields=[*image.requeue(), *fields])
                dispatch.process_after_commit(image_id=image.pk, force=True)
            count += 1
            if user_id is not None:
                queued.append(image)
    finally:
        if user_id is not None and queued:
            LogEntry.objects.log_actions(user_id, queued, CHANGE, change_message)
    return count


@transaction.atomic
def image_set_focal_point(*, image: Image, focal_point: processing.FocalPoint | None) -> Image:
    """Set the focal point staff chose, or clear it (None) to go back to the
    automatic estimate. Once this commits, the cropped renditions of a ready
    image are cut again around it, unless they already are; the others keep
    their objects. A store that is away then leaves the crops for the sweep
    (image_sweep_moved_crops): the point is saved all the same, and setting
    it again cuts them at once.

    Raises ValidationError for a point outside the picture.
    """
    locked = Image.objects.select_for_update().get(pk=image.pk)
    before = locked.focal_point
    locked.focal_x = focal_point.x if focal_point else None
    locked.focal_y = focal_point.y if focal_point else None
    locked.focal_radius = focal_point.radius if focal_point else None
    # The fields written, not the others: an image kept from before a rule
    # of its text (direction controls) would refuse every point.
    written = ["focal_x", "focal_y", "focal_radius"]
    locked.full_clean(exclude=[f.name for f in Image._meta.fields if f.name not in written])
    locked.save(update_fields=[*written, "updated_at"])
    if locked.focal_point != before:
        # Fills made on demand (uploads.ondemand) were cut around the old
        # point: they are made again on their next request.
        locked.renditions.filter(name__startswith="fill-").delete()
    # Compared with what the crops were cut around, not with the point
    # before: a save whose recrop the store refused is finished by the next.
    if locked.crops_outdated:
        _recrop_after_commit(locked.pk)
    return locked


def _crops_cut_around(image: Image, point: processing.FocalPoint | None) -> list[str]:
    """Record on ``image`` that its crops are cut around ``point``; returns
    the fields to save."""
    image.crops_x = point.x if point else None
    image.crops_y = point.y if point else None
    image.crops_radius = point.radius if point else None
    return ["crops_x", "crops_y", "crops_radius"]


def _recrop_if_moved(image: Image) -> None:
    """The focal point was moved while the crops were being cut around the
    old one: cut them again once the renditions commit."""
    if image.crops_outdated:
        _recrop_after_commit(image.pk)


def _away(exc: BaseException) -> str:
    """What a recrop that will be tried again (storage.UNAVAILABLE) found away."""
    if isinstance(exc, sandbox.NotStarted):
        return "no process to decode it could be started"
    return "the store is unavailable"


def _recrop_after_commit(image_id: int) -> None:
    """Cut the crops again once the current transaction commits, and once
    the caller's ``storage.writing`` block (processing's) has let its keys
    go: the new crops' keys taken while those are held could wait in a
    circle with a deletion. What is committed by then stands: a store that
    is away leaves the crops as they were, for the sweep, instead of failing
    the caller after the fact."""

    def recrop() -> None:
        try:
            image_recrop(image_id=image_id)
        except storage.UNAVAILABLE as exc:
            logger.warning("image id=%s: crops left for the sweep, %s: %s", image_id, _away(exc), exc)

    transaction.on_commit(lambda: storage.after_writing(recrop))


def image_recrop(*, image_id: int, run_started: float | None = None) -> Image | None:
    """Cut the cropped renditions of a ready image again around its focal
    point in force (set, or estimated when it was processed) and record that
    point as the crops'; the width ladder is left alone. Decoding runs under
    the same ceiling and time limit as processing, counted from
    ``run_started`` (``time.monotonic()``) for a run that did other work
    first (a sweep's round), as a worker's limits count; should it fail, the old
    crops stay, the reason is logged and the point is recorded all the same:
    what decoding refuses once it refuses again, and the sweep is not to
    decode it every round (reprocessing the image cuts them). Storage errors
    propagate.
    """
    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.status != Image.Status.READY:
        return image  # a run still to come cuts the crops around the new point
    used = image.focal_point_in_force
    try:
        preset = preset_get(image.preset)
    except ValidationError:
        # Removed from the settings since: nothing cuts them until the image
        # is reprocessed with another preset, which cuts anew.
        logger.warning(
            "image id=%s: crops not remade: its preset %r is no longer known", image_id, image.preset
        )
        return _crops_given_up(image, used)
    keyed: list[tuple[processing.Output, str]] = []
    if preset.crop_names:
        try:
            with image.file.open("rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            # Lost from the store (restored from an older backup, deleted by
            # hand, or the image deleted meanwhile): asking again will not
            # bring it back, unlike a store that is briefly away.
            logger.error(
                "image id=%s: crops not remade: its original %s is missing", image_id, image.file.name
            )
            return _crops_given_up(image, used)
        limit = _decoding_time_limit()
        if run_started is not None:
            # What is left of it: a worker's limits count from the start of the run.
            limit = max(limit - (time.monotonic() - run_started), 0.001)
        try:
            result = sandbox.process(
                data,
                preset,
                max_pixels=settings.IMAGE_MAX_PIXELS,
                memory_limit_mb=settings.IMAGE_MEMORY_LIMIT_MB,
                time_limit=limit,
                focal_point=used,
                crops_only=True,
                nice=settings.IMAGE_NICE,
            )
        except (
            processing.ImageRejected,
            processing.ProcessingError,
            sandbox.TimedOut,
            sandbox.OutOfMemory,
            sandbox.Died,
        ) as exc:
            logger.warning(
                "image id=%s: crops not remade: %s; the old ones stay until it is reprocessed",
                image_id,
                processing.logged(exc),
            )
            return _crops_given_up(image, used)
        keyed = _outputs_keyed(result)
    # A preset without crops has nothing to cut: the point is recorded alone.
    keys = {key for _, key in keyed}
    with storage.writing(keys):
        rows = _outputs_to_rows(image, keyed)
        try:
            with transaction.atomic():
                locked = Image.objects.select_for_update().filter(pk=image_id).first()
                if (
                    locked is None
                    or locked.status != Image.Status.READY
                    or locked.preset != image.preset
                    or locked.focal_point_in_force != used
                ):
                    # Changed meanwhile; whatever changed it cuts the crops anew.
                    transaction.on_commit(lambda: storage.delete_unreferenced(keys))
                    return locked
                # The old objects are kept a while after commit, then swept
                # (signal handler), unless a new row holds the same key.
                locked.renditions.filter(name__in=preset.crop_names).delete()
                Rendition.objects.bulk_create(rows)
                locked.save(update_fields=["updated_at", *_crops_cut_around(locked, used)])
        except BaseException:
            storage.delete_unreferenced(keys)
            raise
    if preset.crop_names:
        logger.info("image id=%s: %s cut again around %s", image_id, ", ".join(preset.crop_names), used)
    return locked


def _crops_given_up(image: Image, used: processing.FocalPoint | None) -> Image | None:
    """Record ``used`` as the point of ``image``'s crops, which could not be
    cut around it, unless the image changed meanwhile (whatever changed it
    cuts them anew)."""
    with transaction.atomic():
        locked = Image.objects.select_for_update().filter(pk=image.pk).first()
        if (
            locked is not None
            and locked.status == Image.Status.READY
            and locked.preset == image.preset
            and locked.focal_point_in_force == used
        ):
            locked.save(update_fields=_crops_cut_around(locked, used))
    return locked


# The most images a sweep cuts the crops of again: each is decoded anew.
RECROP_BATCH = 10


def image_sweep_moved_crops(*, cut_off_by: tuple[type[BaseException], ...] = ()) -> int:
    """Cut again the crops of ready images whose focal point in force moved
    since they were cut (a store away when staff saved the point), at most
    RECROP_BATCH a round, none started once the round's budget is spent
    (sweeps.budget): the rest wait for the next round. Stops at the first
    storage error: the next round tries again. ``cut_off_by`` is what the
    run's time limit raises (Celery's SoftTimeLimitExceeded): the image whose
    recrop it cuts off is given up, as one whose decoding ran out of time,
    instead of cutting off every run. Returns how many were cut again.
    """
    started = time.monotonic()
    # In no fixed order: an image whose original cannot be read now (which
    # stops the round) does not keep the others waiting round after round.
    candidates = list(
        Image.objects.filter(crops_owed(), preset__in=list(settings.IMAGE_PRESETS)).order_by("?")[
            :RECROP_BATCH
        ]
    )
    done = []
    for image in candidates:
        if time.monotonic() - started >= sweeps.budget():
            break
        try:
            recropped = image_recrop(image_id=image.pk, run_started=started)
        except storage.UNAVAILABLE as exc:
            logger.warning("crops of images left for the next sweep, %s: %s", _away(exc), exc)
            break
        except cut_off_by:
            logger.warning(
                "image id=%s: crops not remade: cut off by the time limit; the old ones stay until it is "
                "reprocessed",
                image.pk,
            )
            # Compared with the point in force when the round listed it: one
            # moved since is cut around by whatever moved it.
            _crops_given_up(image, image.focal_point_in_force)
            break
        if recropped is not None and not recropped.crops_outdated:
            done.append(image.pk)
    if candidates:
        logger.warning(
            "cut again the crops of %d of %d images whose focal point had moved: %s",
            len(done),
            len(candidates),
            done,
        )
    return len(done)


def image_export_files(image: Image, *, stem: str | None = None) -> list[tuple[str, bytes]]:
    """The ready image's renditions as (file name, bytes): ``<stem>.<ext>`` when
    the preset makes one file, ``<stem>-<name>.<ext>`` otherwise. The stem is
    the image's own file name's unless given: the same bytes stored earlier
    under another name are exported for the file in hand under its name."""
    stem = stem or image.stem
    renditions = list(image.renditions.all())
    files = []
    for rendition in renditions:
        ext = "jpg" if rendition.format == "jpeg" else rendition.format
        name = stem if len(renditions) == 1 else f"{stem}-{rendition.name}"
        with default_storage.open(rendition.storage_key, "rb") as fh:
            files.append((f"{name}.{ext}", fh.read()))
    return files


def image_keep(*, image_id: int) -> bool:
    """Whether the image is still there; if it is, it stays until the current
    transaction ends. For a write that makes a row point at it: a deletion of
    the image waits for that write to commit, then finds the new reference
    and clears it. Unlocked, the deletion would go ahead under the write,
    which would then fail as it commits, when the database checks references.

    On PostgreSQL the lock is FOR KEY SHARE, the one that check takes at
    commit: a deletion waits for it, an update of the image's columns does
    not. SQLite's writers take turns on the whole database."""
    if not connection.in_atomic_block:
        raise TransactionManagementError("image_keep() needs a transaction (transaction.atomic).")
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Image._meta.db_table} WHERE id = %s{lock}",  # noqa: S608 - the table's name
            [image_id],
        )
        return cursor.fetchone() is not None


def image_delete(*, image: Image) -> None:
    """Delete the row; its files go once the deletion commits (signal handler).

    The row is locked before the deletion gathers what points at it: a
    processing run committing renditions meanwhile commits first, and its
    renditions go with the image instead of breaking the deletion."""
    with transaction.atomic():
        locked = Image.objects.select_for_update().filter(pk=image.pk).first()
        if locked is not None:  # else deleted meanwhile: nothing left to do
            locked.delete()
