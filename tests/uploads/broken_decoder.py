"""Run by a decoding child as its main module (test helper, see
decoders_started_from in test_poison.py): the child's decode fails with an
error processing does not name, whose own words give internals away."""

from __future__ import annotations

from typing import Any, NoReturn

from uploads import processing


def _broken(*args: Any, **kwargs: Any) -> NoReturn:
    raise KeyError("/srv/portal/secret-path")


if __name__ == "__mp_main__":
    processing.process = _broken
