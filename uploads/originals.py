"""The private store of originals, as the model field holds it.

A module of its own so that the model and the storage helpers can both
import it without importing each other.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages
from django.utils.functional import LazyObject

ORIGINALS = "originals"


class _OriginalsStorage(LazyObject):
    """``STORAGES["originals"]``, looked up on each use so that a change of
    settings (tests) is seen by the model field that holds it."""

    def _setup(self) -> None:
        self._wrapped = storages[ORIGINALS]

    def __getattr__(self, name: str) -> Any:
        return getattr(storages[ORIGINALS], name)


originals_storage: Storage = _OriginalsStorage()  # type: ignore[assignment]


def get_originals_storage() -> Storage:
    """The storage of ``Image.file`` (a callable, so migrations name it)."""
    return originals_storage
