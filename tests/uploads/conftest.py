from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


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
