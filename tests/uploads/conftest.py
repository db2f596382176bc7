from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from uploads import storage
from uploads.models import ReplacedObject


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
