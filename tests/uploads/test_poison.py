"""Every upload ends: images that crash, hang or exhaust memory end failed
after a capped number of tries, and nothing else is harmed.

Images are decoded in a child process forked for each, under the memory
ceiling and the time limit (uploads.sandbox); these tests run that for real.
tests/integration/test_poison.py proves the same on Celery workers.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing.forkserver
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import spawn
from pathlib import Path
from typing import Any
from unittest import mock

import psutil
import pytest
from botocore.exceptions import EndpointConnectionError
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError, IntegrityError, OperationalError, ProgrammingError
from PIL import Image as PILImage
from rest_framework.test import APIClient

from tests.uploads import corpus
from uploads import dispatch, embedded, processing, sandbox, services, storage, tasks
from uploads.models import Image, Rendition

pytestmark = pytest.mark.django_db

URL = "/api/v1/images/"


@pytest.fixture(scope="module")
def big_flat_png() -> bytes:
    """16 MP: 64 MB of pixels once decoded, from a 56 kB file."""
    return corpus.png(PILImage.new("RGB", (4000, 4000), (200, 100, 50)))


def upload(commit: Any, data: bytes, name: str = "a.png") -> Image:
    with commit():
        image = services.image_upload(file=data, original_name=name)
    image.refresh_from_db()
    return image


def interrupted(image: Image, *, deaths: int) -> None:
    """Leave the image as its runs leave it when the process processing it
    dies under it ``deaths`` times in a row (each death counted by the
    process that outlived it, see image_count_death)."""
    Image.objects.filter(pk=image.pk).update(status=Image.Status.PROCESSING, interruptions=0)
    for _ in range(deaths):
        services.image_count_death(image_id=image.pk)


# --- Deaths ---------------------------------------------------------------------


def test_an_image_whose_worker_died_under_it_is_tried_again(commit: Any) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=1)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    assert (image.attempts, image.interruptions) == (2, 1)


def test_a_run_cut_short_with_its_whole_server_is_tried_again_without_counting(commit: Any) -> None:
    """A deploy or a lost machine stops every run: not the image's fault."""
    image = upload(commit, corpus.jpeg(), "a.jpg")
    for _ in range(5):
        interrupted(image, deaths=0)
        services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert (image.status, image.attempts, image.interruptions) == (Image.Status.READY, 6, 0)


def test_an_image_whose_worker_died_three_times_ends_failed_without_a_fourth_try(commit: Any) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=3)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED
    assert image.error == "Processing was given up: the worker processing it died 3 times."
    assert image.attempts == 1  # no new try was made
    with image.file.open("rb") as kept:
        assert kept.read() == corpus.jpeg()  # the original stays, for staff to reprocess


def test_the_number_of_tries_is_a_setting(commit: Any, settings: Any) -> None:
    settings.IMAGE_MAX_ATTEMPTS = 1
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=1)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert image.error == "Processing was given up: the worker processing it died 1 time."


def test_a_late_duplicate_leaves_a_failed_image_alone(commit: Any) -> None:
    image = upload(commit, corpus.truncated_jpeg(), "cut.jpg")
    assert image.status == Image.Status.FAILED
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert image.attempts == 1


def test_the_sweep_never_requeues_past_the_cap(
    commit: Any, settings: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = upload(commit, corpus.jpeg(), "dying.jpg")
    lost = upload(commit, corpus.png(), "lost.png")
    interrupted(dying, deaths=3)
    interrupted(lost, deaths=1)
    settings.IMAGE_STUCK_AFTER_SECONDS = 0
    started: list[int] = []
    start = dispatch.start

    def counted_start(*, image_id: int, force: bool = False) -> bool:
        started.append(image_id)
        return start(image_id=image_id, force=force)

    monkeypatch.setattr(dispatch, "start", counted_start)
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        assert tasks.sweep_stuck_images() == 2
    dying.refresh_from_db()
    assert dying.status == Image.Status.FAILED  # by the sweep itself, before any task runs
    for callback in on_commit:
        callback()
    assert started == [lost.pk]  # only the other one is queued again
    dying.refresh_from_db()
    lost.refresh_from_db()
    assert (dying.status, dying.error) == (
        Image.Status.FAILED,
        "Processing was given up: the worker processing it died 3 times.",
    )
    assert dying.attempts == 1
    assert (lost.status, lost.attempts, lost.interruptions) == (Image.Status.READY, 2, 1)


def test_reprocessing_starts_a_fresh_count_of_tries(commit: Any) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=3)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED
    with commit():
        services.image_reprocess(images=[image])
    image.refresh_from_db()
    assert (image.status, image.error, image.interruptions) == (Image.Status.READY, "", 0)


def test_a_retried_storage_outage_is_not_counted_as_a_death(commit: Any) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    Image.objects.filter(pk=image.pk).update(status=Image.Status.PROCESSING)
    services.image_mark_pending(image_id=image.pk)  # what the task does before retrying
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert (image.status, image.interruptions) == (Image.Status.READY, 0)


def test_a_retried_storage_outage_does_not_wipe_out_the_deaths_before_it(
    commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deaths, a try that found the store away, a third death: given up,
    not given three more tries."""
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=2)
    services.image_mark_pending(image_id=image.pk)  # the third try found the store away
    decodes = mock.Mock(side_effect=sandbox.Died(-9))
    monkeypatch.setattr(sandbox, "process", decodes)
    services.image_process(image_id=image.pk)
    image.refresh_from_db()
    assert (image.status, image.error) == (
        Image.Status.FAILED,
        "Processing was given up: the worker processing it died 3 times.",
    )
    assert decodes.call_count == 1


INTERNAL = "http://10.0.3.7:8333/media/renditions/ab/ab12.webp"


@pytest.mark.parametrize(
    ("error", "what"),
    [
        (EndpointConnectionError(endpoint_url=INTERNAL), "image store"),
        (OperationalError(f"could not connect to server: {INTERNAL}"), "database"),
    ],
)
def test_an_image_given_up_with_its_store_away_says_so_in_words_not_in_the_errors_text(
    commit: Any, staff: APIClient, monkeypatch: pytest.MonkeyPatch, error: Exception, what: str
) -> None:
    """The reason is shown to staff in the admin and the API: what the
    store's client raised names internal hosts and paths."""
    image = upload(commit, corpus.jpeg(), "a.jpg")
    monkeypatch.setattr(storage, "put", mock.Mock(side_effect=error))
    tasks.process_image.push_request(retries=tasks.MAX_RETRIES, is_eager=False)
    try:
        assert tasks.process_image.run(image.pk, force=True) == "failed"
    finally:
        tasks.process_image.pop_request()
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED
    assert image.error == (
        f"Processing was given up: the {what} was unavailable (11 tries over 8 min). "
        "Reprocess the image once it is back."
    )
    shown = staff.get(f"{URL}{image.pk}/").json()["error"]
    assert shown == image.error
    assert "10.0.3.7" not in shown


def test_an_image_processed_in_the_server_is_given_up_after_one_try_with_its_store_away(
    commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    monkeypatch.setattr(storage, "put", mock.Mock(side_effect=EndpointConnectionError(endpoint_url=INTERNAL)))
    tasks.process_image.apply(args=[image.pk], kwargs={"force": True})  # as the embedded server runs it
    image.refresh_from_db()
    assert (image.status, image.error) == (
        Image.Status.FAILED,
        "Processing was given up: the image store was unavailable (1 try). Reprocess the image once it is back.",
    )


def run_in_a_worker(image: Image, *, retries: int) -> tuple[str, mock.Mock]:
    """The task's try ``retries + 1`` as a worker runs it: what it returned,
    and its call to retry (none made, as no broker is there to take it)."""
    retry = mock.Mock(side_effect=Retry())
    with mock.patch.object(tasks.process_image, "retry", retry):
        tasks.process_image.push_request(retries=retries, is_eager=False)
        try:
            status = tasks.process_image.run(image.pk, force=True)
        except Retry:
            status = "retried"
        finally:
            tasks.process_image.pop_request()
    return status, retry


@pytest.mark.parametrize(
    "error",
    [
        DataError("value too long for type character varying(7): 'rgb(10.0.3.7)'"),
        IntegrityError('new row violates check constraint "uploads_image_focal_in_frame"'),
    ],
)
def test_an_image_the_database_refuses_to_store_ends_failed_at_once_saying_so(
    commit: Any, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Refused once, it is refused every time: the eight minutes of tries an
    outage gets would change nothing, and it was no outage."""
    image = upload(commit, corpus.jpeg(), "a.jpg")
    monkeypatch.setattr(Rendition.objects, "bulk_create", mock.Mock(side_effect=error))
    status, retry = run_in_a_worker(image, retries=0)
    assert status == "failed"
    retry.assert_not_called()
    image.refresh_from_db()
    assert image.error == (
        f"Processing was given up: the database answered with an error ({type(error).__name__}; 1 try). "
        "Reprocess the image once that is fixed."
    )
    tasks.process_image.apply(args=[image.pk], kwargs={"force": True})  # as the embedded server runs it
    image.refresh_from_db()
    assert image.error.startswith(
        f"Processing was given up: the database answered with an error ({type(error).__name__}; 1 try)."
    )


def test_an_image_the_database_answers_with_another_error_is_tried_again_and_given_up_saying_so(
    commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column the code reads before its migration has run is mended by the
    deploy under way: tried again as an outage is, but not called one."""
    image = upload(commit, corpus.jpeg(), "a.jpg")
    monkeypatch.setattr(
        Rendition.objects, "bulk_create", mock.Mock(side_effect=ProgrammingError("column does not exist"))
    )
    assert run_in_a_worker(image, retries=0)[0] == "retried"
    assert run_in_a_worker(image, retries=tasks.MAX_RETRIES)[0] == "failed"
    image.refresh_from_db()
    assert image.error == (
        "Processing was given up: the database answered with an error (ProgrammingError; 11 tries over 8 min). "
        "Reprocess the image once that is fixed."
    )


@pytest.mark.usefixtures("no_process_can_start")
def test_a_decoder_the_machine_cannot_start_is_tried_again_and_given_up_saying_so(commit: Any) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    assert image.error == (  # run in this process: one try
        "Processing was given up: the worker could not start the process to decode it (1 try); its machine "
        "was short of processes or memory. Reprocess the image once it has room."
    )
    assert run_in_a_worker(image, retries=0)[0] == "retried"
    assert run_in_a_worker(image, retries=tasks.MAX_RETRIES)[0] == "failed"
    image.refresh_from_db()
    assert image.error == (
        "Processing was given up: the worker could not start the process to decode it (11 tries over 8 min); "
        "its machine was short of processes or memory. Reprocess the image once it has room."
    )
    assert "unavailable" not in image.error


@pytest.mark.usefixtures("no_process_can_start")
def test_a_decoder_that_cannot_start_is_an_os_error_that_says_so(big_flat_png: bytes) -> None:
    """An OSError, so that what tries again when the store is away does here too."""
    with pytest.raises(sandbox.NotStarted, match="could not start the process to decode the image") as caught:
        sandbox.process(
            big_flat_png,
            processing.Preset("small", widths=(64,)),
            max_pixels=50_000_000,
            memory_limit_mb=1024,
            time_limit=5,
        )
    assert isinstance(caught.value, OSError)


def test_a_decoder_whose_fork_server_died_says_what_failed_when_it_gave_no_words(
    big_flat_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork server gone (not with a Ctrl-C) ends the start in an EOFError
    of no text: the log names it rather than ending on a colon."""

    def gone(self: Any) -> None:
        raise EOFError

    monkeypatch.setattr(type(sandbox._context.Process(target=print)), "start", gone)
    monkeypatch.setattr(sandbox, "FORK_SERVER_GONE_WAIT_SECONDS", 0)
    with pytest.raises(sandbox.NotStarted) as caught:
        decode(big_flat_png, time_limit=5)
    assert str(caught.value) == "could not start the process to decode the image: EOFError"


def test_a_decoder_whose_start_fails_as_the_children_are_stopped_is_stopped_not_unstartable(
    big_flat_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C takes the fork server with it as a start is under way: the
    start fails, then the main thread stops the children. The image is left
    for the sweep (Stopped), not recorded as one the machine could not start."""
    stopping = threading.Thread(target=sandbox.stop_children)

    def gone(self: Any) -> None:
        stopping.start()  # waits for the lock this start holds, having said it stops
        raise EOFError

    monkeypatch.setattr(type(sandbox._context.Process(target=print)), "start", gone)
    # Generous: the stop comes from a thread that runs at once.
    monkeypatch.setattr(sandbox, "FORK_SERVER_GONE_WAIT_SECONDS", 60)
    try:
        with pytest.raises(sandbox.Stopped):
            decode(big_flat_png, time_limit=5)
    finally:
        stopping.join()
        sandbox.resume_children()


def _forkserver_children() -> list[psutil.Process]:
    """The decoding children: forked by the fork server, our own child."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "forkserver" in " ".join(child.cmdline()):
                found.extend(child.children())
    return found


@contextlib.contextmanager
def each_decoder(action: Callable[[psutil.Process], None]) -> Iterator[None]:
    """Within the block, ``action`` is done to each decoding child while it
    runs, every 5 ms."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for child in _forkserver_children():
                with contextlib.suppress(psutil.Error):
                    action(child)
            done.wait(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def every_decoder_killed() -> Iterator[list[int]]:
    """Kill each decoding child as soon as it appears, as a crashing decoder would die."""
    killed: list[int] = []

    def kill(child: psutil.Process) -> None:
        child.kill()
        killed.append(child.pid)

    with each_decoder(kill):
        yield killed


def test_a_decoder_that_dies_every_time_ends_failed_after_three_tries(
    commit: Any, big_flat_png: bytes
) -> None:
    with every_decoder_killed() as killed:
        image = upload(commit, big_flat_png)
    assert len(set(killed)) >= 3
    assert image.status == Image.Status.FAILED
    assert image.error == "Processing was given up: the worker processing it died 3 times."
    assert (image.attempts, image.interruptions) == (3, 3)
    # The process that asked is unharmed and goes on processing.
    assert upload(commit, corpus.jpeg(), "next.jpg").status == Image.Status.READY


# --- Memory and time --------------------------------------------------------------


def test_an_image_over_the_memory_ceiling_ends_failed_and_the_caller_is_not_capped(
    commit: Any, settings: Any, big_flat_png: bytes
) -> None:
    settings.IMAGE_MEMORY_LIMIT_MB = 48
    before = resource.getrlimit(resource.RLIMIT_DATA)
    image = upload(commit, big_flat_png)
    assert image.status == Image.Status.FAILED
    assert image.error == "Processing ran out of memory (limit 48 MB)."
    assert image.attempts == 1  # not worth another try: the same file, the same ceiling
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    assert upload(commit, corpus.jpeg(), "small.jpg").status == Image.Status.READY


def test_the_same_image_under_a_higher_ceiling_is_processed(
    commit: Any, settings: Any, big_flat_png: bytes
) -> None:
    settings.IMAGE_MEMORY_LIMIT_MB = 1024
    assert upload(commit, big_flat_png).status == Image.Status.READY


@pytest.mark.parametrize(
    ("cause", "exhausted"),
    [
        (MemoryError(), True),
        # Under RLIMIT_DATA a thread's stack can be the allocation that fails.
        (RuntimeError("can't start new thread"), True),
        (RuntimeError("dictionary changed size during iteration"), False),
        (OSError("decoder error -2"), False),
    ],
)
def test_a_failure_caused_by_the_ceiling_is_told_from_any_other(
    cause: BaseException, exhausted: bool
) -> None:
    wrapped = processing.ProcessingError("The image could not be processed.")
    wrapped.__cause__ = cause  # as processing wraps what it cannot name
    assert sandbox.exhausted_memory(wrapped) is exhausted


def test_an_image_over_a_pixel_limit_lowered_since_its_upload_is_refused_by_its_decoder(
    commit: Any, settings: Any
) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    assert image.status == Image.Status.READY
    pixels = image.width * image.height
    settings.IMAGE_MAX_PIXELS = pixels - 1
    with commit():
        services.image_reprocess(images=[image])
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED
    assert image.error.endswith(f"the limit is {pixels - 1}."), image.error


def test_an_image_over_the_time_limit_is_stopped_and_ends_failed(
    commit: Any, settings: Any, big_flat_png: bytes
) -> None:
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0.1
    image = upload(commit, big_flat_png)
    assert image.status == Image.Status.FAILED
    assert image.error == "Processing took longer than 0.1 s and was stopped."
    assert _forkserver_children() == []  # the decoder was killed, not left running


def test_with_no_soft_time_limit_the_hard_one_stops_a_decoder_run_outside_a_worker(
    commit: Any, settings: Any, big_flat_png: bytes
) -> None:
    """A soft limit of 0 leaves the hard one alone: outside a worker, where
    no pool process is killed at it, it bounds the decoding child itself
    instead of letting one that never ends hold the server's only thread."""
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 0.1
    image = upload(commit, big_flat_png)
    assert image.status == Image.Status.FAILED
    # A quarter of a hard limit this short is kept for recording the outcome.
    assert image.error == "Processing took longer than 0.075 s and was stopped."
    assert _forkserver_children() == []


def test_in_a_worker_with_no_soft_time_limit_a_slow_image_ends_too_slow_before_the_hard_one(
    settings: Any, big_flat_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard limit kills the pool process, which counts as its death: a
    slow image would end "died 3 times" after three runs of the whole limit.
    Its decoder is stopped a margin before it instead, and the image ends
    failed as too slow, the true reason, after one."""
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 0.4  # the decoder is stopped at 0.3 s
    # As a worker started with these settings binds the task (this process
    # bound it under the settings of whichever test came first).
    monkeypatch.setattr(tasks.process_image, "soft_time_limit", 0)
    image = services.image_upload(file=big_flat_png, original_name="slow.png")  # not committed: pending

    def hard_limit(signum: int, frame: Any) -> None:
        raise AssertionError("the run went on until the hard time limit")

    previous = signal.signal(signal.SIGALRM, hard_limit)
    # Well past 0.4 s, not a measure of speed: a decoder that is never
    # stopped meets it.
    signal.setitimer(signal.ITIMER_REAL, 10)
    tasks.process_image.push_request(is_eager=False, timelimit=(None, None))
    try:
        with each_decoder(lambda child: child.suspend()):  # a decode that never ends
            assert tasks.process_image.run(image.pk) == "failed"
    finally:
        tasks.process_image.pop_request()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    image.refresh_from_db()
    assert (image.error, image.interruptions) == ("Processing took longer than 0.3 s and was stopped.", 0)
    assert _forkserver_children() == []


@contextlib.contextmanager
def net_under_a_hang(what: str) -> Iterator[None]:
    """Fail, saying ``what`` waited, should the block not end within 60 s: a
    net under a hang, not a measure of speed."""

    def stuck(signum: int, frame: Any) -> None:
        raise AssertionError(f"{what} waited for good")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_decoder_that_never_ends_is_killed_at_the_time_limit_not_waited_for(big_flat_png: bytes) -> None:
    """A decode stuck for good (here: a decoder stopped as soon as it starts)
    does not hold its caller past the time limit."""
    try:
        with (
            net_under_a_hang("the caller of a decoder that never ends"),
            each_decoder(lambda child: child.suspend()),
            pytest.raises(sandbox.TimedOut),
        ):
            sandbox.process(
                big_flat_png,
                processing.Preset("small", widths=(64,)),
                max_pixels=50_000_000,
                memory_limit_mb=1024,
                time_limit=0.2,
            )
    finally:
        left = _forkserver_children()
        for child in left:
            child.kill()
    assert left == []  # killed by the caller


class _RecordedWaits:
    """A decoding child's end of the pipe that notes how long each wait for
    its answer may last."""

    def __init__(self, receiver: Any, waits: list[float | None]) -> None:
        self._receiver, self._waits = receiver, waits

    def poll(self, timeout: float | None = None) -> bool:
        self._waits.append(timeout)
        result: bool = self._receiver.poll(timeout)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._receiver, name)


@contextlib.contextmanager
def waits_for_decoders() -> Iterator[list[float | None]]:
    """The longest each wait for a decoding child's answer may last."""
    waits: list[float | None] = []
    pipe = sandbox._context.Pipe

    def recorded(duplex: bool = True) -> tuple[Any, Any]:
        receiver, sender = pipe(duplex=duplex)
        return _RecordedWaits(receiver, waits), sender

    with mock.patch.object(sandbox._context, "Pipe", recorded):
        yield waits


def test_the_time_limit_counts_the_start_of_the_decoder(big_flat_png: bytes) -> None:
    """Starting the child (the fork server's own first start with it, which
    takes seconds on a busy machine) is part of the limit: waiting the whole
    limit after it ran a worker past its hard limit."""
    allowed = sandbox._children_allowed

    @contextlib.contextmanager
    def slow_start() -> Iterator[None]:
        time.sleep(0.5)
        with allowed():
            yield

    with (
        mock.patch.object(sandbox, "_children_allowed", slow_start),
        waits_for_decoders() as waits,
        each_decoder(lambda child: child.suspend()),
        pytest.raises(sandbox.TimedOut),
    ):
        sandbox.process(
            big_flat_png,
            processing.Preset("small", widths=(64,)),
            max_pixels=50_000_000,
            memory_limit_mb=1024,
            time_limit=0.6,
        )
    [wait] = waits
    assert wait is not None
    assert wait <= 0.1
    assert _forkserver_children() == []


def test_in_a_worker_with_no_soft_time_limit_the_claim_counts_towards_the_limit(
    settings: Any, big_flat_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard limit counts from the task's start: a claim that waited for
    the row's lock or the database leaves the decoder less time."""
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 2  # the run is stopped at 1.5 s
    image = services.image_upload(file=big_flat_png, original_name="slow.png")  # not committed: pending
    claim = services._image_claim

    def slow_claim(**kwargs: Any) -> Any:
        time.sleep(1)
        return claim(**kwargs)

    monkeypatch.setattr(services, "_image_claim", slow_claim)
    with waits_for_decoders() as waits, each_decoder(lambda child: child.suspend()):
        services.image_process(image_id=image.pk)
    [wait] = waits
    assert wait is not None
    assert wait <= 0.5
    image.refresh_from_db()
    assert image.error == "Processing took longer than 1.5 s and was stopped."
    assert _forkserver_children() == []


def test_a_workers_soft_time_limit_stops_the_decoding_child_with_the_wait(
    big_flat_png: bytes, settings: Any
) -> None:
    """In a Celery worker the service leaves the time limit to Celery, whose
    soft limit arrives as a signal whose handler raises SoftTimeLimitExceeded
    into whatever runs: here, the wait for the decoding child."""
    settings.IMAGE_MEMORY_LIMIT_MB = 1024
    image = services.image_upload(file=big_flat_png, original_name="slow.png")  # not committed: pending

    def soft_limit(signum: int, frame: Any) -> None:
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            services.image_process(image_id=image.pk, time_limit=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _forkserver_children() == []  # the decoder was killed, not left running


# --- Handing the image over -------------------------------------------------------------


@pytest.fixture(scope="module")
def large_original() -> bytes:
    """32 MB, far more than a pipe holds: written only as its reader takes it
    in. The decoders these tests start never decode it."""
    return bytes(32 * 1024 * 1024)


@pytest.fixture
def open_fds() -> Callable[[], int]:
    """How many files this process has open, the fork server's own ends
    (open for good once it runs) already among them."""
    multiprocessing.forkserver.ensure_running()
    return psutil.Process().num_fds


@contextlib.contextmanager
def decoders_started_from(main: str, count: int | None = None) -> Iterator[None]:
    """The first ``count`` decoding children started within the block (every
    one, by default) run the module ``main`` as they start, before they read
    anything they were sent; the others run as they are."""
    prepared = spawn.get_preparation_data
    started = itertools.count()

    def from_main(name: str) -> dict[str, Any]:
        data: dict[str, Any] = prepared(name)
        if count is None or next(started) < count:
            data.pop("init_main_from_path", None)
            data["init_main_from_name"] = main
        return data

    with mock.patch.object(spawn, "get_preparation_data", from_main):
        yield


def decoders_stalled_as_they_start(count: int | None = None) -> contextlib.AbstractContextManager[None]:
    """Decoding children that stall as they start (tests/uploads/stalled_decoder.py)."""
    return decoders_started_from("tests.uploads.stalled_decoder", count)


def decode(data: bytes, *, time_limit: float | None) -> processing.Result:
    return sandbox.process(
        data,
        processing.Preset("small", widths=(64,)),
        max_pixels=50_000_000,
        memory_limit_mb=1024,
        time_limit=time_limit,
    )


class Decoding(threading.Thread):
    """A decode in a thread of its own, and how it ended."""

    def __init__(self, data: bytes, *, time_limit: float | None) -> None:
        super().__init__(daemon=True)
        self.data, self.time_limit = data, time_limit
        self.raised: BaseException | None = None

    def run(self) -> None:
        try:
            decode(self.data, time_limit=self.time_limit)
        except BaseException as exc:  # noqa: BLE001 - what it raised is what the test looks at
            self.raised = exc


def wait_for_a_decoder() -> None:
    """Until a decoding child runs (a minute at most)."""
    deadline = time.monotonic() + 60
    while not _forkserver_children():
        assert time.monotonic() < deadline, "no decoder was started"
        time.sleep(0.01)


def test_a_decoder_that_stalls_before_taking_in_its_image_is_killed_at_the_time_limit(
    large_original: bytes, open_fds: Callable[[], int]
) -> None:
    """The image is handed over within the time limit: a child that does not
    read it held its caller, and every other start, for as long as it stalled."""
    before = open_fds()
    with (
        net_under_a_hang("the caller of a decoder that never read its image"),
        decoders_stalled_as_they_start(),
        pytest.raises(sandbox.TimedOut, match=r"took longer than 1 s"),
    ):
        decode(large_original, time_limit=1)
    assert _forkserver_children() == []  # killed by the caller
    assert open_fds() == before


def test_a_decoder_starts_while_another_is_being_handed_its_image(
    large_original: bytes, open_fds: Callable[[], int]
) -> None:
    """One start at a time, but not one hand-over: a decoder slow to read a
    large original does not hold up the others (import_images runs one a core)."""
    before = open_fds()
    with decoders_stalled_as_they_start(count=1):
        stalled = Decoding(large_original, time_limit=None)
        stalled.start()
        try:
            wait_for_a_decoder()
            with net_under_a_hang("a start behind another decoder's hand-over"):
                result = decode(corpus.jpeg(), time_limit=None)
        finally:
            for child in _forkserver_children():
                child.kill()
            stalled.join()
    assert {output.width for output in result.outputs} == {64}
    assert isinstance(stalled.raised, sandbox.Died)
    assert _forkserver_children() == []
    assert open_fds() == before


def test_stopping_the_children_stops_a_decoder_being_handed_its_image(
    large_original: bytes, open_fds: Callable[[], int]
) -> None:
    """A Ctrl-C in import_images does not wait for a hand-over to end: the
    decoder is killed and its caller raises Stopped, with no time limit."""
    before = open_fds()
    with decoders_stalled_as_they_start():
        stalled = Decoding(large_original, time_limit=None)
        stalled.start()
        try:
            wait_for_a_decoder()
            with net_under_a_hang("stop_children() behind a decoder's hand-over"):
                sandbox.stop_children()
                stalled.join()
        finally:
            for child in _forkserver_children():
                child.kill()
            stalled.join()
            sandbox.resume_children()
    assert isinstance(stalled.raised, sandbox.Stopped)
    assert _forkserver_children() == []
    assert open_fds() == before


def test_a_decoder_that_dies_taking_in_its_image_is_a_decoder_that_died(
    large_original: bytes, open_fds: Callable[[], int]
) -> None:
    """Not a decoder the machine could not start (it was started), which is
    tried again as the machine's trouble."""
    before = open_fds()
    with (
        net_under_a_hang("the caller of a decoder killed before it read its image"),
        decoders_stalled_as_they_start(),
        every_decoder_killed() as killed,
        pytest.raises(sandbox.Died) as died,
    ):
        decode(large_original, time_limit=None)
    assert killed
    assert died.value.exitcode == -signal.SIGKILL
    assert open_fds() == before


@pytest.mark.usefixtures("no_process_can_start")
def test_a_decoder_that_cannot_start_leaves_no_file_open(
    big_flat_png: bytes, open_fds: Callable[[], int]
) -> None:
    before = open_fds()
    with pytest.raises(sandbox.NotStarted):
        decode(big_flat_png, time_limit=5)
    assert open_fds() == before


def test_a_decoder_asked_for_while_the_children_are_stopped_is_not_started_and_leaves_no_file_open(
    big_flat_png: bytes, open_fds: Callable[[], int]
) -> None:
    before = open_fds()
    sandbox.stop_children()
    try:
        with pytest.raises(sandbox.Stopped):
            decode(big_flat_png, time_limit=5)
    finally:
        sandbox.resume_children()
    assert _forkserver_children() == []
    assert open_fds() == before


def test_a_decoded_image_leaves_no_file_open(big_flat_png: bytes, open_fds: Callable[[], int]) -> None:
    before = open_fds()
    assert {output.width for output in decode(big_flat_png, time_limit=None).outputs} == {64}
    assert open_fds() == before


def test_a_decode_failing_in_words_of_its_own_is_told_in_fixed_words_and_its_own_kept_for_the_log(
    big_flat_png: bytes,
) -> None:
    """What processing does not name may give internals away (paths, the
    library's state): the reason shown says only that it failed."""
    with (
        decoders_started_from("tests.uploads.broken_decoder"),
        pytest.raises(processing.ProcessingError) as caught,
    ):
        decode(big_flat_png, time_limit=None)
    assert caught.value.message == "The image could not be processed."
    assert caught.value.detail == "KeyError: '/srv/portal/secret-path'"


def test_a_pool_process_marked_daemonic_starts_a_decoder_and_stays_marked(
    big_flat_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Billiard marks Celery's pool processes daemonic, which multiprocessing
    allows no children: the mark is lifted for the start alone."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    monkeypatch.setitem(config, "daemon", True)
    assert {output.width for output in decode(big_flat_png, time_limit=None).outputs} == {64}
    assert config["daemon"] is True


def test_a_decoder_that_ended_is_no_longer_among_the_children_to_stop(big_flat_png: bytes) -> None:
    """A worker decodes for weeks: each ended child is let go, not kept on
    the list stop_children() goes through."""
    decode(big_flat_png, time_limit=None)
    with pytest.raises(sandbox.TimedOut), each_decoder(lambda child: child.suspend()):
        decode(big_flat_png, time_limit=0.2)
    assert sandbox._children.running == set()


def test_a_decoder_dies_with_the_process_that_asked_for_it(tmp_path: Path) -> None:
    """A worker's pool process killed at the hard time limit takes its
    decoder with it: an orphaned decode must not run on unbounded."""
    started = tmp_path / "decoding"
    caller = subprocess.Popen(
        [sys.executable, "-m", "tests.uploads.orphaned_decoder"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DECODER_STARTED_FILE": str(started)},
    )
    decoder: psutil.Process | None = None
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert caller.poll() is None, "the caller ended before its decoder ran"
            assert time.monotonic() < deadline, "no decoder ran"
            time.sleep(0.05)
        decoder = psutil.Process(int(started.read_text()))
        caller.kill()
        caller.wait()
        deadline = time.monotonic() + 60
        while decoder.is_running() and decoder.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the decoder outlived its caller"
            time.sleep(0.05)
    finally:
        caller.kill()
        caller.wait()
        if decoder is not None:
            with contextlib.suppress(psutil.Error):
                decoder.kill()


# --- Priority ---------------------------------------------------------------------


@contextlib.contextmanager
def decoders_niceness() -> Iterator[dict[int, int]]:
    """The nice value of each decoding child, as last seen while it ran."""
    seen: dict[int, int] = {}
    with each_decoder(lambda child: seen.update({child.pid: child.nice()})):
        yield seen


@pytest.mark.parametrize("nice", [10, 0])
def test_background_processing_yields_the_cpu_to_web_requests(
    commit: Any, settings: Any, big_flat_png: bytes, nice: int
) -> None:
    settings.IMAGE_NICE = nice
    with decoders_niceness() as seen:
        image = upload(commit, big_flat_png)
    assert image.status == Image.Status.READY
    assert seen  # the child was seen at work
    assert set(seen.values()) == {psutil.Process().nice() + nice}


# --- A file that fails to decode ----------------------------------------------------


def test_a_file_that_fails_to_decode_keeps_its_original_for_staff_to_see_and_reprocess(
    token_client: APIClient, commit: Any, media_files: Any
) -> None:
    data = corpus.truncated_jpeg()
    with commit():
        created = token_client.post(URL, {"file": SimpleUploadedFile("cut.jpg", data)}, format="multipart")
    assert created.status_code == 201, created.content
    detail = token_client.get(f"{URL}{created.json()['id']}/").json()
    assert detail["status"] == "failed"
    assert "truncated" in detail["error"]
    original = token_client.get(f"{URL}{detail['id']}/original/")
    assert original.status_code == 200
    assert b"".join(original.streaming_content) == data

    with commit():
        again = token_client.post(f"{URL}{detail['id']}/reprocess/", {}, format="json")
    assert again.status_code == 202
    image = Image.objects.get(pk=detail["id"])
    assert (image.status, image.attempts, image.error) == (Image.Status.FAILED, 2, detail["error"])
    assert b"".join(token_client.get(f"{URL}{image.pk}/original/").streaming_content) == data
    assert not {path for path in media_files() if path.startswith("renditions/")}


# --- The embedded set-up --------------------------------------------------------------


def test_importing_the_wsgi_module_outside_a_server_starts_no_thread() -> None:
    import portal.wsgi  # noqa: F401, PLC0415 - importing it is what this test does

    names = {thread.name for thread in threading.enumerate()}
    assert not names & {"portal-sweeper", "portal-images"}


def test_a_sweep_round_requeues_interrupted_images_and_deletes_orphans(
    commit: Any, settings: Any, media_files: Any
) -> None:
    image = upload(commit, corpus.jpeg(), "a.jpg")
    interrupted(image, deaths=1)
    orphan = storage.put("renditions/00/orphan.webp", b"left by a killed run")
    settings.IMAGE_STUCK_AFTER_SECONDS = 0
    settings.IMAGE_ORPHAN_GRACE_SECONDS = 0
    with commit():
        assert embedded.sweep() == (1, 1)
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    assert orphan not in media_files()
