"""The Celery application.

With no ``CELERY_BROKER_URL`` configured, tasks run eagerly in the web process
(the embedded default); with a broker they go to ``make worker``.
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

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
