"""Health checks: the system checks of the course's monitoring script, and the
portal's dependencies (database, storage, broker).

Two uses with different needs. ``manage.py health_check`` and the staff view
of ``/health/`` run everything, sample the CPU and say why a check failed. The
load balancer's probes (``/health/live``, ``/health/ready``) must stay cheap
under any load and must not fail because the machine is busy, so readiness
only asks the database and the storage a read-only question, and the answer
is reused for a few seconds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection
from storages.backends.s3 import S3Storage

from portal.celery import app

logger = logging.getLogger(__name__)

BODY = "Please check your system and resolve the issue as soon as possible."
# A key that is never written: asking for it is a read-only round trip.
PROBE_KEY = "health/probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    subject: str = ""  # the alert email's subject when this check fails

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("subject")
        return data


def _shown(value: float, *, up: bool) -> str:
    """A measured value to one decimal, rounded away from the limit's side it
    is on: 80.04% of CPU over a limit of 80% shows as 80.1%, 19.96% of free
    disk under a minimum of 20% as 19.9%, never as the limit it failed."""
    tenths = math.ceil(value * 10) if up else math.floor(value * 10)
    return f"{tenths / 10:.1f}".removesuffix(".0")


def _given(limit: float) -> str:
    """A limit as the setting gave it, without a trailing .0: formatted with
    :g, to six digits, a limit of 99.99996% showed as 100%, one no usage is
    over, 99.99995% as 99.9999% and 0.00001% as 1e-05%."""
    return f"{Decimal(repr(limit)).normalize():f}"


def _cpu_subject() -> str:
    return f"Error - CPU usage is over {_given(settings.HEALTH_CPU_MAX_PERCENT)}%"


def _disk_subject() -> str:
    return f"Error - Available disk space is less than {_given(settings.HEALTH_DISK_MIN_PERCENT)}%"


def _memory_subject() -> str:
    return f"Error - Available memory is less than {settings.HEALTH_MEMORY_MIN_MB}MB"


def _measured(name: str, subject: Callable[[], str]) -> Callable[[Callable[[], Check]], Callable[[], Check]]:
    """A check whose measurement itself fails (/proc unreadable, a disk that
    cannot be stat'ed) fails, with the error, instead of stopping the run:
    the other checks are still made and reported, and its alert still goes,
    since a value no one can read is no reason to think it is fine."""

    def wrap(check: Callable[[], Check]) -> Callable[[], Check]:
        @functools.wraps(check)
        def guarded() -> Check:
            try:
                return check()
            except Exception as exc:  # noqa: BLE001 - any failure to measure means unhealthy
                return Check(name, False, f"not measured: {type(exc).__name__}: {exc}", subject())

        return guarded

    return wrap


@_measured("cpu", _cpu_subject)
def check_cpu() -> Check:
    limit = settings.HEALTH_CPU_MAX_PERCENT
    usage = psutil.cpu_percent(interval=0.5)
    return Check(
        "cpu",
        usage <= limit,
        f"CPU usage {_shown(usage, up=True)}% (limit {_given(limit)}%)",
        _cpu_subject(),
    )


def _existing(path: Path) -> Path:
    """The path, or the nearest folder above it that exists (not made yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk_paths() -> list[Path]:
    """``HEALTH_DISK_PATH``, and each other disk the portal writes to: the
    local stores and an SQLite database (the embedded set-up's var/), one
    path per filesystem."""
    configured = Path(settings.HEALTH_DISK_PATH)
    if not configured.exists():
        # A typo in it: measured on the nearest folder above, the check
        # would pass on the room of another disk, perhaps, than the one meant.
        # (The stores' folders below are made on their first write.)
        raise FileNotFoundError(f"the folder {configured} of PORTAL_HEALTH_DISK_PATH does not exist")
    candidates = [configured]
    for alias in ("default", "originals"):
        store = storages[alias]
        if isinstance(store, FileSystemStorage):
            candidates.append(Path(store.location))
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        candidates.append(Path(str(database["NAME"])).parent)
    paths, devices = [], set()
    for candidate in candidates:
        path = _existing(candidate.resolve())
        device = path.stat().st_dev
        if device not in devices:
            devices.add(device)
            paths.append(path)
    return paths


@_measured("disk", _disk_subject)
def check_disk() -> Check:
    limit = settings.HEALTH_DISK_MIN_PERCENT
    free, path = min(
        (100 * usage.free / usage.total, path)
        for path in _disk_paths()
        if (usage := shutil.disk_usage(path)).total
    )
    return Check(
        "disk",
        free >= limit,
        f"{_shown(free, up=False)}% of disk free on {path} (minimum {_given(limit)}%)",
        _disk_subject(),
    )


@_measured("memory", _memory_subject)
def check_memory() -> Check:
    limit = settings.HEALTH_MEMORY_MIN_MB
    available = psutil.virtual_memory().available / 1024 / 1024
    return Check(
        "memory",
        available >= limit,
        f"{_shown(available, up=False)} MB of memory available (minimum {limit} MB)",
        _memory_subject(),
    )


def check_localhost() -> Check:
    try:
        address = socket.gethostbyname("localhost")
    except OSError as exc:
        address = f"unresolvable ({exc})"
    return Check(
        "localhost",
        address == "127.0.0.1",
        f"localhost resolves to {address}",
        "Error - localhost cannot be resolved to 127.0.0.1",
    )


class NoAnswer(Exception):
    """The database took the connection (or kept it) but did not answer."""


@contextlib.contextmanager
def _cut_after(raw: Any, seconds: float, cut: threading.Event) -> Iterator[None]:
    """Shuts the socket of the driver's connection ``raw`` down if the block
    has not ended within ``seconds``: the driver waits on it with no limit,
    and a server stuck after taking the connection (or a proxy before one
    that is down) would hold the check for ever. The block's wait then ends
    at once, as with a server that hung up, and ``cut`` is set. A
    copy of the descriptor is shut down, never a number the main thread
    might have closed and the process given to another socket since."""
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    done, lock = threading.Event(), threading.Lock()

    def watch() -> None:
        if done.wait(seconds):
            return
        with lock:
            if not done.is_set():
                cut.set()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    watcher = threading.Thread(target=watch, name="database-check-bound", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            done.set()
        watcher.join()
        sock.close()


def _database_seconds() -> float:
    """How long the check waits for an answer: as long as for a connection
    (DATABASE_CONNECT_TIMEOUT, or the connect_timeout of DATABASE_URL)."""
    return float(connection.settings_dict.get("OPTIONS", {}).get("connect_timeout") or 10)


def _select_one() -> None:
    if connection.vendor != "postgresql":
        # A file on this machine: nothing to hang on but its lock, which
        # has its own timeout.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return
    seconds = _database_seconds()
    connection.ensure_connection()  # bounded by connect_timeout
    raw = connection.connection
    cut = threading.Event()
    try:
        # The driver's cursor, not Django's: Django's may first ask a
        # connection kept from before whether it is usable and, if not,
        # connect again, to a socket this bound does not cover.
        with _cut_after(raw, seconds, cut), raw.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        if cut.is_set():
            # The answer came as the bound ran out: the socket is shut down
            # all the same, and the connection can carry no other query.
            raise NoAnswer(f"no answer to SELECT 1 within {seconds:g} s")
    except Exception as exc:
        # Broken or cut: whatever uses the connection next connects afresh.
        connection.close()
        if cut.is_set():
            raise NoAnswer(f"no answer to SELECT 1 within {seconds:g} s") from exc
        raise


def check_database() -> Check:
    subject = "Error - The database is unavailable"
    kept = connection.connection is not None
    try:
        try:
            _select_one()
        except NoAnswer:
            raise
        except Exception:
            if not kept:
                raise
            # A connection kept from before may have been closed by the
            # server since (a restart, an idle timeout): once more, afresh.
            _select_one()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("database", False, f"{type(exc).__name__}: {exc}", subject)
    return Check("database", True, connection.vendor, subject)


class StoreMissing(Exception):
    """A store that answers but is not there: its bucket does not exist."""


def _probe(store: Storage) -> None:
    """A read-only question the store must answer: a folder that exists (or
    can be made) and is writable, or a bucket that exists."""
    if isinstance(store, FileSystemStorage):
        path = _existing(Path(store.location))
        if not path.is_dir() or not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise OSError(f"{path} is not a writable folder")
        return
    if isinstance(store, S3Storage):
        _probe_bucket(store)
        return
    store.exists(PROBE_KEY)


def _probe_bucket(store: S3Storage) -> None:
    """GET a key that is never written: one round trip, whose error says which
    is missing, the key (the bucket answers) or the bucket. A HEAD's 404 has
    no body to tell them apart, and listing the buckets costs more and needs
    a permission the portal has no other use for."""
    key = store._normalize_name(PROBE_KEY)  # under the store's location, as its files are
    try:
        store.connection.meta.client.get_object(Bucket=store.bucket_name, Key=key)["Body"].close()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise StoreMissing(f"the bucket {store.bucket_name} does not exist") from exc
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise


STORAGE_SUBJECT = "Error - The file store is unavailable"


def check_storage() -> Check:
    """Both stores (renditions, and the private originals) answer a read."""
    names = []
    alias = "default"
    try:
        for alias in ("default", "originals"):
            store = storages[alias]
            _probe(store)
            names.append(f"{alias}: {type(store).__name__}")
    except StoreMissing as exc:
        return Check("storage", False, f"{alias}: {exc}", STORAGE_SUBJECT)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("storage", False, f"{type(exc).__name__}: {exc}", STORAGE_SUBJECT)
    return Check("storage", True, ", ".join(names), STORAGE_SUBJECT)


def check_broker() -> Check:
    subject = "Error - The task queue is unavailable"
    if not settings.BROKER_CONFIGURED:
        return Check("broker", True, "none configured: tasks run in-process", subject)
    # The worker's connection waits on Redis with no limit once connected (a
    # BRPOP is meant to block); a Redis stuck after taking the connection (or
    # a proxy before one that is down) would hold the check for ever, so this
    # one gives up on a read as on a connect.
    seconds = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    bounded = {"socket_timeout": seconds, "socket_connect_timeout": seconds}
    try:
        with app.connection_for_write(transport_options=bounded) as conn:
            conn.ensure_connection(max_retries=1, timeout=seconds)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("broker", False, f"{type(exc).__name__}: {exc}", subject)
    return Check("broker", True, "reachable", subject)


SYSTEM_CHECKS: tuple[Callable[[], Check], ...] = (
    check_cpu,
    check_disk,
    check_memory,
    check_localhost,
)
SERVICE_CHECKS: tuple[Callable[[], Check], ...] = (check_database, check_storage, check_broker)
# The checks of what every host of a fleet shares, whichever host runs them.
SHARED_CHECK_NAMES = frozenset({"database", "storage", "broker"})
READY_CHECKS: tuple[Callable[[], Check], ...] = (check_database, check_storage)


def run(checks: tuple[Callable[[], Check], ...]) -> list[Check]:
    return [check() for check in checks]


class _ReadinessCache:
    """The last readiness answer of this process, reused for a few seconds.

    One caller refreshes it while the others keep reading the previous
    answer, so a storm of probes costs one database and one storage round
    trip per period, not one per request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: list[Check] | None = None
        self._at = 0.0

    def get(self) -> list[Check]:
        ttl = settings.HEALTH_READY_CACHE_SECONDS
        if self._checks is not None and time.monotonic() - self._at < ttl:
            return self._checks
        if not self._lock.acquire(blocking=self._checks is None):
            return self._checks or []
        try:
            if self._checks is None or time.monotonic() - self._at >= ttl:
                checks = run(READY_CHECKS)
                for check in checks:
                    if not check.ok:
                        logger.warning("readiness: %s failed: %s", check.name, check.detail)
                self._checks, self._at = checks, time.monotonic()
            return self._checks
        finally:
            self._lock.release()

    def clear(self) -> None:
        with self._lock:
            self._checks, self._at = None, 0.0


readiness = _ReadinessCache()
