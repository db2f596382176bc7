from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import socket
import subprocess
import sys
import threading
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from django.core import mail
from django.core.cache import caches
from django.core.mail.backends import locmem
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from portal import health, services, tasks
from tests.processes import manage_py, portal_env
from tests.servers import SMTPServer, free_port, trickling_smtp
from uploads import holders

ROOT = Path(__file__).resolve().parent.parent.parent
BODY = "Please check your system and resolve the issue as soon as possible."
DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture
def passing(settings: Any, db: None) -> Any:
    """Thresholds this machine meets whatever it is doing (and the database,
    which the checks ask too)."""
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
    assert message.body == BODY  # the course's, exactly
    assert message.to == ["oncall@example.com"]
    assert message.from_email == "automation@example.com"


def test_a_mail_server_that_is_away_loses_no_alert_but_its_own(passing: Any) -> None:
    # A real SMTP connection to a port nobody listens on.
    passing.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", free_port()
    passing.HEALTH_CPU_MAX_PERCENT = -1.0
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("health_check", stdout=out, stderr=err)

    assert failed.value.returncode == 1
    assert out.getvalue().count("FAIL") == 2  # every check still reported
    not_mailed = [line for line in err.getvalue().splitlines() if line.startswith("alert not mailed:")]
    assert len(not_mailed) == 2  # each alert reported
    assert "Error - CPU usage is over -1%" in not_mailed[0]


def test_a_mail_server_that_does_not_answer_is_waited_for_once_not_once_per_alert(passing: Any) -> None:
    """It takes connections and says nothing: each alert would wait EMAIL_TIMEOUT."""
    silent = socket.create_server(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(0.2)
    passing.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", silent.getsockname()[1]
    passing.EMAIL_TIMEOUT = 1
    passing.HEALTH_CPU_MAX_PERCENT = -1.0
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    accepted = []
    with silent, contextlib.suppress(TimeoutError):
        while True:
            accepted.append(silent.accept()[0])
    for connection in accepted:
        connection.close()
    assert len(accepted) == 1
    not_mailed = [line for line in err.getvalue().splitlines() if line.startswith("alert not mailed:")]
    assert len(not_mailed) == 3  # none lost without a word


def test_a_mail_folder_that_cannot_be_written_loses_no_alert_without_a_word(
    passing: Any, tmp_path: Path
) -> None:
    """The default backend writes mail to var/mail: a file in its place (or a
    folder of another user) was a traceback, every alert of the run unsaid."""
    (tmp_path / "mail").write_text("not a folder")
    passing.EMAIL_BACKEND = "core.mail.FileEmailBackend"
    passing.EMAIL_FILE_PATH = str(tmp_path / "mail")
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("health_check", stdout=out, stderr=err)
    assert failed.value.returncode == 1
    assert out.getvalue().count("FAIL") == 2
    not_mailed = [line for line in err.getvalue().splitlines() if line.startswith("alert not mailed:")]
    assert len(not_mailed) == 2
    assert all(
        line.endswith(
            "mail cannot be written: Path for saving email messages exists, "
            f"but is not a directory: {tmp_path / 'mail'}"
        )
        for line in not_mailed
    ), not_mailed


def test_a_threshold_is_quoted_as_set(passing: Any) -> None:
    passing.HEALTH_DISK_MIN_PERCENT = 100.5
    code, _ = run_health_check()
    assert code == 1
    assert [m.subject for m in mail.outbox] == ["Error - Available disk space is less than 100.5%"]


@pytest.mark.parametrize(
    ("limit", "usage", "shown"),
    [
        (99.99996, 100.0, "99.99996"),  # not 100%, which no usage is over
        (0.00001, 0.5, "0.00001"),  # not 1e-05%
    ],
)
def test_a_threshold_of_many_digits_is_quoted_with_all_of_them(
    passing: Any, monkeypatch: pytest.MonkeyPatch, limit: float, usage: float, shown: str
) -> None:
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: usage)
    monkeypatch.setattr(health.shutil, "disk_usage", lambda path: DiskUsage(10**8, 2_000, 10**8 - 2_000))
    passing.HEALTH_CPU_MAX_PERCENT = limit
    passing.HEALTH_DISK_MIN_PERCENT = 99.99995  # not 99.9999%
    code, out = run_health_check()
    assert code == 1
    assert sorted(m.subject for m in mail.outbox) == [
        "Error - Available disk space is less than 99.99995%",
        f"Error - CPU usage is over {shown}%",
    ]
    assert f"(limit {shown}%)" in out
    assert "(minimum 99.99995%)" in out


def test_default_thresholds_give_the_courses_exact_subjects(
    settings: Any, monkeypatch: pytest.MonkeyPatch, db: None
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


ALL_CHECKS = {"database", "storage", "broker", "cpu", "disk", "memory", "localhost"}


@pytest.fixture
def staff_client(client: Client, staff_user: Any) -> Client:
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def _fresh_readiness() -> Any:
    health.readiness.clear()
    yield
    health.readiness.clear()


def _broken_storage(settings: Any, tmp_path: Any) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocker / "media"},
        },
    }


@pytest.mark.django_db
def test_staff_see_every_check_with_its_detail(staff_client: Client, passing: Any) -> None:
    response = staff_client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {c["name"] for c in body["checks"]} == ALL_CHECKS
    assert all(c["detail"] for c in body["checks"])
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_a_caller_with_the_health_token_sees_the_details(client: Client, passing: Any) -> None:
    passing.HEALTH_TOKEN = "s3cret-health-token"
    response = client.get("/health/", HTTP_AUTHORIZATION="Bearer s3cret-health-token")
    assert {c["name"] for c in response.json()["checks"]} == ALL_CHECKS
    wrong = client.get("/health/", HTTP_AUTHORIZATION="Bearer guess")
    assert "detail" not in wrong.content.decode()
    assert set(wrong.json()["checks"]) == {"database", "storage"}


@pytest.mark.django_db
def test_the_detailed_report_answers_503_when_a_check_fails(staff_client: Client, passing: Any) -> None:
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    response = staff_client.get("/health/")
    assert response.status_code == 503
    failed = [c for c in response.json()["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["memory"]


@pytest.mark.django_db
def test_anonymous_callers_see_only_names_and_ok_or_fail(client: Client, passing: Any, tmp_path: Any) -> None:
    _broken_storage(passing, tmp_path)
    for url in ("/health/", "/health/ready"):
        health.readiness.clear()
        response = client.get(url)
        assert response.status_code == 503
        assert response.json() == {"status": "unhealthy", "checks": {"database": "ok", "storage": "fail"}}
        assert "file-not-dir" not in response.content.decode()
        assert "Error" not in response.content.decode()


@pytest.mark.django_db
def test_an_unhealthy_answer_is_neither_logged_nor_mailed_to_the_admins_as_a_server_error(
    client: Client, staff_client: Client, passing: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The 503 is the answer asked for: Django logged each as an error and
    mailed it to ADMINS ("Service Unavailable: /health/ready", nothing of
    which check failed), a load balancer probing every few seconds through
    an outage an error line a probe. What failed is logged as the readiness
    check's warning, and mailed as the health alerts."""
    passing.DEBUG = False
    passing.ADMINS = [("Ops", "ops@example.com")]
    passing.HEALTH_READY_CACHE_SECONDS = 0
    _broken_storage(passing, tmp_path)
    answers = [Client().get(url) for url in ("/health/ready", "/health/ready", "/health/")]
    answers.append(staff_client.get("/health/"))
    answers.append(staff_client.get("/health/", HTTP_ACCEPT="text/html"))

    assert [answer.status_code for answer in answers] == [503] * 5
    assert mail.outbox == []
    assert not [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert "readiness: storage failed: " in caplog.text


@pytest.mark.django_db
def test_readiness_does_not_fail_because_the_machine_is_busy(
    client: Client, passing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    passing.HEALTH_CPU_MAX_PERCENT = 0.0
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    sampled: list[float] = []

    def busy(*args: Any, **kwargs: Any) -> float:
        sampled.append(100.0)
        return 100.0

    monkeypatch.setattr(psutil, "cpu_percent", busy)
    assert client.get("/health/ready").status_code == 200
    assert client.get("/health/live").status_code == 200
    assert sampled == []


@pytest.mark.django_db
def test_readiness_reuses_its_answer_for_a_few_seconds(
    client: Client, passing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = health.check_database

    def counted() -> health.Check:
        calls.append(1)
        return real()

    monkeypatch.setattr(health, "READY_CHECKS", (counted, health.check_storage))
    # The seconds the cache sees: however slowly this machine answers the
    # requests, they all come within the period.
    clock = {"now": 1000.0}
    monkeypatch.setattr(health, "time", SimpleNamespace(monotonic=lambda: clock["now"]))
    passing.HEALTH_READY_CACHE_SECONDS = 5.0
    for _ in range(20):
        assert client.get("/health/ready").status_code == 200
    clock["now"] += 4.9
    client.get("/health/ready")
    assert calls == [1]
    clock["now"] += 0.1
    client.get("/health/ready")
    assert calls == [1, 1]


@pytest.mark.django_db
def test_readiness_writes_nothing_to_storage(client: Client, passing: Any, tmp_path: Any) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    assert client.get("/health/ready").status_code == 200
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_liveness_touches_nothing(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # No database access is allowed in this test: a query would error.
    monkeypatch.setattr(health, "run", lambda *a: pytest.fail("liveness ran a check"))
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_the_detailed_report_shows_a_broken_storage_to_staff(
    staff_client: Client, passing: Any, tmp_path: Any
) -> None:
    _broken_storage(passing, tmp_path)
    response = staff_client.get("/health/")
    assert response.status_code == 503
    storage = next(c for c in response.json()["checks"] if c["name"] == "storage")
    assert storage["ok"] is False
    assert storage["detail"]


def test_an_alert_refused_for_one_recipient_says_so(passing: Any) -> None:
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.HEALTH_CPU_MAX_PERCENT = -1.0
    with SMTPServer(refuse=["gone@example.com"]) as smtp:
        passing.EMAIL_HOST, passing.EMAIL_PORT = smtp.host, smtp.port
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError) as failed:
            call_command(
                "health_check",
                "--email",
                "gone@example.com",
                "--email",
                "oncall@example.com",
                stdout=out,
                stderr=err,
            )
        [message] = smtp.wait_for(1)
    assert failed.value.returncode == 1
    assert message.envelope_to == ["oncall@example.com"]
    assert (
        "alert not mailed: Error - CPU usage is over -1%: not mailed to gone@example.com: 550 5.1.1 No such user here"
        in err.getvalue()
    )


@pytest.mark.parametrize(
    ("args", "setting", "source"),
    [
        (["--email", "ops@example.com", "--email", "a@example.com,b@example.com"], [], "--email"),
        (["--email", ""], [], "--email"),
        ([], ["ops@example.com;oncall@example.com"], "PORTAL_HEALTH_RECIPIENTS"),
    ],
)
def test_a_recipient_that_is_no_address_is_refused_naming_where_it_came_from(
    passing: Any, args: list[str], setting: list[str], source: str
) -> None:
    """Django's SMTP backend fails on it only as it sends (a traceback, no
    alert mailed), and drops a blank one without a word (counted as mailed)."""
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.HEALTH_CPU_MAX_PERCENT = -1.0
    passing.HEALTH_RECIPIENTS = setting or passing.HEALTH_RECIPIENTS
    with SMTPServer() as smtp:
        passing.EMAIL_HOST, passing.EMAIL_PORT = smtp.host, smtp.port
        with pytest.raises(CommandError, match=f"^{source}: not an email address: ") as refused:
            call_command("health_check", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert refused.value.returncode == 1
    assert smtp.messages == []


def test_the_disk_the_portal_writes_to_is_checked_too(passing: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The media folder fills up while the disk of HEALTH_DISK_PATH has room."""
    passing.HEALTH_DISK_PATH = "/dev/shm"  # noqa: S108 - only measured: a tmpfs, not the media folder's disk
    passing.HEALTH_DISK_MIN_PERCENT = 20.0
    media = Path(passing.STORAGES["default"]["OPTIONS"]["location"])
    full = _existing_parent(media)
    real = health.shutil.disk_usage
    monkeypatch.setattr(
        health.shutil, "disk_usage", lambda path: DiskUsage(100, 99, 1) if Path(path) == full else real(path)
    )
    code, out = run_health_check()
    assert code == 1
    assert f"FAIL disk: 1% of disk free on {full} (minimum 20%)" in out
    assert [m.subject for m in mail.outbox] == ["Error - Available disk space is less than 20%"]


def test_a_disk_path_that_does_not_exist_fails_the_check_naming_it(passing: Any, tmp_path: Path) -> None:
    """A typo: measured on the nearest folder above it, the check passed on
    the room of a disk that was perhaps not the one meant."""
    missing = tmp_path / "srv" / "dta"
    passing.HEALTH_DISK_PATH = str(missing)
    passing.HEALTH_DISK_MIN_PERCENT = 20.0
    code, out = run_health_check()
    assert code == 1
    assert (
        f"FAIL disk: not measured: FileNotFoundError: the folder {missing} of PORTAL_HEALTH_DISK_PATH "
        "does not exist"
    ) in out
    assert "of disk free on" not in out  # no other folder's room given instead
    assert [m.subject for m in mail.outbox] == ["Error - Available disk space is less than 20%"]


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def health_check_run(tmp_path: Path, *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py health_check`` as cron runs it, with ``env`` (the servers
    it checks), the machine's own thresholds let pass and no alert mailed."""
    return manage_py(
        "health_check",
        env={
            **os.environ,
            "PORTAL_VAR_DIR": str(tmp_path),
            "PORTAL_HEALTH_CPU_MAX_PERCENT": "100",
            "PORTAL_HEALTH_DISK_MIN_PERCENT": "0",
            "PORTAL_HEALTH_MEMORY_MIN_MB": "0",
            "PORTAL_HEALTH_RECIPIENTS": "",
            **env,
        },
        timeout=timeout,
    )


def test_a_database_and_a_task_queue_that_are_away_are_alerts(tmp_path: Path) -> None:
    """The command as cron runs it, against servers that do not answer."""
    done = health_check_run(
        tmp_path,
        DATABASE_URL=f"postgres://portal:x@127.0.0.1:{free_port()}/portal",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert done.returncode == 1, done.stderr
    assert "FAIL database: OperationalError" in done.stdout
    assert "FAIL broker:" in done.stdout
    assert "Error - The database is unavailable" in done.stderr
    assert "Error - The task queue is unavailable" in done.stderr
    assert "ok   storage" in done.stdout


def test_a_database_that_takes_the_connection_and_never_answers_fails_within_its_timeout(
    tmp_path: Path,
) -> None:
    """A server that is stuck (or a proxy before one that is down) takes the
    connection and says nothing: without a limit, the run waited on it for
    ever, a cron run piling up each minute and no alert ever mailed."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel takes connections; no one answers
        done = health_check_run(
            tmp_path,
            timeout=120,  # a run that waits on for ever fails the test here
            DATABASE_URL=f"postgres://portal:x@127.0.0.1:{silent.getsockname()[1]}/portal",
            DATABASE_CONNECT_TIMEOUT="2",
        )
    assert done.returncode == 1, done.stderr
    # libpq's words for giving up on connect_timeout, the limit the portal sets.
    assert "FAIL database: OperationalError: connection timeout expired" in done.stdout
    assert "Error - The database is unavailable" in done.stderr


def test_a_task_queue_that_takes_the_connection_and_never_answers_fails_within_seconds(
    tmp_path: Path,
) -> None:
    """A Redis that is stuck (or a proxy before one that is down) takes the
    connection and never answers its PING: the broker check waited on it
    for ever, holding the cron run, beat's run and the staff's /health/
    page, and no alert was mailed."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel takes connections; no one answers
        done = health_check_run(
            tmp_path,
            timeout=120,  # a run that waits on for ever fails the test here
            CELERY_BROKER_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
        )
    assert done.returncode == 1, done.stderr
    # redis-py's words for a read that ran into its socket_timeout, the limit the check sets.
    assert "FAIL broker: OperationalError: Timeout reading from socket" in done.stdout
    assert "Error - The task queue is unavailable" in done.stderr
    assert "ok   database" in done.stdout


class StuckPostgres:
    """A server that completes PostgreSQL's start-up (no TLS, no password)
    and then takes every query without ever answering: a server stuck
    after taking the connection, as connect_timeout does not bound."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _message(kind: bytes, body: bytes) -> bytes:
        return kind + (len(body) + 4).to_bytes(4, "big") + body

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                self._sockets.append(client)
                threading.Thread(target=self._start_up, args=(client,), daemon=True).start()

    def _start_up(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                length = int.from_bytes(client.recv(4, socket.MSG_WAITALL), "big")
                body = client.recv(length - 4, socket.MSG_WAITALL)
                if int.from_bytes(body[:4], "big") in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                    client.sendall(b"N")
                    continue
                break
            parameters = {
                "server_version": "16.4",
                "server_encoding": "UTF8",
                "client_encoding": "UTF8",
                "DateStyle": "ISO, MDY",
                "integer_datetimes": "on",
                "standard_conforming_strings": "on",
                "TimeZone": "UTC",
            }
            client.sendall(
                self._message(b"R", (0).to_bytes(4, "big"))  # AuthenticationOk
                + b"".join(
                    self._message(b"S", name.encode() + b"\0" + value.encode() + b"\0")
                    for name, value in parameters.items()
                )
                + self._message(b"K", (4242).to_bytes(4, "big") + (7).to_bytes(4, "big"))
                + self._message(b"Z", b"I")  # ready for a query
            )
            while chunk := client.recv(65536):
                self.received += chunk

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


def test_a_database_that_connects_and_never_answers_the_query_fails_within_its_timeout(
    tmp_path: Path,
) -> None:
    """connect_timeout bounds the connection alone: a server stuck after
    taking it held the check's SELECT 1 for ever, the cron run piling up
    each minute and no alert ever mailed."""
    stuck = StuckPostgres()
    try:
        done = health_check_run(
            tmp_path,
            timeout=120,  # a run that waits on for ever fails the test here
            DATABASE_URL=f"postgres://portal:x@127.0.0.1:{stuck.port}/portal?sslmode=disable",
            DATABASE_CONNECT_TIMEOUT="2",
            TZ="UTC",
        )
    finally:
        stuck.close()
    assert b"SELECT 1" in stuck.received, done.stdout + done.stderr  # connected, then asked
    assert done.returncode == 1, done.stderr
    # Said only of a query the check's own bound cut off.
    assert "FAIL database: NoAnswer: no answer to SELECT 1 within 2 s" in done.stdout
    assert "Error - The database is unavailable" in done.stderr
    assert "ok   storage" in done.stdout


class AnsweredAsCut:
    """A driver's connection whose SELECT 1 is answered just as the check's
    bound runs out: the answer is read once the watcher has shut the socket
    down, so the query itself raises nothing."""

    def __init__(self) -> None:
        self.ours, self.server = socket.socketpair()
        self.closed = False

    def fileno(self) -> int:
        return self.ours.fileno()

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Any]:
        yield self

    def execute(self, sql: str) -> None:
        pass

    def fetchone(self) -> tuple[int]:
        self.server.settimeout(10)
        assert self.server.recv(1) == b""  # the watcher's shutdown
        return (1,)


def test_a_connection_cut_as_its_answer_came_is_not_kept_for_what_follows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The socket shut down once the bound ran out cannot carry another
    query: were it kept, the next request on the connection would fail."""
    raw = AnsweredAsCut()
    closed: list[bool] = []
    fake = SimpleNamespace(
        vendor="postgresql",
        settings_dict={"OPTIONS": {"connect_timeout": 0.2}},
        connection=raw,
        ensure_connection=lambda: None,
        close=lambda: closed.append(True),
    )
    monkeypatch.setattr(health, "connection", fake)
    try:
        check = health.check_database()
    finally:
        raw.ours.close()
        raw.server.close()
    assert closed == [True]
    assert not check.ok
    assert check.detail == "NoAnswer: no answer to SELECT 1 within 0.2 s"


# --- Probes behind a load balancer ------------------------------------------------


@pytest.fixture
def production_hosts(settings: Any) -> Any:
    """DJANGO_HTTPS=true and DJANGO_ALLOWED_HOSTS=portal.example.com."""
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


# A load balancer asks each server by its address, over plain HTTP.
BY_ADDRESS = {"HTTP_HOST": "10.0.0.5:8000"}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/health/live", "/health/ready", "/metrics"])
def test_probes_answer_a_load_balancer_asking_by_address_over_plain_http(
    client: Client, passing: Any, production_hosts: Any, url: str
) -> None:
    assert client.get(url, **BY_ADDRESS).status_code == 200
    assert client.get(url, HTTP_HOST="portal.example.com").status_code == 200


@pytest.mark.django_db
def test_every_other_page_keeps_the_host_check_and_the_https_redirect(
    client: Client, production_hosts: Any
) -> None:
    assert client.get("/", **BY_ADDRESS).status_code == 400
    assert client.get("/health/", **BY_ADDRESS).status_code == 400
    assert client.get("/health/live/", **BY_ADDRESS).status_code == 400
    response = client.get("/", HTTP_HOST="portal.example.com")
    assert (response.status_code, response["Location"]) == (301, "https://portal.example.com/")


@pytest.mark.django_db
def test_metrics_asked_by_address_still_refuse_an_outside_caller(
    client: Client, production_hosts: Any
) -> None:
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.5", **BY_ADDRESS)
    assert response.status_code == 403
    assert b"django_http" not in response.content


def _unreadable(path: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", path)

    return fail


@pytest.mark.parametrize(
    ("target", "attribute", "failure", "subject"),
    [
        (
            psutil,
            "virtual_memory",
            "memory: not measured: PermissionError",
            "Error - Available memory is less than 0MB",
        ),
        (psutil, "cpu_percent", "cpu: not measured: PermissionError", "Error - CPU usage is over 100%"),
        (
            health.shutil,
            "disk_usage",
            "disk: not measured: PermissionError",
            "Error - Available disk space is less than 0%",
        ),
    ],
)
def test_a_value_that_cannot_be_read_fails_its_check_and_the_others_still_run(
    passing: Any, monkeypatch: pytest.MonkeyPatch, target: Any, attribute: str, failure: str, subject: str
) -> None:
    """/proc not readable (a hardened container), a disk that cannot be stat'ed."""
    monkeypatch.setattr(target, attribute, _unreadable("/proc/meminfo"))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("health_check", stdout=out, stderr=err)
    assert failed.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL {failure}: [Errno 13] Permission denied: '/proc/meminfo'"
    ]
    assert sum(line.startswith("ok") for line in lines) == len(ALL_CHECKS) - 1
    assert [m.subject for m in mail.outbox] == [subject]
    assert subject in err.getvalue()


def _memory(mb: float) -> Any:
    """psutil.virtual_memory with ``mb`` available."""
    return type("Memory", (), {"available": mb * 1024 * 1024})


@pytest.mark.parametrize(
    ("attribute", "value", "line"),
    [
        # Just past each limit: the value shown is not the limit itself.
        ("cpu_percent", lambda interval=None: 80.4, "FAIL cpu: CPU usage 80.4% (limit 80%)"),
        ("cpu_percent", lambda interval=None: 80.01, "FAIL cpu: CPU usage 80.1% (limit 80%)"),
        ("virtual_memory", _memory(499.7), "FAIL memory: 499.7 MB of memory available (minimum 500 MB)"),
        ("virtual_memory", _memory(499.99), "FAIL memory: 499.9 MB of memory available (minimum 500 MB)"),
        # On each limit: passes ("over 80%", "less than 500MB").
        ("cpu_percent", lambda interval=None: 80.0, "ok   cpu: CPU usage 80% (limit 80%)"),
        ("virtual_memory", _memory(500), "ok   memory: 500 MB of memory available (minimum 500 MB)"),
        ("virtual_memory", _memory(500.04), "ok   memory: 500 MB of memory available (minimum 500 MB)"),
    ],
)
def test_a_value_at_the_edge_is_shown_on_its_side_of_the_limit(
    passing: Any, monkeypatch: pytest.MonkeyPatch, attribute: str, value: Any, line: str
) -> None:
    if attribute == "cpu_percent":
        passing.HEALTH_CPU_MAX_PERCENT = 80.0
    else:
        passing.HEALTH_MEMORY_MIN_MB = 500
    monkeypatch.setattr(psutil, attribute, value)
    code, out = run_health_check()
    assert line in out.splitlines()
    assert code == (1 if line.startswith("FAIL") else 0)


@pytest.mark.parametrize(
    ("free", "line"),
    [
        (19.6, "FAIL disk: 19.6% of disk free on {path} (minimum 20%)"),
        (19.99, "FAIL disk: 19.9% of disk free on {path} (minimum 20%)"),
        (20.0, "ok   disk: 20% of disk free on {path} (minimum 20%)"),
    ],
)
def test_free_disk_at_the_edge_is_shown_on_its_side_of_the_limit(
    passing: Any, monkeypatch: pytest.MonkeyPatch, free: float, line: str
) -> None:
    passing.HEALTH_DISK_MIN_PERCENT = 20.0
    monkeypatch.setattr(
        health.shutil, "disk_usage", lambda path: DiskUsage(10000, 10000 - free * 100, free * 100)
    )
    code, out = run_health_check()
    [disk] = [row for row in out.splitlines() if " disk: " in row]
    assert disk == line.format(path=disk.rpartition(" on ")[2].partition(" (")[0])
    assert code == (1 if line.startswith("FAIL") else 0)


# --- Alerts of a check run every minute ------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``clock.now``: the time the alerts see; move it on with ``clock.now += …``."""

    class Clock:
        now = timezone.now()

    monkeypatch.setattr(timezone, "now", lambda: Clock.now)
    return Clock


@pytest.fixture
def reminding(passing: Any) -> Any:
    """Alerts of a lasting failure mailed again hourly, not at every run."""
    passing.HEALTH_REMIND_MINUTES = 60
    return passing


def test_a_check_that_stays_failed_is_mailed_once_reminded_hourly_and_resolved_once(
    reminding: Any, clock: Any
) -> None:
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    subject = f"Error - Available memory is less than {10**9}MB"
    assert run_health_check()[0] == 1
    assert [m.subject for m in mail.outbox] == [subject]

    start = clock.now
    for minutes in (1, 2, 30, 59):  # beat's runs of the next hour
        clock.now = start + dt.timedelta(minutes=minutes, seconds=59)
        code, out = run_health_check()
        assert code == 1  # still unhealthy, and says so
        assert "FAIL memory" in out
        assert f"alert already mailed: {subject}: mailed at " in out
    assert len(mail.outbox) == 1

    clock.now = start + dt.timedelta(minutes=60)
    assert run_health_check()[0] == 1
    assert [m.subject for m in mail.outbox] == [subject, subject]
    assert mail.outbox[1].body == BODY
    assert mail.outbox[1].extra_headers["X-Portal-Failing-Since"] == f"{start:%Y-%m-%d %H:%M %Z}"

    reminding.HEALTH_MEMORY_MIN_MB = 0
    for _ in range(3):  # passing again, held until it has passed for 3 minutes
        clock.now += dt.timedelta(minutes=1)
        code, out = run_health_check()
        assert code == 0
        assert f"recovery held: Resolved - Available memory is less than {10**9}MB: passing since" in out
    assert len(mail.outbox) == 2
    clock.now += dt.timedelta(minutes=1)
    code, out = run_health_check()
    assert code == 0
    assert f"recovery mailed: Resolved - Available memory is less than {10**9}MB" in out
    resolved = mail.outbox[2]
    assert resolved.subject == "Resolved - Available memory is less than 1000000000MB"
    assert resolved.body.startswith("The memory check passes again: ")

    for _ in range(3):
        clock.now += dt.timedelta(minutes=1)
        assert run_health_check()[0] == 0
    assert len(mail.outbox) == 3

    reminding.HEALTH_MEMORY_MIN_MB = 10**9  # fails anew: mailed at once
    clock.now += dt.timedelta(minutes=1)
    run_health_check()
    assert [m.subject for m in mail.outbox[3:]] == [subject]


def test_another_test_run_of_the_checkout_does_not_wipe_what_was_mailed(reminding: Any, clock: Any) -> None:
    """Runs of the suite side by side (a fleet test beside this file): each
    test of the other run clears its shared cache as it starts and ends."""
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    run_health_check()
    env = {k: v for k, v in os.environ.items() if k not in {"PORTAL_VAR_DIR", "CACHE_URL"}}
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.core.cache import caches; caches['shared'].clear()",
        ],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    clock.now += dt.timedelta(minutes=1)
    code, out = run_health_check()
    assert code == 1
    assert "alert already mailed: Error - Available memory" in out
    assert len(mail.outbox) == 1


def test_a_flapping_check_mails_one_alert_per_reminder_interval_and_its_recovery_once_settled(
    reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPU at 81% and 79% on alternate minutes, against a limit of 80%."""
    reminding.HEALTH_CPU_MAX_PERCENT = 80.0
    cpu = {"usage": 81.0}
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: cpu["usage"])
    start = clock.now
    sent: list[tuple[int, Any]] = []
    for minute in range(121):  # two hours of beat's runs
        clock.now = start + dt.timedelta(minutes=minute)
        cpu["usage"] = 81.0 if minute % 2 == 0 else 79.0
        before = len(mail.outbox)
        run_health_check()
        sent += [(minute, message) for message in mail.outbox[before:]]
    alert, resolved = "Error - CPU usage is over 80%", "Resolved - CPU usage is over 80%"
    assert [(minute, m.subject) for minute, m in sent] == [
        (0, alert),  # it starts failing; no recovery before it has held
        (60, alert),  # one alert per reminder interval, however often it flips
        (120, alert),
    ]
    assert sent[0][1].body == BODY  # the first alert is the course's
    for _, recurring in sent[1:]:
        assert recurring.body != BODY
        assert recurring.body.startswith(BODY)
        assert "keeps recurring (flapping)" in recurring.body
        assert recurring.extra_headers["X-Portal-Recurring"] == (
            "failed again 30 time(s) after passing since the last alert"
        )
        assert recurring.extra_headers["X-Portal-Failing-Since"] == f"{start:%Y-%m-%d %H:%M %Z}"

    cpu["usage"] = 79.0  # it settles
    outputs = []
    for minute in range(121, 126):
        clock.now = start + dt.timedelta(minutes=minute)
        outputs.append(run_health_check())
    assert [code for code, _ in outputs] == [0] * 5
    assert "recovery held: Resolved - CPU usage is over 80%: passing since" in outputs[0][1]
    assert [m.subject for m in mail.outbox[len(sent) :]] == [resolved]  # at minute 124, 3 minutes on
    assert "recovery mailed: Resolved - CPU usage is over 80%" in outputs[3][1]

    clock.now = start + dt.timedelta(minutes=126)  # a new failure, after the recovery settled
    cpu["usage"] = 81.0
    run_health_check()
    assert mail.outbox[-1].subject == alert
    assert mail.outbox[-1].body == BODY


@pytest.fixture
def smtp(reminding: Any) -> Any:
    """A real mail server on loopback that the alerts go to."""
    reminding.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer() as server:
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = server.host, server.port
        yield server


def _flapping_cpu(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The CPU usage each run measures (set ``["usage"]``), against a limit of 80%."""
    settings.HEALTH_CPU_MAX_PERCENT = 80.0
    cpu = {"usage": 0.0}
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: cpu["usage"])
    return cpu


def test_a_flapping_check_mails_no_recovery_until_it_has_held(
    smtp: Any, reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail, pass, fail, pass on consecutive runs, then it passes for good:
    one alert, and one recovery once it has passed at every run for 3
    minutes, as the mail server receives them."""
    cpu = _flapping_cpu(reminding, monkeypatch)
    start = clock.now
    received: list[tuple[int, str]] = []
    outputs: list[str] = []
    for minute, usage in enumerate([81.0, 79.0, 81.0, 79.0, 81.0, 79.0, 79.0, 79.0, 79.0, 79.0]):
        clock.now = start + dt.timedelta(minutes=minute)
        cpu["usage"] = usage
        before = len(smtp.messages)
        outputs.append(run_health_check()[1])
        received += [(minute, str(message["subject"])) for message in smtp.messages[before:]]
    assert received == [
        (0, "Error - CPU usage is over 80%"),
        (8, "Resolved - CPU usage is over 80%"),  # passing since minute 5, 3 minutes on
    ]
    for minute in (1, 3, 5, 6, 7):
        assert "recovery held: Resolved - CPU usage is over 80%: passing since" in outputs[minute]
    assert "recovery mailed: Resolved - CPU usage is over 80%" in outputs[8]
    assert "alert already mailed: Error - CPU usage is over 80%" in outputs[4]
    resolved = smtp.messages[1]
    assert resolved["X-Portal-Check"] == "cpu"
    assert f"Failing since: {start:%Y-%m-%d %H:%M %Z}" in resolved.get_content()


def test_a_failure_after_hours_without_a_run_since_a_pass_is_a_new_one_mailed_at_once(
    smtp: Any, reminding: Any, clock: Any
) -> None:
    """It fails, passes at one run, then no run for six hours (the host was
    off), then it fails: it may have held in between, which no run saw. The
    old failure's reminder would have held it for up to an hour more."""
    reminding.HEALTH_REMIND_MINUTES = 60
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    subject = f"Error - Available memory is less than {10**9}MB"
    start = clock.now
    run_health_check()
    reminding.HEALTH_MEMORY_MIN_MB = 0
    clock.now = start + dt.timedelta(minutes=1)
    assert "recovery held: " in run_health_check()[1]
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    back = clock.now = start + dt.timedelta(hours=6, minutes=1)
    code, out = run_health_check()
    assert code == 1
    assert "alert already mailed" not in out
    assert [m["subject"] for m in smtp.messages] == [subject, subject]
    anew = smtp.messages[1]
    content = anew.get_content()
    assert content.startswith(BODY + "\n\n")
    assert "keeps recurring" not in content
    assert anew["X-Portal-Recurring"] is None
    assert f"passed at the run of {start + dt.timedelta(minutes=1):%Y-%m-%d %H:%M %Z}" in content
    assert f"Failing since: {back:%Y-%m-%d %H:%M %Z}." in content
    assert anew["X-Portal-Last-Passed"] == f"{start + dt.timedelta(minutes=1):%Y-%m-%d %H:%M %Z}"

    reminding.HEALTH_MEMORY_MIN_MB = 0  # it passes again, and holds: resolved, failing since its return
    for minute in range(1, 5):
        clock.now = back + dt.timedelta(minutes=minute)
        run_health_check()
    assert [m["subject"] for m in smtp.messages[2:]] == [
        f"Resolved - Available memory is less than {10**9}MB"
    ]
    assert f"Failing since: {back:%Y-%m-%d %H:%M %Z}" in smtp.messages[2].get_content()


def test_a_new_failure_the_mail_server_did_not_take_is_mailed_next_run_as_a_new_one(
    reminding: Any, clock: Any
) -> None:
    """The alert of a failure found hours after the last pass, refused by
    the mail server, is tried again at the next run: still saying when the
    check last passed and since when it fails."""
    reminding.EMAIL_BACKEND = "core.mail.EmailBackend"
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    start = clock.now
    with SMTPServer() as smtp:
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = smtp.host, smtp.port
        run_health_check()
        smtp.wait_for(1)
        reminding.HEALTH_MEMORY_MIN_MB = 0
        clock.now = start + dt.timedelta(minutes=1)
        assert "recovery held: " in run_health_check()[1]
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    reminding.EMAIL_HOST, reminding.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    back = clock.now = start + dt.timedelta(hours=6)
    with pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=io.StringIO())
    with SMTPServer() as smtp:
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = smtp.host, smtp.port
        clock.now = back + dt.timedelta(minutes=1)
        run_health_check()
        [anew] = smtp.wait_for(1)
    passed = f"{start + dt.timedelta(minutes=1):%Y-%m-%d %H:%M %Z}"
    assert anew["X-Portal-Last-Passed"] == passed
    assert f"passed at the run of {passed}" in anew.get_content()
    assert f"Failing since: {back:%Y-%m-%d %H:%M %Z}." in anew.get_content()


def test_a_failure_soon_after_the_last_passing_run_still_recurs_though_a_run_was_missed(
    smtp: Any, reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passing at minutes 1 to 3, no run at 4, failing at 5: less than 3
    minutes after the last run that saw it pass, a flap, however long since
    the pass began."""
    cpu = _flapping_cpu(reminding, monkeypatch)
    start = clock.now
    outputs = {}
    for minute, usage in [(0, 81.0), (1, 79.0), (2, 79.0), (3, 79.0), (5, 81.0), (60, 81.0)]:
        clock.now = start + dt.timedelta(minutes=minute)
        cpu["usage"] = usage
        outputs[minute] = run_health_check()[1]
    assert "alert already mailed: Error - CPU usage is over 80%: mailed at " in outputs[5]
    assert "failed again 1 time(s) since" in outputs[5]
    assert [m["subject"] for m in smtp.messages] == ["Error - CPU usage is over 80%"] * 2
    assert (
        smtp.messages[1]["X-Portal-Recurring"] == "failed again 1 time(s) after passing since the last alert"
    )
    assert f"Failing since: {start:%Y-%m-%d %H:%M %Z}" in smtp.messages[1].get_content()


def test_a_check_flapping_under_cron_every_five_minutes_is_one_failure(
    smtp: Any, reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs 5 minutes apart that find it failing and passing in turn: each
    failure comes more than 3 minutes after a pass, yet well within the
    hourly reminder of it, so it is the same failure recurring, mailed once
    an hour, not a new alert every 10 minutes."""
    cpu = _flapping_cpu(reminding, monkeypatch)
    start = clock.now
    for run in range(24):  # two hours
        clock.now = start + dt.timedelta(minutes=5 * run)
        cpu["usage"] = 81.0 if run % 2 == 0 else 79.0
        run_health_check()
    assert [m["subject"] for m in smtp.messages] == ["Error - CPU usage is over 80%"] * 2
    assert smtp.messages[0]["X-Portal-Recurring"] is None
    assert smtp.messages[1]["X-Portal-Recurring"] is not None
    assert f"Failing since: {start:%Y-%m-%d %H:%M %Z}" in smtp.messages[1].get_content()


def test_a_steady_failure_is_resolved_once_it_has_held_too(smtp: Any, reminding: Any, clock: Any) -> None:
    """Whether a first pass is the end of a failure or the start of a flap
    is known only from the runs after it: every recovery waits until held."""
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    start = clock.now
    for minute in range(5):
        clock.now = start + dt.timedelta(minutes=minute)
        run_health_check()
    reminding.HEALTH_MEMORY_MIN_MB = 0
    counts = []
    for minute in range(5, 10):
        clock.now = start + dt.timedelta(minutes=minute)
        run_health_check()
        counts.append(len(smtp.messages))
    assert counts == [1, 1, 1, 2, 2]  # passing since minute 5: resolved at minute 8, once
    assert [m["subject"] for m in smtp.messages] == [
        f"Error - Available memory is less than {10**9}MB",
        f"Resolved - Available memory is less than {10**9}MB",
    ]


def test_a_clock_set_back_holds_neither_a_recovery_nor_a_reminder_for_the_hours_it_was_off(
    reminding: Any, clock: Any
) -> None:
    """A clock a day ahead (a machine booted before its time was synced)
    that is set right: what the runs remembered dates from tomorrow."""
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    subject = f"Error - Available memory is less than {10**9}MB"
    right = clock.now
    clock.now = right + dt.timedelta(days=1)
    run_health_check()  # the alert, mailed "tomorrow"
    reminding.HEALTH_MEMORY_MIN_MB = 0
    clock.now += dt.timedelta(minutes=1)
    run_health_check()  # a first pass, "tomorrow"
    for minute in range(4):  # the clock is set right: it keeps passing
        clock.now = right + dt.timedelta(minutes=minute)
        code, out = run_health_check()
    assert code == 0
    assert f"recovery mailed: Resolved - Available memory is less than {10**9}MB" in out
    assert [m.subject for m in mail.outbox] == [
        subject,
        "Resolved - Available memory is less than 1000000000MB",
    ]

    reminding.HEALTH_MEMORY_MIN_MB = 10**9  # fails anew, and the clock jumps back again
    clock.now = right + dt.timedelta(days=1, minutes=10)
    run_health_check()
    reminders = []
    for minute in (10, 11, 69, 70, 71):
        clock.now = right + dt.timedelta(minutes=minute)
        run_health_check()
        reminders.append(len(mail.outbox))
    assert reminders == [3, 3, 3, 4, 4]  # held an hour from when the clock was set right, not a day


def web_1_env(var: Path, email_url: str, *, memory_min_mb: int) -> dict[str, str]:
    """A ``health_check`` of its own on host web-1, reminding hourly, whose
    memory check fails below ``memory_min_mb`` and no other check fails."""
    return portal_env(
        var,
        EMAIL_URL=email_url,
        PORTAL_HEALTH_HOST="web-1",
        PORTAL_HEALTH_RECIPIENTS="ops@example.com",
        PORTAL_HEALTH_REMIND_MINUTES="60",
        PORTAL_HEALTH_CPU_MAX_PERCENT="100",
        PORTAL_HEALTH_DISK_MIN_PERCENT="0",
        PORTAL_HEALTH_MEMORY_MIN_MB=str(memory_min_mb),
    )


def test_two_checks_flapping_at_once_each_mail_one_alert_and_one_recovery_once_held(
    smtp: Any, reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU fails on even minutes, the memory on odd ones, for an hour
    and a half; then both pass."""
    cpu = _flapping_cpu(reminding, monkeypatch)
    start = clock.now
    received: list[tuple[int, str, str]] = []
    for minute in range(95):
        clock.now = start + dt.timedelta(minutes=minute)
        flapping = minute < 90
        cpu["usage"] = 81.0 if flapping and minute % 2 == 0 else 79.0
        reminding.HEALTH_MEMORY_MIN_MB = 10**9 if flapping and minute % 2 == 1 else 0
        before = len(smtp.messages)
        run_health_check()
        received += [
            (minute, str(message["X-Portal-Check"]), str(message["subject"]))
            for message in smtp.messages[before:]
        ]
    cpu_alert, memory_alert = (
        "Error - CPU usage is over 80%",
        f"Error - Available memory is less than {10**9}MB",
    )
    assert received == [
        (0, "cpu", cpu_alert),
        (1, "memory", memory_alert),
        (60, "cpu", cpu_alert),  # the reminder, saying it keeps recurring
        (61, "memory", memory_alert),
        (92, "cpu", "Resolved - CPU usage is over 80%"),  # passing since minute 89
        (93, "memory", f"Resolved - Available memory is less than {10**9}MB"),  # since minute 90
    ]
    for reminder in (smtp.messages[2], smtp.messages[3]):
        assert reminder["X-Portal-Recurring"] == "failed again 30 time(s) after passing since the last alert"


def test_a_recovery_held_mid_flap_is_mailed_by_the_next_process(
    smtp: Any, reminding: Any, clock: Any, tmp_path: Path
) -> None:
    """What was mailed lives in the shared cache: cron's next run (a process
    of its own) mails the recovery the earlier runs held."""
    var = tmp_path / "var"
    reminding.CACHES = {
        **reminding.CACHES,
        "shared": {"BACKEND": "portal.cache.SharedFileCache", "LOCATION": str(var / "cache" / "shared")},
    }
    reminding.HEALTH_HOST = "web-1"
    start = timezone.now() - dt.timedelta(minutes=10)
    for minute, limit in enumerate([10**9, 0, 10**9, 0]):  # fail, pass, fail, pass
        clock.now = start + dt.timedelta(minutes=minute)
        reminding.HEALTH_MEMORY_MIN_MB = limit
        run_health_check()
    assert [m["subject"] for m in smtp.messages] == [f"Error - Available memory is less than {10**9}MB"]

    done = manage_py(
        "health_check",
        env=web_1_env(var, f"smtp://{smtp.host}:{smtp.port}", memory_min_mb=0),
    )
    assert done.returncode == 0, done.stderr
    assert f"recovery mailed: Resolved - Available memory is less than {10**9}MB" in done.stdout
    assert [m["subject"] for m in smtp.messages] == [
        f"Error - Available memory is less than {10**9}MB",
        f"Resolved - Available memory is less than {10**9}MB",
    ]


def test_a_steady_failure_with_reminders_mails_the_courses_alert_each_time(
    reminding: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 1.0)
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    for _ in range(37):  # a run every 5 minutes for three hours
        run_health_check()
        clock.now += dt.timedelta(minutes=5)
    assert len(mail.outbox) == 4  # at 0, 60, 120 and 180 minutes
    assert {m.body for m in mail.outbox} == {BODY}
    assert not any("X-Portal-Recurring" in m.extra_headers for m in mail.outbox)


def test_by_default_each_failure_is_mailed_at_every_run_and_nothing_more(passing: Any, clock: Any) -> None:
    """The course's script: an alert per failing check at every run, no
    recovery mail, nothing remembered between runs."""
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    for _ in range(3):
        clock.now += dt.timedelta(minutes=1)
        run_health_check()
    assert [m.subject for m in mail.outbox] == [f"Error - Available memory is less than {10**9}MB"] * 3
    passing.HEALTH_MEMORY_MIN_MB = 0
    assert run_health_check()[0] == 0
    assert len(mail.outbox) == 3


def test_a_one_off_run_to_someone_else_changes_nothing_of_what_the_usual_recipients_get(
    reminding: Any, clock: Any
) -> None:
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    run_health_check()
    clock.now += dt.timedelta(minutes=1)
    run_health_check("--email", "me@example.com")  # someone looking into it
    assert [m.to for m in mail.outbox] == [["ops@example.com"], ["me@example.com"]]
    reminding.HEALTH_MEMORY_MIN_MB = 0
    for minutes in (1, 3):  # passing again, and 3 minutes on: held until then
        clock.now += dt.timedelta(minutes=minutes)
        run_health_check("--email", "me@example.com")
        run_health_check()
    resolved = [m.to for m in mail.outbox if m.subject.startswith("Resolved - ")]
    assert resolved == [["me@example.com"], ["ops@example.com"]]


def test_each_check_is_counted_on_its_own(reminding: Any, clock: Any) -> None:
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    run_health_check()
    clock.now += dt.timedelta(minutes=1)
    reminding.HEALTH_DISK_MIN_PERCENT = 101.0  # a second check starts failing
    run_health_check()
    assert [m.subject for m in mail.outbox] == [
        f"Error - Available memory is less than {10**9}MB",
        "Error - Available disk space is less than 101%",
    ]


def test_beats_runs_mail_a_lasting_failure_once(reminding: Any, clock: Any) -> None:
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    for _ in range(5):
        assert tasks.health_check_host.apply().get() == ["memory"]
        clock.now += dt.timedelta(minutes=1)
    assert len(mail.outbox) == 1


def test_beats_host_task_checks_the_host_and_its_shared_task_what_the_hosts_share(
    passing: Any, tmp_path: Path
) -> None:
    """Every worker runs the first, one worker the second: a shared check
    fails once per run, not once per worker."""
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    _broken_storage(passing, tmp_path)
    assert tasks.health_check_host.apply().get() == ["disk"]
    assert tasks.health_check.apply().get() == ["storage"]
    assert [m.subject for m in mail.outbox] == [
        "Error - Available disk space is less than 101%",
        "Error - The file store is unavailable",
    ]


def test_a_shared_checks_alerts_are_counted_once_whichever_host_runs_it(
    reminding: Any, clock: Any, tmp_path: Path
) -> None:
    _broken_storage(reminding, tmp_path)
    for host in ("worker-1", "worker-2", "worker-1"):  # beat's runs go to any worker
        reminding.HEALTH_HOST = host
        tasks.health_check.apply()
        clock.now += dt.timedelta(minutes=1)
    assert [m.subject for m in mail.outbox] == ["Error - The file store is unavailable"]


def test_two_runs_at_once_mail_a_shared_checks_alert_once(
    reminding: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cron on every host runs the database check at the same minute: the
    second run reads the check's state while the first is still mailing its
    alert, and must not mail it again."""
    down = health.Check("database", False, "OperationalError: away", "Error - The database is unavailable")
    first_decides, second_done = threading.Event(), threading.Event()
    recall, send = services._recall, locmem.EmailBackend.send_messages

    def recalled(check: health.Check, to: Any) -> Any:
        state = recall(check, to)
        if threading.current_thread().name == "first":
            first_decides.set()
        return state

    def sent(backend: Any, messages: Any) -> int:
        if threading.current_thread().name == "first":  # still mailing when the second run reads
            second_done.wait(timeout=10)
        return send(backend, messages)

    monkeypatch.setattr(services, "_recall", recalled)
    monkeypatch.setattr(locmem.EmailBackend, "send_messages", sent)
    outcomes: dict[str, services.HealthOutcome] = {}

    def run(name: str) -> None:
        outcomes[name] = services.health_alert(checks=(lambda: down,))

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert first_decides.wait(timeout=10)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    second.join()
    second_done.set()
    first.join()
    assert [m.subject for m in mail.outbox] == ["Error - The database is unavailable"]
    assert outcomes["second"].held == []
    assert [line.split(" that started at ")[0] for line in outcomes["second"].left] == [
        f"Error - The database is unavailable: being handled by the run on {reminding.HEALTH_HOST}"
    ]
    assert "mailed at " in services.health_alert(checks=(lambda: down,)).held[0]  # the next run, alone
    assert len(mail.outbox) == 1


def test_a_run_held_off_by_one_that_saw_the_check_pass_does_not_say_it_was_mailed(
    reminding: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first host reaches the database, the second does not: the second
    is left the check while the first decides, and no alert was mailed."""
    up = health.Check("database", True, "answers", "Error - The database is unavailable")
    down = health.Check("database", False, "OperationalError: away", "Error - The database is unavailable")
    first_decides, second_done = threading.Event(), threading.Event()
    recall = services._recall

    def recalled(check: health.Check, to: Any) -> Any:
        if threading.current_thread().name == "first":  # still deciding while the second runs
            first_decides.set()
            second_done.wait(timeout=10)
        return recall(check, to)

    monkeypatch.setattr(services, "_recall", recalled)
    reminding.HEALTH_HOST = "web-1"
    first = threading.Thread(target=services.health_alert, kwargs={"checks": (lambda: up,)}, name="first")
    first.start()
    try:
        assert first_decides.wait(timeout=10)
        reminding.HEALTH_HOST = "web-2"
        second = services.health_alert(checks=(lambda: down,))
    finally:
        second_done.set()
        first.join()
    assert mail.outbox == []
    assert second.held == []
    [left] = second.left
    assert left.startswith(
        "Error - The database is unavailable: being handled by the run on web-1 that started at "
    )


class Killed(BaseException):
    """The run's process ended where it stood (a kill, an OOM)."""


def test_a_check_claimed_by_a_run_that_died_names_that_run_and_claims_no_mail(
    reminding: Any, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _broken_storage(reminding, tmp_path)
    reminding.HEALTH_HOST = "worker-1"
    started = clock.now
    with monkeypatch.context() as killed:
        killed.setattr(services, "_send", lambda *args: (_ for _ in ()).throw(Killed()))
        killed.setattr(services, "_unclaim", lambda *args: None)  # it never got that far
        with pytest.raises(Killed):
            services.health_alert(checks=health.SERVICE_CHECKS)
    reminding.HEALTH_HOST = "worker-2"
    clock.now += dt.timedelta(seconds=30)
    code, out = run_health_check()
    lapses = started + dt.timedelta(seconds=2 * reminding.EMAIL_TIMEOUT + 60)
    assert code == 1
    assert mail.outbox == []
    assert "alert already mailed" not in out
    assert (
        "left to another run: Error - The file store is unavailable: being handled by the run on worker-1 "
        f"that started at {started:%H:%M:%S %Z} (its claim lapses at {lapses:%H:%M:%S %Z} "
        "should that run have died)"
    ) in out


def test_a_check_claimed_by_a_run_killed_on_this_host_is_mailed_by_the_next_run_at_once(
    reminding: Any, tmp_path: Path
) -> None:
    """cron's run is killed (an OOM) while it mails: the next run of the host
    does not wait out the claim that run left."""
    var = tmp_path / "var"
    reminding.CACHES = {
        **reminding.CACHES,
        "shared": {"BACKEND": "portal.cache.SharedFileCache", "LOCATION": str(var / "cache" / "shared")},
    }
    reminding.HEALTH_HOST = "web-1"
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    with socket.create_server(("127.0.0.1", 0)) as mail_server:  # takes the connection, never answers
        mail_server.settimeout(60)
        killed = subprocess.Popen(
            [sys.executable, "manage.py", "health_check"],
            cwd=ROOT,
            env=web_1_env(var, f"smtp://127.0.0.1:{mail_server.getsockname()[1]}", memory_min_mb=10**9),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            connection, _ = mail_server.accept()  # its checks claimed and decided, it mails
            connection.close()
        finally:
            killed.kill()
            killed.wait()

    code, out = run_health_check()

    assert code == 1
    assert "left to another run" not in out
    assert [m.subject for m in mail.outbox] == [f"Error - Available memory is less than {10**9}MB"]


@pytest.fixture
def running_process() -> Iterator[str]:
    """A process of this host that runs, as a claim names it."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        yield holders._me(child.pid)
    finally:
        child.kill()
        child.wait()


def _claimed_by(settings: Any, check: health.Check, **claim: Any) -> None:
    now = timezone.now()
    key = services._state_key(check, list(settings.HEALTH_RECIPIENTS)) + ":claim"
    claim = {"run": "another", "host": settings.HEALTH_HOST, "started": now, "until": now, **claim}
    caches["shared"].set(key, claim, timeout=60)


DATABASE_DOWN = health.Check(
    "database", False, "OperationalError: away", "Error - The database is unavailable"
)


def test_a_check_claimed_by_an_ended_process_of_this_host_is_taken_over_and_mailed(
    reminding: Any, ended_process: str
) -> None:
    _claimed_by(reminding, DATABASE_DOWN, process=ended_process)
    outcome = services.health_alert(checks=(lambda: DATABASE_DOWN,))
    assert outcome.left == []
    assert [m.subject for m in mail.outbox] == ["Error - The database is unavailable"]
    assert "mailed at " in services.health_alert(checks=(lambda: DATABASE_DOWN,)).held[0]  # its claim let go


def test_a_claim_whose_pid_now_belongs_to_a_newer_process_is_taken_over(
    reminding: Any, running_process: str
) -> None:
    node, pid, start = running_process.rsplit(":", 2)
    _claimed_by(reminding, DATABASE_DOWN, process=f"{node}:{pid}:{int(start) - 1}")
    outcome = services.health_alert(checks=(lambda: DATABASE_DOWN,))
    assert outcome.left == []
    assert [m.subject for m in mail.outbox] == ["Error - The database is unavailable"]


@pytest.mark.parametrize(
    "whose",
    ["a process that runs", "an ended process of another host", "an older release (no process named)"],
)
def test_a_claim_of_a_run_that_may_still_be_mailing_holds(
    reminding: Any, running_process: str, ended_process: str, whose: str
) -> None:
    claim = {
        "a process that runs": {"process": running_process},
        "an ended process of another host": {"process": ended_process, "host": "web-2"},
        "an older release (no process named)": {},
    }[whose]
    _claimed_by(reminding, DATABASE_DOWN, **claim)
    outcome = services.health_alert(checks=(lambda: DATABASE_DOWN,))
    assert mail.outbox == []
    assert [line.split(" that started at ")[0] for line in outcome.left] == [
        f"Error - The database is unavailable: being handled by the run on {claim.get('host', reminding.HEALTH_HOST)}"
    ]


@pytest.mark.parametrize(
    "garbled",
    [
        "{node}:99999999999999999999:{start}",  # a pid past any process's
        "{node}:-4194304:{start}",  # a process group, none of which runs
        "{node}:{pid}:noon",  # a start time that is no time
        "{node}:extra:{pid}:{start}",  # a field too many
        "unqueued",  # an image's holder, no process
    ],
)
def test_a_claim_naming_its_process_in_garbled_text_holds(
    reminding: Any, ended_process: str, garbled: str
) -> None:
    """Not judged ended (nor an error that lets the run decide beside it):
    it holds until it lapses, as a claim of an older release does."""
    node, pid, start = ended_process.rsplit(":", 2)
    _claimed_by(reminding, DATABASE_DOWN, process=garbled.format(node=node, pid=pid, start=start))
    outcome = services.health_alert(checks=(lambda: DATABASE_DOWN,))
    assert mail.outbox == []
    assert [line.split(" that started at ")[0] for line in outcome.left] == [
        f"Error - The database is unavailable: being handled by the run on {reminding.HEALTH_HOST}"
    ]


def test_two_runs_finding_the_same_ended_claim_mail_its_alert_once(
    reminding: Any, ended_process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs find the claim ended before either takes it over, and the
    one that decides reads the check's state only once the other has
    decided too or given up: a second taker would mail the alert again."""
    _claimed_by(reminding, DATABASE_DOWN, process=ended_process)
    both_found_it = threading.Barrier(2, timeout=10)
    other_decides_or_ended = threading.Event()
    deciding: list[str] = []
    died, recall = services._died, services._recall

    def found(held: Any) -> bool:
        ended = died(held)
        both_found_it.wait()
        return ended

    def recalled(check: health.Check, to: Any) -> Any:
        deciding.append(threading.current_thread().name)
        if len(deciding) == 1:
            other_decides_or_ended.wait(timeout=10)
        else:
            other_decides_or_ended.set()
        return recall(check, to)

    monkeypatch.setattr(services, "_died", found)
    monkeypatch.setattr(services, "_recall", recalled)
    outcomes: list[services.HealthOutcome] = []

    def run() -> None:
        try:
            outcomes.append(services.health_alert(checks=(lambda: DATABASE_DOWN,)))
        finally:
            other_decides_or_ended.set()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    assert len(deciding) == 1
    assert [m.subject for m in mail.outbox] == ["Error - The database is unavailable"]
    assert sorted(len(outcome.left) for outcome in outcomes) == [0, 1]


def test_an_alert_the_mail_server_did_not_take_is_tried_again_next_run(reminding: Any, clock: Any) -> None:
    reminding.EMAIL_BACKEND = "core.mail.EmailBackend"
    reminding.EMAIL_HOST, reminding.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens yet
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert "alert not mailed: Error - Available memory" in err.getvalue()
    with SMTPServer() as smtp:
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = smtp.host, smtp.port
        clock.now += dt.timedelta(minutes=1)
        run_health_check()
        [message] = smtp.wait_for(1)
        clock.now += dt.timedelta(minutes=1)
        run_health_check()
        assert len(smtp.messages) == 1
    assert message["subject"] == f"Error - Available memory is less than {10**9}MB"


def test_an_alert_refused_for_every_recipient_names_each_and_is_tried_again_next_run(
    reminding: Any, clock: Any
) -> None:
    reminding.EMAIL_BACKEND = "core.mail.EmailBackend"
    reminding.HEALTH_RECIPIENTS = ["Bereitschaft Müller <oncall@bücher.de>"]
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    subject = f"Error - Available memory is less than {10**9}MB"
    err = io.StringIO()
    with SMTPServer(refuse=["oncall@xn--bcher-kva.de"]) as smtp:
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = smtp.host, smtp.port
        with pytest.raises(CommandError):
            call_command("health_check", stdout=io.StringIO(), stderr=err)
        assert smtp.messages == []
    assert (
        f"alert not mailed: {subject}: not mailed to Bereitschaft Müller <oncall@bücher.de>: "
        "550 5.1.1 No such user here"
    ) in err.getvalue()
    with SMTPServer() as smtp:  # the mailbox exists again
        reminding.EMAIL_HOST, reminding.EMAIL_PORT = smtp.host, smtp.port
        clock.now += dt.timedelta(minutes=1)
        run_health_check()
        [message] = smtp.wait_for(1)
    assert message["subject"] == subject


def test_the_alert_names_its_host_and_what_was_measured(passing: Any) -> None:
    """A fleet's hosts send the same subjects and body: the host, the check
    and what was measured are in headers, as they arrive over SMTP."""
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.HEALTH_HOST = "worker-3.example.internal"
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    with SMTPServer() as smtp:
        passing.EMAIL_HOST, passing.EMAIL_PORT = smtp.host, smtp.port
        run_health_check()
        [message] = smtp.wait_for(1)
    assert message["subject"] == "Error - Available disk space is less than 101%"
    assert message.get_content().strip() == BODY
    assert message["X-Portal-Host"] == "worker-3.example.internal"
    assert message["X-Portal-Check"] == "disk"
    assert message["X-Portal-Detail"].endswith("(minimum 101%)")


def test_the_host_defaults_to_the_machines_name() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.HEALTH_HOST)",
        ],
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PORTAL_HEALTH_HOST"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.splitlines()[-1] == socket.gethostname()


def test_an_alert_goes_out_when_what_was_mailed_cannot_be_kept(
    reminding: Any, tmp_path: Path, clock: Any
) -> None:
    """The state lives under var/ in the embedded set-up: a full or broken
    disk there, the very thing the alert may be about, costs its memory
    (every run mails, as the course's script did), never the alert."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    reminding.CACHES = {
        **reminding.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(blocker / "cache"),
        },
    }
    reminding.HEALTH_MEMORY_MIN_MB = 10**9
    for _ in range(2):
        code, _ = run_health_check()
        clock.now += dt.timedelta(minutes=1)
        assert code == 1
    assert [m.subject for m in mail.outbox] == [f"Error - Available memory is less than {10**9}MB"] * 2


def _stalling_smtp(listener: socket.socket, left: threading.Event) -> None:
    """Answers like a mail server until it has the message, then says
    nothing more (a relay stuck on its queue). Sets ``left`` when the client
    hangs up on it; after two minutes it hangs up itself."""
    connection, _ = listener.accept()
    with connection, connection.makefile("rb") as lines:
        connection.sendall(b"220 mail.example.com ESMTP\r\n")
        in_data = False
        for line in lines:
            if in_data:
                if line == b".\r\n":
                    # The message is in; its reply never comes.
                    connection.settimeout(120)
                    with contextlib.suppress(OSError):
                        while connection.recv(4096):
                            pass
                        left.set()
                    return
                continue
            if line.upper().startswith(b"DATA"):
                in_data = True
                connection.sendall(b"354 go ahead\r\n")
            else:
                connection.sendall(b"250 ok\r\n")


def test_a_mail_server_that_stops_answering_mid_message_is_named_with_the_time_out(passing: Any) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    left = threading.Event()
    server = threading.Thread(target=_stalling_smtp, args=(listener, left), daemon=True)
    server.start()
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    passing.EMAIL_TIMEOUT = 1
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    err = io.StringIO()
    with listener, pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert left.wait(timeout=30), "the run did not hang up on the server"
    port = passing.EMAIL_PORT
    assert (
        f"alert not mailed: Error - Available memory is less than {10**9}MB: "
        f"the mail server 127.0.0.1:{port} did not answer within 1 s (EMAIL_TIMEOUT)"
    ) in err.getvalue()


def test_a_mail_server_that_is_not_there_is_named(passing: Any) -> None:
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", free_port()
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert f"the mail server 127.0.0.1:{passing.EMAIL_PORT} refused the connection" in err.getvalue()
    passing.EMAIL_HOST = "mail.invalid"  # a name that never resolves (RFC 6761)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert f"the mail server mail.invalid:{passing.EMAIL_PORT} does not resolve" in err.getvalue()


def _hanging_up(listener: socket.socket) -> None:
    """Takes the connection and closes it at once, without a greeting (a
    server at its connection limit, a firewall that resets)."""
    connection, _ = listener.accept()
    connection.close()


def test_a_mail_server_that_hangs_up_is_named_with_what_it_did(passing: Any) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_hanging_up, args=(listener,), daemon=True).start()
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    err = io.StringIO()
    with listener, pytest.raises(CommandError):
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert (
        f"the mail server 127.0.0.1:{passing.EMAIL_PORT} closed the connection (Connection unexpectedly closed)"
    ) in err.getvalue()
    assert "NoneType" not in err.getvalue()


def test_a_mail_server_that_trickles_is_given_twice_email_timeout_for_the_whole_run(passing: Any) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    left = threading.Event()
    threading.Thread(target=trickling_smtp, args=(listener, left), daemon=True).start()
    passing.EMAIL_BACKEND = "core.mail.EmailBackend"
    passing.EMAIL_HOST, passing.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    passing.EMAIL_TIMEOUT = 1  # no read waits that long
    passing.HEALTH_MEMORY_MIN_MB = 10**9
    passing.HEALTH_DISK_MIN_PERCENT = 101.0
    err = io.StringIO()
    with listener, pytest.raises(CommandError) as failed:
        call_command("health_check", stdout=io.StringIO(), stderr=err)
    assert failed.value.returncode == 1
    assert left.wait(timeout=30), "the run kept reading the trickle"
    late = f"the mail server 127.0.0.1:{passing.EMAIL_PORT} did not take the mail within 2 s (twice EMAIL_TIMEOUT)"
    not_mailed = [line for line in err.getvalue().splitlines() if line.startswith("alert not mailed:")]
    assert len(not_mailed) == 2
    assert all(line.endswith(late) for line in not_mailed), not_mailed


@pytest.mark.django_db
def test_the_detailed_report_names_a_value_that_cannot_be_read(
    staff_client: Client, passing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "virtual_memory", _unreadable("/proc/meminfo"))
    response = staff_client.get("/health/")
    assert response.status_code == 503
    [memory] = [c for c in response.json()["checks"] if not c["ok"]]
    assert memory["name"] == "memory"
    assert memory["detail"] == "not measured: PermissionError: [Errno 13] Permission denied: '/proc/meminfo'"


GARBLED_CLAIMS = {
    "times as text": {"run": "r", "host": "web-1", "started": "09:00", "until": "09:02"},
    "times missing": {"run": "r", "host": "web-1", "started": None, "until": None},
    "a host alone": {"host": "web-1"},
}


@pytest.mark.parametrize("claim", GARBLED_CLAIMS.values(), ids=GARBLED_CLAIMS.keys())
def test_a_claim_that_cannot_be_read_holds_the_check_off_as_another_run_s_without_failing_the_run(
    reminding: Any, tmp_path: Path, claim: dict[str, Any]
) -> None:
    _broken_storage(reminding, tmp_path)
    key = services._state_key(health.check_storage(), list(reminding.HEALTH_RECIPIENTS)) + ":claim"
    caches["shared"].set(key, claim, timeout=60)

    code, out = run_health_check()

    assert code == 1
    assert mail.outbox == []
    assert "left to another run: Error - The file store is unavailable: being handled by another run" in out


@pytest.mark.django_db
def test_a_browser_following_the_status_link_gets_a_page_with_each_check(
    client: Client, passing: Any, tmp_path: Any
) -> None:
    _broken_storage(passing, tmp_path)
    health.readiness.clear()
    response = client.get("/health/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert "Accept" in response["Vary"]
    html = response.content.decode()
    assert "<html" in html
    assert re.search(r">database</th>\s*<td>OK</td>", html)
    assert re.search(r">storage</th>\s*<td>Failing</td>", html)
    assert "file-not-dir" not in html  # no detail for anyone
    # Scripts and monitors, which do not ask for HTML, still get JSON.
    assert client.get("/health/").json()["checks"] == {"database": "ok", "storage": "fail"}


@pytest.mark.django_db
def test_staff_following_the_status_link_see_each_checks_detail(staff_client: Client, passing: Any) -> None:
    response = staff_client.get("/health/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ALL_CHECKS:
        assert f">{name}</th>" in html
    assert html.count("<td>OK</td>") == len(ALL_CHECKS)
