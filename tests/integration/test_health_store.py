"""The storage health check against a real S3 server (SeaweedFS): a bucket
that answers passes, one that does not exist fails, named, and the probe is
one read per store, writing and listing nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from portal import health
from tests.servers import S3Server

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def _stores(settings: Any, s3: S3Server, media: str, originals: str) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3.storage_backend(media),
        "originals": s3.storage_backend(originals, querystring_auth=True),
    }


@pytest.fixture
def requests_to_s3(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The S3 operations sent from now on by any client, with their bucket."""
    sent: list[tuple[str, str]] = []
    call = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: Any) -> Any:
        sent.append((operation, params.get("Bucket", "")))
        return call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    return sent


def test_buckets_that_exist_pass_with_one_read_each(
    s3: S3Server, settings: Any, requests_to_s3: list[tuple[str, str]]
) -> None:
    media = s3.create_bucket(f"media-{time.monotonic_ns()}")
    originals = s3.create_bucket(f"originals-{time.monotonic_ns()}")
    _stores(settings, s3, media, originals)

    requests_to_s3.clear()
    check = health.check_storage()
    sent = list(requests_to_s3)

    assert check.ok, check.detail
    assert check.detail == "default: MediaS3Storage, originals: MediaS3Storage"
    assert sent == [("GetObject", media), ("GetObject", originals)]
    assert s3.client().list_objects_v2(Bucket=media).get("KeyCount") == 0  # nothing written


@pytest.mark.parametrize("missing", ["default", "originals"])
def test_a_bucket_that_does_not_exist_fails_the_check_by_name(
    s3: S3Server, settings: Any, missing: str, requests_to_s3: list[tuple[str, str]]
) -> None:
    there = s3.create_bucket(f"there-{time.monotonic_ns()}")
    absent = f"absent-{time.monotonic_ns()}"
    _stores(settings, s3, *((absent, there) if missing == "default" else (there, absent)))

    requests_to_s3.clear()
    check = health.check_storage()
    sent = list(requests_to_s3)

    assert not check.ok
    assert check.detail == f"{missing}: the bucket {absent} does not exist"
    assert check.subject == "Error - The file store is unavailable"
    assert absent not in {bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]}  # not made
    assert {operation for operation, _ in sent} == {"GetObject"}
