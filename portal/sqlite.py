"""SQLite made to search like PostgreSQL does.

SQLite's LIKE ignores case for ASCII letters only: "александра" did not find
"Александра", nor "FERNÁNDEZ" "Fernández", while the same search on
PostgreSQL (UPPER on both sides) does. Every connection to SQLite gets a LIKE
that folds case across Unicode; Django's contains, icontains, startswith and
the like all use it.
"""

from __future__ import annotations

import functools
import re
from typing import Any


@functools.lru_cache(maxsize=256)
def _pattern(like: str, escape: str | None) -> re.Pattern[str]:
    parts, chars = [], iter(like)
    for char in chars:
        if escape is not None and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def like(pattern: str | None, value: Any, escape: str | None = None) -> bool | None:
    """SQLite's like(pattern, value[, escape]): ``value LIKE pattern``."""
    if pattern is None or value is None:
        return None
    return _pattern(pattern, escape).fullmatch(str(value)) is not None


def unicode_like(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On connection_created."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("like", 2, like, deterministic=True)
        connection.connection.create_function("like", 3, like, deterministic=True)
