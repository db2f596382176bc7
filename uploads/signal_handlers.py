"""Side effects of saving and deleting images, wired from UploadsConfig.ready().

A file given to an image by a save of its row is checked and stored as an
upload is (uploads.models.OriginalFile, by uploads.services).

Saving an image whose file is new or changed (Image.save puts one changed
back to pending) queues its processing once the transaction commits (sent to
a broker once the request that saved it has been answered), and the old
original goes then (unless another row holds it); deleting an image deletes
its objects once the deletion commits (unless another row still points at
the same key). A rendition replaced while its image stays keeps its object
for a while (uploads.storage.released).

The rows a transaction deletes let their objects go together once it commits:
one round of statements and store requests, not one per rendition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import connections, router, transaction
from django.db.models.signals import post_delete, post_save

from uploads import dispatch, services, storage
from uploads.models import Image, OriginalFile, Rendition

logger = logging.getLogger(__name__)


def queue_processing(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    # Found by the save against the stored row, which it put back to pending.
    replaced = instance.replaced_file
    if not created and replaced is None:
        return
    dispatch.process_after_commit(image_id=instance.pk, force=not created)
    if replaced:
        transaction.on_commit(lambda: storage.delete_unreferenced({replaced}))


@dataclass
class _Released:
    """What the rows deleted in one transaction let go once it commits."""

    images: set[int] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    renditions: dict[int, set[str]] = field(default_factory=dict)
    done: bool = False

    def run(self) -> None:
        self.done = True
        try:
            storage.released(images=self.images, files=self.files, renditions=self.renditions)
        except storage.UNAVAILABLE as exc:
            # The rows are gone, as asked: a store away now does not undo
            # that, nor may it turn the answer into "try again". The objects
            # no row points at any more are the orphan sweep's.
            logger.warning(
                "file store unavailable: the objects deleted rows let go (images %s) are left to the orphan sweep: %s",
                sorted(self.images | set(self.renditions)),
                exc,
            )


def _release(model: type[Any], add: Callable[[_Released], None]) -> None:
    """``add`` a deleted row's objects to the collection of the current
    transaction, whose one on-commit callback is registered with its first
    row; outside a transaction, let them go at once."""
    using = router.db_for_write(model)
    connection = connections[using]
    if not connection.in_atomic_block:
        alone = _Released()
        add(alone)
        alone.run()
        return
    pending: _Released | None = getattr(connection, "_uploads_released", None)
    # A collection whose transaction was rolled back never runs: its callback
    # is no longer among the connection's.
    if (
        pending is None
        or pending.done
        or not any(entry[1] == pending.run for entry in connection.run_on_commit)
    ):
        pending = _Released()
        connection._uploads_released = pending  # type: ignore[attr-defined]
        transaction.on_commit(pending.run, using=using)
    add(pending)


def delete_image_file(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    image_id, key = instance.pk, instance.file.name

    def add(pending: _Released) -> None:
        pending.images.add(image_id)
        if key:
            pending.files.add(key)

    _release(sender, add)


def delete_rendition_file(sender: type[Rendition], instance: Rendition, **kwargs: Any) -> None:
    image_id, key = instance.image_id, instance.storage_key
    _release(sender, lambda pending: pending.renditions.setdefault(image_id, set()).add(key))


def register() -> None:
    OriginalFile.store = services.image_file_storing
    post_save.connect(queue_processing, sender=Image, dispatch_uid="uploads.queue_processing")
    post_delete.connect(delete_image_file, sender=Image, dispatch_uid="uploads.delete_image_file")
    post_delete.connect(delete_rendition_file, sender=Rendition, dispatch_uid="uploads.delete_rendition_file")
    request_started.connect(dispatch.hold_until_answered, dispatch_uid="uploads.hold_until_answered")
    request_finished.connect(dispatch.publish_held, dispatch_uid="uploads.publish_held")
