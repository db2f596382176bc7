"""Reads of images and their renditions, shaped for pages and the API."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet

from uploads.models import Image, Rendition
from uploads.ondemand import is_on_demand

# Best first: a browser takes the first <source> whose type it supports.
FORMAT_ORDER = ("avif", "webp", "jpeg", "png")


SETTLED = (Image.Status.READY, Image.Status.FAILED)
# Polling starts fast (in-process processing is done in well under a second)
# and backs off to this interval for a busy worker.
WAIT_POLL_MAX_SECONDS = 1.0


def images_wait_settled(ids: Iterable[int], timeout: float) -> dict[int, Image]:
    """The images by id once every one is ready or failed, or once ``timeout``
    seconds have passed (then some may still be pending or processing).

    Processing runs after the upload commits, in a worker, a thread or this
    process, so this polls the database. Call it outside a transaction: rows
    another connection settles stay invisible to an open one.
    """
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while wanted:
        unsettled = Image.objects.filter(pk__in=wanted).exclude(status__in=SETTLED).exists()
        left = deadline - time.monotonic()
        if not unsettled or left <= 0:
            break
        time.sleep(min(delay, left))
        delay = min(delay * 2, WAIT_POLL_MAX_SECONDS)
    return Image.objects.in_bulk(wanted)


def images_with_renditions() -> QuerySet[Image]:
    return Image.objects.prefetch_related(
        Prefetch("renditions", queryset=Rendition.objects.order_by("width", "format"))
    )


# What the apps that use images say the public may see of them (each a
# condition on Image), registered from their AppConfig.ready(): they know
# their own rows (the catalog: whose photo an image is), and they import
# uploads, never the other way.
_PUBLIC_RULES: list[Callable[[], Q]] = []


def image_public_rule_add(rule: Callable[[], Q]) -> None:
    if rule not in _PUBLIC_RULES:
        _PUBLIC_RULES.append(rule)


def images_visible(*, staff: bool = False) -> QuerySet[Image]:
    """The images the API lists and opens: every one for ``staff`` (callers
    who may view images), else those every registered rule lets the public
    see, in the same query."""
    images = images_with_renditions()
    if staff:
        return images
    for rule in _PUBLIC_RULES:
        images = images.filter(rule())
    return images


@dataclass(frozen=True)
class SourceSet:
    format: str
    content_type: str
    srcset: str
    fallback: Rendition


def source_sets(image: Image, *, variant: str = "main") -> list[SourceSet]:
    """The renditions of an image grouped by format, best format first.

    ``main`` is the width ladder (or the single output of icon/supplier
    presets); ``thumb`` the square thumbnail, falling back to the ladder.
    """
    # Prefetched: no query. Renditions made on demand have sizes of their own.
    renditions = [r for r in image.renditions.all() if not is_on_demand(r.name)]
    chosen = [r for r in renditions if (r.name == "thumb") == (variant == "thumb")]
    if not chosen:
        chosen = [r for r in renditions if r.name != "thumb"]
    by_format: dict[str, list[Rendition]] = defaultdict(list)
    for rendition in chosen:
        by_format[rendition.format].append(rendition)
    sets = []
    for fmt in sorted(by_format, key=lambda f: FORMAT_ORDER.index(f) if f in FORMAT_ORDER else 99):
        items = sorted(by_format[fmt], key=lambda r: r.width)
        sets.append(
            SourceSet(
                format=fmt,
                content_type=items[0].content_type,
                srcset=", ".join(f"{r.url} {r.width}w" for r in items),
                fallback=items[-1],
            )
        )
    return sets
