"""A migrated PostgreSQL for the tests of a module that run the portal's
code on it, in place of the suite's SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.processes import manage_py, portal_env
from tests.servers import PostgresServer


@pytest.fixture(scope="module")
def migrated_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        env = portal_env(tmp_path_factory.mktemp("var"), DATABASE_URL=server.url)
        result = manage_py("migrate", "--no-input", env=env, timeout=600)
        assert result.returncode == 0, result.stderr
        yield server


@pytest.fixture
def postgres_database(migrated_postgres: PostgresServer, django_db_blocker: Any) -> Iterator[PostgresServer]:
    """The test's thread on the migrated database, emptied of what the last test wrote."""
    with django_db_blocker.unblock(), migrated_postgres.as_default():
        with migrated_postgres.connect() as conn:
            conn.execute(
                "TRUNCATE catalog_product, catalog_feedback, catalog_person, uploads_image,"
                " uploads_rendition, auth_user CASCADE"
            )
        yield migrated_postgres
