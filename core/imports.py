"""Where the admin keeps an import file between its preview and its
confirmation, which another web server of the fleet may answer.

django-import-export's default is a file in the server's own temp folder:
another server cannot read it, and a preview never confirmed leaves people's
data there for good. Here the file goes to the cache when the cache is shared
(Redis: every server reads it, and it expires); with a cache of each process
(the embedded set-up, one machine) to a private folder that every worker of
the machine reads, swept of files past their time by each preview and by the
embedded set-up's sweeper. A preview that asks for no confirmation (its file
refused) keeps no file at all (core.admin_import).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from import_export.tmp_storages import BaseStorage

logger = logging.getLogger(__name__)

CACHE_PREFIX = "import-file:"
# Names this storage makes: a client sends them back in the confirmation, so
# nothing else (a path, another cache key) may be read or deleted through them.
NAME = re.compile(r"[0-9a-f]{32}")
PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


class ImportExpired(Exception):
    """The file of an import is gone: it expired or was imported already."""


def _shared_cache() -> bool:
    return settings.CACHES["default"]["BACKEND"] not in PROCESS_CACHES


def _folder() -> Path:
    return Path(settings.IMPORT_FILES_DIR)


def _sweep(folder: Path, lifetime: float) -> int:
    """Delete the files of imports never confirmed; how many."""
    cutoff = time.time() - lifetime
    swept = 0
    for path in folder.iterdir():
        try:
            if NAME.fullmatch(path.name) and path.stat().st_mtime < cutoff:
                path.unlink()
                swept += 1
        except FileNotFoundError:
            pass  # swept by another worker meanwhile
    return swept


def sweep_expired() -> int:
    """Delete the files of imports previewed and never confirmed, past their
    lifetime; how many. Each preview sweeps them too, but a last preview
    never confirmed would wait for another import: the embedded set-up's
    sweeper calls this every round. (The shared cache expires its own.)

    A folder that cannot be read is told in a line each round, not a
    traceback: nothing else is wrong, and the rest of the round is done."""
    folder = _folder()
    if _shared_cache():
        return 0
    try:
        return _sweep(folder, settings.IMPORT_FILES_SECONDS) if folder.is_dir() else 0
    except OSError as exc:
        logger.warning("cannot sweep the import files in %s: %s", folder, exc.strerror or exc)
        return 0


class ImportFileStorage(BaseStorage):
    def save(self, data: bytes) -> None:
        self.name = uuid.uuid4().hex
        lifetime = settings.IMPORT_FILES_SECONDS
        if _shared_cache():
            cache.set(CACHE_PREFIX + self.name, data, lifetime)
            return
        folder = _folder()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sweep(folder, lifetime)
        path = folder / self.name
        path.touch(mode=0o600)
        path.write_bytes(data)

    def read(self) -> bytes | str:
        data = self._read_bytes()
        if data is None:
            raise ImportExpired(self.name)
        return data if "b" in self.read_mode else data.decode(self.encoding or "utf-8")

    def _read_bytes(self) -> bytes | None:
        if not NAME.fullmatch(self.name or ""):
            return None
        if _shared_cache():
            data: bytes | None = cache.get(CACHE_PREFIX + self.name)
            return data
        path = _folder() / self.name
        try:
            if path.stat().st_mtime < time.time() - settings.IMPORT_FILES_SECONDS:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def remove(self) -> None:
        if not NAME.fullmatch(self.name or ""):
            return
        if _shared_cache():
            cache.delete(CACHE_PREFIX + self.name)
        else:
            (_folder() / self.name).unlink(missing_ok=True)
