"""Where and when an image is processed: enqueued for a Celery worker when a
broker is configured (from a request, once its answer has gone out), else run
in this process.

In this process it runs on the caller's thread (management commands, tests:
the work is done when the call returns), or, once the embedded server has
called ``background_start()``, on a background thread, so an upload is
answered as soon as it is stored, as it is with a worker.

A batch (``import_images``) processes several images at once: within
``concurrently(jobs=N)`` what would run on the caller's thread goes to N
threads of this process instead, each image decoded in a sandboxed child of
its own (uploads.sandbox), so N decodes run at once, each under the memory
ceiling and the time limit.

The Celery task is looked up by name, so neither the services that start
processing nor the signal handlers import the task module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from kombu.exceptions import OperationalError

from uploads import holders, sandbox, storage
from uploads.models import WAITING, Image

logger = logging.getLogger(__name__)

PROCESS_IMAGE = "uploads.tasks.process_image"


class _Background:
    """This process's background thread's queue, once started."""

    jobs: queue.SimpleQueue[tuple[int, bool]] | None = None
    lock = threading.Lock()


_background = _Background()

# How long a stopped batch waits for its threads to finish what cannot be cut
# short (a rendition's row being written) before leaving them to exit with
# the process.
STOP_WAIT_SECONDS = 30


class Batch:
    """Up to ``jobs`` images processed at once, on threads of this process."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.queue: queue.SimpleQueue[tuple[int, bool] | None] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.submitted: list[int] = []
        # Daemons: a second Ctrl-C ends the process without waiting for them.
        self.threads = [
            threading.Thread(target=self._work, name=f"portal-batch-{i}", daemon=True)
            for i in range(self.jobs)
        ]

    def submit(self, image_id: int, force: bool) -> None:
        self.submitted.append(image_id)
        self.queue.put((image_id, force))

    def _work(self) -> None:
        task = current_app.tasks[PROCESS_IMAGE]
        try:
            while (job := self.queue.get()) is not None:
                if self.stopping.is_set():
                    continue  # left pending, for the sweep
                image_id, force = job
                close_old_connections()
                try:
                    result = task.apply(args=[image_id], kwargs={"force": force})
                    if result.failed():
                        logger.error("processing image %s failed: %r", image_id, result.result)
                except sandbox.Stopped:
                    logger.warning("image %s left for the sweep: the batch was stopped", image_id)
                except Exception:
                    logger.exception("processing image %s failed", image_id)
                finally:
                    close_old_connections()
        finally:
            connections.close_all()  # this thread's own


class _Batches:
    current: Batch | None = None


_batches = _Batches()


@contextlib.contextmanager
def concurrently(batch: Batch) -> Iterator[Batch]:
    """Within the block, the images this process would process on the
    caller's thread go to ``batch``'s threads; leaving it waits until each has
    ended ready or failed.

    Left by an exception (Ctrl-C), the images not yet started stay pending and
    those under way are stopped where they are (their decoders killed), both
    picked up by the sweep; an image whose rows are being written finishes.
    """
    if _batches.current is not None:
        raise RuntimeError("a batch is already running in this process")
    _batches.current = batch
    for thread in batch.threads:
        thread.start()
    stopped = False
    try:
        yield batch
    except BaseException:
        stopped = True
        batch.stopping.set()
        sandbox.stop_children()
        raise
    finally:
        _batches.current = None
        for _ in batch.threads:
            batch.queue.put(None)
        for thread in batch.threads:
            thread.join(STOP_WAIT_SECONDS if stopped else None)
        sandbox.resume_children()


def process_after_commit(*, image_id: int, force: bool = False) -> None:
    """Process the image once the current transaction commits (at once
    outside one): a rolled-back upload is never processed. Committed inside
    a ``storage.writing`` block (an upload's), once that ends: processing
    run in this thread takes keys of its own."""
    transaction.on_commit(lambda: storage.after_writing(lambda: start(image_id=image_id, force=force)))


def start(*, image_id: int, force: bool = False) -> bool:
    """Send, queue or run the processing now; while this thread answers a
    request, it is sent to the broker once the answer has gone out. Returns
    whether it was started (or will be).

    With the broker away the image stays pending, and the periodic sweep
    queues it again: an accepted upload is never lost.
    """
    batch = _batches.current
    if batch is not None and not settings.BROKER_CONFIGURED:
        batch.submit(image_id, force)
        return True
    jobs = _background.jobs
    if jobs is not None and not settings.BROKER_CONFIGURED:
        jobs.put((image_id, force))
        return True
    held = _answering.held
    if held is not None and settings.BROKER_CONFIGURED:
        held.append((image_id, force))
        return True
    return _publish(image_id, force)


def _publish(image_id: int, force: bool) -> bool:
    try:
        # No time limits in the message: the worker's own settings apply (a
        # sender's would travel in the message and override them).
        current_app.tasks[PROCESS_IMAGE].apply_async(
            args=[image_id], kwargs={"force": force}, time_limit=None, soft_time_limit=None
        )
    except (OperationalError, OSError) as exc:
        logger.warning("broker unavailable, image %s left pending for the sweep: %s", image_id, exc)
        # Marked, the next sweep takes it over at once, not after the cut-off.
        with contextlib.suppress(DatabaseError):
            Image.objects.filter(pk=image_id, status__in=WAITING).update(holder=holders.UNQUEUED)
        return False
    return True


class _Answering(threading.local):
    """Images this thread sends to the broker once the request it is
    answering has been answered (None: not answering one)."""

    held: list[tuple[int, bool]] | None = None


_answering = _Answering()


def hold_until_answered(**kwargs: Any) -> None:
    """On request_started: publishes wait until the answer has gone out.

    The uploader is not kept waiting on the broker (a round trip or two), and
    the worker does not start decoding on the core that is still answering.
    A process that dies in between leaves its images pending, for the sweep,
    as a broker that is away does.
    """
    publish_held()  # what an earlier request left, had its response never been closed
    _answering.held = []


def publish_held(**kwargs: Any) -> None:
    """On request_finished (the response sent and closed): send what was held."""
    held, _answering.held = _answering.held, None
    for image_id, force in held or ():
        try:
            _publish(image_id, force)
        except Exception:
            logger.exception("image %s left pending for the sweep: publishing it failed", image_id)


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
    _batches.current = None


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
