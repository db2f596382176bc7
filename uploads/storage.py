"""Where image files live, and under which keys.

Two stores. Renditions go to the default storage (``STORAGES["default"]``):
public, served by the portal or straight from a bucket. Originals go to
``STORAGES["originals"]``: private, never under a public URL (a folder outside
the media root, or a bucket that refuses anonymous reads); staff download them
through the admin or the API after a permission check.

Keys are made by the server from the content's hash, so an object's bytes never
change once written: they are cached for a year as immutable, and writing the
same content twice finds the object already there instead of overwriting it.

So one object may be the file of several rows (the same photo uploaded twice,
the same rendition of both). A writer that stores an object and then commits
a row pointing at it does both inside ``writing(keys)``; ``delete_unreferenced``
waits for such writers of its keys, then sees their rows, or they wait for it
and store the object again.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import DatabaseError
from django.utils import timezone
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from core import locks

# models as a module, not its classes: the model's file field opens this
# module (through STORAGES) while uploads.models is still being imported.
from uploads import models, processing
from uploads.originals import ORIGINALS

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
# Originals never change either, but only their owner's browser may keep them.
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
# What a storage that is briefly away raises (local disk or S3).
UNAVAILABLE: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)

ORIGINALS_PREFIX = "originals/"
RENDITIONS_PREFIX = "renditions/"
# What anyone may read from the public store.
PUBLIC_PREFIXES = (RENDITIONS_PREFIX,)
# Keys compared with the database, and deleted, per round trip.
BATCH = 1000
# How long a replaced rendition's object outlives its row: a redirect to it
# (uploads.views) may be kept this long by browsers and proxies.
REPLACED_KEEP_SECONDS = 3600
# How long taking back a write the bucket did not confirm may hold its
# caller: to connect, then to be answered, one try (see discard_unconfirmed).
DISCARD_TIMEOUT_SECONDS = 1
# What may keep it from deleting: the store, or the rows it asks first.
_DISCARD_FAILURES: tuple[type[Exception], ...] = (*UNAVAILABLE, DatabaseError)
# This thread's S3 clients, by purpose and store (see _client).
_clients = threading.local()

# Where a bounded orphan sweep stopped (the last key it went past), for the
# next run to go on from: in the shared cache, which every worker of a fleet
# reads (Redis), or var/ embedded.
SWEEP_POSITION_KEY = "uploads.orphan-sweep.after"

# The content type of each stored object, from its key's extension.
_TYPE_BY_EXTENSION = {ext: ctype for ctype, ext in processing.FORMAT_FILES.values()}


def object_content_type(key: str) -> str | None:
    """The content type of the object at ``key``, from its extension (the
    formats renditions and originals are stored in), whatever the machine's
    own list of types knows: a fresh one (no /etc/mime.types) knows no WebP."""
    return _TYPE_BY_EXTENSION.get(key.rsplit(".", 1)[-1].lower())


def storage_for(key: str) -> Storage:
    return storages[ORIGINALS] if key.startswith(ORIGINALS_PREFIX) else storages["default"]


def original_key(sha256: str, image_format: str) -> str:
    return f"{ORIGINALS_PREFIX}{sha256[:2]}/{sha256}.{processing.extension(image_format)}"


def rendition_key(data: bytes, extension: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{RENDITIONS_PREFIX}{digest[:2]}/{digest}.{extension}"


def put(key: str, data: bytes, *, sha256: str | None = None) -> str:
    """Write the object unless it is there already (same key, same bytes).

    ``sha256`` (hex) saves hashing the bytes again when the caller has it: a
    bucket is sent it and checks the bytes against it.
    """
    store = storage_for(key)
    if isinstance(store, S3Storage):
        return _s3_put_new(store, _checksummed_client(store), key, data, sha256)
    if isinstance(store, FileSystemStorage):
        return _local_put(store, key, data)
    if store.exists(key):
        return key
    return store.save(key, ContentFile(data))


def _local_put(store: FileSystemStorage, key: str, data: bytes) -> str:
    """Write to a temporary name beside the key, then rename it into place, so
    a write cut short (a full disk) never leaves a truncated file at a key
    that later writes would take for the same bytes. A file already at the
    key with another size is such a leftover and is replaced."""
    path = store.path(key)
    try:
        if os.path.getsize(path) == len(data):
            return key
    except FileNotFoundError:
        pass
    # Named after the key, with a suffix no key has; one a killed process
    # left behind is swept as an orphan.
    temporary = f"{key}.{secrets.token_hex(8)}.part"
    try:
        temporary = store.save(temporary, ContentFile(data))
        os.replace(store.path(temporary), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(store.path(temporary))
        raise
    return key


def _client(store: S3Storage, purpose: str, config: Config) -> Any:
    """A client of the store's bucket with ``config`` over the store's own,
    kept per thread and purpose as the store keeps its client."""
    clients = _clients.__dict__.setdefault(purpose, weakref.WeakKeyDictionary())
    client = clients.get(store)
    if client is None:
        client = clients[store] = store._create_session().client(
            "s3",
            region_name=store.region_name,
            use_ssl=store.use_ssl,
            endpoint_url=store.endpoint_url,
            config=store.client_config.merge(config),
            verify=store.verify,
        )
    return client


def _checksummed_client(store: S3Storage) -> Any:
    """A client for PUTs that carry their body's SHA-256 (see _s3_put_new).

    The body is left out of the request's signature: the checksum stands for
    it, in a signed header, and the bucket checks the bytes against it. Over
    TLS botocore settles for that by itself; over plain HTTP it would hash
    the bytes a second time.
    """
    s3 = store.client_config.s3 or {}
    return _client(store, "checksummed", Config(s3={**s3, "payload_signing_enabled": False}))


def discard_unconfirmed(key: str) -> None:
    """Delete the object of a write to a bucket that failed (timed out, cut
    off, refused) unless a row holds it (an identical upload's): the bucket
    may have stored it all the same.

    One prompt request (DISCARD_TIMEOUT_SECONDS to connect and as many to be
    answered, no second try), for the caller to make before it answers: the
    client cannot send the same file again meanwhile, which the delete would
    take from under it. What it misses (a store too slow for this request
    too, a write that lands later still) the orphan sweep deletes once
    IMAGE_ORPHAN_GRACE_SECONDS old.

    Made as ``delete_unreferenced`` deletes: once the caller's ``writing``
    block has let the key go, holding it alone. An identical upload beside
    this one may have found the object there and be committing its row: the
    check waits for that row instead of deleting its original from under it.
    """
    store = storage_for(key)
    if not isinstance(store, S3Storage):
        return  # a local write cut short leaves nothing at its key (_local_put)
    timeout = min(DISCARD_TIMEOUT_SECONDS, settings.STORAGE_TIMEOUT_SECONDS)
    prompt = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})

    def discard() -> None:
        try:
            with locks.exclusive(_object_locks({key})):
                if not _referenced({key}):
                    _client(store, "prompt", prompt).delete_object(
                        Bucket=store.bucket_name, Key=store._normalize_name(clean_name(key))
                    )
        except _DISCARD_FAILURES as exc:
            logger.warning("unconfirmed write of %s left to the orphan sweep: %s", key, exc)

    after_writing(discard)


def _s3_put_new(store: S3Storage, client: Any, key: str, data: bytes, sha256: str | None) -> str:
    """One conditional PUT (``If-None-Match: *``): the bucket refuses it when
    the key is taken, so nothing is ever overwritten, with no HEAD first. The
    bytes go as they are (no transfer manager, no copy) with their SHA-256,
    which the bucket checks (BadDigest otherwise)."""
    name = store._normalize_name(clean_name(key))
    params = store._get_write_parameters(name)
    digest = bytes.fromhex(sha256) if sha256 else hashlib.sha256(data).digest()
    params["ChecksumSHA256"] = base64.b64encode(digest).decode()
    for attempt in range(2):
        try:
            client.put_object(Bucket=store.bucket_name, Key=name, Body=data, IfNoneMatch="*", **params)
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "PreconditionFailed":
                break  # there already: the same key holds the same bytes
            if code == "ConditionalRequestConflict" and attempt == 0:
                continue  # the same key being written meanwhile: ask again once it is settled
            raise
    return key


def original_url(key: str, *, expires: int, filename: str = "") -> str | None:
    """A short-lived signed URL of an original in a bucket; None when the
    store has no such URLs (local files are streamed by the portal).

    The bucket answers it as the portal streams a local original: bytes to
    save (never to show: the upload was never checked for what a browser
    might make of it), under ``filename``. The name goes in the signed
    link, not on the object, which identical uploads of other names share.
    """
    store = storages[ORIGINALS]
    if isinstance(store, S3Storage):
        parameters = {
            "ResponseContentType": "application/octet-stream",
            "ResponseContentDisposition": content_disposition_header(
                True, filename or key.rsplit("/", 1)[-1]
            ),
        }
        return store.url(key, parameters=parameters, expire=expires)
    return None


def public_read_policy() -> dict[str, Any]:
    """The media bucket's policy: anyone may read renditions, nothing else.

    Originals (in their own bucket, or under ``originals/`` of this one) stay
    readable only with the keys or a signed URL.
    """
    store = storages["default"]
    if not isinstance(store, S3Storage):
        raise TypeError("media are not in a bucket")
    prefix = store._normalize_name(RENDITIONS_PREFIX)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRenditions",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{store.bucket_name}/{prefix}*",
            }
        ],
    }


def public_read_policy_apply() -> dict[str, Any]:
    store = storages["default"]
    policy = public_read_policy()
    if not isinstance(store, S3Storage):  # for the type checker: the call above refused it
        raise TypeError("media are not in a bucket")
    store.connection.meta.client.put_bucket_policy(Bucket=store.bucket_name, Policy=json.dumps(policy))
    return policy


def _object_locks(keys: Iterable[str]) -> list[str]:
    return [f"uploads.object:{key}" for key in keys]


class _Writing(threading.local):
    """This thread's ``writing`` blocks under way, and what waits for them."""

    def __init__(self) -> None:
        self.depth = 0
        self.after: list[Callable[[], object]] = []


_writing = _Writing()


@contextlib.contextmanager
def writing(keys: Iterable[str]) -> Iterator[None]:
    """Around storing objects and committing the rows that point at them (see
    the module's docstring): no deletion of those keys runs in between.

    What the block starts that takes keys of its own (a deletion of what a
    writer whose row failed stored, the processing of an upload run in this
    thread) runs once the block's keys are let go (``after_writing``): taken
    while these are held, other keys would be waited for holding them, in a
    circle with a deletion of several keys that waits for this block (on
    SQLite nothing would end that wait)."""
    outermost = not _writing.depth
    _writing.depth += 1
    try:
        with locks.shared(_object_locks(keys)):
            yield
    except BaseException:
        _writing.depth -= 1
        if outermost:
            _run_after(raising=False)  # the block's own error is the one to hear of
        raise
    _writing.depth -= 1
    if outermost:
        _run_after(raising=True)


def _run_after(*, raising: bool) -> None:
    """Run what waited for this thread's writing block, every call even when
    one fails (a failed deletion must not leave an upload unprocessed); the
    first failure is raised once all have run, if ``raising``."""
    calls, _writing.after = _writing.after, []
    first: Exception | None = None
    for call in calls:
        try:
            call()
        except Exception as exc:
            logger.exception("what waited for a write failed: %s", exc)
            first = first or exc
    if first is not None and raising:
        raise first


def after_writing(call: Callable[[], object]) -> None:
    """Call now, or once this thread's ``writing`` block under way ends."""
    if _writing.depth:
        _writing.after.append(call)
    else:
        call()


def _referenced(keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    held = set(models.Image.objects.filter(file__in=keys).values_list("file", flat=True))
    held |= set(models.Rendition.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True))
    return held


def _referenced_or_replaced(keys: Iterable[str]) -> set[str]:
    """The keys a row points at, or that are replaced renditions still kept:
    one statement, as a sweep asks it of every batch."""
    keys = list(keys)
    # Unordered: a compound statement takes no ORDER BY in its parts.
    images = models.Image.objects.filter(file__in=keys).order_by().values_list("file", flat=True)
    return set(
        images.union(
            models.Rendition.objects.filter(storage_key__in=keys).order_by().values_list("storage_key"),
            models.ReplacedObject.objects.filter(key__in=keys).order_by().values_list("key"),
        )
    )


def _delete(keys: list[str]) -> None:
    """Delete keys of one store, a thousand per request on S3."""
    if not keys:
        return
    store = storage_for(keys[0])
    if isinstance(store, S3Storage):
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            store.bucket.delete_objects(
                Delete={"Objects": [{"Key": store._normalize_name(k)} for k in chunk], "Quiet": True}
            )
        return
    for key in keys:
        store.delete(key)


def delete_unreferenced(keys: set[str], *, sparing_replaced: bool = False) -> list[str]:
    """Delete the objects that no image or rendition row points at any more,
    and, ``sparing_replaced``, that are not replaced renditions still kept
    (ReplacedObject). Within a ``writing`` block, once the block ends (and
    then nothing is returned)."""
    if not keys:
        return []
    if _writing.depth:
        after_writing(lambda: delete_unreferenced(keys, sparing_replaced=sparing_replaced))
        return []
    # After the writers of these keys under way: their rows are committed then.
    with locks.exclusive(_object_locks(keys)):
        held = _referenced_or_replaced(keys) if sparing_replaced else _referenced(keys)
        gone = sorted(keys - held)
        _delete([k for k in gone if k.startswith(ORIGINALS_PREFIX)])
        _delete([k for k in gone if not k.startswith(ORIGINALS_PREFIX)])
    return gone


def released(*, images: set[int], files: set[str], renditions: dict[int, set[str]]) -> list[str]:
    """Rows deleted together are gone: the ``images`` (ids) with their
    ``files``, and the ``renditions`` (keys by image id). A rendition whose
    image still exists (processed again, a fill cut anew) keeps its object
    for REPLACED_KEEP_SECONDS; every other object goes now, in one round of
    statements and store requests, as does every object the deleted images
    replaced earlier. Returns the keys deleted."""
    staying = set(models.Image.objects.filter(pk__in=images | set(renditions)).values_list("pk", flat=True))
    gone = set(files)
    for image_id, keys in renditions.items():
        if image_id in staying:
            replaced_keep(keys, image_id=image_id)
        else:
            gone |= keys
    # Their own privacy outweighs a cached redirect.
    replaced = models.ReplacedObject.objects.filter(image_id__in=images - staying)
    gone |= set(replaced.values_list("key", flat=True))
    replaced.delete()
    return delete_unreferenced(gone)


def replaced_keep(keys: set[str], *, image_id: int) -> None:
    unused = keys - _referenced(keys)
    if unused:
        models.ReplacedObject.objects.bulk_create(
            [models.ReplacedObject(key=k, image_id=image_id, replaced_at=timezone.now()) for k in unused],
            update_conflicts=True,
            unique_fields=["key"],
            update_fields=["image_id", "replaced_at"],
        )


def list_objects(store: Storage, prefix: str, *, after: str = "") -> Iterator[tuple[str, dt.datetime]]:
    """Every key under ``prefix`` with its modification time, in key order,
    those that sort after ``after`` alone. Listed in pages (S3 gives a
    thousand keys and their times per request: no request per object)."""
    if isinstance(store, S3Storage):
        location = store._normalize_name("")
        strip = len(location) + 1 if location else 0
        params = {"Bucket": store.bucket_name, "Prefix": store._normalize_name(prefix)}
        if after:
            params["StartAfter"] = store._normalize_name(after)
        pages = store.connection.meta.client.get_paginator("list_objects_v2").paginate(**params)
        for page in pages:
            for obj in page.get("Contents", ()):
                yield obj["Key"][strip:], obj["LastModified"]
        return
    if isinstance(store, FileSystemStorage):
        yield from _local_objects(store.path(""), prefix, after)
        return
    raise TypeError(f"cannot list a {type(store).__name__}")


def _local_objects(root: str, folder: str, after: str) -> Iterator[tuple[str, dt.datetime]]:
    """The files under ``folder`` (a key prefix ending in ``/``) after
    ``after``, in the order S3 lists keys: a folder sorts as its name and a
    slash, and one whose keys all sort before ``after`` is not read."""
    try:
        with os.scandir(os.path.join(root, folder)) as listing:
            entries = [
                (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
                for entry in listing
            ]
    except OSError:
        return  # gone meanwhile, or unreadable: as os.walk, nothing listed
    for name, entry in sorted(entries, key=lambda named: named[0]):
        key = folder + name
        if name.endswith("/"):
            if key > after or after.startswith(key):
                yield from _local_objects(root, key, after)
        elif key > after and entry.is_file():
            try:
                modified = entry.stat().st_mtime
            except FileNotFoundError:
                continue  # deleted since it was listed
            yield key, dt.datetime.fromtimestamp(modified, tz=dt.UTC)


T = TypeVar("T")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def sweep_orphans(
    *,
    grace_seconds: int,
    budget_seconds: float | None = None,
    cut_off_by: tuple[type[BaseException], ...] = (),
) -> list[str]:
    """Delete objects no row points at, older than the grace period.

    Files are written before their rows commit, so a transaction rolled back
    by its caller, or a worker killed between writing renditions and saving
    them, leaves objects behind; this finds them. The grace period spares
    uploads still in flight; a replaced rendition's object is kept until
    REPLACED_KEEP_SECONDS have passed since it was replaced. Storage is listed
    in key order (originals, then renditions) and compared with the database
    BATCH keys at a time: each batch with the rows and the replaced
    renditions as they are then, not as they were when the sweep began (an
    image processed again while a large store is listed keeps its old
    renditions' objects as long as any other).

    With ``budget_seconds`` a run is one stretch of a store that may be too
    large to go over within a worker's time limit: it goes on from where the
    last run stopped (SWEEP_POSITION_KEY in the shared cache), starts no
    batch once the budget is spent (the first it always does), and saves how
    far it got after each batch; the run that reaches the last key leaves
    the next to start from the first again. Cut off by the run's time limit
    (``cut_off_by``: Celery's SoftTimeLimitExceeded), it ends with what it
    deleted, and the next run does the batch under way again. Without a
    budget the whole store is gone over, and the saved position is left as
    it was. Returns the keys deleted.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=grace_seconds)
    models.ReplacedObject.objects.filter(
        replaced_at__lte=now - dt.timedelta(seconds=REPLACED_KEEP_SECONDS)
    ).delete()
    bounded = deadline is not None
    position = caches["shared"]
    after: str = (position.get(SWEEP_POSITION_KEY) or "") if bounded else ""
    run = _SweepRun(after)
    try:
        for prefix in (ORIGINALS_PREFIX, RENDITIONS_PREFIX):
            if after > prefix and not after.startswith(prefix):
                continue  # every key under it sorts before: gone over already
            listed = list_objects(
                storage_for(prefix), prefix, after=after if after.startswith(prefix) else ""
            )
            for batch in _batches(listed, BATCH):
                if deadline is not None and run.batches and time.monotonic() >= deadline:
                    logger.info("orphan sweep: %s; the next run goes on from there", run)
                    return run.gone
                old = {key for key, modified in batch if modified <= cutoff}
                run.gone.extend(delete_unreferenced(old, sparing_replaced=True))
                run.went_past(batch[-1][0], len(batch))
                if bounded:
                    position.set(SWEEP_POSITION_KEY, run.reached, timeout=None)
    except cut_off_by:
        logger.warning("orphan sweep cut off by the time limit: %s; the next run goes on from there", run)
        return run.gone
    if bounded:
        position.delete(SWEEP_POSITION_KEY)
        logger.info("orphan sweep: %s, the last; the next run starts from the first", run)
    return run.gone


class _SweepRun:
    """How far a run of the orphan sweep got, as its log line tells it."""

    def __init__(self, after: str) -> None:
        self.after = after
        self.reached = after
        self.listed = 0
        self.batches = 0
        self.gone: list[str] = []

    def went_past(self, key: str, listed: int) -> None:
        self.reached = key
        self.listed += listed
        self.batches += 1

    def __str__(self) -> str:
        start = f"after {self.after}" if self.after else "from the first"
        end = f" to {self.reached}" if self.batches else ""
        return f"went over {self.listed} objects {start}{end} and deleted {len(self.gone)}"


def originals_make_private() -> tuple[int, int]:
    """Move originals that an older release kept in the public store into the
    private one. Idempotent. Returns (moved, already private)."""

    public, private = storages["default"], storages[ORIGINALS]
    if _same_place(public, private):
        return 0, models.Image.objects.count()
    moved = kept = 0
    for key in models.Image.objects.values_list("file", flat=True).iterator():
        if not key:
            continue
        if public.exists(key):
            if not private.exists(key):
                with public.open(key, "rb") as fh:
                    private.save(key, ContentFile(fh.read()))
            public.delete(key)
            moved += 1
        else:
            kept += 1
    return moved, kept


def _same_place(a: Storage, b: Storage) -> bool:
    if isinstance(a, S3Storage) and isinstance(b, S3Storage):
        return (a.bucket_name, a.location) == (b.bucket_name, b.location)
    if isinstance(a, FileSystemStorage) and isinstance(b, FileSystemStorage):
        return os.path.realpath(a.location) == os.path.realpath(b.location)
    return False


class MediaS3Storage(S3Storage):
    """S3 storage that marks content-addressed objects as immutable, and
    gives up on a store that does not answer well within a web worker's
    timeout (``STORAGE_TIMEOUT_SECONDS`` a try, two tries), so a hung store
    is answered with a 503 like one that refuses connections."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        timeout = settings.STORAGE_TIMEOUT_SECONDS
        base: Config = getattr(self, "client_config")  # noqa: B009 (untyped in django-storages)
        self.client_config = base.merge(
            Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                # Two tries in all ("max_attempts" would count the retries alone: three).
                retries={"total_max_attempts": 2, "mode": "standard"},
            )
        )

    def _create_session(self) -> Any:
        # One per thread, shared by the store's connection and the client of
        # checksummed PUTs: each new session loads the S3 model again (0.1 s).
        sessions = _clients.__dict__.setdefault("sessions", weakref.WeakKeyDictionary())
        session = sessions.get(self)
        if session is None:
            session = sessions[self] = super()._create_session()
        return session

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params = super().get_object_parameters(name)
        if name.startswith(RENDITIONS_PREFIX):
            params.setdefault("CacheControl", IMMUTABLE)
        elif name.startswith(ORIGINALS_PREFIX):
            params.setdefault("CacheControl", PRIVATE_IMMUTABLE)
        known = object_content_type(name)
        if known:
            params.setdefault("ContentType", known)
        return params
