from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from core import sessions, sweeps, tokens
from portal import health, services


@shared_task
def health_check() -> list[str]:
    """The checks every host shares (database, file store, task queue),
    every minute from Celery beat, on whichever worker takes it; alerts go
    by email."""
    return [check.name for check in services.health_alert(checks=health.SERVICE_CHECKS).failed]


# Acknowledged on receipt: one handed back (a worker that stopped with it
# unacknowledged) would go out to every worker again, and the next minute's
# run checks anyway.
@shared_task(acks_late=False)
def health_check_host() -> list[str]:
    """The system checks (CPU, disk, memory, localhost) of the host that runs
    it: beat sends it to every worker (settings.HOSTS_QUEUE)."""
    return [check.name for check in services.health_alert(checks=health.SYSTEM_CHECKS).failed]


@shared_task
def clear_expired_sessions() -> int:
    """Delete the expired sessions, daily from Celery beat (Django deletes a
    session only when its visitor signs out)."""
    # A batch at a time, for a quarter of the soft time limit: a backlog
    # larger than that is gone over in the next days' runs.
    deleted, _ = sessions.clear_expired(budget_seconds=sweeps.budget(), cut_off_by=(SoftTimeLimitExceeded,))
    return deleted


@shared_task
def clear_expired_tokens() -> int:
    """Delete the API tokens past PORTAL_API_TOKEN_MAX_AGE_DAYS, daily from
    Celery beat (the authentication refuses them meanwhile)."""
    # As the sessions: a batch at a time, for a quarter of the soft time limit.
    deleted, _ = tokens.clear_expired(budget_seconds=sweeps.budget(), cut_off_by=(SoftTimeLimitExceeded,))
    return deleted
