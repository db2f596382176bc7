"""Where and when an image is processed: enqueued for a Celery worker when a
broker is configured, else run in this process.

In this process it runs on the caller's thread (management commands, tests:
the work is done when the call returns), or, once the embedded server has
called ``background_start()``, on a background thread, so an upload is
answered as soon as it is stored, as it is with a worker.

The Celery task is looked up by name, so neither the services that start
processing nor the signal handlers import the task module.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

PROCESS_IMAGE = "uploads.tasks.process_image"


class _Background:
    """This process's background thread's queue, once started."""

    jobs: queue.SimpleQueue[tuple[int, bool]] | None = None
    lock = threading.Lock()


_background = _Background()


def process_after_commit(*, image_id: int, force: bool = False) -> None:
    """Process the image once the current transaction commits (at once
    outside one): a rolled-back upload is never processed."""
    transaction.on_commit(lambda: start(image_id=image_id, force=force))


def start(*, image_id: int, force: bool = False) -> bool:
    """Send, queue or run the processing now. Returns whether it was started.

    With the broker away the image stays pending, and the periodic sweep
    queues it again: an accepted upload is never lost.
    """
    jobs = _background.jobs
    if jobs is not None and not settings.BROKER_CONFIGURED:
        jobs.put((image_id, force))
        return True
    try:
        # No time limits in the message: the worker's own settings apply (a
        # sender's would travel in the message and override them).
        current_app.tasks[PROCESS_IMAGE].apply_async(
            args=[image_id], kwargs={"force": force}, time_limit=None, soft_time_limit=None
        )
    except (OperationalError, OSError) as exc:
        logger.warning("broker unavailable, image %s left pending for the sweep: %s", image_id, exc)
        return False
    return True


def background_start() -> None:
    """Process images on a background thread of this process from now on."""
    with _background.lock:
        if _background.jobs is not None:
            return
        jobs: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()
        _background.jobs = jobs
        # A daemon: stopping the server does not wait for the queue to drain;
        # what is left pending or half-done is picked up by the next sweep.
        threading.Thread(target=_work, args=(jobs,), name="portal-images", daemon=True).start()


def background_running() -> bool:
    return _background.jobs is not None


def _forget_background() -> None:
    # A forked child has none of its parent's threads.
    _background.jobs = None


os.register_at_fork(after_in_child=_forget_background)


def _work(jobs: queue.SimpleQueue[tuple[int, bool]]) -> None:
    task = current_app.tasks[PROCESS_IMAGE]
    while True:
        image_id, force = jobs.get()
        close_old_connections()
        try:
            # apply() runs the task here, as an eager call would.
            result = task.apply(args=[image_id], kwargs={"force": force})
            if result.failed():
                logger.error("processing image %s failed: %r", image_id, result.result)
        except Exception:
            logger.exception("processing image %s failed", image_id)
        finally:
            close_old_connections()
