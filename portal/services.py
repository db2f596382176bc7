"""Site-wide writes: the health alerts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail

from portal import health

logger = logging.getLogger(__name__)


def health_alert(*, recipients: Sequence[str] | None = None) -> list[health.Check]:
    """Run the system checks and mail one alert per failing check.

    Returns every check run, passed or failed.
    """
    checks = health.run(health.SYSTEM_CHECKS)
    failed = [check for check in checks if not check.ok]
    to = list(recipients or settings.HEALTH_RECIPIENTS)
    for check in failed:
        logger.warning("health check failed: %s (%s)", check.name, check.detail)
        if to:
            send_mail(check.subject, health.BODY, settings.DEFAULT_FROM_EMAIL, to)
    return checks
