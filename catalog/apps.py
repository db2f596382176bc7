from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # They import models: only once apps are loaded.
        from catalog import signal_handlers  # noqa: PLC0415
        from catalog.checks import check_products_sharing_a_stem  # noqa: PLC0415

        signal_handlers.register()
        checks.register(check_products_sharing_a_stem, checks.Tags.database)
