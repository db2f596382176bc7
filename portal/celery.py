"""The Celery application.

With no ``CELERY_BROKER_URL`` configured, tasks run eagerly in the web process
(the embedded default); with a broker they go to ``make worker``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
