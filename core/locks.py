"""One writer at a time for a check-then-insert, across processes and hosts.

Two runs of the same import at once (a cron job that overlaps the last one)
would each find a row missing and each insert it. ``serialized(key)`` makes
the second wait until the first's transaction ends, then it sees the row.

``shared(keys)`` and ``exclusive(keys)`` are the two sides of a
write-then-reference against a check-then-delete: any number of writers
share a key while they write what a row of theirs will point at and commit
that row; a deleter holds the key alone, so it waits for them and then sees
their rows.

On PostgreSQL this is a transaction-level advisory lock: nothing is written,
and it goes with the transaction even when the process dies. It needs READ
COMMITTED (Django's default), so that the statements after the wait see what
the other transaction committed. On SQLite the portal's transactions are
IMMEDIATE: each takes the database's one write lock at BEGIN and holds it
until it ends, so the block is serialized already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
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


def _ordered_ids(keys: Iterable[str]) -> list[int]:
    # One order for every taker of several keys: two of them never wait on each other.
    return sorted({lock_id(key) for key in keys})


# Lock numbers per statement: a sweep's batch of keys takes a couple of round trips.
_TAKE_PER_STATEMENT = 500


def _take(cursor: Any, function: str, numbers: list[int]) -> None:
    """Call the lock function on each number, in the list's order (the rows
    of a VALUES list are read in order), a few hundred a statement."""
    for start in range(0, len(numbers), _TAKE_PER_STATEMENT):
        chunk = numbers[start : start + _TAKE_PER_STATEMENT]
        rows = ", ".join(["(CAST(%s AS bigint))"] * len(chunk))
        statement = f"SELECT count({function}(column1)) FROM (VALUES {rows}) AS numbers"  # noqa: S608 - a function of this module's, and placeholders
        cursor.execute(statement, chunk)


@contextmanager
def exclusive(keys: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block holding the keys alone: it waits for their sharers
    (``shared``) to end, and they wait for it. On PostgreSQL the block runs in
    a transaction of its own (or the caller's) holding the keys until it
    ends; elsewhere nothing is taken and the block runs as it is."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            _take(cursor, "pg_advisory_xact_lock", _ordered_ids(keys))
        yield


@contextmanager
def shared(keys: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Share the keys with their other sharers for the block, after waiting
    for any ``exclusive`` holder of them.

    Outside a transaction the block needs none (a slow write to a store holds
    no transaction open): the locks are the session's, released at the end of
    the block, once whatever the block wrote has committed. Inside one, what
    the block writes commits with that transaction, so the locks are held
    until it ends. Nothing to take on SQLite.
    """
    connection = connections[using]
    numbers = _ordered_ids(keys)
    if connection.vendor != "postgresql" or not numbers:
        yield
        return
    in_transaction = connection.in_atomic_block
    function = "pg_advisory_xact_lock_shared" if in_transaction else "pg_advisory_lock_shared"
    try:
        with connection.cursor() as cursor:
            _take(cursor, function, numbers)
        yield
    finally:
        # Also after a failed take: a session's lock outlives the statement
        # that failed after taking it (releasing one not taken only warns).
        if not in_transaction:
            _release_shared(connection, numbers)


def _release_shared(connection: Any, numbers: list[int]) -> None:
    try:
        with connection.cursor() as cursor:
            _take(cursor, "pg_advisory_unlock_shared", numbers)
    except DatabaseError:
        # A session's locks end with it: closed, it can keep none for ever.
        connection.close()
