"""Catalog side effects of uploads, wired from CatalogConfig.ready().

A product and its image may arrive in either order: when the image comes
second, or is a later photo of the same product, the products that name its
file stem show it once the upload commits. The write is a service.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from catalog.services import product_link_image
from uploads.models import Image


def link_products(
    sender: type[Image], instance: Image, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw or not created:
        return
    # By id: the committed row, with whatever the upload's transaction set.
    image_id = instance.pk
    transaction.on_commit(lambda: product_link_image(image_id=image_id))


def register() -> None:
    post_save.connect(link_products, sender=Image, dispatch_uid="catalog.link_products")
