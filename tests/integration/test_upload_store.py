"""An upload's original on a real S3 server (SeaweedFS): one request stores it,
nothing already there is ever overwritten, the bucket checks the bytes
against their hash, identical uploads share one object, and a row that cannot
be written takes its object with it."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError
from rest_framework.test import APIClient

from tests.servers import S3Server
from tests.uploads import corpus
from uploads import services, storage
from uploads.models import Image

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server, settings: Any) -> str:
    """Originals and renditions in a bucket of their own, as production stores them."""
    name = s3.create_bucket(f"store-{time.monotonic_ns()}")
    backend = s3.storage_backend(name)
    settings.STORAGES = {**settings.STORAGES, "default": backend, "originals": backend}
    return name


@pytest.fixture
def requests_to_bucket(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The S3 operations sent from now on by any client on any thread, by
    name (each still goes to the server)."""
    sent: list[str] = []
    call = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: Any) -> Any:
        sent.append(operation)
        return call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    return sent


def _body(s3: S3Server, bucket: str, key: str) -> bytes:
    body: bytes = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _keys(s3: S3Server, bucket: str) -> set[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"] for item in listed}


@pytest.mark.django_db
def test_an_upload_stores_its_original_with_one_put_and_nothing_else(
    s3: S3Server, bucket: str, requests_to_bucket: list[str], token_client: APIClient
) -> None:
    data = corpus.photo_jpeg(640, 480)
    response = token_client.post(
        "/api/v1/images/", {"file": SimpleUploadedFile("one.jpg", data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert requests_to_bucket == ["PutObject"]  # no HEAD, no multipart dance
    key = Image.objects.get().file.name
    assert _body(s3, bucket, key) == data


def test_a_key_already_taken_is_never_overwritten(s3: S3Server, bucket: str) -> None:
    key = "renditions/00/taken.webp"
    assert storage.put(key, b"first") == key
    assert storage.put(key, b"second") == key
    assert _body(s3, bucket, key) == b"first"


def _conflicting_puts(monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """The first ``count`` PutObjects are answered as while another request
    writes the same key (409 ConditionalRequestConflict), without reaching
    the bucket; the S3 operations sent are recorded by name."""
    sent: list[str] = []
    call = BaseClient._make_api_call

    def conflicting(client: BaseClient, operation: str, params: Any) -> Any:
        sent.append(operation)
        if operation == "PutObject" and sent.count("PutObject") <= count:
            error = {
                "Error": {"Code": "ConditionalRequestConflict", "Message": "a write of the key is under way"}
            }
            raise ClientError(error, operation)  # type: ignore[arg-type]
        return call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", conflicting)
    return sent


def test_a_put_that_meets_a_write_of_its_key_under_way_asks_again_once_it_is_settled(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _conflicting_puts(monkeypatch, 1)
    key = "renditions/00/contended.webp"
    assert storage.put(key, b"bytes") == key
    assert sent == ["PutObject", "PutObject"]
    assert _body(s3, bucket, key) == b"bytes"


def test_a_put_that_meets_a_write_of_its_key_under_way_twice_fails_saying_so(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _conflicting_puts(monkeypatch, 2)
    with pytest.raises(ClientError, match="ConditionalRequestConflict"):
        storage.put("renditions/00/contended.webp", b"bytes")
    assert sent == ["PutObject", "PutObject"]
    assert _keys(s3, bucket) == set()


def test_an_object_is_sent_with_its_format_s_type_on_a_machine_whose_list_of_types_lacks_it(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine (no /etc/mime.types) knows no WebP or AVIF: the type
    comes from the formats renditions are stored in, not from that list (a
    bucket serves an object with the type it was sent with)."""
    monkeypatch.setattr(mimetypes, "guess_type", lambda *args, **kwargs: (None, None))
    sent: dict[str, str] = {}
    call = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: Any) -> Any:
        if operation == "PutObject":
            sent[params["Key"]] = params.get("ContentType", "")
        return call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    for key in ("renditions/00/typed.webp", "renditions/00/typed.avif", "originals/00/typed.jpg"):
        storage.put(key, b"bytes")
    assert sent == {
        "renditions/00/typed.webp": "image/webp",
        "renditions/00/typed.avif": "image/avif",
        "originals/00/typed.jpg": "image/jpeg",
    }


def test_the_bucket_refuses_bytes_that_do_not_match_their_hash(s3: S3Server, bucket: str) -> None:
    data = corpus.jpeg()
    wrong = hashlib.sha256(data + b"altered").hexdigest()
    with pytest.raises(ClientError, match="BadDigest"):
        storage.put("originals/00/altered.jpg", data, sha256=wrong)
    assert _keys(s3, bucket) == set()


@pytest.mark.django_db
def test_identical_uploads_share_one_object_written_once(
    s3: S3Server, bucket: str, requests_to_bucket: list[str]
) -> None:
    data = corpus.photo_jpeg(500, 400)
    first = services.image_upload(file=data, original_name="one.jpg")
    stored = s3.client().head_object(Bucket=bucket, Key=first.file.name)
    requests_to_bucket.clear()
    second = services.image_upload(file=data, original_name="two.jpg")
    assert requests_to_bucket == ["PutObject"]  # refused as already there, with no HEAD first
    assert second.file.name == first.file.name
    assert s3.client().head_object(Bucket=bucket, Key=first.file.name)["ETag"] == stored["ETag"]
    assert {k for k in _keys(s3, bucket) if k.startswith("originals/")} == {first.file.name}


@pytest.mark.django_db(transaction=True)
def test_a_row_that_cannot_be_written_takes_its_object_with_it(s3: S3Server, bucket: str) -> None:
    gone = User.objects.create_user("gone")
    User.objects.filter(pk=gone.pk).delete()  # the instance still says it exists
    with pytest.raises(IntegrityError):
        services.image_upload(file=corpus.photo_jpeg(300, 200), original_name="late.jpg", user=gone)
    assert Image.objects.count() == 0
    assert _keys(s3, bucket) == set()


def test_the_bytes_are_hashed_once_and_the_checksum_signed_in_their_place(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over plain HTTP botocore would hash a signed body again; the put sends
    the body unsigned with its checksum in a signed header instead."""
    signed: list[tuple[str, str, list[str]]] = []
    sign = S3SigV4Auth.add_auth

    def recorded(auth: S3SigV4Auth, request: Any) -> None:
        sign(auth, request)
        headers = request.headers["Authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0]
        signed.append((request.method, request.headers["X-Amz-Content-SHA256"], headers.split(";")))

    monkeypatch.setattr(S3SigV4Auth, "add_auth", recorded)
    data = corpus.jpeg()
    storage.put("originals/00/once.jpg", data, sha256=hashlib.sha256(data).hexdigest())
    [(method, payload, headers)] = signed
    assert (method, payload) == ("PUT", "UNSIGNED-PAYLOAD")
    assert "x-amz-checksum-sha256" in headers
    assert _body(s3, bucket, "originals/00/once.jpg") == data


@pytest.mark.django_db(transaction=True)
def test_a_hung_store_is_answered_503_with_retry_after_well_within_a_workers_timeout(
    s3: S3Server, bucket: str, token_client: APIClient, settings: Any
) -> None:
    """A store that takes connections and never answers (frozen) is given up
    on after its timeout, twice, not after botocore's 60 s a try that
    gunicorn (--timeout 60) kills the worker over."""
    settings.STORAGE_TIMEOUT_SECONDS = 2
    answers: list[Any] = []
    upload = threading.Thread(
        target=lambda: answers.append(
            token_client.post(
                "/api/v1/images/",
                {"file": SimpleUploadedFile("hung.jpg", corpus.photo_jpeg(64, 48))},
                format="multipart",
            )
        ),
        daemon=True,
    )
    assert s3.pid is not None
    os.kill(s3.pid, signal.SIGSTOP)
    try:
        upload.start()
        upload.join(30)  # half of gunicorn's timeout
        answered_in_time = not upload.is_alive()
    finally:
        os.kill(s3.pid, signal.SIGCONT)
    upload.join(120)
    assert answered_in_time, "the upload still waited on the frozen store after 30 s"
    [response] = answers
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "30"
    assert "nothing was saved" in response.json()["detail"]
    assert not Image.objects.exists()
