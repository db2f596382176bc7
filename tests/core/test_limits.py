"""The limits counted while an upload streams in (core.limits)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from core.limits import RequestTooLarge, StreamingLimitHandler


def _handler(settings: Any, *, file_limit: int, body_limit: int) -> StreamingLimitHandler:
    settings.IMAGE_MAX_BYTES = file_limit
    request = RequestFactory().post("/")
    request.max_body_bytes = body_limit  # type: ignore[attr-defined]
    return StreamingLimitHandler(request)


def _stream(handler: StreamingLimitHandler, name: str, size: int) -> None:
    handler.new_file("image", name, "image/jpeg", size)
    handler.receive_data_chunk(b"x" * size, 0)


def test_a_file_of_the_file_limit_and_a_body_of_the_body_limit_are_taken(settings: Any) -> None:
    _stream(_handler(settings, file_limit=100, body_limit=10_000), "a.jpg", 100)
    _stream(_handler(settings, file_limit=10_000, body_limit=100), "a.jpg", 100)


def test_a_byte_past_either_limit_is_refused(settings: Any) -> None:
    with pytest.raises(
        RequestTooLarge, match=r"The file 'a\.jpg' is larger than the limit; the limit is 100 bytes"
    ):
        _stream(_handler(settings, file_limit=100, body_limit=10_000), "a.jpg", 101)
    with pytest.raises(
        RequestTooLarge, match=r"The request body is larger than the limit; the limit is 100 bytes"
    ):
        _stream(_handler(settings, file_limit=10_000, body_limit=100), "a.jpg", 101)


def test_each_file_of_a_body_is_held_to_the_file_limit_on_its_own(settings: Any) -> None:
    """Two files of 60 bytes under a file limit of 100: neither is over it,
    though together they are."""
    handler = _handler(settings, file_limit=100, body_limit=10_000)
    _stream(handler, "a.jpg", 60)
    _stream(handler, "b.jpg", 60)
