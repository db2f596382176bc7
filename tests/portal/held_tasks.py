"""Tasks a test worker loads (``celery worker --include``) beside the portal's:
one that runs until the test lets it finish, and one that answers at once."""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task


@shared_task
def hold(flag: str) -> None:
    """Runs (unacknowledged, as every portal task until it ends) until
    ``flag`` exists, for a minute at most."""
    deadline = time.monotonic() + 60
    while not Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@shared_task
def ping() -> str:
    return "pong"
