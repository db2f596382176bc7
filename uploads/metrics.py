"""Prometheus metrics of image processing, served at /metrics with the rest.

Every figure is read from the database at scrape time, so any web process
reports the whole fleet: the queue, and what the workers did, wherever they
ran (no worker serves metrics of its own, and none is lost when a worker
restarts). Processing is reported over a sliding window, as gauges, not as
counters a process keeps: a Prometheus that samples them at least once per
window sees each image in WINDOW / interval samples, so ratios of their sums
over time (the service levels in docs/deploy.md) weigh every image alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db.models import Count, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from uploads.models import Image

# Processing that ended this long ago or less is reported.
WINDOW = dt.timedelta(minutes=5)
# The service level's bound on the time from upload to renditions: uploads
# are reported once they are this old, when whether they met it is known.
READY_WITHIN = dt.timedelta(seconds=60)
OUTCOMES = (Image.Status.READY.value, Image.Status.FAILED.value)


def _family(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class ImageCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it, registering would call collect(): a query at start-up.
        yield _family("portal_images_waiting", "", ["status"])
        yield _family("portal_images_oldest_waiting_timestamp_seconds", "")
        yield _family("portal_images_accepted", "", ["preset"])
        yield _family("portal_images_ready_within_60s", "", ["preset"])
        yield _family("portal_images_processed", "", ["preset", "outcome"])
        yield _family("portal_images_processing_seconds", "", ["preset", "outcome"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        yield from self._queue()
        yield from self._uploads(now)
        yield from self._processed(now)

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        depth = _family("portal_images_waiting", "Images not yet processed, by status.", ["status"])
        oldest = _family(
            "portal_images_oldest_waiting_timestamp_seconds",
            "Creation time of the oldest image still waiting (0 when none).",
        )
        rows = (
            Image.objects.filter(status__in=[Image.Status.PENDING, Image.Status.PROCESSING])
            .values("status")
            .annotate(n=Count("pk"), first=Min("created_at"))
        )
        counts = {Image.Status.PENDING.value: 0, Image.Status.PROCESSING.value: 0}
        first = None
        for row in rows:
            counts[row["status"]] = row["n"]
            first = row["first"] if first is None else min(first, row["first"])
        for status, count in counts.items():
            depth.add_metric([status], count)
        oldest.add_metric([], first.timestamp() if first else 0)
        yield depth
        yield oldest

    def _uploads(self, now: dt.datetime) -> Iterator[GaugeMetricFamily]:
        """The uploads accepted in the window that ended READY_WITHIN ago: all
        of them, and those whose renditions were ready within READY_WITHIN
        (one still waiting, or failed, counts as late)."""
        accepted = _family(
            "portal_images_accepted",
            "Images accepted in the 5 minutes that ended 60 s ago, by preset.",
            ["preset"],
        )
        in_time = _family(
            "portal_images_ready_within_60s",
            "Of portal_images_accepted, those ready within 60 s of their upload, by preset.",
            ["preset"],
        )
        end = now - READY_WITHIN
        rows = (
            Image.objects.filter(created_at__gt=end - WINDOW, created_at__lte=end)
            .values("preset")
            .annotate(
                n=Count("pk"),
                ready=Count(
                    "pk",
                    filter=Q(status=Image.Status.READY, processed_at__lte=F("created_at") + READY_WITHIN),
                ),
            )
        )
        found = {row["preset"]: row for row in rows}
        for preset in _presets(found):
            row = found.get(preset, {"n": 0, "ready": 0})
            accepted.add_metric([preset], row["n"])
            in_time.add_metric([preset], row["ready"])
        yield accepted
        yield in_time

    def _processed(self, now: dt.datetime) -> Iterator[GaugeMetricFamily]:
        """The images whose processing ended in the window, and the time it took."""
        processed = _family(
            "portal_images_processed",
            "Images whose processing ended in the last 5 minutes, by preset and outcome.",
            ["preset", "outcome"],
        )
        seconds = _family(
            "portal_images_processing_seconds",
            "Time spent making the renditions of portal_images_processed "
            "(none counted for an image whose worker died), by preset and outcome.",
            ["preset", "outcome"],
        )
        since = now - WINDOW
        rows = (
            # A row is saved when its processing ends, so updated_at is at
            # least processed_at: the condition on it lets the (status,
            # updated_at) index find the few recent rows.
            Image.objects.filter(status__in=OUTCOMES, updated_at__gt=since, processed_at__gt=since)
            .values("preset", "status")
            .annotate(n=Count("pk"), ms=Sum("processing_ms"))
        )
        found = {(row["preset"], row["status"]): row for row in rows}
        for preset in _presets(p for p, _ in found):
            for outcome in OUTCOMES:
                row = found.get((preset, outcome), {"n": 0, "ms": 0})
                processed.add_metric([preset, outcome], row["n"])
                seconds.add_metric([preset, outcome], (row["ms"] or 0) / 1000)
        yield processed
        yield seconds


def _presets(found: Iterable[str]) -> list[str]:
    """The configured presets, so their series exist before any image uses
    them, and any other an image was made with."""
    return sorted({*settings.IMAGE_PRESETS, *found})


_collector = ImageCollector()


def register(registry: CollectorRegistry = REGISTRY) -> None:
    """Serve these figures from the registry (the default one, where the app
    puts them at start-up, or the one a multiprocess scrape builds)."""
    # Registering twice (the app registry reloaded in tests) is a ValueError.
    with contextlib.suppress(ValueError):
        registry.register(_collector)
