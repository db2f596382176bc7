"""A worker refuses to start where no web process could reach it; the
embedded set-up (no broker, tasks run in-process) is unaffected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portal.celery import refuse_without_broker

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_worker_with_no_broker_configured_refuses_to_start_saying_what_to_set(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50, "PORTAL_VAR_DIR": str(tmp_path)}
    env.pop("CELERY_BROKER_URL", None)
    # As `make worker` starts it; a worker on memory:// would run until killed.
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat", "--concurrency=1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)  # with its pool and beat
        out, err = worker.communicate()
    assert worker.returncode == 1, out + err
    assert err.strip().splitlines()[-1].startswith("No CELERY_BROKER_URL: set it to the broker")
    assert "ready." not in out + err


def test_a_worker_with_a_broker_configured_is_let_start(settings: Any) -> None:
    settings.BROKER_CONFIGURED = True
    refuse_without_broker()
    settings.BROKER_CONFIGURED = False
    with pytest.raises(SystemExit, match="No CELERY_BROKER_URL"):
        refuse_without_broker()
