"""What a run of a periodic sweep may spend before it starts no more work,
and the deletion of rows past their time a batch at a time."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db.models import QuerySet


def budget() -> float:
    """Seconds a sweep's run goes on starting work (a batch of orphans, a
    stuck image taken over, a recrop, a batch of expired sessions or
    tokens): a quarter of the time limit that bounds a run (the soft one,
    else the hard one). The step under way then has three quarters of it to
    end in, and the embedded sweeper's round ends in time for its other
    chores."""
    return (settings.CELERY_TASK_SOFT_TIME_LIMIT or settings.CELERY_TASK_TIME_LIMIT) / 4


def delete_in_batches(
    rows: QuerySet[Any],
    *,
    name: str,
    logger: logging.Logger,
    budget_seconds: float | None,
    batch_size: int,
    cut_off_by: tuple[type[BaseException], ...],
) -> tuple[int, bool]:
    """Delete ``rows`` (``name`` in the log): (how many, whether all are gone).

    One DELETE of every row would be one statement (and one transaction)
    that holds its locks for minutes on a table left long unswept; here
    each batch is a statement of its own, committed on its own. A run that
    spends ``budget_seconds``, or that one of ``cut_off_by`` stops (the
    task's soft time limit), keeps what it deleted and leaves the rest to
    the next run.
    """
    started = time.monotonic()
    deleted = 0
    try:
        while True:
            keys = list(rows.values_list("pk", flat=True)[:batch_size])
            if keys:
                # Filtered again: a row that no longer matches since its key was read is kept.
                deleted += rows.filter(pk__in=keys).delete()[0]
            if len(keys) < batch_size:
                break
            if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
                logger.info("cleared %d %s; more remain, the next run goes on", deleted, name)
                return deleted, False
    except cut_off_by:
        logger.info("cleared %d %s before the time limit; the next run goes on", deleted, name)
        return deleted, False
    if deleted:
        logger.info("cleared %d %s", deleted, name)
    return deleted, True
