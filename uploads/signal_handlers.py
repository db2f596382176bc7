"""Side effects of saving and deleting images, wired from UploadsConfig.ready().

Saving an image whose file is new or changed queues its processing once the
transaction commits (sent to a broker once the request that saved it has been
answered); deleting an image deletes its objects once the deletion commits
(unless another row still points at the same key). A rendition replaced while
its image stays keeps its object for a while (uploads.storage.rendition_released).
"""

from __future__ import annotations

from typing import Any

from django.core.signals import request_finished, request_started
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save

from uploads import dispatch, storage
from uploads.models import Image, Rendition


def remember_file(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    instance._loaded_file = instance.file.name if instance.pk else None  # type: ignore[attr-defined]


def queue_processing(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    previous = getattr(instance, "_loaded_file", None)
    current = instance.file.name
    instance._loaded_file = current  # type: ignore[attr-defined]
    if not created and previous == current:
        return
    dispatch.process_after_commit(image_id=instance.pk, force=not created)
    if previous and previous != current:
        transaction.on_commit(lambda: storage.delete_unreferenced({previous}))


def delete_image_file(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    key, image_id = instance.file.name, instance.pk
    if key:
        transaction.on_commit(lambda: storage.delete_unreferenced({key}))
    transaction.on_commit(lambda: storage.replaced_delete(image_id=image_id))


def delete_rendition_file(sender: type[Rendition], instance: Rendition, **kwargs: Any) -> None:
    key, image_id = instance.storage_key, instance.image_id
    transaction.on_commit(lambda: storage.rendition_released(key, image_id=image_id))


def register() -> None:
    post_init.connect(remember_file, sender=Image, dispatch_uid="uploads.remember_file")
    post_save.connect(queue_processing, sender=Image, dispatch_uid="uploads.queue_processing")
    post_delete.connect(delete_image_file, sender=Image, dispatch_uid="uploads.delete_image_file")
    post_delete.connect(delete_rendition_file, sender=Rendition, dispatch_uid="uploads.delete_rendition_file")
    request_started.connect(dispatch.hold_until_answered, dispatch_uid="uploads.hold_until_answered")
    request_finished.connect(dispatch.publish_held, dispatch_uid="uploads.publish_held")
