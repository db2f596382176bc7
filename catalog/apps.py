from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # They import models: only once apps are loaded.
        from catalog import selectors, signal_handlers  # noqa: PLC0415
        from catalog.checks import check_products_sharing_a_stem  # noqa: PLC0415
        from uploads.selectors import image_public_rule_add  # noqa: PLC0415

        signal_handlers.register()
        # A former colleague's portrait is not listed to the public.
        image_public_rule_add(selectors.image_public)
        checks.register(check_products_sharing_a_stem, checks.Tags.database)
