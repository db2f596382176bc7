from __future__ import annotations

from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = "Images"

    def ready(self) -> None:
        # Importing the tasks registers them with the Celery app, where
        # uploads.dispatch finds them by name.
        from uploads import metrics, signal_handlers, tasks  # noqa: F401, PLC0415 - they import models: only once apps are loaded

        signal_handlers.register()
        metrics.register()
