from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.contrib import admin
from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks
from django.db.backends.signals import connection_created

from portal import sqlite


class PortalConfig(AppConfig):
    # The one for "portal": this module holds the admin's config too.
    default = True
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # It imports models: only once apps are loaded.
        from portal import signal_handlers  # noqa: PLC0415

        connection_created.connect(sqlite.unicode_like, dispatch_uid="portal.sqlite_unicode_like")
        signal_handlers.register()


class PortalAdminConfig(SimpleAdminConfig):
    """The admin, with its ModelAdmins discovered when the URLconf loads
    (portal/urls.py) or the admin's checks run rather than at start-up:
    commands that serve no page (imports, workers) do not import every
    admin.py and all they import (the API, ReportLab, boto3)."""

    default = False
    default_site = "portal.admin_site.PortalAdminSite"

    def ready(self) -> None:
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_discovered_admin, checks.Tags.admin)


def check_discovered_admin(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The admin's own check, run on every ModelAdmin: discovered first, as
    the checks may run before anything has loaded the URLconf."""
    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)
