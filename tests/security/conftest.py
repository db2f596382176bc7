"""What an anonymous visitor can reach, and checks that nothing of it is private."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from PIL import Image as PILImage

URL_IN_HTML = re.compile(r"""(?:href|src|action|data-src)\s*=\s*["']([^"']+)["']""")
SRCSET_IN_HTML = re.compile(r"""srcset\s*=\s*["']([^"']+)["']""")


def urls_in(response: Any) -> set[str]:
    """Every URL a client could follow from a page or a JSON answer."""
    content_type = response.get("Content-Type", "")
    text = b"".join(response.streaming_content) if response.streaming else response.content
    body = text.decode("utf-8", "replace")
    found: set[str] = set()
    if "json" in content_type:
        found |= set(_strings(json.loads(body)))
    elif "html" in content_type:
        found |= set(URL_IN_HTML.findall(body))
        for srcset in SRCSET_IN_HTML.findall(body):
            found |= {part.strip().split(" ")[0] for part in srcset.split(",") if part.strip()}
    return {u for u in found if u.startswith(("/", "http://testserver"))}


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        for part in value.split(","):  # srcset strings
            yield part.strip().split(" ")[0]
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def has_gps_or_camera(data: bytes) -> bool:
    """Whether an image file carries a GPS position or camera EXIF."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            return bool(exif.get_ifd(0x8825)) or 0x010F in exif or 0x0110 in exif
    except (OSError, SyntaxError, ValueError):
        return False
