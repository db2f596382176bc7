"""Celery tasks: thin wrappers that load by primary key and call a service.

Tasks are sent through ``uploads.dispatch`` (by name), never imported by the
code that starts them.
"""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from uploads import services, storage

logger = logging.getLogger(__name__)

# Errors worth another try: the storage or the database was briefly away.
TRANSIENT: tuple[type[Exception], ...] = (*storage.UNAVAILABLE, DatabaseError)
MAX_RETRIES = 5


@shared_task(
    bind=True,
    acks_late=True,
    # A worker that died mid-task hands the image to the next one at once;
    # image_process counts those deaths and gives up at IMAGE_MAX_ATTEMPTS.
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def process_image(self, image_id: int, force: bool = False) -> str:  # type: ignore[no-untyped-def]
    try:
        image = services.image_process(image_id=image_id, force=force)
    except SoftTimeLimitExceeded:
        _, soft_limit = self.request.timelimit or (None, None)
        seconds = soft_limit or self.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        image = services.image_mark_failed(image_id=image_id, reason=services.reason_too_slow(seconds))
    except TRANSIENT as exc:
        if self.request.is_eager or self.request.retries >= MAX_RETRIES:
            services.image_mark_failed(image_id=image_id, reason=f"storage or database error: {exc}")
            return "failed"
        # Best effort: with the database away the retry counts as a death.
        with contextlib.suppress(*TRANSIENT):
            services.image_mark_pending(image_id=image_id)
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
    return image.status if image else "missing"


@shared_task
def sweep_stuck_images() -> int:
    """Queue again the images left pending/processing too long (a lost task)."""
    return services.image_sweep_stuck()


@shared_task
def sweep_orphan_files() -> int:
    """Delete stored objects that no image or rendition points at any more."""
    gone = storage.sweep_orphans(grace_seconds=settings.IMAGE_ORPHAN_GRACE_SECONDS)
    if gone:
        logger.warning("deleted %d orphaned objects", len(gone))
    return len(gone)
