"""Expired sessions cleared, as Django's ``clearsessions`` does, but a
batch at a time.

Django deletes a session only when its own visitor signs out; the rows of
everyone else stay in the table after they expire, which grows for ever on a
busy site. Beat runs this daily (portal.tasks.clear_expired_sessions), the
embedded set-up's sweeper at start and once a day (uploads.embedded).

``clearsessions`` is one DELETE of every expired row: after a long while
without it, one statement (and one transaction) that holds its locks for
minutes. Here each batch is a statement of its own, committed on its own,
and a run starts none once its budget is spent: the next run goes on.
"""

from __future__ import annotations

import logging
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.utils import timezone

from core import sweeps

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
# The engines that keep nothing to clear, and why.
KEEP_NOTHING = {
    "django.contrib.sessions.backends.signed_cookies": (
        "sessions are kept in the visitors' signed cookies, which expire with them: the server keeps none"
    ),
    "django.contrib.sessions.backends.cache": "sessions are kept in the cache, which expires them itself",
}


def clear_expired(
    *,
    budget_seconds: float | None = None,
    batch_size: int = BATCH_SIZE,
    cut_off_by: tuple[type[BaseException], ...] = (),
) -> tuple[int, bool]:
    """Delete the sessions expired by now: (how many, whether all are gone).

    A run that spends ``budget_seconds``, or that one of ``cut_off_by``
    stops (the task's soft time limit), keeps what it deleted and leaves
    the rest to the next run.
    """
    engine = settings.SESSION_ENGINE
    store = import_module(engine).SessionStore
    if engine in KEEP_NOTHING:
        logger.info("no expired sessions to clear: %s (%s)", KEEP_NOTHING[engine], engine)
        return 0, True
    if not issubclass(store, DatabaseStore):
        # Files, or an engine of another package: its own way, as clearsessions.
        store.clear_expired()
        return 0, True
    model = store.get_model_class()
    # Expired again at each batch: a session saved since its key was read is kept.
    expired = model.objects.filter(expire_date__lt=timezone.now())
    return sweeps.delete_in_batches(
        expired,
        name="expired sessions",
        logger=logger,
        budget_seconds=budget_seconds,
        batch_size=batch_size,
        cut_off_by=cut_off_by,
    )
