from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from catalog import formats, services
from core.commands import Command as PortalCommand

# How much of the file is read at a time: a file of any size is imported in
# the memory of a few of these (a CSV file; JSON and YAML are parsed whole).
CHUNK_BYTES = 256 * 1024


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
            with _open(path) as fh:
                # Read through once, writing nothing, so that a fault anywhere
                # in the file leaves every person as they were.
                for _ in formats.people_rows(_chunks(fh), fmt):
                    pass
                fh.seek(0)
                summary = services.people_import(formats.people_rows(_chunks(fh), fmt))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        except formats.FormatError as exc:
            raise CommandError(f"{path.name}: {exc}") from exc
        for label, reason in summary.rejected:
            self.stderr.write(f"rejected {label}: {reason}")
        self.stdout.write(summary.line("people"))
        if summary.rejected:
            raise CommandError(f"{len(summary.rejected)} row(s) rejected.", returncode=2)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    # Opened without waiting: a named pipe in the file's place would hang a
    # cron run for ever, waiting for a writer.
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a named pipe or a device)", str(path))
        yield fh


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK_BYTES):
        yield chunk
