"""Images read as rows, for the API's lists and details.

A page of 50 images with ten renditions each is 550 model instances and as
many serializer calls; read with ``values()`` it is two queries and plain
dicts. What the rows become is exactly what ``uploads.api``'s serializers
make of the same images (the tests compare them): the same source sets
(``selectors.source_sets``), the same URLs.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from django.core.files.storage import Storage, storages

from uploads import ondemand, processing, selectors
from uploads.models import Image, Rendition

# What an image summary (a person's photo, a product's picture) shows.
SUMMARY_FIELDS = ("id", "status", "width", "height", "alt", "placeholder", "dominant_color")
# What a full image shows, with what its focal point is made of.
IMAGE_FIELDS = (
    "id", "title", "alt", "original_name", "preset", "status", "error", "sha256", "format", "width",
    "height", "frames", "bytes", "placeholder", "dominant_color", "processing_ms", "focal_x",
    "focal_y", "focal_radius", "focal_auto_x", "focal_auto_y", "created_at", "processed_at",
)  # fmt: skip
# What rendition_rows reads, in this order (RenditionRow unpacks it).
_RENDITION_FIELDS = ("name", "format", "width", "height", "bytes", "storage_key", "image_id")
_READY = Image.Status.READY.value
# Each image's renditions, as rendition_rows reads them.
RenditionsByImage = dict[int, list[tuple[Any, ...]]]


class RenditionRow:
    """A rendition as ``source_sets`` and the API read it, from a ``values_list()``
    row (see ``rendition_rows``); its URL is made when first asked for."""

    __slots__ = ("_url", "_urls", "bytes", "format", "height", "key", "name", "width")

    def __init__(self, row: tuple[Any, ...], urls: Callable[[str], str]) -> None:
        self.name, self.format, self.width, self.height, self.bytes, self.key = row[:6]
        self._urls = urls
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._urls(self.key)
        return self._url

    @property
    def content_type(self) -> str:
        return processing.content_type(self.format)


class _RenditionSet:
    """Stands in for ``image.renditions`` (prefetched) where ``source_sets`` reads it."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[RenditionRow]) -> None:
        self.rows = rows

    def all(self) -> list[RenditionRow]:
        return self.rows


class _ImageRenditions:
    __slots__ = ("renditions",)

    def __init__(self, rows: list[RenditionRow]) -> None:
        self.renditions = _RenditionSet(rows)


# --- URLs ---------------------------------------------------------------------

_PROBES = ("renditions/00/probe.webp", "renditions/ff/other-probe.jpg")
# Keys the storage would not escape: the content-addressed ones it makes.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._-]*\Z")
_prefixes: weakref.WeakKeyDictionary[Storage, str | None] = weakref.WeakKeyDictionary()


def _url_prefix(storage: Storage) -> str | None:
    """The base every plain key's URL starts with, if the storage's URLs are
    base + key (local files, a bucket without signed URLs, a CDN domain):
    then a page's 500 URLs cost 500 concatenations instead of 500 calls into
    boto3. None for storages that sign or shard their URLs."""
    if storage in _prefixes:
        return _prefixes[storage]
    prefix: str | None = None
    urls = [storage.url(probe) for probe in _PROBES]
    if all(url.endswith(probe) and "?" not in url for url, probe in zip(urls, _PROBES, strict=True)):
        bases = {url[: -len(probe)] for url, probe in zip(urls, _PROBES, strict=True)}
        prefix = bases.pop() if len(bases) == 1 else None
    _prefixes[storage] = prefix
    return prefix


def rendition_url_maker() -> Callable[[str], str]:
    """``key -> URL`` as ``Rendition.url`` gives it, for the storage of now."""
    storage = storages["default"]
    prefix = _url_prefix(storage)
    if prefix is None:
        return storage.url

    def url(key: str) -> str:
        return prefix + key if _PLAIN_KEY.match(key) else storage.url(key)

    return url


# --- Reads --------------------------------------------------------------------


def rendition_rows(image_ids: Iterable[int | None]) -> RenditionsByImage:
    """The renditions of these images, one query, in the order the API lists them:
    ``(name, format, width, height, bytes, storage_key, image_id)`` per rendition."""
    wanted = {pk for pk in image_ids if pk is not None}
    by_image: RenditionsByImage = {pk: [] for pk in wanted}
    if not wanted:
        return by_image
    rows = (
        Rendition.objects.filter(image_id__in=wanted)
        .order_by("width", "format")
        .values_list(*_RENDITION_FIELDS)
    )
    for row in rows:
        by_image[row[6]].append(row)
    return by_image


class ImageRows:
    """Builds the API's image representations from rows, for one response."""

    def __init__(self, renditions: RenditionsByImage) -> None:
        self.renditions = renditions
        self.urls = rendition_url_maker()

    def _sources(self, image: dict[str, Any]) -> tuple[str | None, str]:
        """``src`` and ``srcset``: the JPEG (else the first format) width ladder."""
        if image["status"] != _READY:
            return None, ""
        rows, urls = self.renditions.get(image["id"], []), self.urls
        # The JPEG ladder is the same whatever else the image has: grouping
        # only the JPEG renditions finds it with less work, when there is one.
        jpeg = [RenditionRow(row, urls) for row in rows if row[1] == "jpeg"]
        sets = selectors.source_sets(cast(Image, _ImageRenditions(jpeg))) if jpeg else []
        chosen = next((s for s in sets if s.format == "jpeg"), None)
        if chosen is None:
            every = [RenditionRow(row, urls) for row in rows]
            sets = selectors.source_sets(cast(Image, _ImageRenditions(every)))
            chosen = next((s for s in sets if s.format == "jpeg"), sets[0] if sets else None)
        if chosen is None:
            return None, ""
        return chosen.fallback.url, chosen.srcset

    def summary(self, image: dict[str, Any]) -> dict[str, Any]:
        """What ``ImageSummarySerializer`` makes of this image."""
        src, srcset = self._sources(image)
        return {**{name: image[name] for name in SUMMARY_FIELDS}, "src": src, "srcset": srcset}

    def summary_of(self, row: dict[str, Any], relation: str) -> dict[str, Any] | None:
        """The summary of the image joined as ``<relation>__*`` columns, or None."""
        if row[f"{relation}__id"] is None:
            return None
        return self.summary({name: row[f"{relation}__{name}"] for name in SUMMARY_FIELDS})

    def full(
        self,
        image: dict[str, Any],
        *,
        private: bool,
        original_url: Callable[[int], str],
        datetime_text: Callable[[Any], Any],
    ) -> dict[str, Any]:
        """What ``ImageSerializer`` makes of this image."""
        src, srcset = self._sources(image)
        pk, urls = image["id"], self.urls
        return {
            "id": pk,
            "title": image["title"],
            "alt": image["alt"],
            "original_name": image["original_name"],
            "preset": image["preset"],
            "status": image["status"],
            "error": image["error"] if private else None,
            "sha256": image["sha256"] if private else None,
            "format": image["format"],
            "width": image["width"],
            "height": image["height"],
            "frames": image["frames"],
            "bytes": image["bytes"],
            "placeholder": image["placeholder"],
            "dominant_color": image["dominant_color"],
            "processing_ms": image["processing_ms"],
            "focal_point": focal_point(image),
            "src": src,
            "srcset": srcset,
            # (name, format, width, height, bytes, storage_key): see rendition_rows.
            "renditions": [
                {
                    "name": r[0],
                    "format": r[1],
                    "width": r[2],
                    "height": r[3],
                    "bytes": r[4],
                    "url": urls(r[5]),
                }
                # Those of an earlier run no longer served are not listed; see ImageSerializer.
                for r in self.renditions.get(pk, [])
                if ondemand.listed(image["status"], r[0])
            ],
            "original": original_url(pk) if private else None,
            "created_at": datetime_text(image["created_at"]),
            "processed_at": datetime_text(image["processed_at"]),
        }


def focal_point(image: dict[str, Any]) -> dict[str, Any] | None:
    """Staff's focal point, else the automatic estimate, else none (as ``focal_point_data``)."""
    if image["focal_x"] is not None and image["focal_y"] is not None:
        return {
            "x": image["focal_x"],
            "y": image["focal_y"],
            "radius": image["focal_radius"],
            "kind": "manual",
        }
    if image["focal_auto_x"] is not None and image["focal_auto_y"] is not None:
        return {"x": image["focal_auto_x"], "y": image["focal_auto_y"], "radius": None, "kind": "auto"}
    return None


def summary_fields(relation: str) -> Sequence[str]:
    """The ``values()`` columns of an image summary joined through ``relation``."""
    return tuple(f"{relation}__{name}" for name in SUMMARY_FIELDS)
