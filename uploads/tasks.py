"""Celery tasks: thin wrappers that load by primary key and call a service.

Tasks are sent through ``uploads.dispatch`` (by name), never imported by the
code that starts them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.worker import state as worker_state
from celery.worker.request import Request
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, OperationalError, close_old_connections

from core import sweeps
from uploads import sandbox, services, storage

logger = logging.getLogger(__name__)

# Errors worth another try: the storage or the database was briefly away
# (OperationalError: a lost connection, a failover), the machine could not
# start the decoding child (sandbox.NotStarted, an OSError), or the database
# answered with an error of another kind that a deploy may be about to mend
# (ProgrammingError: a column the code reads before its migration has run).
TRANSIENT: tuple[type[Exception], ...] = (*storage.UNAVAILABLE, DatabaseError)
# Database errors that come back on every try: a value the database refuses,
# a constraint broken. The image is given up at once.
REFUSED: tuple[type[Exception], ...] = (DataError, IntegrityError)
# Tries again after 1, 2, 4 … seconds, at most RETRY_MAX_DELAY apart: about
# 8 minutes in all, so that a store's or a database's failover (minutes, not
# seconds) does not fail the images uploaded during it.
MAX_RETRIES = 10
RETRY_MAX_DELAY = 120


def retry_delay(retries: int) -> int:
    """Seconds before try ``retries + 2`` of an image whose store was away."""
    return int(min(2**retries, RETRY_MAX_DELAY))


class ProcessImageRequest(Request):
    """The task as the worker's main process sees it: it outlives a pool
    process that dies under an image (killed at the hard time limit, or by the
    OOM killer) and counts that death against the image, as image_process does
    for the decoding child. A whole worker that goes away (a deploy, a lost
    machine) is not the image's fault: nobody counts."""

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, WorkerLostError):
            self._count_death()
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft:
            self._count_death()

    def _count_death(self) -> None:
        if worker_state.should_terminate:
            return  # a cold shutdown stops every task: not the image's doing
        image_id = (self.args or [None])[0]
        close_old_connections()
        try:
            services.image_count_death(image_id=image_id)
        except DatabaseError:
            # Unrecorded, the death goes uncounted; the image is tried again.
            logger.exception("could not count the death of image %s's worker", image_id)
        finally:
            close_old_connections()


@shared_task(
    bind=True,
    acks_late=True,
    # A pool process that died mid-task hands the image to the next one at
    # once; ProcessImageRequest counts those deaths, image_process gives up
    # at IMAGE_MAX_ATTEMPTS.
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    Request=ProcessImageRequest,
)
def process_image(self, image_id: int, force: bool = False) -> str:  # type: ignore[no-untyped-def]
    _, soft_limit = self.request.timelimit or (None, None)
    soft_limit = soft_limit or self.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
    try:
        # A worker's own soft time limit interrupts the wait (and the decoding
        # child goes with it). Run eagerly, or in a worker without a soft
        # limit, the service enforces the limit: there, a little under the
        # hard one, which would kill the pool process (a death, not too slow).
        image = services.image_process(
            image_id=image_id, force=force, time_limit=self.request.is_eager or not soft_limit
        )
    except SoftTimeLimitExceeded:
        image = services.image_give_up(image_id=image_id, reason=services.reason_too_slow(soft_limit))
    except REFUSED as exc:
        logger.exception("image id=%s: not tried again, the database refused its work", image_id)
        reason = services.reason_database_error(type(exc).__name__, tries=1)
        image = services.image_give_up(image_id=image_id, reason=reason)
        return image.status if image else "missing"
    except TRANSIENT as exc:
        if self.request.is_eager or self.request.retries >= MAX_RETRIES:
            logger.warning("image id=%s: not tried again: %s", image_id, exc)
            tries = 1 if self.request.is_eager else self.request.retries + 1
            reason = _reason_given_up(exc, tries=tries, seconds=sum(retry_delay(n) for n in range(tries - 1)))
            image = services.image_give_up(image_id=image_id, reason=reason)
            return image.status if image else "missing"
        # Best effort: with the database away the retry counts as a death.
        with contextlib.suppress(*TRANSIENT):
            services.image_mark_pending(image_id=image_id)
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
    return image.status if image else "missing"


def _reason_given_up(exc: Exception, *, tries: int, seconds: int) -> str:
    """Why an image is given up whose tries all ended in ``exc`` (TRANSIENT)."""
    if isinstance(exc, sandbox.NotStarted):
        return services.reason_not_started(tries=tries, seconds=seconds)
    if isinstance(exc, OperationalError):
        return services.reason_unavailable("database", tries=tries, seconds=seconds)
    if isinstance(exc, DatabaseError):
        return services.reason_database_error(type(exc).__name__, tries=tries, seconds=seconds)
    return services.reason_unavailable("image store", tries=tries, seconds=seconds)


@shared_task
def sweep_stuck_images() -> int:
    """Queue again the images left pending/processing too long (a lost task)."""
    # As many as fit in a quarter of the soft time limit, the oldest first;
    # the limit cutting a run off ends it without an error: the next run goes
    # on with the rest.
    return services.image_sweep_stuck(cut_off_by=(SoftTimeLimitExceeded,))


@shared_task
def sweep_moved_crops() -> int:
    """Cut again the crops of images whose focal point moved while the store was away."""
    # The soft time limit cutting a recrop off gives that image up, as its
    # decoding running out of time would; the run ends without an error.
    return services.image_sweep_moved_crops(cut_off_by=(SoftTimeLimitExceeded,))


@shared_task
def sweep_orphan_files() -> int:
    """Delete stored objects that no image or rendition points at any more."""
    # A stretch of the store a run, well within the soft time limit, from
    # where the last run stopped: a store too large for one run is gone over
    # in several, not cut off at the same place every time. A store that
    # hangs long enough for the limit to cut a batch off ends the run too,
    # without an error: the next run does that batch again.
    gone = storage.sweep_orphans(
        grace_seconds=settings.IMAGE_ORPHAN_GRACE_SECONDS,
        budget_seconds=sweeps.budget(),
        cut_off_by=(SoftTimeLimitExceeded,),
    )
    if gone:
        logger.warning("deleted %d orphaned objects", len(gone))
    return len(gone)
