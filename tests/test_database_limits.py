"""A query the database refuses for its size or shape is the request's
doing: a 400 naming the kind of limit, not a 503 calling it an outage (which
the client would retry for ever). SQLite here, with its limits lowered on the
test's connection so that a small request goes past them; tests/integration/
test_database_limits_postgres.py has PostgreSQL's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.db.utils import ConnectionHandler
from django.test import Client
from rest_framework.test import APIClient

from core.errors import database_limit, dependency_unavailable
from tests.factories import FeedbackFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's limits, set on its connection"),
]


def refused(sql: str, params: list[Any]) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, connection.cursor() as cursor:
        cursor.execute(sql, params)
    return caught.value


@pytest.mark.parametrize(
    ("category", "value", "sql", "params", "words"),
    [
        (
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER,
            10,
            "SELECT " + ", ".join(["%s"] * 11),
            [1] * 11,
            "too many values",
        ),
        (sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 10, "SELECT " + " + ".join(["1"] * 20), [], "too many conditions"),
        (
            sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
            10,
            "SELECT 'a' GLOB %s",
            ["*" * 11],
            "a search pattern too long",
        ),
        (sqlite3.SQLITE_LIMIT_LENGTH, 100, "SELECT %s", ["x" * 101], "a value too long"),
    ],
    ids=["variables", "expression depth", "pattern", "length"],
)
def test_each_limit_sqlite_refuses_a_statement_over_is_named_and_is_no_outage(
    sqlite_limit: Callable[[int, int], None],
    category: int,
    value: int,
    sql: str,
    params: list[Any],
    words: str,
) -> None:
    sqlite_limit(category, value)
    error = refused(sql, params)

    assert database_limit(error) == words
    assert dependency_unavailable(error) is None


def test_a_database_that_cannot_be_opened_is_an_outage(tmp_path: Path) -> None:
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "gone" / "db.sqlite3")}}
    )
    away = handler["default"]
    try:
        with pytest.raises(DatabaseError) as caught:
            away.ensure_connection()
    finally:
        away.close()

    assert database_limit(caught.value) is None
    assert dependency_unavailable(caught.value) == "database"


def test_a_request_whose_query_the_database_refuses_is_a_400_naming_the_limit(
    sqlite_limit: Callable[[int, int], None], visitor: APIClient
) -> None:
    FeedbackFactory(title="apple pie")
    # Deep enough for a search of ten words, not for the 20 the API takes.
    sqlite_limit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 15)
    assert visitor.get("/api/v1/feedback/", {"search": " ".join(["apple"] * 10)}).json()["count"] == 1

    response = visitor.get("/api/v1/feedback/", {"search": " ".join(["apple"] * 20)})

    assert response.status_code == 400, response.content
    assert "too many conditions" in response.json()["detail"]
    assert "Retry-After" not in response


def test_a_page_whose_query_the_database_refuses_is_a_400_page_naming_the_limit(
    sqlite_limit: Callable[[int, int], None], admin_client: Client
) -> None:
    sqlite_limit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 15)

    response = admin_client.get("/admin/catalog/feedback/", {"q": " ".join(["apple"] * 20)})

    assert response.status_code == 400
    assert "too many conditions" in response.content.decode()
    assert "Expression tree" not in response.content.decode()
