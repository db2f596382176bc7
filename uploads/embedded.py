"""The embedded set-up looking after itself.

With no broker there is no worker and no Celery beat, so the server process
(``make run``'s runserver, or gunicorn) does their part: it processes uploads
on a background thread (see uploads.dispatch) and, at start and every
SWEEP_INTERVAL_SECONDS, processes again the images an interrupted run left
behind, cuts again the crops a focal point's move left uncut (the store was
away), and deletes orphaned files, and the files of admin imports previewed
and never confirmed, past their time; at start and once a day, it clears
the expired sessions and API tokens. Started from portal/wsgi.py when the
process serves; management commands and tests never start it.

Several server processes on one machine (gunicorn's workers) share the
``var/`` folder: a lock there lets one of them sweep, and another take over
when it exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import IO, TypeVar

from django.conf import settings
from django.db import close_old_connections

from core import imports, sessions, sweeps, tokens
from uploads import dispatch, services, storage

logger = logging.getLogger(__name__)


# How often the expired sessions and API tokens are cleared, as beat's daily runs.
DAILY_SECONDS = 86_400


class _State:
    started = False
    lock = threading.Lock()
    # When the expired sessions, and the expired tokens, are next cleared
    # (time.monotonic()): at the first round, then a day after a run that
    # cleared them all.
    sessions_due = float("-inf")
    tokens_due = float("-inf")


_state = _State()


def start() -> bool:
    """Start background processing and the sweeper, once per process.

    Returns whether they run (not with a broker: workers and beat do it).
    """
    if settings.BROKER_CONFIGURED:
        return False
    with _state.lock:
        if _state.started:
            return True
        _state.started = True
        dispatch.background_start()
        threading.Thread(target=_sweep_forever, name="portal-sweeper", daemon=True).start()
    return True


def _forget() -> None:
    # A forked child has none of its parent's threads (gunicorn --preload).
    _state.started = False


os.register_at_fork(after_in_child=_forget)


def sweep() -> tuple[int, int]:
    """One round: (images re-queued or failed, orphaned objects deleted).

    A chore that fails (the orphan sweep listing a store that is away) is
    logged and the round goes on with the others: the chores after it would
    otherwise wait as long as it fails, the expired sessions, which are in
    the database, among them.
    """
    stuck = _chore("stuck images' sweep", services.image_sweep_stuck, 0)
    # A stretch of the store a round, as a worker's run does: a large store
    # would hold up the round's other chores for as long as it takes to list.
    orphans: list[str] = _chore(
        "orphaned objects' sweep",
        lambda: storage.sweep_orphans(
            grace_seconds=settings.IMAGE_ORPHAN_GRACE_SECONDS, budget_seconds=sweeps.budget()
        ),
        [],
    )
    if orphans:
        logger.warning("deleted %d orphaned objects", len(orphans))
    _chore("import files' sweep", imports.sweep_expired, 0)
    _chore("expired sessions' sweep", _clear_expired_sessions, None)
    _chore("expired tokens' sweep", _clear_expired_tokens, None)
    # Last: each image it takes is decoded again, which may take a while.
    _chore("moved crops' sweep", services.image_sweep_moved_crops, 0)
    return stuck, len(orphans)


_T = TypeVar("_T")


def _chore(name: str, run: Callable[[], _T], failed: _T) -> _T:
    """``run()``, or ``failed`` once the exception it raised is logged."""
    try:
        return run()
    except Exception:
        logger.exception("the %s failed; the round goes on with its other chores", name)
        return failed


def _clear_expired_sessions() -> None:
    now = time.monotonic()
    if now < _state.sessions_due:
        return
    _, done = sessions.clear_expired(budget_seconds=sweeps.budget())
    # A backlog larger than a round's budget goes on at the next round.
    if done:
        _state.sessions_due = now + DAILY_SECONDS


def _clear_expired_tokens() -> None:
    now = time.monotonic()
    if now < _state.tokens_due:
        return
    _, done = tokens.clear_expired(budget_seconds=sweeps.budget())
    if done:
        _state.tokens_due = now + DAILY_SECONDS


def _leader_lock() -> IO[bytes] | None:
    """The sweeper's lock in var/, or None while another process holds it."""
    path = settings.VAR_DIR / "sweeper.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle  # held (open) for the life of the process


def _sweep_forever() -> None:
    lock: IO[bytes] | None = None
    while True:
        try:
            lock = lock or _leader_lock()
            if lock is not None:
                close_old_connections()
                sweep()
        except Exception:
            # The database or the disk briefly away: try again next round.
            logger.exception("sweep failed")
        finally:
            close_old_connections()
        time.sleep(settings.SWEEP_INTERVAL_SECONDS)
