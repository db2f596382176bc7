"""Catalog side effects of uploads, wired from CatalogConfig.ready().

A product and its image may arrive in either order: when the image comes
second, or is a later photo of the same product, the products that name its
file stem show it once the upload commits. An image that then fails to
process gives its products back the photo before it. The writes are services.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from catalog.services import product_link_image, product_relink_from_failed
from uploads.models import Image


def link_products(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw or not created:
        return
    # By id: the committed row, with whatever the upload's transaction set.
    image_id = instance.pk
    transaction.on_commit(lambda: product_link_image(image_id=image_id))


def relink_from_failed(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw or created or instance.status != Image.Status.FAILED:
        return
    image_id = instance.pk
    transaction.on_commit(lambda: product_relink_from_failed(image_id=image_id))


def register() -> None:
    post_save.connect(link_products, sender=Image, dispatch_uid="catalog.link_products")
    post_save.connect(relink_from_failed, sender=Image, dispatch_uid="catalog.relink_from_failed")
