from __future__ import annotations

import io
import socket
from collections import namedtuple
from typing import Any

import psutil
import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from portal import health

BODY = "Please check your system and resolve the issue as soon as possible."
DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture
def passing(settings: Any) -> Any:
    """Thresholds this machine meets whatever it is doing."""
    settings.HEALTH_CPU_MAX_PERCENT = 100.0
    settings.HEALTH_DISK_MIN_PERCENT = 0.0
    settings.HEALTH_MEMORY_MIN_MB = 0
    settings.HEALTH_RECIPIENTS = ["ops@example.com"]
    return settings


def run_health_check(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("health_check", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_a_healthy_system_sends_nothing_and_exits_zero(passing: Any) -> None:
    code, out = run_health_check()
    assert code == 0
    assert "All system checks passed." in out
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("setting", "value", "subject"),
    [
        ("HEALTH_CPU_MAX_PERCENT", -1.0, "Error - CPU usage is over -1%"),
        ("HEALTH_DISK_MIN_PERCENT", 101.0, "Error - Available disk space is less than 101%"),
        ("HEALTH_MEMORY_MIN_MB", 10**9, f"Error - Available memory is less than {10**9}MB"),
    ],
)
def test_each_tripped_threshold_mails_its_alert_and_exits_non_zero(
    passing: Any, setting: str, value: float, subject: str
) -> None:
    setattr(passing, setting, value)
    code, out = run_health_check("--email", "oncall@example.com")
    assert code == 1
    assert "FAIL" in out
    assert [m.subject for m in mail.outbox] == [subject]
    message = mail.outbox[0]
    assert message.body == BODY
    assert message.to == ["oncall@example.com"]
    assert message.from_email == "automation@example.com"


def test_default_thresholds_give_the_courses_exact_subjects(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 93.0)
    monkeypatch.setattr(health.shutil, "disk_usage", lambda path: DiskUsage(100, 90, 10))
    low_memory = type("Memory", (), {"available": 100 * 1024 * 1024})()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: low_memory)
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "10.0.0.7")
    code, _ = run_health_check()
    assert code == 1
    assert sorted(m.subject for m in mail.outbox) == sorted(
        [
            "Error - CPU usage is over 80%",
            "Error - Available disk space is less than 20%",
            "Error - Available memory is less than 500MB",
            "Error - localhost cannot be resolved to 127.0.0.1",
        ]
    )
    assert {m.body for m in mail.outbox} == {BODY}


def test_localhost_resolving_elsewhere_fails_and_127_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "127.0.0.1")
    assert health.check_localhost().ok
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "192.168.1.2")
    assert not health.check_localhost().ok


@pytest.mark.django_db
def test_the_health_endpoint_answers_200_when_all_is_well(client: Client, passing: Any) -> None:
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {c["name"] for c in body["checks"]} == {
        "database",
        "storage",
        "broker",
        "cpu",
        "disk",
        "memory",
        "localhost",
    }
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_the_health_endpoint_answers_503_when_a_check_fails(client: Client, passing: Any) -> None:
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    response = client.get("/health/")
    assert response.status_code == 503
    failed = [c for c in response.json()["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["memory"]


@pytest.mark.django_db
def test_the_health_endpoint_reports_a_broken_storage(client: Client, passing: Any, tmp_path: Any) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    passing.STORAGES = {
        **passing.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocker},
        },
    }
    response = client.get("/health/")
    assert response.status_code == 503
    storage = next(c for c in response.json()["checks"] if c["name"] == "storage")
    assert storage["ok"] is False
