"""`make run` as a newcomer uses it: the admin URL it prints is the one it
serves, and it starts without warnings about missing static files."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("options", "url"),
    [
        ({}, "http://127.0.0.1:8000/admin/"),
        ({"port": 80}, "http://127.0.0.1:80/admin/"),
        ({"host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080/admin/"),  # noqa: S104
        ({"host": "portal.internal", "port": 9000}, "http://portal.internal:9000/admin/"),
        ({"host": "::1", "port": 8001}, "http://[::1]:8001/admin/"),
    ],
)
def test_ensure_admin_prints_the_admin_url_of_the_server(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object], url: str
) -> None:
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "a-long-secret-42")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out, **options)
    assert f"Admin account created: {url}  user 'admin'" in out.getvalue()


def test_make_demo_hands_its_port_to_ensure_admin() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.runtime", "run", "PORT=80", "HOST=0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "manage.py ensure_admin --host 0.0.0.0 --port 80" in result.stdout
    assert "manage.py runserver --noreload 0.0.0.0:80" in result.stdout


def run_env(tmp_path: Path) -> dict[str, str]:
    """The embedded set-up on a fresh machine: nothing configured but a
    private var/ and static folder, so nothing the suite or others use."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "CACHE_", "AWS_", "EMAIL_", "DJANGO_", "PORTAL_"))
    }
    env.update(
        PORTAL_VAR_DIR=str(tmp_path / "var"),
        DJANGO_STATIC_ROOT=str(tmp_path / "staticfiles"),
        PORTAL_ADMIN_PASSWORD="a-long-secret-42",
        PYTHONWARNINGS="default",
    )
    return env


@pytest.mark.slow
def test_make_run_serves_on_the_port_it_prints_without_static_warnings(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.runtime", "run", f"PORT={port}"],
            cwd=ROOT,
            env=run_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/admin/login/", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("make run did not serve:\n" + log_path.read_text()[-3000:])
        assert requests.get(f"{base}/static/css/site.css", timeout=5).status_code == 200
        catalog = requests.get(f"{base}/catalog/", timeout=10).text
        assert "Lemon" in catalog
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    output = log_path.read_text()
    assert f"Admin account created: {base}/admin/  user 'admin'" in output, output[-3000:]
    assert ":8000" not in output
    assert "No directory at" not in output, output[-3000:]
