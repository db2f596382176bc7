"""Writers held at a chosen statement, for the PostgreSQL tests that force
two writers to meet: each runs the portal's code on a thread of its own,
with its own connection, and ``Paused`` holds it after the first statement
that contains the words given, until the test lets it go on. The
interleaving is forced, not hoped for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from tests.servers import PostgresServer

# Long enough for a loaded machine; a wait that ends by it is a failure.
PATIENCE = 60


class Paused:
    """Holds a thread after the first statement of its own connection that
    contains every one of ``words``, until ``go()``."""

    def __init__(self, *words: str) -> None:
        self.words = words
        self.reached = threading.Event()
        self.released = threading.Event()

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if not self.reached.is_set() and all(word in sql for word in self.words):
            self.reached.set()
            assert self.released.wait(PATIENCE), "never released"
        return result

    def wait(self) -> None:
        assert self.reached.wait(PATIENCE), f"no statement with {self.words} was run"

    def go(self) -> None:
        self.released.set()


class Writer(threading.Thread):
    """``call`` on a thread of its own, on the database, held by ``paused``."""

    def __init__(self, server: PostgresServer, paused: Paused, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.server, self.paused, self.call = server, paused, call
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.as_default(), connections["default"].execute_wrapper(self.paused):
                self.result = self.call()
        except Exception as exc:  # noqa: BLE001 - handed to the test by outcome()
            self.error = exc
        finally:
            self.paused.reached.set()

    def outcome(self) -> Any:
        self.join(PATIENCE)
        assert not self.is_alive(), "the writer did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def lock_waiters(server: PostgresServer) -> int:
    """How many of the database's sessions wait for a lock."""
    with server.connect() as conn:
        [(count,)] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [server.dbname],
        ).fetchall()
    return int(count)


def waiting(server: PostgresServer, *writers: Writer) -> list[bool]:
    """Once each of ``writers`` has either ended or waits for a lock, which
    of them wait."""
    deadline = time.monotonic() + PATIENCE
    while lock_waiters(server) < sum(writer.is_alive() for writer in writers):
        assert time.monotonic() < deadline, "a writer neither ended nor waited"
        time.sleep(0.01)
    return [writer.is_alive() for writer in writers]
