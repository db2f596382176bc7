"""core.locks: on PostgreSQL a transaction-level advisory lock on the key's
number, taken by each import's check-then-insert; nothing to do on SQLite,
whose IMMEDIATE transactions already take turns. tests/integration/
test_import_overlap.py runs two imports at once on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from catalog import services
from core import locks
from tests.uploads import corpus
from uploads import services as upload_services


@pytest.fixture
def postgres_locks(monkeypatch: pytest.MonkeyPatch, db: None) -> list[int]:
    """The lock numbers taken, the test database taken for PostgreSQL by
    core.locks alone (SQLite is given a pg_advisory_xact_lock to run)."""
    taken: list[int] = []
    connection.ensure_connection()
    connection.connection.create_function("pg_advisory_xact_lock", 1, taken.append)
    monkeypatch.setattr(locks, "connections", {"default": _Postgres()})
    return taken


class _Postgres:
    """The default connection, reporting itself as PostgreSQL."""

    vendor = "postgresql"

    def __getattr__(self, name: str) -> object:
        return getattr(connection, name)


def test_a_key_has_the_same_lock_number_in_every_process() -> None:
    # hash() would differ from one process to the next.
    assert locks.lock_id("catalog.feedback-import") == locks.lock_id("catalog.feedback-import")
    assert locks.lock_id("catalog.feedback-import") == -149407200201980544
    assert locks.lock_id("a") != locks.lock_id("b")
    assert -(2**63) <= locks.lock_id("uploads.image:x") < 2**63


def test_on_postgresql_the_lock_is_an_advisory_lock_of_the_transaction(postgres_locks: list[int]) -> None:
    with CaptureQueriesContext(connection) as queries, locks.serialized("some key"):
        pass
    assert [q["sql"] for q in queries if "advisory" in q["sql"]] == [
        f"SELECT pg_advisory_xact_lock({locks.lock_id('some key')})"
    ]
    assert postgres_locks == [locks.lock_id("some key")]


@pytest.mark.django_db
def test_on_sqlite_there_is_nothing_to_take() -> None:
    with CaptureQueriesContext(connection) as queries, locks.serialized("some key"):
        pass
    assert [q["sql"] for q in queries if "advisory" in q["sql"]] == []


def test_outside_a_transaction_the_lock_is_refused() -> None:
    """It would end with the statement that took it."""
    assert not connection.in_atomic_block
    with pytest.raises(TransactionManagementError):
        locks.hold("some key")


def test_a_feedback_import_holds_the_feedback_import_lock(postgres_locks: list[int], tmp_path: Path) -> None:
    (tmp_path / "1.txt").write_text("Title\nName\n2021-02-03\nText\n")
    services.feedback_import_files([tmp_path / "1.txt"])
    assert postgres_locks == [locks.lock_id(services.FEEDBACK_IMPORT_LOCK)]


def test_writers_of_one_product_take_one_lock(postgres_locks: list[int]) -> None:
    services.product_upsert(name="Apple", weight=100, image_name="001.jpeg")
    services.product_upsert(name="Green apple", weight=120, image_name="001.png")
    services.product_upsert(name="Pear", weight=100, image_name="002.jpeg")
    services.product_upsert(name="Pear", weight=100)
    first, again, other, by_name = postgres_locks
    assert first == again
    assert len({first, other, by_name}) == 3


def test_an_image_import_locks_the_bytes_it_adds(postgres_locks: list[int]) -> None:
    data = corpus.png()
    _, created = upload_services.image_import(data=data, original_name="a.png")
    _, again = upload_services.image_import(data=data, original_name="b.png")
    assert (created, again) == (True, False)
    # The second found the row before storing anything: no lock to take.
    assert len(postgres_locks) == 1


def test_an_edit_takes_the_lock_of_the_product_it_makes(postgres_locks: list[int]) -> None:
    """So an import adding that product waits for the edit, then finds it."""
    product, _ = services.product_upsert(name="Apple", weight=100, image_name="001.jpeg")
    del postgres_locks[:]
    services.product_update(product_id=product.pk, image_name="003.png")
    by_edit = set(postgres_locks)
    plum, outcome = services.product_upsert(name="Plum", weight=100, image_name="003.jpeg")
    assert (plum.pk, outcome) == (product.pk, "updated")
    assert len(by_edit) == 1
    assert set(postgres_locks) == by_edit
