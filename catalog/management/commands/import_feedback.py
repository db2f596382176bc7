from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog import services


class Command(BaseCommand):
    help = (
        "Import every *.txt review in DIR (line 1 title, 2 name, 3 date YYYY-MM-DD, then the "
        "text). Exact duplicates are skipped; unreadable files are reported and left out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        paths = sorted(p for p in directory.glob("*.txt") if p.is_file())
        with tqdm(total=len(paths), unit="file", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
            summary = services.feedback_import_files(paths, progress=bar.update)
        for name, reason in summary.rejected:
            self.stderr.write(f"rejected {name}: {reason}")
        self.stdout.write(summary.line("reviews"))
