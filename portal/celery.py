"""The Celery application.

With no ``CELERY_BROKER_URL`` configured, tasks run eagerly in the web process
(the embedded default); with a broker they go to ``make worker``, which
refuses to start without one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.beat import PersistentScheduler
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Scheduler(PersistentScheduler):
    """Beat's schedule kept in a file, whose folder is made if missing (a
    fresh checkout or an image has no ``var/``): without it beat would die
    at start while the worker beside it went on, and no periodic run
    (sweeps, health checks) would ever be sent."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


@signals.celeryd_init.connect(dispatch_uid="portal.celery.refuse_without_broker")
def refuse_without_broker(**kwargs: Any) -> None:
    """A worker needs the broker the web processes send to. Without
    CELERY_BROKER_URL it would wait on a queue in its own memory, which no one
    else can reach, while the web processes run every task themselves."""
    if not settings.BROKER_CONFIGURED:
        raise SystemExit(
            "No CELERY_BROKER_URL: set it to the broker the web processes use "
            "(e.g. redis://redis.internal:6379/0) to start a worker."
        )
