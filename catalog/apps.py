from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from catalog import signal_handlers  # noqa: PLC0415 - it imports models: only once apps are loaded

        signal_handlers.register()
