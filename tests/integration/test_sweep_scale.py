"""The orphan sweep at scale on a real S3 server: storage is listed in pages
and compared with the database in batches, never a request per object, and a
bucket too large for one run is gone over a stretch a run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import caches
from django.core.files.storage import storages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.servers import S3Server
from tests.uploads.conftest import WorkerRuns
from uploads import storage
from uploads.models import Image, Rendition

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db]

OBJECTS = 10_000
KEPT = 1_500


@pytest.fixture
def bucket(settings: Any) -> Iterator[S3Server]:
    with S3Server() as s3:
        name = s3.create_bucket("sweep-scale")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": s3.storage_backend(name),
            "originals": s3.storage_backend(name, querystring_auth=True),
        }
        yield s3


def _key(n: int) -> str:
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    return f"renditions/{digest[:2]}/{digest}.webp"


def test_sweeping_ten_thousand_objects_takes_pages_and_batches_not_a_request_each(bucket: S3Server) -> None:
    client = bucket.client()
    name = storages["default"].bucket_name
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: client.put_object(Bucket=name, Key=_key(n), Body=b"x"), range(OBJECTS)))
    image = Image.objects.create(
        file="originals/00/kept.jpg", sha256="0" * 64, format="JPEG", width=1, height=1, bytes=1
    )
    Rendition.objects.bulk_create(
        Rendition(image=image, name=f"r{n}", format="webp", width=1, height=1, bytes=1, storage_key=_key(n))
        for n in range(KEPT)
    )

    requests: list[str] = []
    for alias in ("default", "originals"):
        events = storages[alias].connection.meta.client.meta.events
        events.register("before-send.s3", lambda request, **kw: requests.append(request.method))
    with CaptureQueriesContext(connection) as queries:
        gone = storage.sweep_orphans(grace_seconds=0)

    assert len(gone) == OBJECTS - KEPT
    assert set(gone).isdisjoint(_key(n) for n in range(KEPT))
    remaining = {obj.key for obj in storages["default"].bucket.objects.all()}
    assert remaining == {_key(n) for n in range(KEPT)}
    # 10 pages of listing, 9 batched deletes, and the empty originals listing.
    assert len(requests) <= 25, f"{len(requests)} requests: {sorted(set(requests))}"
    assert len(queries) <= 2 * (OBJECTS // storage.BATCH) + 4


def test_runs_go_over_a_bucket_a_stretch_each_from_where_the_last_stopped(
    bucket: S3Server, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMAGE_ORPHAN_GRACE_SECONDS = 0
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120  # a budget of 30 s a run
    client = bucket.client()
    name = storages["default"].bucket_name
    last = f"renditions/ff/{'f' * 64}.webp"
    orphans = [f"originals/{_key(n)[11:-5]}.jpg" for n in range(20)] + [_key(n) for n in range(20)] + [last]
    live = [_key(n) for n in range(100, 160)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=b"x"), orphans + live))
    image = Image.objects.create(
        file="originals/00/kept.jpg", sha256="0" * 64, format="JPEG", width=1, height=1, bytes=1
    )
    Rendition.objects.bulk_create(
        Rendition(image=image, name=f"r{n}", format="webp", width=1, height=1, bytes=1, storage_key=key)
        for n, key in enumerate(live)
    )
    starts: list[str | None] = []
    for alias in ("default", "originals"):
        events = storages[alias].connection.meta.client.meta.events
        events.register(
            "before-parameter-build.s3.ListObjectsV2",
            lambda params, **kw: starts.append(params.get("StartAfter")),
        )
    monkeypatch.setattr(storage, "BATCH", 10)
    # Three batches of 40 s fill the worker's 120 s: runs that each began
    # from the first key would all be cut off among the live renditions.
    runs = WorkerRuns(monkeypatch, limit=120, batch_seconds=40)
    done, positions = [], []
    for _ in range(20):
        done.append(runs.run())
        positions.append(caches["shared"].get(storage.SWEEP_POSITION_KEY))
        if positions[-1] is None:
            break  # the run that reached the last key

    assert None not in done, f"runs cut off: {done}"
    assert sum(n or 0 for n in done) == len(orphans)
    remaining = {obj.key for obj in storages["default"].bucket.objects.all()}
    assert remaining == set(live)
    # Each run asked the bucket for the keys after where the last one stopped.
    assert [start for start in starts if start is not None] == [p for p in positions[:-1] if p]
    # The next run starts from the first key again.
    client.put_object(Bucket=name, Key="originals/00/0.jpg", Body=b"x")
    assert runs.run() == 1
    assert {obj.key for obj in storages["default"].bucket.objects.all()} == set(live)
