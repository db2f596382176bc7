"""Prometheus metrics of image processing, served at /metrics with the rest.

Processing time and failures are counted where processing runs (the web
process when embedded, the workers with Celery; set PROMETHEUS_MULTIPROC_DIR
to gather several processes). The queue depth is read from the database at
scrape time, so any web process reports the whole fleet's backlog.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db.models import Count, Min
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from uploads.models import Image

PROCESSING_SECONDS = Histogram(
    "portal_image_processing_seconds",
    "Time to make an image's renditions, by preset and outcome.",
    ["preset", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
PROCESSING_FAILURES = Counter(
    "portal_image_processing_failures_total",
    "Images that ended failed, by preset.",
    ["preset"],
)


class QueueDepthCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it, registering would call collect(): a query at start-up.
        yield GaugeMetricFamily("portal_images_waiting", "", labels=["status"])
        yield GaugeMetricFamily("portal_images_oldest_waiting_timestamp_seconds", "")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "portal_images_waiting", "Images not yet processed, by status.", labels=["status"]
        )
        oldest = GaugeMetricFamily(
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


_collector = QueueDepthCollector()


def register() -> None:
    # Registering twice (the app registry reloaded in tests) is a ValueError.
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)


def observe(*, preset: str, outcome: str, seconds: float) -> None:
    PROCESSING_SECONDS.labels(preset=preset, outcome=outcome).observe(seconds)
    if outcome == "failed":
        PROCESSING_FAILURES.labels(preset=preset).inc()
