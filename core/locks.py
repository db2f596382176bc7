"""One writer at a time for a check-then-insert, across processes and hosts.

Two runs of the same import at once (a cron job that overlaps the last one)
would each find a row missing and each insert it. ``serialized(key)`` makes
the second wait until the first's transaction ends, then it sees the row.
``hold_shared(key)`` lets writers that check each their own rows go on side
by side, while one that checks a batch of everyone's holds ``key`` alone.

``shared(keys)`` and ``exclusive(keys)`` are the two sides of a
write-then-reference against a check-then-delete: any number of writers
share a key while they write what a row of theirs will point at and commit
that row; a deleter holds the key alone, so it waits for them and then sees
their rows.

On PostgreSQL these are advisory locks: nothing is written, and they go with
the transaction (or the session) even when the process dies. They need READ
COMMITTED (Django's default), so that the statements after the wait see what
the other transaction committed.

On SQLite the portal's transactions are IMMEDIATE: each takes the database's
one write lock at BEGIN and holds it until it ends, so ``serialized``,
``hold`` and ``hold_shared`` have nothing more to take. ``shared`` and
``exclusive`` guard blocks that are not one transaction (an object written
to a store, then a row committed), so there they are OS file locks (``flock``) on files of a folder
beside the database, ``<database>-locks/`` (SQLite means one machine): a key
locks one of ``LOCK_FILES`` files, chosen by its number, so the folder stays
that small. Keys that share a file wait for each other now and then, which
costs a moment and never a wrong answer. The kernel releases a process's locks
when it dies. Like the advisory locks, they are a thread's own: the threads of
one process wait for each other, a thread never waits for itself on a file it
holds, and one that asks alone for a file it shares waits for the other
sharers only (the kernel lets its shared hold go meanwhile). A block that
takes keys while it holds others waits holding them; on PostgreSQL the
deadlock detector ends a wait in a circle. Here a circle needs a thread that
takes a file while it holds one after it in the files' order, so such a take
waits no longer than the database's timeout, then fails (``OperationalError``,
as a wait for SQLite's write lock does) and its block lets its files go; a
take in order waits as long as it must. ``uploads.storage.writing`` still runs
what its block starts (a deletion, an image's processing) once it lets its
keys go, so that no wait is spent that way. A thread that asks alone for a
file it shares, while it holds one after it, is not bounded, and can be one of
a circle: by the time it would give up, the kernel has let its shared hold of
that file go, which could not be taken back without another wait. No caller
does so.
An exclusive holder, once it has the files, also waits for the database's
write lock in an empty transaction (IMMEDIATE, so the order is always files
then database): a sharer inside a transaction lets its files go at the end of
its block, and its transaction, still holding the write lock, keeps the
deleter waiting until it ends (up to the database's timeout: the portal shares
keys outside transactions, so that such a sharer never waits for a deleter
that waits for it). Then the block runs outside a transaction (or in the
caller's): it sees what that sharer committed, and a deleter that deletes from
a slow store keeps no other writer of the database waiting meanwhile.
An in-memory database (the tests') is one process's alone: nothing is taken,
and an exclusive block runs as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections, transaction
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
    _hold(key, shared=False, using=using)


def hold_shared(key: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """``hold``, shared with the other transactions that share ``key``: it
    waits for a holder of ``key`` (``hold``) only, and a holder waits for
    every sharer. For writers that need not take turns among themselves, only
    with one that checks what they all write."""
    _hold(key, shared=True, using=using)


def _hold(key: str, *, shared: bool, using: str) -> None:
    name = "hold_shared" if shared else "hold"
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TransactionManagementError(f"locks.{name}() needs a transaction (transaction.atomic).")
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [lock_id(key)])
    elif connection.vendor != "sqlite":
        raise NotImplementedError(f"No lock for {connection.vendor}.")


def hold_expression(key: str, *, using: str = DEFAULT_DB_ALIAS) -> str:
    """``hold(key)`` as an SQL expression, for a statement that takes the key
    along with what it reads: one round trip instead of two. Evaluated once
    per row the statement returns (none: nothing is taken); only inside a
    transaction, as ``hold``."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TransactionManagementError("locks.hold_expression() needs a transaction (transaction.atomic).")
    if connection.vendor == "postgresql":
        # A number of this module's making, not input: written into the statement.
        return f"pg_advisory_xact_lock({lock_id(key)})"
    if connection.vendor == "sqlite":
        return "NULL"
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
    a transaction of its own (or the caller's), and the keys are held until
    it ends. On a SQLite file they are held until the block ends, and the
    block runs as it is, once the transaction that held the database's write
    lock when the files were taken has ended (it waits for the lock, then
    lets it go), so that it holds no other writer up. Elsewhere (an in-memory SQLite database too)
    nothing is taken and the block runs as it is."""
    connection = connections[using]
    if connection.vendor == "sqlite" and lock_dir(connection) is not None:
        with _files(connection, _ordered_ids(keys), fcntl.LOCK_EX):
            # BEGIN IMMEDIATE waits for the transaction that holds the write lock.
            with transaction.atomic(using=using):
                pass
            yield
        return
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
    the block writes commits with that transaction, so on PostgreSQL the locks
    are held until it ends; on SQLite that transaction's write lock keeps an
    exclusive holder waiting until then, and the files go with the block.
    """
    connection = connections[using]
    numbers = _ordered_ids(keys)
    if connection.vendor == "sqlite":
        with _files(connection, numbers, fcntl.LOCK_SH):
            yield
        return
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


# How many lock files a SQLite database's keys are spread over: few enough
# that a deletion of a thousand keys holds them all open at once.
LOCK_FILES = 64


@dataclass
class _Held:
    """One lock file open on this thread, and how often each way it is held."""

    fd: int
    shared: int = 0
    exclusive: int = 0


class _Files(threading.local):
    def __init__(self) -> None:
        self.held: dict[str, _Held] = {}


_files_held = _Files()


def lock_dir(connection: Any) -> Path | None:
    """The folder of a SQLite database's lock files, beside it; None for an
    in-memory database, which no other process opens."""
    if connection.is_in_memory_db():
        return None
    return Path(f"{connection.settings_dict['NAME']}-locks")


@contextmanager
def _files(connection: Any, numbers: list[int], mode: int) -> Iterator[None]:
    """Hold the lock files of the numbers (``flock`` ``mode``) for the block,
    taken in one order (the files', sorted) by every taker."""
    folder = lock_dir(connection)
    if folder is None or not numbers:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"{n:02x}") for n in sorted({number % LOCK_FILES for number in numbers})]
    patience = float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))
    with ExitStack() as stack:
        for path in paths:
            _file_take(path, mode, patience)
            stack.callback(_file_release, path, mode)
        yield


def _file_take(path: str, mode: int, patience: float) -> None:
    held = _files_held.held.get(path)
    if held is None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if any(other > path and Path(other).parent == Path(path).parent for other in _files_held.held):
                _flock_within(fd, mode, path, patience)
            else:
                fcntl.flock(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        held = _files_held.held[path] = _Held(fd)
    elif mode == fcntl.LOCK_EX and not held.exclusive:
        # Held shared by this thread: alone now, like a PostgreSQL session
        # that asks for a key it shares.
        fcntl.flock(held.fd, fcntl.LOCK_EX)
    if mode == fcntl.LOCK_EX:
        held.exclusive += 1
    else:
        held.shared += 1


def _flock_within(fd: int, mode: int, path: str, patience: float) -> None:
    """Take the lock out of the files' order: the one wait that can be part
    of a circle, so it ends after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OperationalError(
                    f"gave up the lock file {path} after {patience:g} s (the database's timeout): "
                    "this block holds lock files after it, and the holder may be waiting for them"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _file_release(path: str, mode: int) -> None:
    held = _files_held.held[path]
    if mode == fcntl.LOCK_EX:
        held.exclusive -= 1
    else:
        held.shared -= 1
    if not held.shared and not held.exclusive:
        del _files_held.held[path]
        os.close(held.fd)  # the lock goes with the file's last descriptor
    elif mode == fcntl.LOCK_EX and not held.exclusive:
        fcntl.flock(held.fd, fcntl.LOCK_SH)
