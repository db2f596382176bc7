"""Expired sessions are cleared, by beat's daily run with a worker and by the
embedded server's sweeper without one, a batch at a time."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils import timezone

from core import sessions
from portal import tasks
from uploads import embedded

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def session(*, expires_in: dt.timedelta) -> Session:
    return Session.objects.create(
        session_key=f"session{next(_keys):032d}", session_data="", expire_date=timezone.now() + expires_in
    )


def keys() -> set[str]:
    return set(Session.objects.values_list("session_key", flat=True))


@pytest.fixture(autouse=True)
def _sessions_due_at_the_next_round(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever round of the sweeper another test ran.
    monkeypatch.setattr(embedded._state, "sessions_due", float("-inf"))


def test_the_daily_run_deletes_the_expired_sessions_and_keeps_the_live_ones() -> None:
    expired = session(expires_in=-dt.timedelta(seconds=1))
    live = session(expires_in=dt.timedelta(days=14))

    assert tasks.clear_expired_sessions.apply().get() == 1

    assert keys() == {live.session_key}
    assert expired.session_key not in keys()


def test_beat_runs_it_once_a_day_on_the_scheduled_queue() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["clear-expired-sessions"]
    assert entry["task"] == tasks.clear_expired_sessions.name
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert (len(schedule.minute), len(schedule.hour), len(schedule.day_of_week)) == (1, 1, 7)
    assert entry["options"] == {"expires": 86_400, "queue": settings.SCHEDULED_QUEUE}


def test_a_round_of_the_embedded_sweeper_clears_them_then_waits_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session(expires_in=-dt.timedelta(seconds=1))
    live = session(expires_in=dt.timedelta(days=14))

    embedded.sweep()
    assert keys() == {live.session_key}

    later = session(expires_in=-dt.timedelta(seconds=1))
    embedded.sweep()  # the next round, a minute on: not due yet
    assert keys() == {live.session_key, later.session_key}

    a_day_on = embedded.time.monotonic() + 86_400
    monkeypatch.setattr(embedded.time, "monotonic", lambda: a_day_on)
    embedded.sweep()
    assert keys() == {live.session_key}


def test_a_backlog_is_deleted_in_batches_and_a_run_past_its_budget_leaves_the_rest() -> None:
    for _ in range(5):
        session(expires_in=-dt.timedelta(days=30))
    live = session(expires_in=dt.timedelta(days=1))

    # No budget: every batch of two, one statement each, until none is left.
    assert sessions.clear_expired(batch_size=2) == (5, True)
    assert keys() == {live.session_key}

    for _ in range(5):
        session(expires_in=-dt.timedelta(days=30))
    # A budget spent at once: the first batch, then the next run goes on.
    assert sessions.clear_expired(batch_size=2, budget_seconds=0) == (2, False)
    assert len(keys()) == 4
    assert sessions.clear_expired(batch_size=2) == (3, True)
    assert keys() == {live.session_key}


def test_each_batch_is_a_statement_of_its_own(django_assert_num_queries: Any) -> None:
    for _ in range(3):
        session(expires_in=-dt.timedelta(days=30))
    # Per batch a select of keys and a delete of those; the last batch,
    # short, ends the run.
    with django_assert_num_queries(4):
        assert sessions.clear_expired(batch_size=2) == (3, True)


def test_a_run_cut_off_by_the_time_limit_keeps_what_it_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        session(expires_in=-dt.timedelta(days=30))

    class CutOff(Exception):
        pass

    delete = QuerySet.delete
    calls = itertools.count()

    def cut_off_second(self: QuerySet[Any]) -> Any:
        if next(calls) == 1:
            raise CutOff
        return delete(self)

    monkeypatch.setattr(QuerySet, "delete", cut_off_second)
    assert sessions.clear_expired(batch_size=2, cut_off_by=(CutOff,)) == (2, False)
    assert len(keys()) == 1


@pytest.mark.parametrize(
    ("engine", "why"),
    [
        ("django.contrib.sessions.backends.signed_cookies", "signed cookies"),
        ("django.contrib.sessions.backends.cache", "the cache, which expires them itself"),
    ],
)
def test_an_engine_that_keeps_no_rows_makes_it_a_run_that_says_why(
    settings: Any, caplog: pytest.LogCaptureFixture, engine: str, why: str
) -> None:
    stray = session(expires_in=-dt.timedelta(days=1))  # not the engine's: left alone
    settings.SESSION_ENGINE = engine

    with caplog.at_level("INFO", logger="core.sessions"):
        assert tasks.clear_expired_sessions.apply().get() == 0

    assert keys() == {stray.session_key}
    [record] = [r for r in caplog.records if r.name == "core.sessions"]
    assert record.getMessage().startswith("no expired sessions to clear: sessions are kept in ")
    assert why in record.getMessage()
    assert engine in record.getMessage()


def test_cached_database_sessions_are_cleared_from_the_table(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    session(expires_in=-dt.timedelta(seconds=1))
    live = session(expires_in=dt.timedelta(days=1))

    assert tasks.clear_expired_sessions.apply().get() == 1
    assert keys() == {live.session_key}


def test_a_round_whose_orphan_sweep_fails_still_clears_them_and_does_its_other_chores(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The store away for a day: the orphan sweep, which lists it, fails each
    # round; the sessions, in the database, are no reason to wait for it.
    def store_away(**kwargs: Any) -> list[str]:
        raise OSError("the store is away")

    recropped: list[bool] = []

    def recrop() -> int:
        recropped.append(True)
        return 0

    monkeypatch.setattr(embedded.storage, "sweep_orphans", store_away)
    monkeypatch.setattr(embedded.services, "image_sweep_moved_crops", recrop)
    session(expires_in=-dt.timedelta(seconds=1))
    live = session(expires_in=dt.timedelta(days=14))

    assert embedded.sweep() == (0, 0)

    assert keys() == {live.session_key}
    assert recropped == [True]
    assert "the orphaned objects' sweep failed" in caplog.text
    assert "the store is away" in caplog.text
