"""Files the commands write for an operator (an export, a report)."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path


class NotWritten(Exception):
    """A file that could not be written; the message names it and says why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"Cannot write {path}: {reason}.")


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")


def check_writable(path: Path) -> None:
    """Raise NotWritten now if ``path`` cannot be written (no such folder, a
    folder in its place, a folder this process may not write to, a read-only
    disk), before a long run makes what would go there. A full disk shows
    only when writing."""
    if not path.parent.is_dir():
        raise NotWritten(path, f"no folder {path.parent}")
    if path.is_dir():
        raise NotWritten(path, "it is a folder")
    probe = _temporary(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise NotWritten(path, exc.strerror or str(exc)) from exc
    probe.unlink()


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` under its own name; a write that fails part way (a full
    disk) removes what it wrote instead of leaving a file cut short. The
    OSError goes on to the caller. Unlike ``write_replacing``, no longer name
    is needed beside it: a name as long as the file system takes is written."""
    fh = path.open("wb")  # a name refused, a folder in its way: nothing written
    try:
        with fh:
            fh.write(data)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def write_replacing(path: Path, data: bytes) -> None:
    """Write beside the file, then rename over it: a write that fails (a full
    disk) leaves the previous file whole instead of truncated."""
    if not path.parent.is_dir():
        raise NotWritten(path, f"no folder {path.parent}")
    # Told before a name is made beside it, which a path of no name (``.``,
    # ``/``, or an empty ``-o ''``) has not.
    if path.is_dir():
        raise NotWritten(path, "it is a folder")
    temporary = _temporary(path)
    try:
        # Created as any new file is (the umask applies); a file it replaces
        # keeps its permissions.
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
        raise NotWritten(path, f"{exc.strerror or exc}{kept}") from exc
