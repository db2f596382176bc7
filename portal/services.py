"""Site-wide writes: the health alerts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail

from core import mail
from portal import health

logger = logging.getLogger(__name__)


@dataclass
class HealthOutcome:
    checks: list[health.Check]
    # Alerts the mail server did not take, with its reason.
    undelivered: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[health.Check]:
        return [check for check in self.checks if not check.ok]


def health_alert(*, recipients: Sequence[str] | None = None) -> HealthOutcome:
    """Run the system checks and the portal's own (database, file store,
    task queue), and mail one alert per failing check.

    A mail server that is away loses no alert silently: the ones not sent
    are returned with the reason (after the first failure, without waiting
    for the server again).
    """
    outcome = HealthOutcome(health.run(health.SYSTEM_CHECKS + health.SERVICE_CHECKS))
    to = list(recipients or settings.HEALTH_RECIPIENTS)
    # A mail server that does not answer is not asked again for each alert:
    # every minute's run would outlast the minute (EMAIL_TIMEOUT per alert).
    away: str | None = None
    for check in outcome.failed:
        logger.warning("health check failed: %s (%s)", check.name, check.detail)
        if not to:
            continue
        if away is not None:
            outcome.undelivered.append(f"{check.subject}: {away}")
            continue
        try:
            send_mail(check.subject, health.BODY, settings.DEFAULT_FROM_EMAIL, to)
        except mail.RecipientsRefused as exc:  # taken for the others
            logger.error("health alert %s: %s", check.subject, exc)
            outcome.undelivered.append(f"{check.subject}: {exc}")
        except OSError as exc:  # smtplib's errors included
            logger.error("health alert not mailed: %s: %s", check.subject, exc)
            away = f"{exc or type(exc).__name__}"
            outcome.undelivered.append(f"{check.subject}: {away}")
    return outcome
