from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import ImageFactory
from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client) -> Samples:
    text = client.get("/metrics").content.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no metric {name}{labels}"
    return samples[key]


def finished(image: Image, status: str, *, ago: float, ms: int | None = 1500, after: float = 5) -> None:
    """Leave the row as a worker elsewhere would: processed ``ago`` seconds
    ago, ``after`` seconds after its upload. Nothing in this process sees it."""
    processed_at = timezone.now() - dt.timedelta(seconds=ago)
    Image.objects.filter(pk=image.pk).update(
        status=status,
        processing_ms=ms,
        processed_at=processed_at,
        created_at=processed_at - dt.timedelta(seconds=after),
        updated_at=processed_at,
    )


def uploaded(image: Image, *, ago: float) -> None:
    Image.objects.filter(pk=image.pk).update(created_at=timezone.now() - dt.timedelta(seconds=ago))


def test_the_queue_is_read_from_the_database(client: Client) -> None:
    services.image_upload(file=corpus.png(), original_name="b.png")  # not committed: waits
    samples = scrape(client)
    assert value(samples, "portal_images_waiting", status="pending") == 1
    assert value(samples, "portal_images_waiting", status="processing") == 0
    assert value(samples, "portal_images_oldest_waiting_timestamp_seconds") > 0
    text = client.get("/metrics").content.decode()  # counted since the first scrape
    assert "# TYPE django_http_requests_total_by_method_total counter" in text


def test_processing_done_by_any_process_is_reported_per_preset_and_outcome(client: Client) -> None:
    before = scrape(client)
    assert value(before, "portal_images_processed", preset="icon", outcome="ready") == 0

    finished(ImageFactory(processed=False, preset="icon"), "ready", ago=10, ms=1500)
    finished(ImageFactory(processed=False, preset="icon"), "ready", ago=200, ms=500)
    finished(ImageFactory(processed=False, preset="supplier"), "failed", ago=30, ms=None)
    finished(ImageFactory(processed=False, preset="icon"), "ready", ago=400)  # before the window
    samples = scrape(client)
    assert value(samples, "portal_images_processed", preset="icon", outcome="ready") == 2
    assert value(samples, "portal_images_processing_seconds", preset="icon", outcome="ready") == 2.0
    assert value(samples, "portal_images_processed", preset="supplier", outcome="failed") == 1
    assert value(samples, "portal_images_processed", preset="web", outcome="failed") == 0


def test_uploads_are_reported_once_a_minute_old_with_those_ready_within_it(client: Client) -> None:
    finished(ImageFactory(processed=False), "ready", ago=100, after=10)  # in time
    finished(ImageFactory(processed=False), "ready", ago=20, after=90)  # late
    finished(ImageFactory(processed=False), "failed", ago=100, after=10)  # failed: not ready
    uploaded(ImageFactory(processed=False), ago=120)  # still waiting
    uploaded(ImageFactory(processed=False), ago=30)  # too young to tell
    finished(ImageFactory(processed=False), "ready", ago=400, after=5)  # before the window
    samples = scrape(client)
    assert value(samples, "portal_images_accepted", preset="web") == 4
    assert value(samples, "portal_images_ready_within_60s", preset="web") == 1
    assert value(samples, "portal_images_accepted", preset="icon") == 0


def test_every_figure_is_served_once_in_multiprocess_mode(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """gunicorn's workers share PROMETHEUS_MULTIPROC_DIR: the scrape gathers
    their files, and the figures read from the database go with them."""
    finished(ImageFactory(processed=False), "ready", ago=100, after=10)
    services.image_upload(file=corpus.png(), original_name="b.png")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = client.get("/metrics").content.decode()
    for name in (
        "portal_images_waiting",
        "portal_images_oldest_waiting_timestamp_seconds",
        "portal_images_accepted",
        "portal_images_ready_within_60s",
        "portal_images_processed",
        "portal_images_processing_seconds",
    ):
        assert text.count(f"# TYPE {name} gauge\n") == 1, name
    samples = scrape(client)
    assert value(samples, "portal_images_waiting", status="pending") == 1
    assert value(samples, "portal_images_oldest_waiting_timestamp_seconds") > 0
    assert value(samples, "portal_images_ready_within_60s", preset="web") == 1


def test_every_figure_is_served_once_by_a_single_process(client: Client) -> None:
    text = client.get("/metrics").content.decode()
    assert text.count("# TYPE portal_images_waiting gauge\n") == 1
    assert text.count("# TYPE portal_images_processed gauge\n") == 1
