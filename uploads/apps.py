from __future__ import annotations

from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = "Images"

    def ready(self) -> None:
        from uploads import metrics, signal_handlers

        signal_handlers.register()
        metrics.register()
