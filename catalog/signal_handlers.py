"""Catalog side effects of uploads, wired from CatalogConfig.ready().

A product and its image may arrive in either order: when the image comes
second, or is a later photo of the same product, the products that name its
file stem show it once the upload commits. An image that then fails to
process, or is deleted, gives its products back the photo before it; a failed
image processed again is theirs again. The writes are services.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_init, post_save, pre_delete

from catalog.models import Product
from catalog.services import product_link_image, product_relink, product_relink_from_failed
from uploads.models import Image


def remember_status(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    # From __dict__: a deferred status (``only()``) is not worth a query here.
    instance._loaded_status = instance.__dict__.get("status") if instance.pk else None  # type: ignore[attr-defined]


def link_products(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    was = getattr(instance, "_loaded_status", None)
    instance._loaded_status = instance.status  # type: ignore[attr-defined]
    # New, or failed before and taken up again (reprocessed): usable now.
    usable_again = was == Image.Status.FAILED and instance.status != Image.Status.FAILED
    if not created and not usable_again:
        return
    # The committed row is linked, with whatever the upload's transaction set.
    transaction.on_commit(lambda: product_link_image(image=instance))


def relink_from_failed(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw or created or instance.status != Image.Status.FAILED:
        return
    image_id = instance.pk
    transaction.on_commit(lambda: product_relink_from_failed(image_id=image_id))


def relink_from_deleted(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    # Before the delete: it sets the products' image to null.
    product_ids = list(Product.objects.filter(image_id=instance.pk).values_list("pk", flat=True))
    if product_ids:
        transaction.on_commit(lambda: product_relink(product_ids=product_ids))


def register() -> None:
    post_init.connect(remember_status, sender=Image, dispatch_uid="catalog.remember_status")
    post_save.connect(link_products, sender=Image, dispatch_uid="catalog.link_products")
    post_save.connect(relink_from_failed, sender=Image, dispatch_uid="catalog.relink_from_failed")
    pre_delete.connect(relink_from_deleted, sender=Image, dispatch_uid="catalog.relink_from_deleted")
