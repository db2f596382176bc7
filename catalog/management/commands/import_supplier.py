from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from catalog import selectors, services
from core import dropfolder, files, mail
from core.commands import Command as PortalCommand


class Command(PortalCommand):
    help = (
        "Import a supplier delivery: DIR/descriptions/*.txt (name, 'N lbs', description) and "
        "DIR/images/* (linked by file stem; processed with the supplier preset, by the worker or "
        "in-process after each upload commits). Waits for the images to be processed, then builds "
        "the PDF report and emails it. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--email", action="append", help="Report recipient (repeatable); default: settings."
        )
        parser.add_argument("--no-email", action="store_true", help="Build the report but send nothing.")
        parser.add_argument(
            "--report", type=Path, help="Also write the PDF here (checked before the import starts)."
        )
        parser.add_argument(
            "--wait",
            type=_seconds,
            default=services.SUPPLIER_WAIT_SECONDS,
            metavar="SECONDS",
            help="How long to wait for the images to be processed before reporting "
            f"(default {services.SUPPLIER_WAIT_SECONDS}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        if not (directory / "descriptions").is_dir() and not (directory / "images").is_dir():
            raise CommandError(f"{directory} has neither descriptions/ nor images/.")
        report: Path | None = options["report"]
        if report:
            # A mistyped path is told before anything is imported or mailed
            # (run again, the mail would go twice).
            try:
                files.check_writable(report)
            except files.NotWritten as exc:
                raise CommandError(f"{exc} Nothing was imported.") from exc
        recipients: list[str] = []
        if not options["no_email"]:
            source = "--email" if options["email"] else "PORTAL_REPORT_RECIPIENTS"
            recipients = options["email"] or settings.REPORT_RECIPIENTS
            # Told now, as a mistyped report path is: the mail goes after the import.
            if refused := mail.address_refused(recipients):
                raise CommandError(f"{source}: {refused}. Nothing was imported.")
        total = sum(
            len(list((directory / sub).glob("*")))
            for sub in ("images", "descriptions")
            if (directory / sub).is_dir()
        )
        with tqdm(total=total, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
            try:
                summary = services.supplier_import(
                    directory, wait_seconds=options["wait"], progress=bar.update
                )
            except dropfolder.FolderUnreadable as exc:  # both folders are listed before any write
                raise CommandError(f"{exc}. Nothing was imported.") from exc
        for name, reason in summary.skipped_files:
            self.stderr.write(f"skipped {name}: {reason}")
        for name, reason in summary.products.rejected + summary.images_rejected + summary.images_failed:
            self.stderr.write(f"rejected {name}: {reason}")
        for name in summary.images_unsettled:
            self.stderr.write(
                f"still processing {name} after {options['wait']:g} s: no thumbnail in the report"
            )
        products = selectors.products_with_images().filter(pk__in=[p.pk for p in summary.processed])
        today = timezone.localdate()
        # Where the admin lists the day's changes, for a delivery larger than a
        # report holds; the host is known only from PORTAL_BASE_URL.
        listed = settings.BASE_URL + services.report_changed_on(today) if settings.BASE_URL else ""
        pdf = services.report_build(
            products=products.order_by("name"),
            date=today,
            more_were="processed by this import",
            more_url=listed,
        )
        sent, mailed, attached = "", True, True
        if not options["no_email"]:
            if not recipients:
                self.stderr.write("report not mailed: no recipients (--email or PORTAL_REPORT_RECIPIENTS)")
            else:
                try:
                    outcome = services.report_send(pdf=pdf, recipients=recipients, date=today)
                except OSError as exc:  # smtplib's errors included
                    self.stderr.write(f"report not mailed: {exc or type(exc).__name__}")
                    mailed = False
                else:
                    # Taken for the others, if any, when some were refused.
                    taken = outcome.refused.accepted if outcome.refused else recipients
                    if taken:
                        without = " without the PDF" if outcome.not_attached else ""
                        sent = f" Report mailed to {', '.join(taken)}{without}."
                    if outcome.not_attached:
                        self.stderr.write(f"report not attached: {outcome.not_attached}")
                        attached = False
                    if outcome.refused:
                        self.stderr.write(f"report {outcome.refused}")
                        mailed = False
        written = True
        if report:  # after the mail: a disk that fills up meanwhile does not stop it
            try:
                files.write_replacing(report, pdf)
            except files.NotWritten as exc:
                self.stderr.write(f"report not written to {exc.path}: {exc.reason}")
                written = False
        self.stdout.write(summary.line() + sent)
        # What did land stays; the exit code tells a cron job that not all did.
        counts = (
            (len(summary.products.rejected), "description(s) rejected"),
            (len(summary.images_rejected), "image file(s) rejected"),
            (len(summary.images_failed), "image(s) failed"),
            (len(summary.images_unsettled), "image(s) still processing"),
        )
        problems = [f"{count} {what}" for count, what in counts if count]
        if not mailed:
            problems.append("report not mailed")
        if not attached:
            problems.append("report too large to attach")
        if not written:
            problems.append("report not written")
        if problems:
            raise CommandError(", ".join(problems) + ".", returncode=2)


def _seconds(value: str) -> float:
    """A wait of ``--wait``: a negative one gave up at once, and NaN or
    infinity (``float`` reads both) waited for ever."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more; it is {value!r}")
    return seconds
