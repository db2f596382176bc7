"""Management commands that an operator runs from cron.

A database, a bucket or a broker that is away is told in one line, with the
exit code 1, not in a hundred lines of traceback that bury the reason.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, DataError, IntegrityError
from kombu.exceptions import OperationalError as BrokerError

from core.errors import DependencyUnavailable


def _away(exc: BaseException) -> str | None:
    """What an exception, or one it was raised from, says is away."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DependencyUnavailable):
            return str(seen)
        if isinstance(seen, DatabaseError) and not isinstance(seen, IntegrityError | DataError):
            return f"The database is unavailable: {_first_line(seen)}"
        if isinstance(seen, BrokerError):
            return f"The task queue is unavailable: {_first_line(seen)}"
        if isinstance(seen, BotoCoreError | ClientError):
            return f"The file store is unavailable: {_first_line(seen)}"
        seen = seen.__cause__ or seen.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Command(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except Exception as exc:
            away = _away(exc)
            if away is None:
                raise
            raise CommandError(
                f"{away} Nothing more was done; run it again once it is back.", returncode=1
            ) from exc
