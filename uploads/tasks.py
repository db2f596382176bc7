"""Celery tasks: thin wrappers that load by primary key and call a service."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from kombu.exceptions import OperationalError

from uploads import services, storage
from uploads.models import Image

logger = logging.getLogger(__name__)

# Errors worth another try: the storage or the database was briefly away.
TRANSIENT: tuple[type[Exception], ...] = (*storage.UNAVAILABLE, DatabaseError)
MAX_RETRIES = 5


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def process_image(self, image_id: int, force: bool = False) -> str:  # type: ignore[no-untyped-def]
    try:
        image = services.image_process(image_id=image_id, force=force)
    except TRANSIENT as exc:
        if self.request.is_eager or self.request.retries >= MAX_RETRIES:
            services.image_mark_failed(image_id=image_id, reason=f"storage or database error: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
    return image.status if image else "missing"


def enqueue_processing(image_id: int, *, force: bool = False) -> bool:
    """Send the task (or, with no broker, run it here and now).

    With the broker away the image stays pending, and the periodic sweep
    queues it again: an accepted upload is never lost. Returns whether sent.
    """
    try:
        process_image.apply_async(args=[image_id], kwargs={"force": force})
    except (OperationalError, OSError) as exc:
        logger.warning("broker unavailable, image %s left pending for the sweep: %s", image_id, exc)
        return False
    return True


@shared_task
def sweep_stuck_images() -> int:
    """Queue again the images left pending/processing too long (a lost task)."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.IMAGE_STUCK_AFTER_SECONDS)
    stuck = list(
        Image.objects.filter(
            status__in=[Image.Status.PENDING, Image.Status.PROCESSING], updated_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for pk in stuck:
        Image.objects.filter(pk=pk).update(updated_at=timezone.now())
        enqueue_processing(pk)
    if stuck:
        logger.warning("re-queued %d stuck images: %s", len(stuck), stuck)
    return len(stuck)


@shared_task
def sweep_orphan_files() -> int:
    """Delete stored objects that no image or rendition points at any more."""
    gone = storage.sweep_orphans(grace_seconds=settings.IMAGE_ORPHAN_GRACE_SECONDS)
    if gone:
        logger.warning("deleted %d orphaned objects", len(gone))
    return len(gone)
