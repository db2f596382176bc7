"""What a page shows where an image is not there yet: its blurhash decoded to
a tiny PNG, inlined as a ``data:`` URI (the CSP allows ``img-src data:``),
drawn over the dominant colour and stretched to the image's box by CSS.

Decoding a blurhash into 32 pixels across takes a few microseconds and the
result depends on the hash and the shape alone, so it is computed at render
time and kept in a small per-process cache rather than stored.
"""

from __future__ import annotations

import base64
import functools
import io
import warnings

import blurhash

# Pixels along the longer side: enough for the blur the hash carries (at most
# 9 components), about a kilobyte of PNG.
SIDE = 32


def tiny_size(width: int, height: int) -> tuple[int, int]:
    """The placeholder's size: ``SIDE`` along the longer side, the image's shape."""
    width, height = max(1, width), max(1, height)
    if width >= height:
        return SIDE, max(1, round(SIDE * height / width))
    return max(1, round(SIDE * width / height)), SIDE


@functools.lru_cache(maxsize=4096)
def _png_uri(hash_text: str, size: tuple[int, int]) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            img = blurhash.decode(hash_text, size[0], size[1])
    except (ValueError, blurhash.BlurhashDecodeError):
        return ""
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def data_uri(hash_text: str, width: int, height: int) -> str:
    """The blurhash as a ``data:image/png`` URI of the image's shape; empty for
    no hash or one that does not decode."""
    if not hash_text:
        return ""
    return _png_uri(hash_text, tiny_size(width, height))
