from __future__ import annotations

from celery import shared_task

from portal import services


@shared_task
def health_check() -> list[str]:
    """The system checks every minute from Celery beat; alerts go by email."""
    return [check.name for check in services.health_alert().failed]
