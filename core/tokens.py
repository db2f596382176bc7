"""Expired API tokens deleted, a batch at a time, as expired sessions are
(core.sessions). Making and revoking tokens is portal.tokens'.

A token past API_TOKEN_MAX_AGE_DAYS is refused as it is sent
(core.authentication); its row would stay in the table for ever. Beat runs
this daily (portal.tasks.clear_expired_tokens), the embedded set-up's
sweeper at start and once a day (uploads.embedded).
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core import sweeps
from core.authentication import token_max_age

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


def expired() -> QuerySet[Token]:
    """The tokens expired by now, as core.authentication refuses them: none
    when tokens never expire (API_TOKEN_MAX_AGE_DAYS is 0)."""
    max_age = token_max_age()
    if max_age is None:
        return Token.objects.none()
    return Token.objects.filter(created__lte=timezone.now() - max_age)


def clear_expired(
    *,
    budget_seconds: float | None = None,
    batch_size: int = BATCH_SIZE,
    cut_off_by: tuple[type[BaseException], ...] = (),
) -> tuple[int, bool]:
    """Delete the tokens expired by now: (how many, whether all are gone);
    none, without a query, when tokens never expire (API_TOKEN_MAX_AGE_DAYS
    is 0). A run that spends ``budget_seconds``, or that one of
    ``cut_off_by`` stops, leaves the rest to the next run."""
    if token_max_age() is None:
        return 0, True
    return sweeps.delete_in_batches(
        expired(),
        name="expired API tokens",
        logger=logger,
        budget_seconds=budget_seconds,
        batch_size=batch_size,
        cut_off_by=cut_off_by,
    )
