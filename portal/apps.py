from __future__ import annotations

from django.apps import AppConfig
from django.contrib.auth.signals import user_login_failed


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import login_throttle  # noqa: PLC0415 - it imports the admin: only once apps are loaded

        user_login_failed.connect(login_throttle.count_failure, dispatch_uid="portal.count_login_failure")
