"""What a sweep may spend, and rows deleted a batch at a time (core.sweeps)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils import timezone

from core import sweeps


def test_a_sweep_s_budget_is_a_quarter_of_the_soft_time_limit_else_of_the_hard_one(settings: Any) -> None:
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 100
    settings.CELERY_TASK_TIME_LIMIT = 180
    assert sweeps.budget() == 25
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0  # none
    assert sweeps.budget() == 45


@pytest.mark.django_db
def test_a_row_that_no_longer_matches_once_its_key_was_read_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session its user came back to between the read of a batch's keys
    and their deletion has been given a new expiry: it is not deleted."""
    now = timezone.now()
    for key in ("gone", "renewed"):
        Session.objects.create(session_key=key, session_data="", expire_date=now - dt.timedelta(days=1))
    values_list = QuerySet.values_list

    def read_then_renew(rows: QuerySet[Any], *fields: str, **kwargs: Any) -> list[Any]:
        keys = list(values_list(rows, *fields, **kwargs))
        Session.objects.filter(session_key="renewed").update(expire_date=now + dt.timedelta(days=1))
        return keys

    monkeypatch.setattr(QuerySet, "values_list", read_then_renew)
    expired = Session.objects.filter(expire_date__lt=now)
    deleted = sweeps.delete_in_batches(
        expired,
        name="sessions",
        logger=logging.getLogger(__name__),
        budget_seconds=None,
        batch_size=10,
        cut_off_by=(),
    )
    assert deleted == (1, True)
    assert list(Session.objects.values_list("session_key", flat=True)) == ["renewed"]
