"""PostgreSQL's refusals of a statement past its limits (SQLSTATE class 54)
are named as such and are no outage; a server that is gone still is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from core.errors import POSTGRES_LIMIT, database_limit, dependency_unavailable
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def _connect(server: PostgresServer) -> BaseDatabaseWrapper:
    """A Django connection of its own to ``server`` (the suite's is SQLite)."""
    connection: BaseDatabaseWrapper = server.django_connection(connect_timeout=5)
    return connection


@pytest.fixture
def unblocked(django_db_blocker: Any) -> Iterator[None]:
    """Connections other than the test database's are allowed."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(postgres: PostgresServer, unblocked: None) -> Iterator[BaseDatabaseWrapper]:
    wrapper = _connect(postgres)
    yield wrapper
    wrapper.close()


def refused(database: BaseDatabaseWrapper, *statements: str) -> DatabaseError:
    """The error of the last statement, run after the others."""
    *setup, last = statements
    with database.cursor() as cursor:
        for statement in setup:
            cursor.execute(statement)
        with pytest.raises(DatabaseError) as caught:
            cursor.execute(last)
    return caught.value


@pytest.mark.parametrize(
    ("statements", "words"),
    [
        # 54000 program_limit_exceeded: "requested length too large"
        (["SELECT repeat('x', 2000000000)"], POSTGRES_LIMIT),
        # 54001 statement_too_complex: "stack depth limit exceeded"
        (
            ["SET max_stack_depth = '100kB'", "SELECT " + " + ".join(["1"] * 20_000)],
            "too many conditions",
        ),
        # 54023 too_many_arguments
        (["SELECT concat(" + ", ".join(["'a'"] * 101) + ")"], "too many arguments"),
    ],
    ids=["length", "stack depth", "arguments"],
)
def test_a_statement_past_a_limit_of_postgresql_is_named_and_is_no_outage(
    database: BaseDatabaseWrapper, statements: list[str], words: str
) -> None:
    error = refused(database, *statements)

    assert database_limit(error) == words, error
    assert dependency_unavailable(error) is None


def test_a_postgresql_that_is_gone_is_an_outage(unblocked: None) -> None:
    with PostgresServer() as server:
        database = _connect(server)
        with database.cursor() as cursor:
            cursor.execute("SELECT 1")
        database.close()
        server.stop()
        try:
            with pytest.raises(DatabaseError) as caught:
                database.ensure_connection()
        finally:
            database.close()

    assert database_limit(caught.value) is None
    assert dependency_unavailable(caught.value) == "database"
