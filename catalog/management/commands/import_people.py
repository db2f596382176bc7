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
from core import dropfolder
from core.commands import Command as PortalCommand

# How much of the file is read at a time: a file of any size is imported in
# the memory of a few of these and of a few of its people.
CHUNK_BYTES = 256 * 1024


class Command(PortalCommand):
    help = (
        "Create or update people from a CSV, TSV, JSON or YAML file (matched by username). "
        "CSV header: name,username,phone,department,role (extra columns allowed; a TSV's the "
        "same, separated by tabs). Fields the "
        "file does not carry (a missing column, a blank is_active cell) are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format", choices=["csv", "tsv", "json", "yaml"], help="Default: from the file's extension."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        fmt = options["format"] or {"yml": "yaml"}.get(
            path.suffix.lstrip(".").lower(), path.suffix.lstrip(".").lower()
        )
        faults: list[Exception] = []  # the file changed after it was checked

        def rows(fh: IO[bytes]) -> Iterator[dict[str, Any]]:
            try:
                yield from formats.people_rows(_Chunks(fh), fmt)
            except formats.FormatError as exc:  # checked before: it has changed since
                faults.append(exc)

        try:
            with _open(path) as fh:
                before = os.fstat(fh.fileno())
                # Read through once, writing nothing, so that a fault anywhere
                # in the file leaves every person as they were.
                try:
                    for _ in formats.people_rows(_Chunks(fh), fmt):
                        pass
                except formats.FormatError:
                    # The fault of a file changed meanwhile may be the change's.
                    dropfolder.check_unchanged(path, fh.fileno(), before)
                    raise
                dropfolder.check_unchanged(path, fh.fileno(), before)
                fh.seek(0)
                summary = services.people_import(rows(fh))
                try:
                    dropfolder.check_unchanged(path, fh.fileno(), before)
                except dropfolder.ChangedWhileRead as exc:
                    faults.append(exc)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        except formats.FormatError as exc:
            raise CommandError(f"{path.name}: {exc}") from exc
        except dropfolder.ChangedWhileRead as exc:
            raise CommandError(
                f"Cannot read {path}: it changed while it was being read; nothing was imported. "
                "Run the import again once the file is written."
            ) from exc
        for label, reason in summary.rejected:
            self.stderr.write(f"rejected {label}: {reason}")
        self.stdout.write(summary.line("people"))
        if faults:
            raise CommandError(
                f"{path} changed while it was being read: the people above were read before it "
                "did. Run the import again once the file is written.",
                returncode=2,
            )
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


class _Chunks:
    """The file's bytes a chunk at a time, from its start each time they are
    read (as the reader of a YAML file may)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh

    def __iter__(self) -> Iterator[bytes]:
        self._fh.seek(0)
        while chunk := self._fh.read(CHUNK_BYTES):
            yield chunk
