from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = pytest.mark.django_db


def metric(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no metric {prefix}"
    return float(lines[0].rsplit(" ", 1)[1])


def test_metrics_report_processing_time_failures_and_queue_depth(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    before = client.get("/metrics").content.decode()
    ready_before = (
        metric(before, 'portal_image_processing_seconds_count{outcome="ready",preset="icon"}')
        if 'outcome="ready",preset="icon"' in before
        else 0
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.image_upload(file=corpus.jpeg(), original_name="a.jpg", preset="icon")
    services.image_upload(file=corpus.png(), original_name="b.png")  # not committed: waits
    failed = services.image_upload(file=corpus.bmp(), original_name="c.bmp", preset="supplier")
    services.image_mark_failed(image_id=failed.pk, reason="test")
    text = client.get("/metrics").content.decode()
    assert (
        metric(text, 'portal_image_processing_seconds_count{outcome="ready",preset="icon"}')
        == ready_before + 1
    )
    assert metric(text, 'portal_image_processing_failures_total{preset="supplier"}') >= 1
    assert (
        metric(text, 'portal_images_waiting{status="pending"}')
        == Image.objects.filter(status="pending").count()
    )
    assert metric(text, "portal_images_oldest_waiting_timestamp_seconds") > 0
    assert "django_http_requests_total_by_method_total" in text
