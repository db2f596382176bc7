"""The orphan sweep at scale on a real S3 server: storage is listed in pages
and compared with the database in batches, never a request per object."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.files.storage import storages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.servers import S3Server
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
