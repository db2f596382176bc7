"""What a run of a periodic sweep may spend before it starts no more work."""

from __future__ import annotations

from django.conf import settings


def budget() -> float:
    """Seconds a sweep's run goes on starting work (a batch of orphans, a
    stuck image taken over, a recrop, a batch of expired sessions): a quarter
    of the time limit that bounds a run (the soft one, else the hard one).
    The step under way then has three quarters of it to end in, and the
    embedded sweeper's round ends in time for its other chores."""
    return (settings.CELERY_TASK_SOFT_TIME_LIMIT or settings.CELERY_TASK_TIME_LIMIT) / 4
