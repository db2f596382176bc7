"""The health check's question to a real PostgreSQL: bounded while the
server takes it and says nothing, and leaving a server that answers (and
what the portal asks it next) alone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from portal import health
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def database(
    postgres: PostgresServer, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The connection the check asks, with a bound of 2 s."""
    with django_db_blocker.unblock():
        wrapper = postgres.django_connection(connect_timeout=2)
        monkeypatch.setattr(health, "connection", wrapper)
        yield wrapper
        wrapper.close()


class Hung(BaseException):
    """Not an Exception: the check, which takes any of those for the
    server's failure and asks again afresh, must not take this one."""


def _raise_hung(signum: int, frame: Any) -> None:
    raise Hung


@pytest.fixture
def patience() -> Iterator[None]:
    """A check still waiting after 30 s is stopped, and the test fails."""
    before = signal.signal(signal.SIGALRM, _raise_hung)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def _backend_pid(database: Any) -> int:
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
    return pid


def test_a_server_process_that_stops_answering_fails_the_check_within_its_bound(
    database: Any, patience: None
) -> None:
    """The server took the connection and answered once, then stops (as a
    process stuck on a dead disk would): its socket stays open, the kernel
    taking what is sent, and no answer comes."""
    pid = _backend_pid(database)
    os.kill(pid, signal.SIGSTOP)
    try:
        check = health.check_database()
    finally:
        os.kill(pid, signal.SIGCONT)
    # Said only of a query the check's own bound cut off, naming the bound.
    assert (check.ok, check.detail) == (False, "NoAnswer: no answer to SELECT 1 within 2 s")
    # The cut connection is not used again: the next question has a new one.
    assert database.connection is None
    assert _backend_pid(database) != pid


def test_a_server_that_answers_passes_and_its_connection_is_left_as_it_was(database: Any) -> None:
    pid = _backend_pid(database)
    raw = database.connection

    assert health.check_database().ok

    time.sleep(2.5)  # past the bound: nothing is cut once the check is over
    assert database.connection is raw
    assert _backend_pid(database) == pid


def test_a_kept_connection_the_server_has_closed_since_is_replaced(
    database: Any, postgres: PostgresServer
) -> None:
    """After a restart of the server, or its idle timeout: the check asks
    again on a new connection instead of failing once."""
    pid = _backend_pid(database)
    with postgres.connect() as other:
        # Waits (up to a minute) until the process has ended, its socket closed with it.
        assert other.execute("SELECT pg_terminate_backend(%s, 60000)", [pid]).fetchone() == (True,)

    check = health.check_database()

    assert (check.ok, check.detail) == (True, "postgresql")
    assert _backend_pid(database) != pid
