"""Health checks: the system checks of the course's monitoring script, and the
portal's dependencies (database, storage, broker)."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.db import connection

BODY = "Please check your system and resolve the issue as soon as possible."


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


def check_cpu() -> Check:
    limit = settings.HEALTH_CPU_MAX_PERCENT
    usage = psutil.cpu_percent(interval=0.5)
    return Check(
        "cpu",
        usage <= limit,
        f"CPU usage {usage:.0f}% (limit {limit:.0f}%)",
        f"Error - CPU usage is over {limit:.0f}%",
    )


def check_disk() -> Check:
    limit = settings.HEALTH_DISK_MIN_PERCENT
    usage = shutil.disk_usage(settings.HEALTH_DISK_PATH)
    free = 100 * usage.free / usage.total
    return Check(
        "disk",
        free >= limit,
        f"{free:.0f}% of disk free on {settings.HEALTH_DISK_PATH} (minimum {limit:.0f}%)",
        f"Error - Available disk space is less than {limit:.0f}%",
    )


def check_memory() -> Check:
    limit = settings.HEALTH_MEMORY_MIN_MB
    available = psutil.virtual_memory().available / 1024 / 1024
    return Check(
        "memory",
        available >= limit,
        f"{available:.0f} MB of memory available (minimum {limit} MB)",
        f"Error - Available memory is less than {limit}MB",
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


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("database", False, f"{type(exc).__name__}: {exc}")
    return Check("database", True, connection.vendor)


def check_storage() -> Check:
    key = f"health/{uuid.uuid4().hex}.txt"
    try:
        name = default_storage.save(key, ContentFile(b"ok"))
        default_storage.delete(name)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("storage", False, f"{type(exc).__name__}: {exc}")
    return Check("storage", True, type(storages["default"]).__name__)


def check_broker() -> Check:
    if not settings.BROKER_CONFIGURED:
        return Check("broker", True, "none configured: tasks run in-process")
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Check("broker", False, f"{type(exc).__name__}: {exc}")
    return Check("broker", True, "reachable")


SYSTEM_CHECKS: tuple[Callable[[], Check], ...] = (
    check_cpu,
    check_disk,
    check_memory,
    check_localhost,
)
SERVICE_CHECKS: tuple[Callable[[], Check], ...] = (check_database, check_storage, check_broker)


def run(checks: tuple[Callable[[], Check], ...]) -> list[Check]:
    return [check() for check in checks]
