"""One writer at a time for a check-then-insert, across processes and hosts.

Two runs of the same import at once (a cron job that overlaps the last one)
would each find a row missing and each insert it. ``serialized(key)`` makes
the second wait until the first's transaction ends, then it sees the row.

On PostgreSQL this is a transaction-level advisory lock: nothing is written,
and it goes with the transaction even when the process dies. It needs READ
COMMITTED (Django's default), so that the statements after the wait see what
the other transaction committed. On SQLite the portal's transactions are
IMMEDIATE: each takes the database's one write lock at BEGIN and holds it
until it ends, so the block is serialized already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.transaction import TransactionManagementError


def lock_id(key: str) -> int:
    """The key as PostgreSQL's signed 64-bit lock number, the same in every
    process (``hash()`` is salted per process)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold(key: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Wait until no other transaction holds ``key``, then hold it until the
    current transaction ends. Only inside one: outside, the lock would end
    with the statement that took it."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TransactionManagementError("locks.hold() needs a transaction (transaction.atomic).")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id(key)])
    elif connection.vendor != "sqlite":
        raise NotImplementedError(f"No lock for {connection.vendor}.")


@contextmanager
def serialized(key: str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block in a transaction that no other holder of ``key`` runs
    beside. The lock is held until the outermost transaction ends, not the
    block: keep that transaction short."""
    with transaction.atomic(using=using):
        hold(key, using=using)
        yield
