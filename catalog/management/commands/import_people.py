from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from catalog import formats, services
from core.commands import Command as PortalCommand


class Command(PortalCommand):
    help = (
        "Create or update people from a CSV, JSON or YAML file (matched by username). "
        "CSV header: name,username,phone,department,role (extra columns allowed). Fields the "
        "file does not carry (a missing column, a blank is_active cell) are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format", choices=["csv", "json", "yaml"], help="Default: from the file's extension."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        fmt = options["format"] or {"yml": "yaml"}.get(
            path.suffix.lstrip(".").lower(), path.suffix.lstrip(".").lower()
        )
        try:
            rows = formats.parse_people(path.read_bytes(), fmt)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        except formats.FormatError as exc:
            raise CommandError(f"{path.name}: {exc}") from exc
        summary = services.people_import(rows)
        for label, reason in summary.rejected:
            self.stderr.write(f"rejected {label}: {reason}")
        self.stdout.write(summary.line("people"))
        if summary.rejected:
            raise CommandError(f"{len(summary.rejected)} row(s) rejected.", returncode=2)
