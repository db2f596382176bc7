"""Where image files live, and under which keys.

Keys are made by the server from the content's hash, so an object's bytes never
change once written: they are cached for a year as immutable, and writing the
same content twice finds the object already there instead of overwriting it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from storages.backends.s3 import S3Storage

IMMUTABLE = "public, max-age=31536000, immutable"
# What a storage that is briefly away raises (local disk or S3).
UNAVAILABLE: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)

mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("image/avif", ".avif")

EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tif",
    "BMP": "bmp",
}


def original_key(sha256: str, image_format: str) -> str:
    ext = EXTENSIONS.get(image_format.upper(), "bin")
    return f"originals/{sha256[:2]}/{sha256}.{ext}"


def rendition_key(data: bytes, extension: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"renditions/{digest[:2]}/{digest}.{extension}"


def put(key: str, data: bytes) -> str:
    """Write the object unless it is there already (same key, same bytes)."""
    if default_storage.exists(key):
        return key
    return default_storage.save(key, ContentFile(data))


def delete_unreferenced(keys: set[str]) -> list[str]:
    """Delete the objects that no image or rendition row points at any more."""
    from uploads.models import Image, Rendition

    if not keys:
        return []
    held = set(Image.objects.filter(file__in=keys).values_list("file", flat=True))
    held |= set(Rendition.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True))
    gone = sorted(keys - held)
    for key in gone:
        default_storage.delete(key)
    return gone


def _walk(prefix: str) -> list[str]:
    try:
        folders, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return []
    keys = [f"{prefix}/{name}" for name in files]
    for folder in folders:
        keys.extend(_walk(f"{prefix}/{folder}"))
    return keys


def sweep_orphans(*, grace_seconds: int) -> list[str]:
    """Delete objects no row points at, older than the grace period.

    Files are written before their rows commit, so a transaction rolled back
    by its caller, or a worker killed between writing renditions and saving
    them, leaves objects behind; this finds them. The grace period spares
    uploads still in flight.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=grace_seconds)
    candidates = set()
    for key in _walk("originals") + _walk("renditions"):
        if default_storage.get_modified_time(key) <= cutoff:
            candidates.add(key)
    return delete_unreferenced(candidates)


class MediaS3Storage(S3Storage):
    """S3 storage that marks content-addressed objects as immutable."""

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params = super().get_object_parameters(name)
        if name.startswith(("originals/", "renditions/")):
            params.setdefault("CacheControl", IMMUTABLE)
        content_type, _ = mimetypes.guess_type(name)
        if content_type:
            params.setdefault("ContentType", content_type)
        return params
