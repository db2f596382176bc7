from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from portal import login_throttle

        user_login_failed.connect(login_throttle.count_failure, dispatch_uid="portal.count_login_failure")
