"""A bucket that takes requests but whose answers do not come back in time:
an upload is refused (503) and the original the bucket may have stored all
the same is deleted before the answer, not left to the orphan sweep an hour
later. On a real S3 server (SeaweedFS) behind a relay on loopback that holds
back its answers."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.servers import HOST, S3Server
from tests.uploads import corpus
from uploads import storage
from uploads.models import Image

pytestmark = [pytest.mark.integration]

TIMEOUT_SECONDS = 1
# The start of a request, as the relay sees it come in.
REQUEST_LINE = re.compile(rb"(GET|HEAD|PUT|POST|DELETE) /")
# botocore asks to send a body (Expect: 100-continue) and waits this long
# for the go-ahead before it sends it anyway.
EXPECT_WAIT_SECONDS = 1


class AnswerHoldingRelay:
    """A TCP relay in front of a server. Requests always go through at once;
    while ``holding`` is set, the server's answers are swallowed: a store that
    does what it is asked but whose answers never come back in time."""

    def __init__(self, port: int) -> None:
        self.target = (HOST, port)
        self.holding = threading.Event()
        # The method of each request it passed on, in order.
        self.requests: list[str] = []
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
                self._sockets += [client, server]
                threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
                threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                request = REQUEST_LINE.match(data)
                if not answers and request:
                    self.requests.append(request[1].decode())
                if not (answers and self.holding.is_set()):
                    sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def relay(s3: S3Server) -> Iterator[AnswerHoldingRelay]:
    relay = AnswerHoldingRelay(s3.port)
    yield relay
    relay.close()


@pytest.fixture
def bucket(s3: S3Server, relay: AnswerHoldingRelay, settings: Any) -> str:
    """Originals and renditions in a bucket of their own, reached through the relay."""
    name = s3.create_bucket(f"timeout-{time.monotonic_ns()}")
    backend = s3.storage_backend(name, endpoint_url=relay.url)
    settings.STORAGES = {**settings.STORAGES, "default": backend, "originals": backend}
    settings.STORAGE_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    return name


def _originals(s3: S3Server, bucket: str) -> set[str]:
    """Asked of the server itself, not through the relay."""
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix="originals/").get("Contents", [])
    return {item["Key"] for item in listed}


def _upload(client: APIClient, data: bytes, name: str) -> Any:
    return client.post("/api/v1/images/", {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_a_store_that_does_not_answer_in_time_is_asked_twice_as_documented(
    s3: S3Server, bucket: str, relay: AnswerHoldingRelay
) -> None:
    relay.holding.set()

    with pytest.raises(ReadTimeoutError) as failed:
        storage.put("originals/00/unanswered.jpg", corpus.photo_jpeg(64, 48))

    assert relay.requests == ["PUT", "PUT"]
    # urllib3's words for the read that ran out, with the time-out the read
    # was given: the setting's, not botocore's own (60 s).
    assert f"Read timed out. (read timeout={TIMEOUT_SECONDS})" in str(failed.value.kwargs["error"])


@pytest.mark.django_db(transaction=True)
def test_an_original_stored_but_not_confirmed_in_time_is_deleted_before_the_503(
    s3: S3Server,
    bucket: str,
    relay: AnswerHoldingRelay,
    token_client: APIClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay.holding.set()

    response = _upload(token_client, corpus.photo_jpeg(320, 240), "unconfirmed.jpg")

    assert response.status_code == 503, response.content
    assert "nothing was saved" in response.json()["detail"]
    assert not Image.objects.exists()
    assert relay.requests == ["PUT", "PUT", "DELETE"]
    assert _originals(s3, bucket) == set()
    # The DELETE held the answer one short try at most: its answer, held
    # too, was given up on after the discard's time-out, not botocore's own
    # (60 s), which a delete without one would wait.
    [unconfirmed] = [r for r in caplog.records if r.getMessage().startswith("unconfirmed write of ")]
    assert isinstance(unconfirmed.args, tuple)
    timed_out = unconfirmed.args[1]
    assert isinstance(timed_out, ReadTimeoutError), timed_out
    assert f"Read timed out. (read timeout={storage.DISCARD_TIMEOUT_SECONDS})" in str(
        timed_out.kwargs["error"]
    )


@pytest.mark.django_db(transaction=True)
def test_the_object_of_an_identical_earlier_upload_stays(
    s3: S3Server, bucket: str, relay: AnswerHoldingRelay, token_client: APIClient
) -> None:
    data = corpus.photo_jpeg(320, 240)
    first = _upload(token_client, data, "first.jpg")
    assert first.status_code == 201, first.content
    [key] = _originals(s3, bucket)

    relay.holding.set()
    again = _upload(token_client, data, "again.jpg")

    assert again.status_code == 503, again.content
    assert _originals(s3, bucket) == {key}
    assert list(Image.objects.values_list("file", flat=True)) == [key]
    assert "DELETE" not in relay.requests


@pytest.mark.django_db(transaction=True)
def test_once_the_store_answers_again_the_same_upload_is_stored_and_kept(
    s3: S3Server, bucket: str, relay: AnswerHoldingRelay, token_client: APIClient
) -> None:
    data = corpus.photo_jpeg(320, 240)
    relay.holding.set()
    assert _upload(token_client, data, "late.jpg").status_code == 503

    relay.holding.clear()
    retried = _upload(token_client, data, "late.jpg")

    assert retried.status_code == 201, retried.content
    key = Image.objects.get().file.name
    assert _originals(s3, bucket) == {key}
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == data
