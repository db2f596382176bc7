"""Every number the settings read from the environment has a range: a value
out of it, or not a number at all, stops the start with a message naming the
variable, the value and the range, instead of doing something odd much later
(a login limit of 0 refusing every admin login)."""

from __future__ import annotations

import ast
import contextlib
import os
import runpy
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from kombu import Connection
from kombu.utils.url import parse_url

from core.mail import EmailBackend

ROOT = Path(__file__).resolve().parent.parent.parent
SETTINGS = ROOT / "portal" / "settings.py"
POSTGRES = {"DATABASE_URL": "postgres://portal:x@127.0.0.1:5432/portal"}

# (environment, the message it stops the start with)
REFUSED: list[tuple[dict[str, str], str]] = [
    # Durations past what a date, S3's signed links or a sensible site takes.
    (
        {"PORTAL_ORIGINAL_URL_SECONDS": "604801"},
        "PORTAL_ORIGINAL_URL_SECONDS must be from 1 to 604800; it is 604801",
    ),
    (
        {"PORTAL_IMAGE_STUCK_AFTER_SECONDS": "31536001"},
        "PORTAL_IMAGE_STUCK_AFTER_SECONDS must be from 0 to 31536000; it is 31536001",
    ),
    (
        {"PORTAL_IMAGE_ORPHAN_GRACE_SECONDS": "31536001"},
        "PORTAL_IMAGE_ORPHAN_GRACE_SECONDS must be from 0 to 31536000; it is 31536001",
    ),
    (
        {"PORTAL_IMPORT_FILES_SECONDS": "31536001"},
        "PORTAL_IMPORT_FILES_SECONDS must be from 1 to 31536000; it is 31536001",
    ),
    (
        {"PORTAL_ADMIN_LOGIN_LOCKOUT_SECONDS": "31536001"},
        "PORTAL_ADMIN_LOGIN_LOCKOUT_SECONDS must be from 1 to 31536000; it is 31536001",
    ),
    (
        {"PORTAL_HEALTH_REMIND_MINUTES": "525601"},
        "PORTAL_HEALTH_REMIND_MINUTES must be from 0 to 525600; it is 525601",
    ),
    ({**POSTGRES, "DATABASE_CONN_MAX_AGE": "-1"}, "DATABASE_CONN_MAX_AGE must be at least 0; it is -1"),
    # libpq waits 2 s at the least, and reads the value as a C int: past its
    # largest it refuses it and every connection fails.
    (
        {**POSTGRES, "DATABASE_CONNECT_TIMEOUT": "1"},
        "DATABASE_CONNECT_TIMEOUT must be from 2 to 2147483647; it is 1",
    ),
    (
        {**POSTGRES, "DATABASE_CONNECT_TIMEOUT": "2147483648"},
        "DATABASE_CONNECT_TIMEOUT must be from 2 to 2147483647; it is 2147483648",
    ),
    (
        {**POSTGRES, "DATABASE_NETWORK_TIMEOUT": "0"},
        "DATABASE_NETWORK_TIMEOUT must be from 1 to 32767; it is 0",
    ),
    # The most seconds the kernel takes for a keepalive's idle time or
    # interval: past it libpq cannot set them and every connection fails.
    (
        {**POSTGRES, "DATABASE_NETWORK_TIMEOUT": "32768"},
        "DATABASE_NETWORK_TIMEOUT must be from 1 to 32767; it is 32768",
    ),
    ({"PORTAL_ORIGINAL_URL_SECONDS": "0"}, "PORTAL_ORIGINAL_URL_SECONDS must be from 1 to 604800; it is 0"),
    ({"PORTAL_STORAGE_TIMEOUT_SECONDS": "0"}, "PORTAL_STORAGE_TIMEOUT_SECONDS must be at least 1; it is 0"),
    ({"PORTAL_IMAGE_MAX_BYTES": "0"}, "PORTAL_IMAGE_MAX_BYTES must be at least 1; it is 0"),
    ({"PORTAL_IMAGE_MAX_PIXELS": "-5"}, "PORTAL_IMAGE_MAX_PIXELS must be at least 1; it is -5"),
    (
        {"PORTAL_IMAGE_STUCK_AFTER_SECONDS": "-1"},
        "PORTAL_IMAGE_STUCK_AFTER_SECONDS must be from 0 to 31536000; it is -1",
    ),
    (
        {"PORTAL_IMAGE_ORPHAN_GRACE_SECONDS": "-1"},
        "PORTAL_IMAGE_ORPHAN_GRACE_SECONDS must be from 0 to 31536000; it is -1",
    ),
    ({"PORTAL_IMAGE_MAX_ATTEMPTS": "0"}, "PORTAL_IMAGE_MAX_ATTEMPTS must be at least 1; it is 0"),
    ({"PORTAL_IMAGE_MEMORY_LIMIT_MB": "-1"}, "PORTAL_IMAGE_MEMORY_LIMIT_MB must be at least 0; it is -1"),
    ({"PORTAL_IMAGE_NICE": "20"}, "PORTAL_IMAGE_NICE must be from 0 to 19; it is 20"),
    ({"PORTAL_IMAGE_ONDEMAND_MAX_SIZE": "0"}, "PORTAL_IMAGE_ONDEMAND_MAX_SIZE must be at least 1; it is 0"),
    (
        {"PORTAL_IMAGE_ONDEMAND_MAX_PER_IMAGE": "0"},
        "PORTAL_IMAGE_ONDEMAND_MAX_PER_IMAGE must be at least 1; it is 0",
    ),
    (
        {"PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS": "-0.5"},
        "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS must be at least 0; it is -0.5",
    ),
    (
        {"PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "0"},
        "PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS must be at least 1; it is 0",
    ),
    (
        {"PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS": "-1"},
        "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS must be at least 0; it is -1",
    ),
    ({"PORTAL_WEB_TIMEOUT_SECONDS": "0"}, "PORTAL_WEB_TIMEOUT_SECONDS must be at least 1; it is 0"),
    ({"PORTAL_MAX_BODY_BYTES": "0"}, "PORTAL_MAX_BODY_BYTES must be at least 1; it is 0"),
    ({"PORTAL_ADMIN_LOGIN_MAX_FAILURES": "0"}, "PORTAL_ADMIN_LOGIN_MAX_FAILURES must be at least 1; it is 0"),
    (
        {"PORTAL_ADMIN_LOGIN_LOCKOUT_SECONDS": "0"},
        "PORTAL_ADMIN_LOGIN_LOCKOUT_SECONDS must be from 1 to 31536000; it is 0",
    ),
    (
        {"PORTAL_ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS": "-1"},
        "PORTAL_ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS must be at least 0; it is -1",
    ),
    ({"EMAIL_TIMEOUT": "0"}, "EMAIL_TIMEOUT must be from 1 to 3600; it is 0"),
    # Past what a socket's time-out takes, every mail (the health alerts
    # included) failed with an OverflowError, a traceback and no alert.
    ({"EMAIL_TIMEOUT": "99999999999"}, "EMAIL_TIMEOUT must be from 1 to 3600; it is 99999999999"),
    (
        {"PORTAL_HEALTH_CPU_MAX_PERCENT": "101"},
        "PORTAL_HEALTH_CPU_MAX_PERCENT must be from 0 to 100; it is 101",
    ),
    (
        {"PORTAL_HEALTH_DISK_MIN_PERCENT": "-1"},
        "PORTAL_HEALTH_DISK_MIN_PERCENT must be from 0 to 100; it is -1",
    ),
    ({"PORTAL_HEALTH_MEMORY_MIN_MB": "-1"}, "PORTAL_HEALTH_MEMORY_MIN_MB must be at least 0; it is -1"),
    (
        {"PORTAL_HEALTH_REMIND_MINUTES": "-60"},
        "PORTAL_HEALTH_REMIND_MINUTES must be from 0 to 525600; it is -60",
    ),
    (
        {"PORTAL_HEALTH_READY_CACHE_SECONDS": "-1"},
        "PORTAL_HEALTH_READY_CACHE_SECONDS must be at least 0; it is -1",
    ),
    ({"CELERY_TASK_SOFT_TIME_LIMIT": "-1"}, "CELERY_TASK_SOFT_TIME_LIMIT must be at least 0; it is -1"),
    ({"CELERY_TASK_TIME_LIMIT": "0"}, "CELERY_TASK_TIME_LIMIT must be at least 1; it is 0"),
    ({"CELERY_VISIBILITY_TIMEOUT": "0"}, "CELERY_VISIBILITY_TIMEOUT must be at least 1; it is 0"),
    (
        {"PORTAL_SWEEP_INTERVAL_SECONDS": "0"},
        "PORTAL_SWEEP_INTERVAL_SECONDS must be from 1 to 86400; it is 0",
    ),
    (
        {"PORTAL_SWEEP_INTERVAL_SECONDS": "1" + "0" * 20},
        f"PORTAL_SWEEP_INTERVAL_SECONDS must be from 1 to 86400; it is 1{'0' * 20}",
    ),
    ({"PORTAL_IMPORT_FILES_SECONDS": "0"}, "PORTAL_IMPORT_FILES_SECONDS must be from 1 to 31536000; it is 0"),
    ({"PORTAL_IMPORT_SETTLE_SECONDS": "-1"}, "PORTAL_IMPORT_SETTLE_SECONDS must be at least 0; it is -1"),
    ({"DJANGO_HSTS_SECONDS": "-1"}, "DJANGO_HSTS_SECONDS must be at least 0; it is -1"),
    ({"PORTAL_TRUSTED_PROXY_COUNT": "-1"}, "PORTAL_TRUSTED_PROXY_COUNT must be at least 0; it is -1"),
    (
        {"PORTAL_API_TOKEN_MAX_AGE_DAYS": "-1"},
        "PORTAL_API_TOKEN_MAX_AGE_DAYS must be from 0 to 3650; it is -1",
    ),
    # Past ten years a token is as good as one that never expires (0), and
    # a number of many digits would overflow the date it is added to (a 500).
    (
        {"PORTAL_API_TOKEN_MAX_AGE_DAYS": "1" + "0" * 20},
        f"PORTAL_API_TOKEN_MAX_AGE_DAYS must be from 0 to 3650; it is 1{'0' * 20}",
    ),
    # Not a number at all.
    ({"PORTAL_IMAGE_NICE": "high"}, "PORTAL_IMAGE_NICE must be a whole number, from 0 to 19; it is 'high'"),
    (
        {"PORTAL_IMAGE_MAX_ATTEMPTS": "2.5"},
        "PORTAL_IMAGE_MAX_ATTEMPTS must be a whole number, at least 1; it is '2.5'",
    ),
    ({"PORTAL_IMAGE_MAX_BYTES": ""}, "PORTAL_IMAGE_MAX_BYTES must be a whole number, at least 1; it is ''"),
    (
        {"PORTAL_HEALTH_CPU_MAX_PERCENT": "80%"},
        "PORTAL_HEALTH_CPU_MAX_PERCENT must be a number, from 0 to 100; it is '80%'",
    ),
    (
        {"PORTAL_HEALTH_READY_CACHE_SECONDS": "inf"},
        "PORTAL_HEALTH_READY_CACHE_SECONDS must be a number, at least 0; it is 'inf'",
    ),
    (
        {"PORTAL_IMPORT_SETTLE_SECONDS": "nan"},
        "PORTAL_IMPORT_SETTLE_SECONDS must be a number, at least 0; it is 'nan'",
    ),
    # A whole number past any float, and past the range.
    (
        {"PORTAL_IMAGE_NICE": "1" + "0" * 400},
        f"PORTAL_IMAGE_NICE must be from 0 to 19; it is 1{'0' * 400}",
    ),
    # Two settings that must agree.
    (
        {"CELERY_TASK_SOFT_TIME_LIMIT": "180", "CELERY_TASK_TIME_LIMIT": "180"},
        "CELERY_TASK_SOFT_TIME_LIMIT must be less than CELERY_TASK_TIME_LIMIT (180), or 0 for none; it is 180",
    ),
    # A request for a rendition on demand that may wait past the web
    # server's timeout: its worker is killed, the client's connection dropped.
    (
        {"PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "45"},
        "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS + PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS + "
        "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS, the longest a request for a rendition on demand may "
        "take, must be less than PORTAL_WEB_TIMEOUT_SECONDS (60), after which the web server kills its "
        "worker; it is 2 + 45 + 15 = 62",
    ),
    (
        {
            "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS": "0",
            "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS": "0",
            "PORTAL_WEB_TIMEOUT_SECONDS": "30",
        },
        "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS + PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS + "
        "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS, the longest a request for a rendition on demand may "
        "take, must be less than PORTAL_WEB_TIMEOUT_SECONDS (30), after which the web server kills its "
        "worker; it is 0 + 30 + 0 = 30",
    ),
    # A request waiting on a store that hangs, or on a database whose network
    # stopped, past the web server's timeout: killed before its 503.
    (
        {"AWS_STORAGE_BUCKET_NAME": "media", "PORTAL_STORAGE_TIMEOUT_SECONDS": "29"},
        "2 * PORTAL_STORAGE_TIMEOUT_SECONDS + 2, the longest a request waits on a store that hangs, must be "
        "less than PORTAL_WEB_TIMEOUT_SECONDS (60), after which the web server kills its worker; it is "
        "2 * 29 + 2 = 60",
    ),
    (
        {**POSTGRES, "DATABASE_NETWORK_TIMEOUT": "45", "DATABASE_CONNECT_TIMEOUT": "15"},
        "DATABASE_NETWORK_TIMEOUT + DATABASE_CONNECT_TIMEOUT (or DATABASE_URL's tcp_user_timeout, in ms, and "
        "connect_timeout), the longest a request waits on a database whose network stopped, must be less than "
        "PORTAL_WEB_TIMEOUT_SECONDS (60), after which the web server kills its worker; it is 45 + 15 = 60",
    ),
    (
        {
            "DATABASE_URL": POSTGRES["DATABASE_URL"] + "?tcp_user_timeout=20500",
            "PORTAL_WEB_TIMEOUT_SECONDS": "30",
            "PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "10",
        },
        "DATABASE_NETWORK_TIMEOUT + DATABASE_CONNECT_TIMEOUT (or DATABASE_URL's tcp_user_timeout, in ms, and "
        "connect_timeout), the longest a request waits on a database whose network stopped, must be less than "
        "PORTAL_WEB_TIMEOUT_SECONDS (30), after which the web server kills its worker; it is 20.5 + 10 = 30.5",
    ),
]

# (environment, setting, its value): the edges of each range, and 0 where it turns a feature off.
ACCEPTED: list[tuple[dict[str, str], str, Any]] = [
    ({"PORTAL_ADMIN_LOGIN_MAX_FAILURES": "1"}, "ADMIN_LOGIN_MAX_FAILURES", 1),
    ({"PORTAL_ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS": "0"}, "ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS", 0),
    ({"PORTAL_HEALTH_REMIND_MINUTES": "0"}, "HEALTH_REMIND_MINUTES", 0),
    ({"DJANGO_HSTS_SECONDS": "0"}, "SECURE_HSTS_SECONDS", 0),
    ({"PORTAL_TRUSTED_PROXY_COUNT": "0"}, "TRUSTED_PROXY_COUNT", 0),
    ({"PORTAL_IMAGE_MEMORY_LIMIT_MB": "0"}, "IMAGE_MEMORY_LIMIT_MB", 0),
    ({"PORTAL_IMAGE_NICE": "0"}, "IMAGE_NICE", 0),
    ({"PORTAL_SWEEP_INTERVAL_SECONDS": "86400"}, "SWEEP_INTERVAL_SECONDS", 86400),
    ({"PORTAL_API_TOKEN_MAX_AGE_DAYS": "0"}, "API_TOKEN_MAX_AGE_DAYS", 0),
    ({"PORTAL_API_TOKEN_MAX_AGE_DAYS": "3650"}, "API_TOKEN_MAX_AGE_DAYS", 3650),
    ({"PORTAL_IMAGE_NICE": " 19 "}, "IMAGE_NICE", 19),
    ({"PORTAL_HEALTH_CPU_MAX_PERCENT": "100"}, "HEALTH_CPU_MAX_PERCENT", 100.0),
    ({"PORTAL_HEALTH_DISK_MIN_PERCENT": "0"}, "HEALTH_DISK_MIN_PERCENT", 0.0),
    ({"PORTAL_IMPORT_SETTLE_SECONDS": "1.5"}, "IMPORT_SETTLE_SECONDS", 1.5),
    ({"PORTAL_IMAGE_STUCK_AFTER_SECONDS": "0"}, "IMAGE_STUCK_AFTER_SECONDS", 0),
    ({"CELERY_TASK_SOFT_TIME_LIMIT": "0", "CELERY_TASK_TIME_LIMIT": "1"}, "CELERY_TASK_SOFT_TIME_LIMIT", 0),
    ({"CELERY_TASK_SOFT_TIME_LIMIT": "179"}, "CELERY_TASK_SOFT_TIME_LIMIT", 179),
    ({"PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS": "0"}, "IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS", 0),
    # The longest wait of a rendition on demand just under the web server's timeout.
    (
        {"PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "42", "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS": "2.5"},
        "IMAGE_ONDEMAND_TIME_LIMIT_SECONDS",
        42,
    ),
    (
        {"PORTAL_WEB_TIMEOUT_SECONDS": "120", "PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "90"},
        "WEB_TIMEOUT_SECONDS",
        120,
    ),
    # The waits on a store and on a database just under the web server's timeout;
    # without S3 or PostgreSQL there are none to check.
    (
        {"AWS_STORAGE_BUCKET_NAME": "media", "PORTAL_STORAGE_TIMEOUT_SECONDS": "28"},
        "STORAGE_TIMEOUT_SECONDS",
        28,
    ),
    ({"PORTAL_STORAGE_TIMEOUT_SECONDS": "300"}, "STORAGE_TIMEOUT_SECONDS", 300),
    (
        {**POSTGRES, "DATABASE_NETWORK_TIMEOUT": "45", "DATABASE_CONNECT_TIMEOUT": "14"},
        "WEB_TIMEOUT_SECONDS",
        60,
    ),
    (
        {
            "PORTAL_WEB_TIMEOUT_SECONDS": "20",
            "PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS": "5",
            "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS": "5",
        },
        "WEB_TIMEOUT_SECONDS",
        20,
    ),
    (
        {"CELERY_TASK_TIME_LIMIT": "600", "CELERY_VISIBILITY_TIMEOUT": "8"},
        "CELERY_BROKER_TRANSPORT_OPTIONS",
        {"visibility_timeout": 8},
    ),
]


def shown(environment: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in environment.items() if name != "DATABASE_URL")


def numbers_read() -> set[str]:
    """The variables settings.py reads with env.int or env.float."""
    tree = ast.parse(SETTINGS.read_text(), filename=str(SETTINGS))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in {"env.int", "env.float"}
        and isinstance(node.args[0], ast.Constant)
    }


def load_settings(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> dict[str, Any]:
    """The settings module run afresh with ``environment``, as a process
    starting with it would run it (the loaded settings stay as they are)."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", "a-key-for-the-test")  # none written to var/
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


def test_each_number_read_from_the_environment_is_refused_out_of_its_range_here() -> None:
    assert numbers_read() == {name for environment, _ in REFUSED for name in environment} - {
        "DATABASE_URL",
        "AWS_STORAGE_BUCKET_NAME",
    }


@pytest.mark.parametrize(("environment", "message"), REFUSED, ids=[shown(env) for env, _ in REFUSED])
def test_a_number_out_of_its_range_stops_the_start_naming_the_variable_value_and_range(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(monkeypatch, environment)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("environment", "name", "value"), ACCEPTED, ids=[shown(env) for env, _, _ in ACCEPTED]
)
def test_the_edges_of_each_range_and_the_zeros_that_turn_a_feature_off_are_taken(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], name: str, value: Any
) -> None:
    assert load_settings(monkeypatch, environment)[name] == value


def test_the_defaults_are_within_their_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in numbers_read():
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings(monkeypatch, POSTGRES)
    assert loaded["ADMIN_LOGIN_MAX_FAILURES"] == 5
    assert (loaded["IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS"], loaded["WEB_TIMEOUT_SECONDS"]) == (15, 60)
    assert loaded["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"visibility_timeout": 360}
    assert loaded["DATABASES"]["default"]["OPTIONS"]["connect_timeout"] == 10
    assert loaded["DATABASES"]["default"]["OPTIONS"]["tcp_user_timeout"] == 20_000


def test_a_connect_timeout_in_the_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    url = POSTGRES["DATABASE_URL"] + "?connect_timeout=3"
    loaded = load_settings(monkeypatch, {"DATABASE_URL": url, "DATABASE_CONNECT_TIMEOUT": "20"})
    assert int(loaded["DATABASES"]["default"]["OPTIONS"]["connect_timeout"]) == 3


def test_the_network_timeout_sets_the_tcp_user_timeout_and_the_keepalives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = load_settings(monkeypatch, {**POSTGRES, "DATABASE_NETWORK_TIMEOUT": "30"})
    options = loaded["DATABASES"]["default"]["OPTIONS"]
    assert {key: value for key, value in options.items() if key != "connect_timeout"} == {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }


def test_a_keepalive_or_tcp_user_timeout_in_the_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    url = POSTGRES["DATABASE_URL"] + "?tcp_user_timeout=5000&keepalives_idle=7"
    loaded = load_settings(monkeypatch, {"DATABASE_URL": url, "DATABASE_NETWORK_TIMEOUT": "30"})
    options = loaded["DATABASES"]["default"]["OPTIONS"]
    assert (int(options["tcp_user_timeout"]), int(options["keepalives_idle"])) == (5000, 7)
    assert options["keepalives_interval"] == 10


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"PORTAL_ADMIN_LOGIN_MAX_FAILURES": "0"},
            "PORTAL_ADMIN_LOGIN_MAX_FAILURES must be at least 1; it is 0",
        ),
        ({"EMAIL_TIMEOUT": "thirty"}, "EMAIL_TIMEOUT must be a whole number, from 1 to 3600; it is 'thirty'"),
    ],
    ids=["out of range", "not a number"],
)
def test_a_process_started_with_a_number_out_of_its_range_exits_with_the_message(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
        **environment,
    }
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode != 0
    assert (
        started.stderr.strip().splitlines()[-1] == f"django.core.exceptions.ImproperlyConfigured: {message}"
    )


@pytest.mark.parametrize("variable", ["PORTAL_FEEDBACK_RATE", "PORTAL_LAB_RATE"])
@pytest.mark.parametrize("rate", ["10/fortnight", "0/min", "abc", "1.5/min", "10/Min", "-1/min", "10/"])
def test_a_rate_limit_the_throttles_cannot_read_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, rate: str
) -> None:
    """Read by DRF only at a post, it answered every post it limits with a 500."""
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(monkeypatch, {variable: rate})
    assert str(refused.value) == (
        f"{variable} must be a count of at least 1 per s, min, hour or day (as 10/min); it is {rate!r}"
    )


@pytest.mark.parametrize(
    ("rate", "read"), [("10/min", "10/min"), (" 5 / hour ", "5/hour"), ("1/s", "1/s"), ("2/day", "2/day")]
)
def test_a_rate_limit_is_read_as_the_throttles_read_it(
    monkeypatch: pytest.MonkeyPatch, rate: str, read: str
) -> None:
    loaded = load_settings(monkeypatch, {"PORTAL_FEEDBACK_RATE": rate, "PORTAL_LAB_RATE": rate})
    assert loaded["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"] == {"feedback": read, "lab": read}


@pytest.mark.parametrize("variable", ["PORTAL_METRICS_ALLOWED_NETWORKS", "PORTAL_LAB_WRITE_NETWORKS"])
@pytest.mark.parametrize(
    ("value", "refused"),
    [("10.0.0.0/8,office", "'office'"), ("10.0.0.0/8;192.168.0.0/16", "'10.0.0.0/8;192.168.0.0/16'")],
    ids=["a name", "two in one"],
)
def test_a_network_the_checks_cannot_read_stops_the_start_naming_the_variable_and_entry(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, refused: str
) -> None:
    """Read only as a request was checked against it, it answered every
    scrape of /metrics or every post to /fruits/ with a 500."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value) == (
        f"{variable}: not an IP network or address: {refused} "
        "(networks separated by commas, such as 10.0.0.0/8,::1/128)"
    )


def test_networks_are_read_with_the_spaces_around_them_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    value = "10.0.0.0/8, 192.0.2.7 ,::1/128"
    loaded = load_settings(
        monkeypatch, {"PORTAL_METRICS_ALLOWED_NETWORKS": value, "PORTAL_LAB_WRITE_NETWORKS": value}
    )
    assert loaded["METRICS_ALLOWED_NETWORKS"] == ["10.0.0.0/8", "192.0.2.7", "::1/128"]
    assert loaded["LAB_WRITE_NETWORKS"] == ["10.0.0.0/8", "192.0.2.7", "::1/128"]
    assert load_settings(monkeypatch, {"PORTAL_LAB_WRITE_NETWORKS": ""})["LAB_WRITE_NETWORKS"] == []


SWITCHES = {
    "DJANGO_DEBUG": "DEBUG",
    "DJANGO_HTTPS": "HTTPS",
    "PORTAL_SERVE_MEDIA": "SERVE_MEDIA",
    "PORTAL_IMAGE_AVIF": "IMAGE_AVIF",
    "PORTAL_FEEDBACK_MODERATION": "FEEDBACK_MODERATION",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_HSTS_PRELOAD": "SECURE_HSTS_PRELOAD",
    "PORTAL_CSP_REPORT_ONLY": "CSP_REPORT_ONLY",
}


@pytest.mark.parametrize("variable", sorted(SWITCHES))
@pytest.mark.parametrize("value", ["ture", "enabled", "2", ""])
def test_a_switch_neither_on_nor_off_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """django-environ reads anything it does not know as off: DJANGO_HTTPS=ture
    served the site without secure cookies, HSTS or the HTTPS redirect,
    without a word."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value) == (
        f"{variable} must be true or false (or yes/no, on/off, 1/0); it is {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("true", True),
        (" Yes ", True),
        ("on", True),
        ("1", True),
        ("FALSE", False),
        ("no", False),
        ("0", False),
    ],
)
def test_a_switch_is_read_on_or_off(monkeypatch: pytest.MonkeyPatch, value: str, read: bool) -> None:
    loaded = load_settings(monkeypatch, dict.fromkeys(SWITCHES, value))
    assert {setting: loaded[setting] for setting in SWITCHES.values()} == dict.fromkeys(
        SWITCHES.values(), read
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "DATABASE_URL",
            "nonsense",
            "DATABASE_URL must be a URL such as postgres://user:password@host:5432/name; "
            "it is 'nonsense' (no scheme it knows, such as postgres)",
        ),
        (
            "DATABASE_URL",
            "",
            "DATABASE_URL must be a URL such as postgres://user:password@host:5432/name; "
            "it is '' (no scheme it knows, such as postgres)",
        ),
        (
            "DATABASE_URL",
            "postgres://portal:s3cret@db:54o2/portal",
            "DATABASE_URL must be a URL such as postgres://user:password@host:5432/name; "
            "it is 'postgres://portal:***@db:54o2/portal' (Port could not be cast to integer value as '54o2')",
        ),
        (
            "EMAIL_URL",
            "smtp://mail:abc",
            "EMAIL_URL must be a URL such as smtp+tls://user:password@host:587; "
            "it is 'smtp://mail:abc' (Port could not be cast to integer value as 'abc')",
        ),
        (
            "EMAIL_URL",
            "mailto://ops@example.com",
            "EMAIL_URL must be a URL such as smtp+tls://user:password@host:587; "
            "it is 'mailto://ops@example.com' (Invalid email schema mailto)",
        ),
        (
            "CACHE_URL",
            "",
            "CACHE_URL must be a URL such as redis://host:6379/1; it is '' (no scheme it knows, such as redis)",
        ),
        (
            "CACHE_URL",
            "rediss//cache:6379/1",
            "CACHE_URL must be a URL such as redis://host:6379/1; it is 'rediss//cache:6379/1' "
            "(Invalid cache schema )",
        ),
        # Taken as it was, it answered every throttled request with a 500.
        (
            "CACHE_URL",
            "redis://:s3cret@cache:63x9/1",
            "CACHE_URL must be a URL such as redis://host:6379/1; it is 'redis://:***@cache:63x9/1' "
            "(Port could not be cast to integer value as '63x9')",
        ),
        (
            "CACHE_URL",
            "redis://cache-1:6379/1,redis://cache-2:99999/1",
            "CACHE_URL must be a URL such as redis://host:6379/1; "
            "it is 'redis://cache-1:6379/1,redis://cache-2:99999/1' (Port out of range 0-65535)",
        ),
        # A password holding a slash or an @ that is not percent-encoded.
        (
            "DATABASE_URL",
            "postgres://portal:s3/cr@t@db:5432/portal",
            "DATABASE_URL must be a URL such as postgres://user:password@host:5432/name; "
            "it is 'postgres://portal:***@db:5432/portal' (Port could not be cast to integer value as '***')",
        ),
        (
            "EMAIL_URL",
            "smtp+tls://mailer:p@ss@mail:5x7",
            "EMAIL_URL must be a URL such as smtp+tls://user:password@host:587; "
            "it is 'smtp+tls://mailer:***@mail:5x7' (Port could not be cast to integer value as '5x7')",
        ),
        # Taken as they were, each failed every publish, the worker's start
        # and the broker check in kombu's words, naming no variable.
        (
            "CELERY_BROKER_URL",
            "redis://:s3cret@redis:63x9/0",
            "CELERY_BROKER_URL must be a URL such as redis://host:6379/0; it is 'redis://:***@redis:63x9/0' "
            "(Port could not be cast to integer value as '63x9')",
        ),
        (
            "CELERY_BROKER_URL",
            "redis://redis-1:6379/0;redis://redis-2:99999/0",
            "CELERY_BROKER_URL must be a URL such as redis://host:6379/0; "
            "it is 'redis://redis-1:6379/0;redis://redis-2:99999/0' (Port out of range 0-65535)",
        ),
        # Without its scheme, kombu sent the tasks to a RabbitMQ on "sense".
        (
            "CELERY_BROKER_URL",
            "nonsense",
            "CELERY_BROKER_URL must be a URL such as redis://host:6379/0; "
            "it is 'nonsense' (no scheme it knows, such as redis)",
        ),
        (
            "CELERY_BROKER_URL",
            "reddis://redis:6379/0",
            "CELERY_BROKER_URL must be a URL such as redis://host:6379/0; "
            "it is 'reddis://redis:6379/0' (no such transport: reddis)",
        ),
        (
            "CELERY_BROKER_URL",
            "redis://redis:6379/tasks",
            "CELERY_BROKER_URL must be a URL such as redis://host:6379/0; "
            "it is 'redis://redis:6379/tasks' (the Redis database must be a number, not 'tasks')",
        ),
    ],
)
def test_a_url_that_cannot_be_read_stops_the_start_naming_the_variable_never_the_password(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """django-environ's own words named no variable, or an unknown scheme
    read as no engine, a KeyError further on."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value) == message


# Each folder the settings read, the setting it makes, and where it is by default.
FOLDERS = [
    ("PORTAL_VAR_DIR", "VAR_DIR", ROOT / "var"),
    ("DJANGO_STATIC_ROOT", "STATIC_ROOT", ROOT / "staticfiles"),
    ("DJANGO_MEDIA_ROOT", "MEDIA_ROOT", ROOT / "var" / "media"),
    ("PORTAL_HEALTH_DISK_PATH", "HEALTH_DISK_PATH", Path("/")),
]


@pytest.mark.parametrize(("variable", "setting", "default"), FOLDERS)
def test_a_folder_set_empty_is_the_default_not_the_folder_the_process_started_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, setting: str, default: Path
) -> None:
    """Read as ".", the web server, the worker and cron (each started in a
    folder of its own) kept a database, media and a secret key each, or
    checked the free space of another disk."""
    monkeypatch.chdir(tmp_path)
    assert Path(load_settings(monkeypatch, {variable: ""})[setting]) == default


@pytest.mark.parametrize(("variable", "setting", "default"), FOLDERS)
def test_a_relative_folder_is_read_from_beside_manage_py_whichever_folder_the_process_started_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, setting: str, default: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(load_settings(monkeypatch, {variable: "data/here"})[setting]) == ROOT / "data" / "here"


def test_the_originals_folder_relative_is_read_from_beside_manage_py(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_settings(monkeypatch, {"PORTAL_ORIGINALS_ROOT": "private"})
    assert loaded["STORAGES"]["originals"]["OPTIONS"]["location"] == ROOT / "private"


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis.internal:6379/0",
        "redis://:p@ss@redis.internal:6379",
        "rediss://redis.internal:6380/0?ssl_cert_reqs=required",
        "redis://redis-1:6379/0;redis://redis-2:6379/0",
        "amqp://guest:guest@rabbit:5672//",
    ],
)
def test_a_broker_url_kombu_reads_is_taken_as_it_is(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    loaded = load_settings(monkeypatch, {"CELERY_BROKER_URL": url})
    assert (loaded["CELERY_BROKER_URL"], loaded["BROKER_CONFIGURED"]) == (url, True)


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis-1:6379/0; redis://redis-2:6379/0",
        " redis://redis-1:6379/0 ;\tredis://redis-2:6379/0 ",
    ],
)
def test_broker_urls_with_spaces_around_them_are_each_read_as_checked(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """Each URL is checked without the spaces around it; kombu keeps them,
    and reads " redis://redis-2:6379/0" as Redis on localhost with the
    database "redis-2:6379/0": the failover would have failed."""
    loaded = load_settings(monkeypatch, {"CELERY_BROKER_URL": url})
    connection = Connection(loaded["CELERY_BROKER_URL"])
    read = [(parse_url(alt)["hostname"], parse_url(alt)["virtual_host"]) for alt in connection.alt]
    assert read == [("redis-1", "0"), ("redis-2", "0")]
    assert connection.hostname == "redis-1"


def test_no_broker_url_runs_the_tasks_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_settings(monkeypatch, {"CELERY_BROKER_URL": ""})
    assert (loaded["BROKER_CONFIGURED"], loaded["CELERY_TASK_ALWAYS_EAGER"]) == (False, True)


@pytest.mark.parametrize(
    ("url", "port", "ssl", "tls"),
    [
        ("smtp://mail.example.com", 25, False, False),
        ("smtp+tls://u:p@mail.example.com", 25, False, True),
        ("smtp+ssl://u:p@mail.example.com", 465, True, False),  # implicit TLS: never on 25
        ("smtp+ssl://u:p@mail.example.com:2465", 2465, True, False),
        # As curl and mail clients read it: TLS from the start, not STARTTLS on 25.
        ("smtps://u:p@mail.example.com", 465, True, False),
        ("smtps://u:p@mail.example.com:2465", 2465, True, False),
    ],
)
def test_an_email_url_without_a_port_takes_the_port_of_its_kind_of_connection(
    monkeypatch: pytest.MonkeyPatch, url: str, port: int, ssl: bool, tls: bool
) -> None:
    loaded = load_settings(monkeypatch, {"EMAIL_URL": url})
    assert (loaded["EMAIL_PORT"], loaded["EMAIL_USE_SSL"], loaded["EMAIL_USE_TLS"]) == (port, ssl, tls)


def test_mail_to_an_smtps_url_opens_with_the_tls_handshake_not_waiting_for_a_greeting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read as STARTTLS, the client waited for the plain greeting a server
    on 465 never sends, and every mail failed as a server that did not
    answer within EMAIL_TIMEOUT."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        loaded = load_settings(monkeypatch, {"EMAIL_URL": f"smtps://127.0.0.1:{port}"})
        backend = EmailBackend(
            host=loaded["EMAIL_HOST"],
            port=loaded["EMAIL_PORT"],
            use_tls=loaded["EMAIL_USE_TLS"],
            use_ssl=loaded["EMAIL_USE_SSL"],
            timeout=5,
        )
        client = threading.Thread(target=_open, args=(backend,))
        client.start()
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(3)
            try:
                first = connection.recv(1)
            except TimeoutError:
                first = b""
        client.join(10)
    assert first == b"\x16"  # a TLS handshake record, the client's hello


def _open(backend: EmailBackend) -> None:
    with contextlib.suppress(OSError):
        backend.open()


@pytest.mark.parametrize(
    ("url", "has"),
    [
        ("smtp://:s3cret@mail.example.com", "a password and no user"),
        ("smtp+tls://mailer@mail.example.com:587", "a user and no password"),
        ("smtp+tls://mailer:@mail.example.com:587", "a user and no password"),
    ],
)
def test_an_email_url_with_a_user_or_a_password_alone_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, url: str, has: str
) -> None:
    """Django logs in only with both: with one alone the portal sent as no
    one, and a server that wants a login refused every sender."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"EMAIL_URL": url})
    assert str(stopped.value) == (
        f"EMAIL_URL must give both a user and a password to log in with, or neither; it has {has}"
    )
    assert "s3cret" not in str(stopped.value)


@pytest.mark.parametrize(
    ("url", "credentials"),
    [
        ("smtp://mail.example.com", ("", "")),
        ("smtp+tls://mailer:s3cret@mail.example.com", ("mailer", "s3cret")),
    ],
)
def test_an_email_url_with_both_a_user_and_a_password_or_neither_is_taken(
    monkeypatch: pytest.MonkeyPatch, url: str, credentials: tuple[str, str]
) -> None:
    loaded = load_settings(monkeypatch, {"EMAIL_URL": url})
    assert (loaded["EMAIL_HOST_USER"], loaded["EMAIL_HOST_PASSWORD"]) == credentials


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("smtp://mail.example.com", "core.mail.EmailBackend"),
        ("filemail://", "core.mail.FileEmailBackend"),
        ("consolemail://", "django.core.mail.backends.console.EmailBackend"),
    ],
)
def test_mail_by_smtp_and_to_files_goes_through_the_portal_s_backends(
    monkeypatch: pytest.MonkeyPatch, url: str, backend: str
) -> None:
    assert load_settings(monkeypatch, {"EMAIL_URL": url})["EMAIL_BACKEND"] == backend


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("filemail:///srv/portal/mail", "/srv/portal/mail"),
        ("filemail:/srv/portal/mail", "/srv/portal/mail"),
        ("filemail://var/outbox", str(ROOT / "var" / "outbox")),
        ("filemail:///srv/mail%20box", "/srv/mail box"),
    ],
)
def test_mail_to_files_goes_to_the_folder_the_url_names_whichever_folder_a_process_starts_in(
    monkeypatch: pytest.MonkeyPatch, url: str, folder: str
) -> None:
    """django-environ drops the folder's first slash, and reads the first
    name of a relative one as a host: ``filemail:///srv/portal/mail`` wrote
    to ``srv/portal/mail`` under the folder each process started in (cron's
    alerts in one place, the worker's in another), ``filemail://var/outbox``
    to ``outbox``."""
    monkeypatch.chdir("/")
    assert load_settings(monkeypatch, {"EMAIL_URL": url})["EMAIL_FILE_PATH"] == folder


def test_mail_to_files_without_a_folder_goes_to_var_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_settings(monkeypatch, {"EMAIL_URL": "filemail://"})
    assert loaded["EMAIL_FILE_PATH"] == str(loaded["VAR_DIR"] / "mail")


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("smtp://mail.example.com:25?timeout=5", "timeout"),
        (
            "smtp+ssl://u:s3cret@mail.example.com?ssl_keyfile=k.pem&ssl_certfile=c.pem",
            "ssl_certfile, ssl_keyfile",
        ),
        # Read into the switches, where "false" is a word, and so true.
        ("smtp://mail.example.com?email_use_tls=false", "email_use_tls"),
        # An option without a value django-environ dropped as none at all.
        ("smtp://mail.example.com?timeout", "timeout"),
    ],
)
def test_an_email_url_with_options_in_its_query_stops_the_start_rather_than_dropping_them(
    monkeypatch: pytest.MonkeyPatch, url: str, names: str
) -> None:
    """django-environ reads them into OPTIONS, which no mail setting is made
    of: a time-out given so was 30 s all the same."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"EMAIL_URL": url})
    assert str(stopped.value) == (
        f"EMAIL_URL takes no options in its query; it has {names} (the time-out is EMAIL_TIMEOUT)"
    )
    assert "s3cret" not in str(stopped.value)


def test_the_host_the_alerts_name_is_read_without_the_line_break_a_file_leaves_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value read from a file (a mounted ConfigMap, ``$(cat /etc/hostname)``)
    ends in a line break, which a mail header cannot hold: every alert's
    sending failed with a traceback, none mailed."""
    assert load_settings(monkeypatch, {"PORTAL_HEALTH_HOST": " web-2\n"})["HEALTH_HOST"] == "web-2"


@pytest.mark.parametrize("value", ["web\n2", "web\x0b2", "web\x1b2"])
def test_a_host_for_the_alerts_with_a_control_character_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"PORTAL_HEALTH_HOST": value})
    assert str(stopped.value) == (
        f"PORTAL_HEALTH_HOST must be a name on one line, without control characters; it is {value!r}"
    )


ADDRESS_FORM = "(one address each, such as name@example.com or Name <name@example.com>)"


@pytest.mark.parametrize(
    "variable", ["PORTAL_HEALTH_RECIPIENTS", "PORTAL_REPORT_RECIPIENTS", "DJANGO_ADMINS"]
)
@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("ops@example.com;oncall@example.com", "'ops@example.com;oncall@example.com'"),
        ("ops@example.com,oncall", "'oncall'"),
    ],
    ids=["two in one", "no @"],
)
def test_a_mail_address_django_cannot_send_to_stops_the_start_naming_the_variable_and_address(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, refused: str
) -> None:
    """Django's mail refuses it only as it sends: the health checks beat
    sends every minute failed at each run with a ValueError, mailing nothing."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value) == f"{variable}: not an email address: {refused} {ADDRESS_FORM}"


@pytest.mark.parametrize("variable", ["DEFAULT_FROM_EMAIL", "SERVER_EMAIL"])
@pytest.mark.parametrize(
    ("value", "refused"),
    [("automation@example.com,ops@example.com", "'automation@example.com,ops@example.com'"), ("", "''")],
    ids=["two", "blank"],
)
def test_a_sender_django_cannot_write_stops_the_start_naming_the_variable_and_address(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, refused: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value) == f"{variable}: not an email address: {refused} {ADDRESS_FORM}"


def test_a_sender_is_taken_with_or_without_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_settings(
        monkeypatch,
        {"DEFAULT_FROM_EMAIL": "The Portal <portal@example.com>", "SERVER_EMAIL": "errors@example.com"},
    )
    assert (loaded["DEFAULT_FROM_EMAIL"], loaded["SERVER_EMAIL"]) == (
        "The Portal <portal@example.com>",
        "errors@example.com",
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("ops@example.com", ["ops@example.com"]),
        (
            " ops@example.com , On Call <oncall@example.com>,",
            ["ops@example.com", "On Call <oncall@example.com>"],
        ),
        # A host of the company's network, named without a domain.
        ("ops@mailhost,On Call <oncall@relay-1>", ["ops@mailhost", "On Call <oncall@relay-1>"]),
        ("", []),
    ],
    ids=["one", "two", "bare host names", "none"],
)
def test_mail_addresses_separated_by_commas_are_taken(
    monkeypatch: pytest.MonkeyPatch, value: str, read: list[str]
) -> None:
    loaded = load_settings(
        monkeypatch,
        {"PORTAL_HEALTH_RECIPIENTS": value, "PORTAL_REPORT_RECIPIENTS": value, "DJANGO_ADMINS": value},
    )
    assert (loaded["HEALTH_RECIPIENTS"], loaded["REPORT_RECIPIENTS"]) == (read, read)
    assert loaded["ADMINS"] == [("Admin", address) for address in read]


def test_a_process_started_with_a_mail_address_django_cannot_send_to_exits_with_the_message(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
        "PORTAL_HEALTH_RECIPIENTS": "ops@example.com;oncall@example.com",
    }
    started = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert started.returncode != 0
    assert started.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: PORTAL_HEALTH_RECIPIENTS: not an email address: "
        f"'ops@example.com;oncall@example.com' {ADDRESS_FORM}"
    )


@pytest.mark.parametrize(
    "value",
    [
        "portal.example.com",
        "ftp://portal.example.com",
        "https://",
        "https:///admin",
        "https://portal.example.com/?site=1",
        "https://portal.example.com/#top",
        "https://portal.example.com:port",
        "https://user:secret@portal.example.com",
        "https://portal.example.com/ admin",
        "https://portal.example.com/\nadmin",
    ],
)
def test_a_base_url_a_mail_client_could_not_open_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Mailed as the start of a link, it would be found broken only by
    whoever clicks it."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"PORTAL_BASE_URL": value})
    assert str(stopped.value) == (
        "PORTAL_BASE_URL must be an http or https URL with a host and no query or fragment "
        f"(as https://portal.example.com); it is {value.strip()!r}"
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("https://portal.example.com", "https://portal.example.com"),
        (" https://portal.example.com/ ", "https://portal.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.com/portal/", "https://example.com/portal"),
        ("", ""),
    ],
    ids=["host", "trailing slash", "port", "path", "unset"],
)
def test_a_base_url_is_taken_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, value: str, read: str
) -> None:
    assert load_settings(monkeypatch, {"PORTAL_BASE_URL": value})["BASE_URL"] == read


@pytest.mark.parametrize("value", ["Mars/Base", "utc+2", "../etc/passwd", ":Europe/Berlin"])
def test_a_time_zone_not_in_the_iana_database_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Django refused it only as its settings loaded, naming no variable
    (ValueError: Incorrect timezone setting)."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"TZ": value})
    assert str(stopped.value) == (
        f"TZ must be a time zone of the IANA database, such as UTC or Europe/Berlin; it is {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [("Europe/Berlin", "Europe/Berlin"), (" America/New_York ", "America/New_York"), ("", "UTC")],
)
def test_a_time_zone_of_the_iana_database_is_taken(
    monkeypatch: pytest.MonkeyPatch, value: str, read: str
) -> None:
    assert load_settings(monkeypatch, {"TZ": value})["TIME_ZONE"] == read


@pytest.mark.parametrize("value", ["LOUD", "", "10", "NOTSET"])
def test_a_log_level_logging_does_not_know_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """The logging configuration refused it naming only the logger (Unable
    to configure logger 'portal')."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"DJANGO_LOG_LEVEL": value})
    assert str(stopped.value) == (
        f"DJANGO_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; it is {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "read"), [("debug", "DEBUG"), (" Warning ", "WARNING"), ("ERROR", "ERROR")]
)
def test_a_log_level_is_taken_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str, read: str) -> None:
    loaded = load_settings(monkeypatch, {"DJANGO_LOG_LEVEL": value})
    assert loaded["LOG_LEVEL"] == read
    assert loaded["LOGGING"]["loggers"]["portal"]["level"] == read


def test_a_process_started_with_a_log_level_logging_does_not_know_exits_with_the_message(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DJANGO_LOG_LEVEL": "LOUD",
    }
    started = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert started.returncode != 0
    assert started.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DJANGO_LOG_LEVEL must be one of "
        "DEBUG, INFO, WARNING, ERROR, CRITICAL; it is 'LOUD'"
    )


S3 = {"AWS_STORAGE_BUCKET_NAME": "portal-media"}


@pytest.mark.parametrize("value", ["subdomain", "", "path,virtual"])
def test_an_s3_addressing_style_boto_does_not_know_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {**S3, "AWS_S3_ADDRESSING_STYLE": value})
    assert (
        str(stopped.value) == f"AWS_S3_ADDRESSING_STYLE must be one of path, virtual, auto; it is {value!r}"
    )


@pytest.mark.parametrize(("value", "read"), [("path", "path"), ("Virtual", "virtual"), (" auto ", "auto")])
def test_an_s3_addressing_style_is_taken_for_both_buckets(
    monkeypatch: pytest.MonkeyPatch, value: str, read: str
) -> None:
    storages = load_settings(monkeypatch, {**S3, "AWS_S3_ADDRESSING_STYLE": value})["STORAGES"]
    assert storages["default"]["OPTIONS"]["addressing_style"] == read
    assert storages["originals"]["OPTIONS"]["addressing_style"] == read


# (variable, setting, a value written with spaces and a comma at the end, what is read)
LISTS: list[tuple[str, str, str, list[str]]] = [
    (
        "DJANGO_ALLOWED_HOSTS",
        "ALLOWED_HOSTS",
        "a.example.com, b.example.com ,",
        ["a.example.com", "b.example.com"],
    ),
    (
        "DJANGO_CSRF_TRUSTED_ORIGINS",
        "CSRF_TRUSTED_ORIGINS",
        " https://a.example.com, https://*.b.example.com:8443,",
        ["https://a.example.com", "https://*.b.example.com:8443"],
    ),
    ("PORTAL_IMAGE_ONDEMAND_FORMATS", "IMAGE_ONDEMAND_FORMATS", "webp, JPEG ,,png", ["webp", "jpeg", "png"]),
    (
        "PORTAL_CSP_IMG_SOURCES",
        "CSP_IMG_SOURCES",
        "https://img.example.com, *.cdn.example.net ,",
        ["https://img.example.com", "*.cdn.example.net"],
    ),
    (
        "PORTAL_METRICS_ALLOWED_NETWORKS",
        "METRICS_ALLOWED_NETWORKS",
        "10.0.0.0/8, ::1/128,",
        ["10.0.0.0/8", "::1/128"],
    ),
    (
        "PORTAL_HEALTH_RECIPIENTS",
        "HEALTH_RECIPIENTS",
        " ops@example.com , On Call <oncall@example.com>,",
        ["ops@example.com", "On Call <oncall@example.com>"],
    ),
]


def lists_read() -> set[str]:
    """The variables settings.py reads as lists: through env.list, or a
    method of _Env that calls it (or calls one that does)."""
    tree = ast.parse(SETTINGS.read_text(), filename=str(SETTINGS))
    env_class = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "_Env")
    calls = {
        method.name: {
            node.func.attr
            for node in ast.walk(method)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and ast.unparse(node.func.value) == "self"
        }
        for method in env_class.body
        if isinstance(method, ast.FunctionDef)
    }
    readers = {"list"}
    while more := {name for name, called in calls.items() if called & readers} - readers:
        readers |= more
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in {f"env.{name}" for name in readers}
        and isinstance(node.args[0], ast.Constant)
    }


def test_each_list_read_from_the_environment_is_tried_with_spaces_here() -> None:
    covered = {variable for variable, *_ in LISTS} | {
        "PORTAL_LAB_WRITE_NETWORKS",
        "PORTAL_REPORT_RECIPIENTS",
        "DJANGO_ADMINS",
    }
    assert lists_read() == covered


@pytest.mark.parametrize(
    ("variable", "name", "value", "read"), LISTS, ids=[variable for variable, *_ in LISTS]
)
def test_a_list_is_read_without_the_spaces_around_its_entries_or_the_empty_ones(
    monkeypatch: pytest.MonkeyPatch, variable: str, name: str, value: str, read: list[str]
) -> None:
    """django-environ kept the spaces: DJANGO_ALLOWED_HOSTS=a.com, b.com
    allowed " b.com", which no request matches (b.com answered 400)."""
    assert load_settings(monkeypatch, {variable: value})[name] == read


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "DJANGO_ALLOWED_HOSTS",
            "portal.example.com,https://a.example.com",
            "not a host name: 'https://a.example.com' (names without a scheme, port or path, "
            "separated by commas, such as portal.example.com,.example.org)",
        ),
        ("DJANGO_ALLOWED_HOSTS", "a.example.com:8000", "not a host name: 'a.example.com:8000'"),
        ("DJANGO_ALLOWED_HOSTS", "a.example.com/portal", "not a host name: 'a.example.com/portal'"),
        ("DJANGO_ALLOWED_HOSTS", "*.example.com", "not a host name: '*.example.com'"),
        (
            "DJANGO_ALLOWED_HOSTS",
            "a.example.com b.example.com",
            "not a host name: 'a.example.com b.example.com'",
        ),
        (
            "DJANGO_CSRF_TRUSTED_ORIGINS",
            "portal.example.com",
            "not an origin: 'portal.example.com' (a scheme and a host each, separated by commas, "
            "such as https://portal.example.com)",
        ),
        ("DJANGO_CSRF_TRUSTED_ORIGINS", "https://a.example.com/", "not an origin: 'https://a.example.com/'"),
        (
            "PORTAL_IMAGE_ONDEMAND_FORMATS",
            "webp,gif",
            "not a format renditions are made in: 'gif' (any of jpeg, webp, avif, png, separated by commas)",
        ),
        ("PORTAL_IMAGE_ONDEMAND_FORMATS", "webp jpeg", "not a format renditions are made in: 'webp jpeg'"),
        (
            "PORTAL_CSP_IMG_SOURCES",
            "https://img.example.com 'unsafe-inline'",
            "not a source of images: \"https://img.example.com 'unsafe-inline'\" (hosts with an optional "
            "scheme, port and path, separated by commas, such as https://img.example.com,*.cdn.example.net)",
        ),
        ("PORTAL_CSP_IMG_SOURCES", "'self'", "not a source of images: \"'self'\""),
        ("PORTAL_CSP_IMG_SOURCES", "img.example.com,*", "not a source of images: '*'"),
        ("PORTAL_CSP_IMG_SOURCES", "https:", "not a source of images: 'https:'"),
    ],
)
def test_an_entry_a_list_cannot_take_stops_the_start_naming_the_variable_and_entry(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {variable: value})
    assert str(stopped.value).startswith(f"{variable}: {message}")


def test_a_host_written_as_a_domain_an_address_or_any_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    value = ".example.com,10.0.0.5,[::1],[2001:db8::1],Portal.Example.com,*"
    assert load_settings(monkeypatch, {"DJANGO_ALLOWED_HOSTS": value})["ALLOWED_HOSTS"] == value.split(",")


@pytest.mark.parametrize("value", ["", " , "], ids=["empty", "commas alone"])
def test_on_demand_formats_naming_none_stop_the_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    # With none, every page showing a picture and every rendition URL asked
    # for without a format failed with a 500 (the first format, of none).
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"PORTAL_IMAGE_ONDEMAND_FORMATS": value})
    assert str(stopped.value) == (
        "PORTAL_IMAGE_ONDEMAND_FORMATS: names no format; renditions on demand are made in at least one "
        "(any of jpeg, webp, avif, png, separated by commas)"
    )


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        (
            "smtps://u:p@mail.example.com:587",
            "EMAIL_URL opens TLS from the start (smtps://) on port 587, where a mail server takes "
            "STARTTLS: write smtp+tls:// for port 587, or smtps:// on port 465",
        ),
        (
            "smtp+ssl://u:p@mail.example.com:587",
            "EMAIL_URL opens TLS from the start (smtp+ssl://) on port 587, where a mail server takes "
            "STARTTLS: write smtp+tls:// for port 587, or smtp+ssl:// on port 465",
        ),
        (
            "smtp+tls://u:p@mail.example.com:465",
            "EMAIL_URL upgrades with STARTTLS (smtp+tls://) on port 465, where a mail server opens "
            "with TLS: write smtps:// for port 465, or smtp+tls:// on port 587",
        ),
        (
            "smtp://mail.example.com:465",
            "EMAIL_URL speaks plain SMTP (smtp://) on port 465, where a mail server opens "
            "with TLS: write smtps:// for port 465",
        ),
    ],
)
def test_an_email_url_whose_tls_is_not_the_one_its_port_speaks_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, url: str, refusal: str
) -> None:
    """Port 587 takes STARTTLS and 465 TLS from the start (RFC 8314): the
    other kind on either failed every mail, the alerts' with it, and only
    when one was sent. smtps:// on 587 was STARTTLS before smtps:// meant
    TLS from the start, so a setting that mailed stopped mailing."""
    with pytest.raises(ImproperlyConfigured) as stopped:
        load_settings(monkeypatch, {"EMAIL_URL": url})
    assert str(stopped.value) == refusal


@pytest.mark.parametrize(
    "url", ["smtp+tls://u:p@mail.example.com:587", "smtps://u:p@mail.example.com:465", "smtp://mail:587"]
)
def test_an_email_url_whose_tls_is_the_one_its_port_speaks_is_taken(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    assert load_settings(monkeypatch, {"EMAIL_URL": url})["EMAIL_PORT"] in (465, 587)
