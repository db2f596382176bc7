from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core import checks
from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from catalog import services
from core import dropfolder
from core.commands import Command as PortalCommand


class Command(PortalCommand):
    help = (
        "Import every *.txt review in DIR (line 1 title, 2 name, 3 date YYYY-MM-DD, then the "
        "text). Exact duplicates are skipped; unreadable files are rejected, other files skipped, "
        "each named with the reason."
    )
    # The checks on what this command writes; not those that load every URL,
    # view and admin module of the site (run by `check`, `runserver`, `migrate`),
    # which would double the time a small import takes.
    requires_system_checks = [checks.Tags.models, checks.Tags.database]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        try:
            listing = dropfolder.listing(directory, suffix=".txt", what="review")
        except dropfolder.FolderUnreadable as exc:
            raise CommandError(f"{exc}. Nothing was imported.") from exc
        paths, skipped = listing.files, listing.skipped
        summary = services.ImportSummary(rejected=list(listing.rejected))
        done = 0

        def progress(files: int) -> None:
            nonlocal done
            done += files
            bar.update(files)

        try:
            with tqdm(total=len(paths), unit="file", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                services.feedback_import_files(paths, progress=progress, summary=summary)
        except KeyboardInterrupt:
            # Each batch commits: those finished stay, and are told.
            self._tell(skipped + summary.left, summary.rejected)
            raise CommandError(
                f"Interrupted after {done} of {len(paths)} files: {summary.line('reviews')} The files "
                "after them were not imported; run it again to add them (it skips those created).",
                returncode=130,
            ) from None
        except Exception:
            # The database or a file went away: the batches committed stay,
            # which the one line that tells the fault would not say.
            if summary.created:
                self.stderr.write(
                    f"Stopped after {done} of {len(paths)} files: {summary.line('reviews')} "
                    "Those are kept; the next run skips them."
                )
            raise
        skipped += summary.left
        self._tell(skipped, summary.rejected)
        self.stdout.write(summary.line("reviews"))
        if summary.rejected:
            raise CommandError(f"{len(summary.rejected)} file(s) rejected.", returncode=2)

    def _tell(self, skipped: list[tuple[str, str]], rejected: list[tuple[str, str]]) -> None:
        for name, reason in skipped:
            self.stderr.write(f"skipped {name}: {reason}")
        for name, reason in rejected:
            self.stderr.write(f"rejected {name}: {reason}")
