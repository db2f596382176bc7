from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from core import mail
from core.commands import Command as PortalCommand
from portal import services


class Command(PortalCommand):
    help = (
        "Check CPU usage, free disk, available memory, that localhost resolves to "
        "127.0.0.1, and that the database, the file store and the task queue answer; "
        "mail an alert for each failure (again every PORTAL_HEALTH_REMIND_MINUTES while "
        "it fails, and once it has passed again for 3 minutes) and exit non-zero if any failed. "
        "Thresholds: PORTAL_HEALTH_* settings. Cron: * * * * * cd /srv/portal && "
        ".venv/bin/python manage.py health_check"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", action="append", help="Alert recipient (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        recipients = options["email"] or settings.HEALTH_RECIPIENTS
        # Told before the checks run: Django's mail would fail on such an
        # address only as it sends, with no alert mailed, or drop a blank one
        # without a word.
        if refused := mail.address_refused(recipients):
            source = "--email" if options["email"] else "PORTAL_HEALTH_RECIPIENTS"
            raise CommandError(f"{source}: {refused}. Nothing was checked.", returncode=1)
        outcome = services.health_alert(recipients=recipients)
        for check in outcome.checks:
            self.stdout.write(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        for check in outcome.failed:
            self.stderr.write(f"{check.subject} ({check.detail})")
        for alert in outcome.undelivered:
            self.stderr.write(f"alert not mailed: {alert}")
        for alert in outcome.held:
            self.stdout.write(f"alert already mailed: {alert}")
        for alert in outcome.left:
            self.stdout.write(f"left to another run: {alert}")
        for recovery in outcome.settling:
            self.stdout.write(f"recovery held: {recovery}")
        for subject in outcome.resolved:
            self.stdout.write(f"recovery mailed: {subject}")
        if outcome.failed:
            raise CommandError(f"{len(outcome.failed)} check(s) failed.", returncode=1)
        self.stdout.write("All system checks passed.")
