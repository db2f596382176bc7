"""System checks of the catalog's stored rows, run by ``manage.py check
--database default`` (and ``migrate``, before it migrates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Warning
from django.db import DatabaseError, transaction
from django.db.models import Count

from catalog.models import Product

# The most stems the check names; the others are counted.
SHARED_STEMS_NAMED = 20


def check_products_sharing_a_stem(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """A warning for each image file stem that several products share: pairs
    left from before stems were kept in one Unicode form or trimmed
    (docs/stems.md), which staff end by hand."""
    messages: list[CheckMessage] = []
    for alias in databases or ():
        products = Product.objects.using(alias).exclude(image_stem="")
        try:
            # In a transaction of its own: a failed read leaves no other broken.
            with transaction.atomic(using=alias):
                shared = list(
                    products.values("image_stem", "is_demo")
                    .annotate(products=Count("pk"))
                    .filter(products__gt=1)
                    .order_by("image_stem", "is_demo")
                )
                named = shared[:SHARED_STEMS_NAMED]
                rows = list(
                    products.filter(image_stem__in={s["image_stem"] for s in named})
                    .order_by("pk")
                    .values_list("pk", "name", "image_stem", "is_demo")
                )
        except DatabaseError:  # a schema the migrations have not brought here yet
            continue
        for stem in named:
            sharing = [
                f"{pk} “{name}”"
                for pk, name, image_stem, is_demo in rows
                if (image_stem, is_demo) == (stem["image_stem"], stem["is_demo"])
            ]
            messages.append(
                Warning(
                    f"Products {', '.join(sharing)} share the image file stem “{stem['image_stem']}”.",
                    hint="A post of the stem updates the one with its very file name, else the oldest, "
                    "and a photo of it shows on each. Delete one, or give it a file name of another "
                    "stem (docs/stems.md).",
                    id="catalog.W001",
                )
            )
        if len(shared) > len(named):
            messages.append(
                Warning(
                    f"{len(shared) - len(named)} more image file stem(s) shared by several products.",
                    id="catalog.W001",
                )
            )
    return messages
