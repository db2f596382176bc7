"""Decoding under a memory ceiling and a time limit, where one bad file can
harm nothing but the process decoding it.

A Celery pool child is such a process already: ``confine()`` caps its memory
when it starts, and Celery's time limits stop it. Anywhere else (the embedded
web server, management commands, tests) ``process()`` decodes in a child
process forked for the image, capped the same way, killed when it runs past the
time limit; a crash or an exhausted heap there leaves the caller standing.

Like ``uploads.processing``, this module knows nothing of Django: the child
imports only ``uploads.processing`` (and Pillow), and everything it needs
comes in as arguments.
"""

from __future__ import annotations

import multiprocessing
import resource
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from uploads import processing

__all__ = ["Died", "OutOfMemory", "TimedOut", "confine", "confined", "process"]

_MB = 1024 * 1024

# A fork server forks each child from a small, single-threaded process that
# has already imported Pillow: cheap to fork, and safe to fork from a
# multi-threaded web server (which a plain fork is not).
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["uploads.sandbox"])
# Pillow loads its format plugins on first use: once here, so that every
# child forked from the server starts with them loaded.
Image.init()


class _Confinement:
    """Set in a Celery pool process by ``confine()``."""

    active = False
    # What the process's own time limit raises into whatever runs (Celery's
    # SoftTimeLimitExceeded): not the image's fault, never reported as one.
    interrupts: tuple[type[BaseException], ...] = ()


_confinement = _Confinement()


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


def confine(*, memory_limit_mb: int, interrupts: tuple[type[BaseException], ...] = ()) -> None:
    """Declare this process disposable (a Celery pool child): cap its memory
    and decode images in it directly from now on. ``interrupts`` are what its
    time limit raises; they pass through untouched."""
    _limit_memory(memory_limit_mb)
    _confinement.active = True
    _confinement.interrupts = interrupts


def confined() -> bool:
    return _confinement.active


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
        interrupt = next((c for c in _causes(exc) if isinstance(c, _confinement.interrupts)), None)
        if interrupt is not None:
            raise interrupt from None
        if exhausted_memory(exc):
            raise OutOfMemory(memory_limit_mb) from None
        raise


def process(
    data: bytes,
    preset: processing.Preset,
    *,
    max_pixels: int,
    memory_limit_mb: int,
    time_limit: float | None,
    focal_point: processing.FocalPoint | None = None,
    crops_only: bool = False,
) -> processing.Result:
    """``processing.process`` under the ceiling and the time limit.

    Raises what ``processing.process`` raises, and OutOfMemory, TimedOut or
    Died. In a confined process the caller's own limits apply (Celery's time
    limits), so ``time_limit`` is not used there.
    """
    options: dict[str, Any] = {"focal_point": focal_point, "crops_only": crops_only}
    if _confinement.active:
        return _decode(data, preset, max_pixels=max_pixels, memory_limit_mb=memory_limit_mb, **options)
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_child,
        args=(sender, data, preset, max_pixels, memory_limit_mb, options),
        name="image-decoder",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        # poll() also returns when the child dies: recv() then finds EOF.
        if not receiver.poll(time_limit if time_limit and time_limit > 0 else None):
            raise TimedOut(time_limit or 0)
        try:
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            raise Died(child.exitcode) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if kind == "ok":
        result: processing.Result = payload
        return result
    if kind == "memory":
        raise OutOfMemory(memory_limit_mb)
    if kind == "rejected":
        message, code = payload
        raise processing.ImageRejected(message, code=code)
    raise processing.ProcessingError(payload)


def _child(
    sender: Connection,
    data: bytes,
    preset: processing.Preset,
    max_pixels: int,
    memory_limit_mb: int,
    options: dict[str, Any],
) -> None:
    _limit_memory(memory_limit_mb)
    outcome: tuple[str, Any]
    try:
        outcome = (
            "ok",
            _decode(data, preset, max_pixels=max_pixels, memory_limit_mb=memory_limit_mb, **options),
        )
    except OutOfMemory:
        outcome = ("memory", None)
    except processing.ImageRejected as exc:
        outcome = ("rejected", (exc.message, exc.code))
    except Exception as exc:  # noqa: BLE001 - anything else is the image failing, said in words
        outcome = ("error", str(exc) or type(exc).__name__)
    del data
    try:
        sender.send(outcome)
    except MemoryError:
        # Pickling the renditions was the allocation too many.
        sender.send(("memory", None))
    sender.close()
