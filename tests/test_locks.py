"""core.locks: on PostgreSQL a transaction-level advisory lock on the key's
number, taken by each import's check-then-insert; nothing to do on SQLite,
whose IMMEDIATE transactions already take turns. Shared locks for writers of
stored objects, held alone by their deletion: advisory locks on PostgreSQL,
file locks beside a SQLite database. tests/integration/
test_import_overlap.py runs two imports at once on a real PostgreSQL,
tests/integration/test_concurrent_writes.py meets writes on a fleet, and
tests/integration/test_embedded.py an upload and a deletion in two processes
on SQLite."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from catalog import services
from catalog.models import Feedback
from core import locks
from tests.factories import NO_S3_SERVER, s3_store
from tests.uploads import corpus
from uploads import services as upload_services
from uploads import storage


@pytest.fixture
def postgres_locks(monkeypatch: pytest.MonkeyPatch, db: None) -> list[int]:
    """The lock numbers taken, the test database taken for PostgreSQL by
    core.locks alone (SQLite is given a pg_advisory_xact_lock to run)."""
    taken: list[int] = []
    connection.ensure_connection()
    connection.connection.create_function("pg_advisory_xact_lock", 1, taken.append)
    for shared in ("pg_advisory_lock_shared", "pg_advisory_xact_lock_shared", "pg_advisory_unlock_shared"):
        connection.connection.create_function(shared, 1, lambda number: None)
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


@pytest.mark.parametrize(
    "hold", [locks.hold, locks.hold_shared, locks.hold_expression], ids=["alone", "shared", "expression"]
)
def test_outside_a_transaction_the_lock_is_refused(hold: Any) -> None:
    """It would end with the statement that took it."""
    assert not connection.in_atomic_block
    with pytest.raises(TransactionManagementError):
        hold("some key")


def test_a_feedback_import_holds_the_feedback_import_lock(postgres_locks: list[int], tmp_path: Path) -> None:
    (tmp_path / "1.txt").write_text("Title\nName\n2021-02-03\nText\n")
    services.feedback_import_files([tmp_path / "1.txt"])
    assert postgres_locks == [locks.lock_id(services.FEEDBACK_IMPORT_LOCK)]


def test_a_posted_review_shares_the_feedback_import_lock_then_holds_its_own(
    postgres_locks: list[int],
) -> None:
    """Every post takes the two in this order, and an import's batch the
    first alone: a post waits for the batch under way, not for other posts."""
    with CaptureQueriesContext(connection) as queries:
        services.feedback_submit_once(title="Title", name="Name", date=dt.date(2021, 2, 3), text="Text")
    fingerprint = Feedback.objects.get().fingerprint
    assert [q["sql"] for q in queries if "advisory" in q["sql"]] == [
        f"SELECT pg_advisory_xact_lock_shared({locks.lock_id(services.FEEDBACK_IMPORT_LOCK)})",
        f"SELECT pg_advisory_xact_lock({locks.lock_id(f'catalog.feedback:{fingerprint}')})",
    ]


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


def test_linking_an_upload_takes_the_stems_key_in_the_statement_that_locks_the_image(
    postgres_locks: list[int],
) -> None:
    """It runs after every upload commits, on the uploader's time: the key
    comes with the read, not in a round trip of its own."""
    image = upload_services.image_upload(file=corpus.png(), original_name="001.png")
    product, _ = services.product_upsert(name="Apple", weight=100, image_name="001.jpeg")
    product.image = None
    product.save()
    del postgres_locks[:]
    with CaptureQueriesContext(connection) as queries:
        assert services.product_link_image(image=image) == 1
    statements = [q["sql"] for q in queries if q["sql"].split()[0] not in ("SAVEPOINT", "RELEASE")]
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE"]
    assert f"pg_advisory_xact_lock({locks.lock_id('catalog.product:False:stem:001')})" in statements[0]
    assert postgres_locks == [locks.lock_id("catalog.product:False:stem:001")]


def _lock_calls(queries: CaptureQueriesContext, function: str) -> list[int]:
    """The lock numbers passed to ``function``, in the order of the calls."""
    numbers = []
    for query in queries:
        if f"{function}(" in query["sql"]:
            numbers += [int(n) for n in re.findall(r"CAST\((-?\d+) AS bigint\)", query["sql"])]
    return numbers


def _position(queries: CaptureQueriesContext, fragment: str) -> int:
    return next(i for i, query in enumerate(queries) if fragment in query["sql"])


# Outside a transaction, as in a request: the test's own would hold the locks.
@pytest.mark.django_db(transaction=True)
def test_an_upload_shares_the_key_of_its_original_until_its_row_is_saved(postgres_locks: list[int]) -> None:
    with CaptureQueriesContext(connection) as queries:
        image = upload_services.image_upload(file=corpus.png(), original_name="a.png")
    key = locks.lock_id(f"uploads.object:{image.file.name}")
    # (Its processing, run here once the row commits, shares its renditions' keys too.)
    assert _lock_calls(queries, "pg_advisory_lock_shared")[0] == key
    assert _lock_calls(queries, "pg_advisory_unlock_shared").count(key) == 1
    taken = _position(queries, "pg_advisory_lock_shared")
    saved = _position(queries, 'INSERT INTO "uploads_image"')
    released = _position(queries, f"pg_advisory_unlock_shared(column1)) FROM (VALUES (CAST({key} AS")
    assert taken < saved < released


@pytest.mark.django_db(transaction=True)
def test_an_upload_processed_in_its_own_thread_is_processed_once_it_lets_its_key_go(
    postgres_locks: list[int],
) -> None:
    """Processing shares its renditions' keys: taken while the original's is
    held, they would be waited for holding it, in a circle with a deletion
    that holds one of them and waits for the original's."""
    with CaptureQueriesContext(connection) as queries:
        image = upload_services.image_upload(file=corpus.png(), original_name="a.png")
    image.refresh_from_db()
    assert image.status == image.Status.READY
    key = locks.lock_id(f"uploads.object:{image.file.name}")
    released = _position(queries, f"pg_advisory_unlock_shared(column1)) FROM (VALUES (CAST({key} AS")
    assert released < _position(queries, 'INSERT INTO "uploads_rendition"')


def test_inside_a_transaction_the_shared_keys_are_held_until_it_ends(postgres_locks: list[int]) -> None:
    """What the block writes commits with the caller's transaction: released
    before that, a deletion could miss it."""
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), locks.shared(["k"]):
        pass
    assert _lock_calls(queries, "pg_advisory_xact_lock_shared") == [locks.lock_id("k")]
    assert _lock_calls(queries, "pg_advisory_unlock_shared") == []


@pytest.mark.django_db(transaction=True)
def test_the_shared_keys_are_released_when_the_block_fails(postgres_locks: list[int]) -> None:
    with CaptureQueriesContext(connection) as queries, pytest.raises(RuntimeError), locks.shared(["k"]):
        raise RuntimeError
    assert _lock_calls(queries, "pg_advisory_unlock_shared") == [locks.lock_id("k")]


def _failing(message: str) -> Any:
    def function(number: int) -> None:
        raise RuntimeError(message)

    return function


@pytest.mark.django_db(transaction=True)
def test_the_shared_keys_are_released_when_their_take_fails(postgres_locks: list[int]) -> None:
    """A statement that fails may have taken some of its keys first, and a
    session's lock outlives the statement that took it."""
    connection.connection.create_function("pg_advisory_lock_shared", 1, _failing("cut off"))
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(OperationalError),
        locks.shared(["k", "j"]),
    ):
        pytest.fail("the block ran without its keys")
    assert _lock_calls(queries, "pg_advisory_unlock_shared") == sorted(
        [locks.lock_id("k"), locks.lock_id("j")]
    )


@pytest.mark.django_db(transaction=True)
def test_a_session_whose_shared_keys_cannot_be_released_is_closed(
    postgres_locks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its locks end with it: left open, it would keep them for ever, and
    every deletion of those keys would wait for it."""
    closed = threading.Event()
    monkeypatch.setattr(connection, "close", closed.set)
    connection.connection.create_function("pg_advisory_unlock_shared", 1, _failing("cut off"))
    with locks.shared(["k"]):
        assert not closed.is_set()
    assert closed.is_set()


def test_a_deletion_holds_its_keys_alone_before_it_asks_which_are_still_used(
    postgres_locks: list[int],
) -> None:
    keys = {"renditions/aa/one.webp", "originals/bb/two.jpg"}
    with CaptureQueriesContext(connection) as queries:
        storage.delete_unreferenced(keys)
    assert postgres_locks == sorted(locks.lock_id(f"uploads.object:{key}") for key in keys)
    assert _position(queries, "pg_advisory_xact_lock") < _position(queries, 'FROM "uploads_image"')


class _Bucket:
    """A bucket's client that keeps the keys it is asked to delete."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        self.deleted.append(Key)


# Outside a transaction, as in a request: the test's own would hold the locks.
@pytest.mark.django_db(transaction=True)
def test_an_upload_the_bucket_did_not_confirm_holds_its_key_alone_before_it_takes_the_object_back(
    postgres_locks: list[int], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An identical upload beside it may have found the object there and be
    committing its row: asked while that upload shares the key, the check
    would miss its row and delete its original from under it."""
    s3_store(settings, "originals", bucket="originals")
    bucket = _Bucket()
    monkeypatch.setattr(storage, "_client", lambda *args: bucket)

    def timed_out(key: str, data: bytes, *, sha256: str | None = None) -> str:
        raise ReadTimeoutError(endpoint_url=NO_S3_SERVER)

    monkeypatch.setattr(storage, "put", timed_out)
    data = corpus.png()
    key = storage.original_key(hashlib.sha256(data).hexdigest(), "PNG")
    with CaptureQueriesContext(connection) as queries, pytest.raises(upload_services.StorageUnavailable):
        upload_services.image_upload(file=data, original_name="a.png")
    number = locks.lock_id(f"uploads.object:{key}")
    assert postgres_locks == [number]
    shared_released = _position(
        queries, f"pg_advisory_unlock_shared(column1)) FROM (VALUES (CAST({number} AS"
    )
    taken_alone = _position(queries, f"pg_advisory_xact_lock(column1)) FROM (VALUES (CAST({number} AS")
    assert shared_released < taken_alone < _position(queries, 'FROM "uploads_image"')
    assert bucket.deleted == [key]  # no row holds it: taken back


def test_many_keys_are_taken_in_one_order_a_few_hundred_a_statement(postgres_locks: list[int]) -> None:
    keys = [f"key {n}" for n in range(1200)]
    with CaptureQueriesContext(connection) as queries, locks.exclusive(reversed(keys)):
        pass
    assert postgres_locks == sorted(locks.lock_id(key) for key in keys)
    assert len([q for q in queries if "pg_advisory_xact_lock" in q["sql"]]) == 3


# --- SQLite: file locks ------------------------------------------------------------


class _SQLiteFile:
    vendor = "sqlite"

    def __init__(self, name: str) -> None:
        self.settings_dict = {"NAME": name}

    def is_in_memory_db(self) -> bool:
        return False


def test_the_lock_files_of_a_sqlite_database_are_in_a_folder_beside_it(tmp_path: Path) -> None:
    assert locks.lock_dir(_SQLiteFile(str(tmp_path / "db.sqlite3"))) == tmp_path / "db.sqlite3-locks"


@pytest.mark.django_db
def test_an_in_memory_sqlite_database_takes_no_file() -> None:
    """No other process opens it."""
    assert connection.is_in_memory_db()
    assert locks.lock_dir(connection) is None


@pytest.fixture
def lock_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: None) -> Path:
    """The test database's lock folder, as if it were a file."""
    folder = tmp_path / "db.sqlite3-locks"
    monkeypatch.setattr(locks, "lock_dir", lambda connection: folder)
    return folder


def _lock_file(folder: Path, key: str) -> Path:
    return folder / f"{locks.lock_id(key) % locks.LOCK_FILES:02x}"


@contextlib.contextmanager
def _other_open(path: Path) -> Iterator[int]:
    """The file opened apart, as another process would."""
    fd = os.open(path, os.O_RDWR)
    try:
        yield fd
    finally:
        os.close(fd)


def _can_take(path: Path, mode: int) -> bool:
    with _other_open(path) as fd:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_on_sqlite_a_sharer_keeps_deleters_out_but_not_other_sharers(lock_files: Path) -> None:
    path = _lock_file(lock_files, "k")
    with locks.shared(["k"]):
        assert not _can_take(path, fcntl.LOCK_EX)
        assert _can_take(path, fcntl.LOCK_SH)
    assert _can_take(path, fcntl.LOCK_EX)


def test_on_sqlite_a_deleter_holds_its_keys_alone(lock_files: Path) -> None:
    path = _lock_file(lock_files, "k")
    with locks.exclusive(["j", "k"]):
        assert not _can_take(path, fcntl.LOCK_SH)
        assert not _can_take(_lock_file(lock_files, "j"), fcntl.LOCK_SH)
    assert _can_take(path, fcntl.LOCK_EX)


def test_on_sqlite_a_thread_takes_again_what_it_holds(lock_files: Path) -> None:
    """As a PostgreSQL session never waits for itself: a writer whose row
    failed deletes what it stored while it still shares the key."""
    path = _lock_file(lock_files, "k")
    with locks.shared(["k"]):
        with locks.shared(["k"]), locks.exclusive(["k"]):
            assert not _can_take(path, fcntl.LOCK_SH)
        # Shared again, not let go.
        assert _can_take(path, fcntl.LOCK_SH)
        assert not _can_take(path, fcntl.LOCK_EX)
    assert _can_take(path, fcntl.LOCK_EX)


def test_on_sqlite_the_files_are_let_go_when_the_block_fails(lock_files: Path) -> None:
    path = _lock_file(lock_files, "k")
    with pytest.raises(RuntimeError), locks.shared(["k"]):
        raise RuntimeError
    with pytest.raises(RuntimeError), locks.exclusive(["k"]):
        raise RuntimeError
    assert _can_take(path, fcntl.LOCK_EX)


def test_on_sqlite_many_keys_take_a_bounded_number_of_files(lock_files: Path) -> None:
    with locks.exclusive([f"key {n}" for n in range(1200)]):
        taken = sorted(p.name for p in lock_files.iterdir())
    assert taken == [f"{n:02x}" for n in range(locks.LOCK_FILES)]


# --- SQLite: the database beside the files -----------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path, django_db_blocker: Any) -> Iterator[tuple[str, Path]]:
    """A database alias with the portal's SQLite settings on a file (the test
    database is in memory), holding a table ``rows``; each thread opens its
    own connection to it, as another process would."""
    default = connections.settings[DEFAULT_DB_ALIAS]
    if default["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite's locking")
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE rows (key TEXT)")
    alias = "sqlite_file"
    connections.settings[alias] = {**copy.deepcopy(default), "NAME": str(path)}
    try:
        with django_db_blocker.unblock():
            yield alias, path
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


def test_on_a_sqlite_file_a_deleter_keeps_no_other_writer_waiting(sqlite_file: tuple[str, Path]) -> None:
    """Its block deletes from a store, which can take a while: holding the
    database's write lock meanwhile, it would keep every writer waiting, and
    failing once the database's timeout is up."""
    alias, path = sqlite_file
    # No wait at all (timeout=0): the write lock is free, or this fails ("database is locked").
    with (
        locks.exclusive(["k"], using=alias),
        contextlib.closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other,
    ):
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO rows VALUES ('other')")
        other.execute("COMMIT")
    assert not connections[alias].in_atomic_block


def test_on_a_sqlite_file_a_deleter_waits_for_a_sharer_s_transaction_then_sees_its_row(
    sqlite_file: tuple[str, Path],
) -> None:
    """A sharer inside a transaction lets its files go at the end of its
    block, before its row commits: the deleter waits for that transaction
    (the database's write lock), then its check sees the row."""
    alias, _ = sqlite_file
    waiting_or_checked = threading.Event()

    def deleter() -> list[str]:
        connection = connections[alias]  # this thread's own
        try:
            connection.ensure_connection()
            # A BEGIN (for the write lock) is the deleter waiting for the sharer's transaction.
            connection.connection.set_trace_callback(
                lambda sql: waiting_or_checked.set() if sql.startswith("BEGIN") else None
            )
            with locks.exclusive(["k"], using=alias), connection.cursor() as cursor:
                cursor.execute("SELECT key FROM rows")
                return [key for (key,) in cursor.fetchall()]
        finally:
            waiting_or_checked.set()
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic(using=alias):
            with locks.shared(["k"], using=alias), connections[alias].cursor() as cursor:
                cursor.execute("INSERT INTO rows VALUES ('shared')")
            checked = pool.submit(deleter)
            waiting_or_checked.wait()
        assert checked.result() == ["shared"]


def _keys_in_two_files() -> tuple[str, str]:
    """Two keys whose lock files come one before the other."""
    first = "key 0"
    later = next(
        f"key {n}"
        for n in range(1, 1000)
        if locks.lock_id(f"key {n}") % locks.LOCK_FILES > locks.lock_id(first) % locks.LOCK_FILES
    )
    return first, later


PATIENCE = 0.2


@pytest.fixture
def impatient_sqlite_file(sqlite_file: tuple[str, Path]) -> tuple[str, Path]:
    """The SQLite file with a short timeout."""
    alias, path = sqlite_file
    connections.settings[alias].setdefault("OPTIONS", {})["timeout"] = PATIENCE
    return alias, path.parent / f"{path.name}-locks"


def _waiting_on(path: Path) -> bool:
    """Whether a take of the file is blocked, as the kernel lists it."""
    inode = os.stat(path).st_ino
    return any(
        fields[1] == "->" and fields[6].endswith(f":{inode}")
        for fields in (line.split() for line in Path("/proc/locks").read_text().splitlines())
    )


def test_on_a_sqlite_file_two_blocks_that_wait_for_each_other_do_not_wait_for_ever(
    impatient_sqlite_file: tuple[str, Path],
) -> None:
    """One shares the first file and asks for the later one alone, the other
    the other way round: the take out of the files' order gives up after the
    database's timeout and its block lets its files go, so the other goes on."""
    alias, folder = impatient_sqlite_file
    first, later = _keys_in_two_files()
    holding = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def take(held: str, wanted: str) -> None:
        try:
            with locks.shared([held], using=alias):
                holding.wait()
                with locks.exclusive([wanted], using=alias):
                    outcomes[held] = "done"
        except OperationalError as exc:
            outcomes[held] = exc
        finally:
            connections[alias].close()

    # Daemons: were the circle never broken, they would not keep the tests from ending.
    threads = [
        threading.Thread(target=take, args=pair, daemon=True) for pair in ((first, later), (later, first))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "each waits for the other"
    assert outcomes[first] == "done"
    assert isinstance(outcomes[later], OperationalError)
    assert re.search(
        r"gave up the lock file .* after 0\.2 s \(the database's timeout\)", str(outcomes[later])
    )
    assert _can_take(_lock_file(folder, first), fcntl.LOCK_EX)
    assert _can_take(_lock_file(folder, later), fcntl.LOCK_EX)


def test_on_a_sqlite_file_a_take_in_the_files_order_waits_as_long_as_it_must(
    impatient_sqlite_file: tuple[str, Path],
) -> None:
    """No circle can go through it: it is not given up."""
    alias, folder = impatient_sqlite_file
    first, later = _keys_in_two_files()
    with locks.shared([later], using=alias):
        pass  # the file exists
    path = _lock_file(folder, later)

    def take() -> str:
        try:
            with locks.shared([first], using=alias), locks.shared([later], using=alias):
                return "done"
        finally:
            connections[alias].close()

    with _other_open(path) as fd, ThreadPoolExecutor(1) as pool:
        fcntl.flock(fd, fcntl.LOCK_EX)
        taken = pool.submit(take)
        while not _waiting_on(path):
            assert not taken.done(), taken.exception()
        time.sleep(PATIENCE * 3)  # past the wait a take out of order has
        assert not taken.done()
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert taken.result(timeout=30) == "done"


def _open_here(path: Path) -> int:
    """How many descriptors of this process are open on the file."""
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == os.path.realpath(path))


def test_on_a_sqlite_file_a_take_given_up_leaves_its_file_closed(
    impatient_sqlite_file: tuple[str, Path],
) -> None:
    """A process that gives up takes now and then would otherwise run out of
    descriptors, one for each take given up."""
    alias, folder = impatient_sqlite_file
    first, later = _keys_in_two_files()
    with locks.shared([first], using=alias):
        pass  # the file exists
    path = _lock_file(folder, first)
    try:
        with _other_open(path) as fd:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with (
                pytest.raises(OperationalError, match="gave up the lock file"),
                locks.shared([later], using=alias),
                locks.exclusive([first], using=alias),
            ):
                pytest.fail("the block ran without its keys")
            assert _open_here(path) == 1  # the other's own
    finally:
        connections[alias].close()
