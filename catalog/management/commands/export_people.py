from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from catalog import formats
from catalog.models import Person
from core.commands import Command as PortalCommand


class Command(PortalCommand):
    help = "Write the staff directory as CSV, JSON or YAML (to stdout, or --output FILE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "json", "yaml"], default="csv")
        parser.add_argument("--output", "-o", type=Path)
        parser.add_argument("--active-only", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        people = Person.objects.order_by("department", "name")
        if options["active_only"]:
            people = people.filter(is_active=True)
        text = formats.dump_people(
            people.values("name", "username", "phone", "department", "role", "email", "is_active"),
            options["format"],
        )
        if options["output"]:
            _write_replacing(options["output"], text.encode("utf-8"))
            self.stderr.write(f"{people.count()} people written to {options['output']}.")
        else:
            self.stdout.write(text, ending="")


def _write_replacing(path: Path, data: bytes) -> None:
    """Write beside the file, then rename over it: a write that fails (a full
    disk) leaves the previous export whole instead of truncated."""
    if not path.parent.is_dir():
        raise CommandError(f"Cannot write {path}: no folder {path.parent}.")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        # Created as any new file is (the umask applies); an export it
        # replaces keeps its permissions.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        kept = "; the previous file is unchanged" if path.exists() else ""
        raise CommandError(f"Cannot write {path}: {exc.strerror or exc}{kept}.") from exc
