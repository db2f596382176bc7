"""Decoding under a memory ceiling and a time limit, where one bad file can
harm nothing but the process decoding it.

``process()`` decodes each image in a child process forked for it, with its
data segment capped, and kills it when it runs past the time limit. A crash,
an exhausted heap or a runaway decode ends there: the caller (a Celery pool
process, the embedded web server, a management command) stays standing, with
none of the half-broken state a MemoryError can leave in a long-lived process.

Several threads may call ``process()`` at once (``import_images`` decodes
one image per core): each call has a child of its own, each child under the
ceiling. ``stop_children()`` kills every child under way (Ctrl-C) and makes
their callers raise Stopped; the child itself ignores SIGINT, so a Ctrl-C in
a terminal reaches the process that decides, not the decoders behind it.

Like ``uploads.processing``, this module knows nothing of Django: the child
imports only ``uploads.processing`` (and Pillow), and everything it needs
comes in as arguments, but for the image, which comes through a pipe of its
own within the time limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import AuthenticationString  # type: ignore[attr-defined]
from typing import Any, NoReturn

from PIL import Image

from uploads import processing

__all__ = [
    "Died",
    "NotStarted",
    "OutOfMemory",
    "Stopped",
    "TimedOut",
    "exhausted_memory",
    "process",
    "resume_children",
    "stop_children",
]

_MB = 1024 * 1024
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# A fork server forks each child from a small, single-threaded process that
# has already imported Pillow: cheap to fork, and safe to fork from a
# multi-threaded web server (which a plain fork is not).
_context = multiprocessing.get_context("forkserver")
# How long a start that found the fork server gone waits to learn that the
# process is stopping (a Ctrl-C) before it reports the failure.
FORK_SERVER_GONE_WAIT_SECONDS = 5.0
_context.set_forkserver_preload(["uploads.sandbox"])
# Pillow loads its format plugins on first use: once here, so that every
# child forked from the server starts with them loaded.
Image.init()


class OutOfMemory(Exception):
    """Decoding needed more memory than the ceiling allows."""

    def __init__(self, limit_mb: int) -> None:
        super().__init__(f"ran out of memory (limit {limit_mb} MB)" if limit_mb else "ran out of memory")
        self.limit_mb = limit_mb


class TimedOut(Exception):
    """Decoding ran past the time limit; the child was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


class Died(Exception):
    """The child died without an answer (a crash, or killed from outside)."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the process decoding the image died (exit code {exitcode})")
        self.exitcode = exitcode


class NotStarted(OSError):
    """The decoding child could not be started: this machine is short of
    processes (EAGAIN), of memory for the fork (ENOMEM) or of file
    descriptors, or its fork server died trying. The machine's trouble, not
    the image's, and likely gone a while later: an OSError, so that what
    tries again later when the store is briefly away does so here too."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"could not start the process to decode the image: {str(cause) or type(cause).__name__}"
        )


class Stopped(BaseException):
    """This process is stopping (stop_children()): the decoder was killed, or
    not started. Not an Exception, so that nothing on the way out records the
    image as failed or its decoder as dead: it stays as it was, for the sweep."""

    def __init__(self) -> None:
        super().__init__("stopped before the image was processed")


class _Children:
    """The decoding children under way in this process, and whether it is stopping."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[multiprocessing.process.BaseProcess] = set()
        self.stopping = False
        # Set before the lock is taken: a start that failed waits on it
        # while holding the lock (see process()).
        self.stopped = threading.Event()


_children = _Children()


def stop_children() -> None:
    """Kill every decoding child under way and start no new one until
    resume_children(); each caller waiting on one raises Stopped."""
    _children.stopped.set()
    with _children.lock:
        _children.stopping = True
        running = list(_children.running)
    for child in running:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            child.kill()


def resume_children() -> None:
    with _children.lock:
        _children.stopping = False
        _children.stopped.clear()


def _limit_memory(limit_mb: int) -> None:
    """Cap the data segment (heap and private mappings, where pixels live): an
    allocation over it fails with MemoryError instead of the kernel's OOM
    killer taking down whatever else runs on the machine."""
    if limit_mb <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = limit_mb * _MB
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


@contextlib.contextmanager
def _children_allowed() -> Iterator[None]:
    """Let a Celery pool process start the child.

    Billiard marks its pool processes daemonic, and multiprocessing refuses
    daemonic processes children lest they be orphaned when it is stopped;
    this child cannot be: it is reaped before process() returns, and killed
    with the fork server should its parent be killed (_die_with_parent). The
    process's key is billiard's own type, which multiprocessing will not hand
    on: the same bytes go in its own type.
    """
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon, authkey = config.get("daemon"), config.get("authkey")
    config["daemon"] = False
    if authkey is not None:
        config["authkey"] = AuthenticationString(bytes(authkey))
    try:
        yield
    finally:
        config["daemon"] = daemon
        if authkey is not None:
            config["authkey"] = authkey


def _die_with_parent() -> None:
    """Be killed when the fork server exits, which it does once the process
    that asked for this child is gone (killed at a Celery hard time limit, say):
    an orphaned decode must not run on unbounded.

    The fork server exits when every copy of its caller's end of the pipe
    that keeps it running is closed, and it hands a copy to each child it
    forks: kept open here, it would keep the server running, and so this
    child, for as long as this child runs."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    server: Any = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    alive, server._forkserver_alive_fd = server._forkserver_alive_fd, None
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what led to it (processing wraps what it cannot name)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def exhausted_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the memory ceiling being hit.

    Under RLIMIT_DATA a thread's stack may be the allocation that fails, which
    Python reports as "can't start new thread" rather than MemoryError.
    """
    return any(
        isinstance(cause, MemoryError)
        or (isinstance(cause, RuntimeError) and "can't start new thread" in str(cause))
        for cause in _causes(exc)
    )


def _decode(
    data: bytes,
    preset: processing.Preset,
    *,
    max_pixels: int,
    memory_limit_mb: int,
    focal_point: processing.FocalPoint | None = None,
    crops_only: bool = False,
) -> processing.Result:
    try:
        return processing.process(
            data, preset, max_pixels=max_pixels, focal_point=focal_point, crops_only=crops_only
        )
    except (processing.ImageRejected, processing.ProcessingError, MemoryError, RuntimeError) as exc:
        if exhausted_memory(exc):
            raise OutOfMemory(memory_limit_mb) from None
        raise


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0)


def _write(fd: int, data: bytes, deadline: float | None) -> bool:
    """Write ``data`` to the pipe ``fd`` as its reader takes it, until the
    deadline: False when it passed first. Raises BrokenPipeError when the
    reader is gone."""
    os.set_blocking(fd, False)
    writable = select.poll()
    writable.register(fd, select.POLLOUT)
    sent = 0
    with memoryview(data) as view:
        while True:
            with contextlib.suppress(BlockingIOError):
                sent += os.write(fd, view[sent:])
            if sent == len(view):
                return True
            # A deadline already passed leaves one try: a small image fits
            # in the pipe whatever its reader does.
            remaining = _remaining(deadline)
            if remaining == 0:
                return False
            if not writable.poll(None if remaining is None else math.ceil(remaining * 1000)):
                return False


def _died(child: multiprocessing.process.BaseProcess) -> NoReturn:
    """Raise for a child that ended without an answer: Stopped when
    stop_children() killed it, else Died."""
    child.join()
    if _children.stopping:
        raise Stopped from None
    raise Died(child.exitcode) from None


def process(
    data: bytes,
    preset: processing.Preset,
    *,
    max_pixels: int,
    memory_limit_mb: int,
    time_limit: float | None,
    focal_point: processing.FocalPoint | None = None,
    crops_only: bool = False,
    nice: int = 0,
) -> processing.Result:
    """``processing.process`` under the ceiling and the time limit, in a child
    whose CPU priority is lowered by ``nice`` (0 to 19; 0 leaves it as is).

    Raises what ``processing.process`` raises, and OutOfMemory, TimedOut,
    Died or NotStarted. Whatever interrupts the wait (Celery's
    SoftTimeLimitExceeded) kills the child on its way out.
    """
    # The limit counts from this call: waiting for another thread's start,
    # and starting the child (the fork server's own first start with it,
    # seconds on a busy machine), are part of it, as they are of a worker's
    # hard limit.
    deadline = time.monotonic() + time_limit if time_limit and time_limit > 0 else None
    options: dict[str, Any] = {"focal_point": focal_point, "crops_only": crops_only}
    with contextlib.ExitStack() as fds:
        try:
            receiver, sender = _context.Pipe(duplex=False)
            fds.callback(receiver.close)
            fds.callback(sender.close)
            reader, writer = os.pipe()
        except OSError as exc:  # out of file descriptors
            raise NotStarted(exc) from exc
        fds.callback(os.close, writer)
        image = Connection(reader, writable=False)
        fds.callback(image.close)
        # The image has a pipe of its own, written below: in the arguments,
        # start() would write it to the child whole, blocking until the child
        # had read it, holding the lock and heedless of the time limit.
        child = _context.Process(
            target=_child,
            args=(sender, image, len(data), preset, max_pixels, memory_limit_mb, nice, options),
            name="image-decoder",
            daemon=True,
        )
        # One start at a time: _children_allowed() changes this process's
        # multiprocessing state, and stop_children() must see every child.
        with _children.lock:
            if _children.stopping:
                raise Stopped
            try:
                with _children_allowed():
                    child.authkey = os.urandom(32)
                    child.start()
            except (EOFError, OSError) as exc:
                # The fork server went with a Ctrl-C sent to the process group;
                # the main thread, interrupted by the same signal, stops the
                # children a moment later. Until then this is no failure of the
                # image (a broken pipe would have marked it failed). Otherwise
                # the machine could not fork (or the fork server died of it).
                if _children.stopping or _children.stopped.wait(FORK_SERVER_GONE_WAIT_SECONDS):
                    raise Stopped from None
                raise NotStarted(exc) from exc
            _children.running.add(child)
        # The child has its ends now: a child that dies is seen by the
        # ends left here (a broken pipe, an end of file).
        sender.close()
        image.close()
        try:
            try:
                handed_over = _write(writer, data, deadline)
            except BrokenPipeError:
                _died(child)
            # poll() also returns when the child dies: recv() then finds EOF.
            if not handed_over or not receiver.poll(_remaining(deadline)):
                raise TimedOut(time_limit or 0)
            try:
                kind, payload = receiver.recv()
            except EOFError:
                _died(child)
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            child.close()
            with _children.lock:
                _children.running.discard(child)
    if kind == "ok":
        result: processing.Result = payload
        return result
    if kind == "memory":
        raise OutOfMemory(memory_limit_mb)
    if kind == "rejected":
        message, code, detail = payload
        raise processing.ImageRejected(message, code=code, detail=detail)
    message, detail = payload
    raise processing.ProcessingError(message, detail=detail)


def _child(
    sender: Connection,
    image: Connection,
    size: int,
    preset: processing.Preset,
    max_pixels: int,
    memory_limit_mb: int,
    nice: int,
    options: dict[str, Any],
) -> None:
    _die_with_parent()
    # Ctrl-C in a terminal signals the whole process group: the parent stops
    # its children itself (stop_children), and tells an interruption from a
    # crash only if they do not die of the signal first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Read first, as the parent waits on it, and before the ceiling: the
    # image counts against it all the same once it is set (RLIMIT_DATA weighs
    # the whole data segment at each allocation), and one larger than the
    # ceiling then fails in the decode, as running out of memory, not here
    # with nothing to say so.
    with open(image.fileno(), "rb", closefd=False) as stream:
        data = stream.read(size)
    image.close()
    if len(data) < size:
        return  # the parent is gone, or gave up on this child
    _limit_memory(memory_limit_mb)
    if nice > 0:
        # Before any thread starts: the encoders' threads inherit it.
        os.nice(min(nice, 19))
    outcome: tuple[str, Any]
    try:
        outcome = (
            "ok",
            _decode(data, preset, max_pixels=max_pixels, memory_limit_mb=memory_limit_mb, **options),
        )
    except OutOfMemory:
        outcome = ("memory", None)
    except processing.ImageRejected as exc:
        outcome = ("rejected", (exc.message, exc.code, exc.detail))
    except processing.ProcessingError as exc:
        outcome = ("error", (exc.message, exc.detail))
    except Exception as exc:  # noqa: BLE001 - anything else is the image failing, said in words
        # Its own text names internals: the log has it, the reason does not.
        outcome = ("error", ("The image could not be processed.", f"{type(exc).__name__}: {exc}"))
    del data
    try:
        sender.send(outcome)
    except MemoryError:
        # Pickling the renditions was the allocation too many.
        sender.send(("memory", None))
    sender.close()
