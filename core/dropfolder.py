"""The folders the imports read, which other programs fill: a supplier's
upload still under way, a copy that a cron run overlaps, a desktop's litter.

An import takes from such a folder the regular files whose names are UTF-8
text without control characters, that are no upload's or editor's temporary
file, that have not changed for ``IMPORT_SETTLE_SECONDS`` (a file still being
written would be imported cut short), and that lie in the folder: a link is
followed only to a file of the same folder, since a link planted in a drop
folder would otherwise publish any file the portal can read. Hidden files
(``.DS_Store``, ``._photo.jpg``, an uploader's ``.photo.jpg.XXXXXX``) are
passed over without a word, as ``ls`` does; every other file left out is
named with the reason, either skipped (not meant for the import, such as a
file of another suffix than the import reads, or left for the next run) or
rejected (meant for it and not taken: the run exits 2).
The wait cannot see a writer that goes on after the listing: the readers
open a file as the listing found it, settled still, or not at all
(``opened``), compare the file as they opened it with the file once read
(``check_unchanged``), and leave one that changed for the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings

from core.quoting import printed

# Temporary files of uploads and editors: renamed or deleted once the work is
# done (a browser's or FTP client's .part, WinSCP's .filepart, Chrome's
# .crdownload, Office's ~$lock, an editor's backup~).
TEMPORARY = re.compile(
    r"^~\$|~$|\.(part|partial|filepart|crdownload|download|tmp|temp|swp)$",
    re.IGNORECASE,
)
# Characters that would break a name across lines, or hide in it.
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp"})


class FolderUnreadable(Exception):
    """A folder that cannot be listed (no permission to read it, removed
    meanwhile): nothing in it can be taken, which the run tells in one line."""

    def __init__(self, folder: Path, exc: OSError) -> None:
        self.folder = folder
        super().__init__(f"Cannot read the folder {shown(str(folder))}: {exc.strerror or exc}")


@dataclass
class Listing:
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def shown(name: str) -> str:
    """A file name on one line as it can be printed and logged: bytes that
    are not UTF-8 as ``\\xff``, control characters escaped (``\\n``)."""
    return printed(os.fsencode(name).decode("utf-8", "backslashreplace"))


def _name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8 text; rename the file"
    if any(unicodedata.category(ch) in _UNPRINTABLE for ch in name):
        return "its name holds a control character (a line break, a tab); rename the file"
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def listing(folder: Path, *, now: float | None = None, suffix: str = "", what: str = "") -> Listing:
    """What an import takes from ``folder`` (sorted by name), and what it
    leaves out with the reason. With ``suffix``, the files of that suffix
    (in any case) alone: another file (``Thumbs.db``, ``notes.docx``) is
    skipped as "not a .txt review" (``what`` being "review"). An empty
    listing when there is no folder; FolderUnreadable when it cannot be
    listed."""
    found = Listing()
    if not folder.is_dir():
        return found
    settle = settings.IMPORT_SETTLE_SECONDS
    now = time.time() if now is None else now
    inside = folder.resolve()
    try:
        with os.scandir(folder) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError as exc:
        raise FolderUnreadable(folder, exc) from exc
    for name in names:
        if name.startswith("."):
            continue
        label, path = shown(name), folder / name
        problem = _name_problem(name)
        if problem:
            found.rejected.append((label, problem))
            continue
        if TEMPORARY.search(name):
            found.skipped.append((label, "a temporary file of an upload or an editor"))
            continue
        try:
            info = path.stat()  # follows a link, as reading it would
            # Of the folder itself: its sub-folders are not read, by a link either.
            if path.is_symlink() and path.resolve(strict=True).parent != inside:
                found.rejected.append(
                    (label, "a link to a file outside the folder; copy the file in instead")
                )
                continue
        except OSError as exc:  # a link to nothing, or a loop of links
            found.rejected.append((label, f"cannot be read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(info.st_mode):
            found.skipped.append((label, "a folder (folders in it are not read)"))
            continue
        if not stat.S_ISREG(info.st_mode):
            found.rejected.append((label, f"cannot be read: {_kind(info.st_mode)}, not a file"))
            continue
        if suffix and path.suffix.lower() != suffix:
            found.skipped.append((label, f"not a {suffix} {what}"))
            continue
        age = now - info.st_mtime
        if settle and abs(age) < settle:
            found.skipped.append(
                (
                    label,
                    f"changed {max(age, 0):.0f} s ago, maybe still being written; "
                    f"left for the next run (files are taken {settle:g} s after their last change)",
                )
            )
            continue
        found.files.append(path)
    return found


CHANGED_WHILE_READ = "changed while it was being read; left for the next run"


class ChangedWhileRead(Exception):
    """A file written to while an import read it: what was read may be cut
    short or mixed, so it is not imported this run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(CHANGED_WHILE_READ)


@contextlib.contextmanager
def opened(path: Path) -> Iterator[tuple[IO[bytes], os.stat_result]]:
    """A file of a listing, open for reading, and its ``os.fstat``; raises
    ChangedWhileRead, before a byte is read, when its name no longer leads
    to a file of the folder (a writer of the folder replaced it after the
    listing, by a link to a file elsewhere, a named pipe...), or when it
    changed more recently than ``IMPORT_SETTLE_SECONDS`` (written to again
    after the listing found it settled), so the rules of ``listing`` hold
    at the moment it is read; the next run's listing names what took its
    place. Opened without waiting: a named pipe would hang the run for ever,
    waiting for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as fh:
        before = os.fstat(fd)
        try:
            # The file the name leads to now, without a link: the one open,
            # in the folder itself, or the name changed since it was opened.
            target, now = path, path.lstat()
            if stat.S_ISLNK(now.st_mode):
                target = path.resolve(strict=True)
                now = target.lstat()
        except OSError:
            raise ChangedWhileRead(path) from None
        if (
            not stat.S_ISREG(before.st_mode)
            or (target != path and target.parent != path.parent.resolve())
            or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)
        ):
            raise ChangedWhileRead(path)
        # Written to since the listing found it settled (an upload started
        # over it): a writer that pauses while it is read goes unseen by
        # ``check_unchanged``, so the wait holds now as it did then.
        settle = settings.IMPORT_SETTLE_SECONDS
        if settle and abs(time.time() - before.st_mtime) < settle:
            raise ChangedWhileRead(path)
        yield fh, before


def check_unchanged(path: Path, fd: int, before: os.stat_result) -> None:
    """Raise ChangedWhileRead if the file open as ``fd``, ``before`` being
    its ``os.fstat`` from before the read, has changed since (its size or its
    time of last change), or ``path`` no longer names it (replaced, removed).
    What the settle wait cannot see: a writer that went on after the file
    was listed. No second read: the descriptor and the path are asked."""
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise ChangedWhileRead(path)
    try:
        now = path.stat()
    except OSError:
        raise ChangedWhileRead(path) from None
    if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
        raise ChangedWhileRead(path)
