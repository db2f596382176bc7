"""``manage.py`` in a process of its own, as an operator or cron runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What points a process at the fleet's services: without them, it runs the
# embedded set-up (SQLite, var/, no broker), whatever the caller's environment.
NOT_EMBEDDED = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "AWS_STORAGE_BUCKET_NAME", "EMAIL_URL")


def portal_env(var: Path, **extra: str) -> dict[str, str]:
    """The environment of a portal process of its own: the embedded set-up
    in the var folder ``var``, with ``extra`` (a DATABASE_URL, limits)."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_EMBEDDED}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", PORTAL_VAR_DIR=str(var), **extra)
    return env


def manage_py(*args: str, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py ARGS`` from the project's folder with exactly ``env``;
    its exit code and output, whatever they are."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
