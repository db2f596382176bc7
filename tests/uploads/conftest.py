from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from uploads import sandbox, storage, tasks
from uploads.models import Image, ReplacedObject


@pytest.fixture
def media_files(settings: Any) -> Any:
    """The set of files now in the media and private folders (their keys)."""

    def files() -> set[str]:
        found = set()
        for alias in ("default", "originals"):
            root = Path(settings.STORAGES[alias]["OPTIONS"]["location"])
            if root.exists():
                found |= {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        return found

    return files


@pytest.fixture
def sweep_after() -> Callable[[float], list[str]]:
    """``sweep_after(seconds)``: the orphan sweep as it would run that long
    after the renditions were replaced (every object past its upload grace)."""

    def sweep(seconds: float) -> list[str]:
        for row in ReplacedObject.objects.all():
            row.replaced_at -= dt.timedelta(seconds=seconds)
            row.save(update_fields=["replaced_at"])
        return storage.sweep_orphans(grace_seconds=0)

    return sweep


class DiskFullStorage(FileSystemStorage):
    """Local files on a disk that fills up halfway through each write (while
    ``full``): Django's own write path runs, and the disk answers ENOSPC."""

    full = True

    def _save(self, name: str, content: Any) -> str:
        if not type(self).full:
            return super()._save(name, content)
        return super()._save(name, _HalfWritten(content.read()))


class _HalfWritten(ContentFile):
    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        data = self.read()
        yield data[: len(data) // 2]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@contextlib.contextmanager
def on_a_disk_that_fills_up(settings: Any, alias: str) -> Iterator[type[DiskFullStorage]]:
    """The store ``alias`` (``default``: renditions; ``originals``) on
    DiskFullStorage, its disk not full until the caller says so."""
    settings.STORAGES = {
        **settings.STORAGES,
        alias: {**settings.STORAGES[alias], "BACKEND": f"{__name__}.DiskFullStorage"},
    }
    DiskFullStorage.full = False
    try:
        yield DiskFullStorage
    finally:
        DiskFullStorage.full = False


@pytest.fixture
def renditions_disk(settings: Any) -> Iterator[type[DiskFullStorage]]:
    """The renditions' store on a disk that fills up once the test sets
    ``renditions_disk.full``."""
    with on_a_disk_that_fills_up(settings, "default") as disk:
        yield disk


class WorkerRuns:
    """Runs of the orphan sweep's task as a worker makes them over a store too
    large for one: each batch takes ``batch_seconds`` (or the next of
    ``seconds``, while there are some) of a clock that moves only when told
    to, and one that would end past the soft time limit is cut off by it
    before it deletes anything, as Celery would cut it off."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, limit: float, batch_seconds: float) -> None:
        self.now = 0.0
        self.started = 0.0
        self.limit = limit
        self.batch_seconds = batch_seconds
        self.seconds: list[float] = []
        real = storage.delete_unreferenced

        def batch(keys: set[str], **kwargs: Any) -> list[str]:
            self.now += self.seconds.pop(0) if self.seconds else self.batch_seconds
            if self.now - self.started > self.limit:
                raise SoftTimeLimitExceeded()
            return real(keys, **kwargs)

        monkeypatch.setattr(storage, "time", self)
        monkeypatch.setattr(storage, "delete_unreferenced", batch)

    def monotonic(self) -> float:
        return self.now

    def run(self) -> int | None:
        """One run: how many objects it deleted, or None when it failed."""
        self.started = self.now
        try:
            return int(tasks.sweep_orphan_files())
        except SoftTimeLimitExceeded:
            return None


@pytest.fixture
def no_process_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine is out of processes: each fork fails with EAGAIN."""

    def refused(self: Any) -> None:
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(type(sandbox._context.Process(target=print)), "start", refused)
    monkeypatch.setattr(sandbox, "FORK_SERVER_GONE_WAIT_SECONDS", 0)


def replace_file(image: Image, data: bytes, how: str) -> None:
    """Give the image another original by a save of its own, as code outside
    the services might (a shell, an admin form), in one of the REPLACING ways."""
    if how == "saved through the field":
        image.file.save("replacement.jpg", ContentFile(data))
        return
    image.file = ContentFile(data, name="replacement.jpg")  # type: ignore[assignment]
    if how == "assigned":
        image.save()
    else:
        image.save(update_fields=["file"])


REPLACING = ["assigned", "saved through the field", "assigned and saved alone"]
