from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import pickle
import pwd
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCacheClient
from redis import Redis

from portal import cache as portal_cache
from portal.cache import OPEN_SECONDS, ResilientRedisCache, SharedFileCache
from tests.servers import RedisServer, free_port


def test_a_redis_cache_that_is_away_degrades_instead_of_failing() -> None:
    port = free_port()  # nothing listens there
    cache = ResilientRedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert cache.get("throttle", "fallback") == "fallback"
    cache.set("throttle", [1, 2])
    assert cache.add("lock", 1) is False
    assert cache.incr("lock") == 1
    assert cache.decr("lock") == -1
    assert cache.get_many(["a", "b"]) == {}


# --- A Redis that hangs ---------------------------------------------------------------


class Blackhole:
    """A Redis that takes connections and never answers, as one behind a
    network partition: every call to it waits out its socket timeout."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        self.received = 0

    def seen(self) -> tuple[int, int]:
        """The connections made to it so far, and the bytes sent to it."""
        self.listener.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.connections.append(self.listener.accept()[0])
        for connection in self.connections:
            connection.setblocking(False)
            with contextlib.suppress(BlockingIOError, ConnectionResetError):  # nothing more; a client gone
                while data := connection.recv(65536):
                    self.received += len(data)
        return len(self.connections), self.received

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.listener.close()


class Clock:
    now = 1000.0


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The breakers' clock, which only the test moves; no breaker of an
    earlier test is left."""
    clock = Clock()
    monkeypatch.setattr(portal_cache, "_breakers", {})
    monkeypatch.setattr(portal_cache._Breaker, "clock", staticmethod(lambda: clock.now))
    return clock


def _hanging(url: str, timeout: float = 0.2) -> ResilientRedisCache:
    return ResilientRedisCache(
        url, {"OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout}}
    )


def _every_call(cache: ResilientRedisCache) -> list[Any]:
    return [
        cache.get("throttle", "fallback"),
        cache.set("throttle", [1, 2]),
        cache.add("lock", 1),
        cache.incr("lock"),
        cache.decr("lock", 2),
        cache.delete("lock"),
        cache.touch("lock"),
        cache.has_key("lock"),
        cache.get_many(["a", "b"]),
        cache.set_many({"a": 1, "b": 2}),
        cache.delete_many(["a", "b"]),
        cache.get_or_set("count", 7),
    ]


FALLBACKS: list[Any] = ["fallback", None, False, 1, -2, False, False, False, {}, ["a", "b"], None, 7]


def test_a_redis_that_hangs_costs_one_timeout_and_then_no_call_asks_it(
    blackhole: Blackhole, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = _hanging(blackhole.url)
    with caplog.at_level(logging.WARNING, logger="portal.cache"):
        assert cache.get("throttle", "fallback") == "fallback"  # waits out its timeout
        first = blackhole.seen()
        assert first[0] == 1
        assert first[1] > 0
        for _ in range(3):
            clock.now += (OPEN_SECONDS - 0.1) / 3
            assert _every_call(cache) == FALLBACKS
        other_thread_s = _hanging(blackhole.url)  # Django's cache object of another thread
        assert _every_call(other_thread_s) == FALLBACKS
    assert blackhole.seen() == first
    warnings = [r.getMessage() for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "get skipped, as is every cache call of this process for 5 s" in warnings[0]


def test_after_a_while_one_call_asks_a_hanging_redis_again(blackhole: Blackhole, clock: Clock) -> None:
    cache = _hanging(blackhole.url)
    assert cache.get("throttle", "fallback") == "fallback"
    clock.now += OPEN_SECONDS
    assert cache.add("lock", 1) is False  # tries again, waits out its timeout
    assert blackhole.seen()[0] == 2
    tried = blackhole.seen()
    clock.now += OPEN_SECONDS - 0.1
    assert _every_call(cache) == FALLBACKS  # opened again
    assert blackhole.seen() == tried


def test_while_one_call_asks_again_the_other_threads_keep_their_fallback(
    blackhole: Blackhole, clock: Clock
) -> None:
    cache = _hanging(blackhole.url)
    assert cache.get("throttle", "fallback") == "fallback"
    assert blackhole.seen()[0] == 1
    clock.now += OPEN_SECONDS
    slow = _hanging(blackhole.url, timeout=60)
    trying = threading.Thread(target=slow.get, args=("throttle",))
    trying.start()
    blackhole.listener.setblocking(True)
    blackhole.listener.settimeout(60)
    connection, _ = blackhole.listener.accept()  # the thread's try is under way
    blackhole.connections.append(connection)
    try:
        assert _every_call(cache) == FALLBACKS
        assert blackhole.seen()[0] == 2
    finally:
        connection.shutdown(socket.SHUT_RDWR)  # the try fails at once
        trying.join(timeout=60)
    assert not trying.is_alive()
    assert cache.get("throttle", "fallback") == "fallback"
    assert blackhole.seen()[0] == 2  # opened again by the thread's failure


def _asking_in_a_thread(blackhole: Blackhole) -> tuple[threading.Thread, socket.socket]:
    """A call of another thread that asks the hanging Redis and waits for
    its answer (60 s), once it is under way."""
    blackhole.seen()  # the connections made before it
    slow = _hanging(blackhole.url, timeout=60)
    trying = threading.Thread(target=slow.get, args=("throttle",))
    trying.start()
    blackhole.listener.setblocking(True)
    blackhole.listener.settimeout(60)
    connection, _ = blackhole.listener.accept()
    blackhole.connections.append(connection)
    return trying, connection


def _answer_at_last(trying: threading.Thread, connection: socket.socket) -> None:
    connection.shutdown(socket.SHUT_RDWR)  # the try fails at once
    trying.join(timeout=60)
    assert not trying.is_alive()


def test_a_call_that_asks_again_and_never_says_how_it_went_holds_the_others_back_for_a_while_only(
    blackhole: Blackhole, clock: Clock
) -> None:
    """As one interrupted right after it was let through, or waiting on a
    Redis that never answers: the breaker stayed open for good."""
    cache = _hanging(blackhole.url)
    assert cache.get("throttle", "fallback") == "fallback"
    clock.now += OPEN_SECONDS
    trying, connection = _asking_in_a_thread(blackhole)
    try:
        clock.now += OPEN_SECONDS - 0.1
        assert _every_call(cache) == FALLBACKS
        assert blackhole.seen()[0] == 2
        clock.now += 0.1
        assert cache.get("throttle", "fallback") == "fallback"  # asks again, waits out its timeout
        assert blackhole.seen()[0] == 3
        assert _every_call(cache) == FALLBACKS  # opened again by its failure
        assert blackhole.seen()[0] == 3
    finally:
        _answer_at_last(trying, connection)


@pytest.mark.parametrize("interrupt", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_a_call_that_asks_again_and_is_interrupted_leaves_the_breaker_as_it_found_it(
    blackhole: Blackhole, clock: Clock, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    """Neither closed, every thread then asking a Redis that hangs, nor kept
    open: the next call asks again, alone."""
    cache = _hanging(blackhole.url)
    assert cache.get("throttle", "fallback") == "fallback"
    clock.now += OPEN_SECONDS

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise interrupt

    with monkeypatch.context() as patch:
        patch.setattr(RedisCacheClient, "get", interrupted)
        with pytest.raises(interrupt):
            cache.get("throttle", "fallback")
    trying, connection = _asking_in_a_thread(blackhole)  # asks again
    try:
        assert _every_call(cache) == FALLBACKS  # alone
        assert blackhole.seen()[0] == 2
    finally:
        _answer_at_last(trying, connection)
    clock.now += OPEN_SECONDS
    assert cache.get("throttle", "fallback") == "fallback"  # and after a while, asks again
    assert blackhole.seen()[0] == 3


def test_a_redis_that_is_back_is_asked_again_and_closes_the_breaker(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer(base_dir=tmp_path) as redis:
        cache = _hanging(redis.url)
        redis.stop()
        assert cache.get("throttle", "fallback") == "fallback"
        redis.start()
        redis.client().set(cache.make_and_validate_key("throttle"), 3)
        clock.now += OPEN_SECONDS - 0.1
        assert cache.get("throttle", "fallback") == "fallback"  # not asked yet
        clock.now += 0.1
        with caplog.at_level(logging.INFO, logger="portal.cache"):
            assert cache.get("throttle", "fallback") == 3
        assert "cache available again" in caplog.text
        assert cache.add("lock", 1) is True
        assert cache.incr("lock") == 2
        assert redis.client().get(cache.make_and_validate_key("lock")) == b"2"


def test_a_redis_that_is_away_leaves_another_redis_asked(
    blackhole: Blackhole, tmp_path: Path, clock: Clock
) -> None:
    """One breaker per Redis: a process whose shared cache is one Redis and
    whose default cache another keeps the one that answers."""
    away = _hanging(blackhole.url)
    assert away.get("throttle", "fallback") == "fallback"
    with RedisServer(base_dir=tmp_path) as redis:
        other = _hanging(redis.url)
        assert other.add("lock", 1) is True
        assert other.incr("lock") == 2
        assert redis.client().get(other.make_and_validate_key("lock")) == b"2"
    assert away.get("throttle", "fallback") == "fallback"  # still left alone
    assert blackhole.seen()[0] == 1


def _folder_cache(location: Path, max_entries: int) -> SharedFileCache:
    return SharedFileCache(str(location), {"OPTIONS": {"MAX_ENTRIES": max_entries}})


def test_a_full_shared_folder_drops_what_has_expired_and_keeps_what_is_current(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    for n in range(9):
        shared.set(f"over-{n}", n, timeout=-1)  # expired at once
    shared.set("lockout", {"failures": 5}, timeout=600)
    for n in range(8):
        shared.set(f"rate-{n}", n, timeout=600)  # the folder full each time
    assert shared.get("lockout") == {"failures": 5}
    assert [shared.get(f"rate-{n}") for n in range(8)] == list(range(8))
    assert len(list(tmp_path.glob("*.djcache"))) == 9  # the entries, not the lock beside them


def test_the_portal_s_shared_folder_keeps_a_lockout_through_a_flood_of_failed_logins(
    settings: Any, tmp_path: Path
) -> None:
    """A thousand failed logins under other names from one address, each an
    entry of its own, used to cost the lockout of the account being guessed
    (Django's folder cache drops a random third of its entries past 300)."""
    if settings.CACHES["shared"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("the shared cache is Redis (CACHE_URL)")
    shared = caches["shared"]  # a folder of this test's (tests/conftest.py)
    shared.set("admin-login:203.0.113.9:admin", {"failures": 5}, timeout=600)
    for n in range(1000):
        shared.set(f"admin-login:203.0.113.9:guess{n}", {"failures": 1}, timeout=600)
    assert shared.get("admin-login:203.0.113.9:admin") == {"failures": 5}


# --- Counting from several processes -------------------------------------------------

WORKERS = 4
COUNTS = 200
FORK = multiprocessing.get_context("fork")


def _count(start: Any, location: str) -> None:
    shared = _folder_cache(Path(location), max_entries=10_000)
    start.wait()
    for _ in range(COUNTS):
        shared.incr("failures")


def _add(start: Any, location: str, worker: int, results: Any) -> None:
    shared = _folder_cache(Path(location), max_entries=10_000)
    start.wait()
    results.put([(n, worker) for n in range(COUNTS) if shared.add(f"window-{n}", worker, timeout=600)])


def _together(target: Any, args_of_each: list[tuple[Any, ...]]) -> None:
    """Runs target in a process for each args, all starting at once."""
    start = FORK.Barrier(len(args_of_each))
    workers = [FORK.Process(target=target, args=(start, *args)) for args in args_of_each]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0


def test_the_shared_folder_counts_every_incr_of_processes_counting_at_once(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10_000)
    shared.add("failures", 0, timeout=600)
    _together(_count, [(str(tmp_path),)] * WORKERS)
    assert shared.get("failures") == WORKERS * COUNTS


def test_of_processes_adding_one_entry_at_once_one_alone_adds_it(tmp_path: Path) -> None:
    results = FORK.Queue()
    _together(_add, [(str(tmp_path), worker, results) for worker in range(WORKERS)])
    added = [pair for _ in range(WORKERS) for pair in results.get(timeout=60)]
    assert sorted(n for n, _ in added) == list(range(COUNTS))
    shared = _folder_cache(tmp_path, max_entries=10_000)
    assert all(shared.get(f"window-{n}") == worker for n, worker in added)


def _expiry(shared: SharedFileCache, key: str) -> float:
    with open(shared._key_to_file(key), "rb") as f:  # type: ignore[attr-defined]
        return float(pickle.load(f))  # noqa: S301 - written by the test


def test_an_incr_in_the_shared_folder_keeps_the_entry_s_expiry(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    shared.add("failures", 0, timeout=600)
    expiry = _expiry(shared, "failures")
    assert shared.incr("failures") == 1
    assert shared.decr("failures", 3) == -2
    assert _expiry(shared, "failures") == expiry


def test_an_incr_of_a_missing_or_expired_entry_in_the_shared_folder_is_refused(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    shared.set("over", 4, timeout=-1)
    for key in ("over", "missing"):
        with pytest.raises(ValueError, match="not found"):
            shared.incr(key)
        assert shared.get(key) is None


def test_redis_counts_only_an_entry_that_exists_and_keeps_its_expiry(tmp_path: Path) -> None:
    with RedisServer(base_dir=tmp_path) as redis:
        shared = ResilientRedisCache(redis.url, {})
        with pytest.raises(ValueError, match="not found"):
            shared.incr("missing")
        assert shared.get("missing") is None
        shared.add("failures", 0, timeout=600)
        assert shared.incr("failures") == 1
        assert shared.decr("failures") == 0
        assert 0 < redis.client().ttl(shared.make_and_validate_key("failures")) <= 600


def test_redis_never_turns_an_entry_that_expires_while_counted_into_one_that_never_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer(base_dir=tmp_path) as redis:
        shared = ResilientRedisCache(redis.url, {})
        shared.add("failures", 0, timeout=600)
        key = shared.make_and_validate_key("failures")
        exists = Redis.exists

        def expires_once_seen(client: Redis, *names: Any) -> Any:
            found = exists(client, *names)
            client.delete(*names)  # its window ends right then
            return found

        monkeypatch.setattr(Redis, "exists", expires_once_seen)
        with contextlib.suppress(ValueError):  # it may find the entry gone
            shared.incr("failures")
        assert redis.client().ttl(key) != -1  # -1: kept for ever; -2: gone


# --- Entries that cannot be read -----------------------------------------------------

GARBLED = {
    "garbage": b"not a cache entry \x00\xff",
    "cut short": pickle.dumps(9e18) + zlib.compress(pickle.dumps(3))[:3],
    "a newer pickle": b"\x80\x09garbage",
}


@pytest.mark.parametrize("content", GARBLED.values(), ids=GARBLED.keys())
def test_an_unreadable_entry_in_the_shared_folder_reads_as_missing_and_is_dropped(
    tmp_path: Path, content: bytes
) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    entry = Path(shared._key_to_file("failures"))  # type: ignore[attr-defined]
    entry.write_bytes(content)
    assert shared.get("failures", "missing") == "missing"
    assert not entry.exists()
    entry.write_bytes(content)
    with pytest.raises(ValueError, match="not found"):
        shared.incr("failures")
    assert not entry.exists()
    assert shared.add("failures", 0, timeout=600) is True
    assert shared.incr("failures") == 1


def test_a_full_shared_folder_with_an_unreadable_entry_is_still_culled(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=3)
    for n in range(3):
        shared.set(f"rate-{n}", n, timeout=-1)
    Path(shared._key_to_file("rate-0")).write_bytes(b"garbage")  # type: ignore[attr-defined]
    shared.set("lockout", 5, timeout=600)
    assert shared.get("lockout") == 5


def test_a_full_shared_folder_with_an_entry_that_cannot_be_opened_still_takes_new_entries(
    tmp_path: Path,
) -> None:
    """An entry the process may not open (written by another user, as a
    health check run from root's crontab writes its memory): every write of
    a full folder culls, and the cull opened each entry."""
    shared = _folder_cache(tmp_path, max_entries=3)
    for n in range(3):
        shared.set(f"rate-{n}", n, timeout=-1)
    entry = Path(shared._key_to_file("rate-0"))  # type: ignore[attr-defined]
    entry.unlink()
    entry.symlink_to(entry.name)  # opening it fails (ELOOP) whoever asks, root included
    with pytest.raises(OSError, match="symbolic links"):
        entry.open("rb")

    shared.set("lockout", 5, timeout=600)

    assert shared.get("lockout") == 5
    assert not Path(shared._key_to_file("rate-1")).exists()  # type: ignore[attr-defined]  # the expired ones went


@pytest.mark.parametrize("content", [b"", b"garbage"], ids=["expired", "unreadable"])
def test_a_reader_that_finds_an_entry_expired_or_unreadable_leaves_the_one_that_replaced_it(
    tmp_path: Path, content: bytes
) -> None:
    """A process reading an entry without the folder's lock (a get, a cull)
    may open it just before another process's add replaces it: what it
    deletes is the entry it read, never the window that opened meanwhile."""
    shared = _folder_cache(tmp_path, max_entries=10)
    entry = Path(shared._key_to_file("failures"))  # type: ignore[attr-defined]
    entry.write_bytes(content)
    with entry.open("rb") as read_before:
        assert shared.add("failures", 1, timeout=600) is True
        assert shared._is_expired(read_before)  # type: ignore[attr-defined]
    assert shared.incr("failures") == 2


def test_an_incr_on_a_full_disk_leaves_the_entry_as_it_was_and_no_stray_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    shared.add("failures", 2, timeout=600)
    before = sorted(tmp_path.iterdir())
    mkstemp = tempfile.mkstemp

    def on_a_full_disk(**kwargs: Any) -> tuple[int, str]:
        fd, path = mkstemp(**kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), path  # every write: no space left

    monkeypatch.setattr(tempfile, "mkstemp", on_a_full_disk)
    with pytest.raises(OSError, match="No space left"):
        shared.incr("failures")
    monkeypatch.undo()
    assert sorted(tmp_path.iterdir()) == before
    assert shared.get("failures") == 2


NO_TIME = {
    "text": "soon",
    "NaN": float("nan"),
    "infinite": float("inf"),
    "an int past any float": 10**400,
    "true": True,
    "an array": numpy.array([1.0, 2.0]),
}


def _write_entry(shared: SharedFileCache, key: str, expiry: Any, value: Any = 3) -> Path:
    entry = Path(shared._key_to_file(key))  # type: ignore[attr-defined]
    entry.write_bytes(pickle.dumps(expiry) + zlib.compress(pickle.dumps(value)))
    return entry


def _incr(shared: SharedFileCache) -> str:
    with pytest.raises(ValueError, match="not found"):
        shared.incr("failures")
    return "not found"


# Each read path of the folder, and what it answers for a missing entry.
READS: dict[str, tuple[Any, Any]] = {
    "get": (lambda shared: shared.get("failures", "missing"), "missing"),
    "get_many": (lambda shared: shared.get_many(["failures"]), {}),
    "has_key": (lambda shared: shared.has_key("failures"), False),
    "incr": (_incr, "not found"),
    "touch": (lambda shared: shared.touch("failures", 600), False),
    "add": (lambda shared: shared.add("failures", 0, timeout=600), True),
}


@pytest.mark.parametrize(("read", "missing"), READS.values(), ids=READS.keys())
@pytest.mark.parametrize("expiry", NO_TIME.values(), ids=NO_TIME.keys())
def test_an_entry_whose_expiry_is_no_time_reads_as_missing_and_is_dropped(
    tmp_path: Path, expiry: Any, read: Any, missing: Any
) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    entry = _write_entry(shared, "failures", expiry)
    assert read(shared) == missing
    if read is READS["add"][0]:
        assert shared.get("failures") == 0
    else:
        assert not entry.exists()
    shared.add("failures", 0, timeout=600)
    assert shared.incr("failures") == 1


@pytest.mark.parametrize("expiry", NO_TIME.values(), ids=NO_TIME.keys())
def test_a_full_shared_folder_with_an_entry_whose_expiry_is_no_time_is_still_culled(
    tmp_path: Path, expiry: Any
) -> None:
    shared = _folder_cache(tmp_path, max_entries=3)
    for n in range(3):
        shared.set(f"rate-{n}", n, timeout=600)
    _write_entry(shared, "rate-0", expiry)
    shared.set("lockout", 5, timeout=600)
    assert [shared.get(key) for key in ("lockout", "rate-0", "rate-1", "rate-2")] == [5, None, 1, 2]


def test_an_entry_that_never_expires_is_kept_by_every_read(tmp_path: Path) -> None:
    """Django's own layout for ``timeout=None`` (the health alerts' memory)."""
    shared = _folder_cache(tmp_path, max_entries=3)
    shared.set("alerted", 2, timeout=None)
    assert shared.get("alerted") == 2
    assert shared.has_key("alerted")
    assert shared.add("alerted", 0) is False
    assert shared.incr("alerted") == 3
    assert shared.touch("alerted", None) is True
    for n in range(2):
        shared.set(f"over-{n}", n, timeout=-1)
    shared.set("lockout", 5, timeout=600)  # the folder full: a cull keeps it
    assert shared.get("alerted") == 3
    assert shared.get("over-0") is None
    with open(shared._key_to_file("alerted"), "rb") as f:  # type: ignore[attr-defined]
        assert pickle.load(f) is None  # noqa: S301 - written by the test


def test_a_touch_of_an_unreadable_entry_reads_as_missing_and_drops_it(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    entry = Path(shared._key_to_file("failures"))  # type: ignore[attr-defined]
    entry.write_bytes(pickle.dumps(9e18) + b"garbage")
    assert shared.touch("failures", 600) is False
    assert not entry.exists()


def test_a_touch_in_the_shared_folder_moves_the_expiry_and_keeps_the_value(tmp_path: Path) -> None:
    shared = _folder_cache(tmp_path, max_entries=10)
    shared.set("failures", 4, timeout=600)
    assert shared.touch("failures", 60) is True
    assert _expiry(shared, "failures") < time.time() + 61
    assert shared.get("failures") == 4
    assert shared.touch("failures", -1) is True  # ended at once
    assert shared.get("failures") is None


# A write of another process between a touch's read and its write, each in
# a process of its own: what the other process wrote, and what it leaves.
WRITES_DURING_A_TOUCH: dict[str, tuple[Any, Any]] = {
    "set": (lambda shared: shared.set("session", "written after", timeout=600), "written after"),
    "delete": (lambda shared: shared.delete("session"), None),
    "clear": (lambda shared: shared.clear(), None),
}


def _write_once_it_may(go: Any, reached: Any, location: str, write: str) -> None:
    """Writes the entry once told to go; ``reached`` says it has written it
    or waits for the folder's lock to do so, whichever comes first."""
    shared = _folder_cache(Path(location), max_entries=10)
    go.wait()
    locked = shared._locked

    @contextlib.contextmanager
    def signalling() -> Iterator[None]:
        reached.set()
        with locked():
            yield

    shared._locked = signalling  # type: ignore[method-assign]
    WRITES_DURING_A_TOUCH[write][0](shared)
    reached.set()


@pytest.mark.parametrize("write", WRITES_DURING_A_TOUCH.keys())
def test_a_touch_never_puts_back_what_it_read_over_a_write_of_another_process(
    tmp_path: Path, write: str
) -> None:
    """A touch reads the entry and writes it back with its new expiry: a
    set, delete or clear of another process between the two was lost, the
    value read put back over it (a session written again, then touched by a
    request of the same visitor that read it before)."""
    toucher = _folder_cache(tmp_path, max_entries=10)
    toucher.set("session", "read before", timeout=600)
    go, reached = FORK.Event(), FORK.Event()
    writer = FORK.Process(target=_write_once_it_may, args=(go, reached, str(tmp_path), write), daemon=True)
    writer.start()  # before the touch takes the lock: a process forked meanwhile would hold it too
    read = toucher._read

    def read_then_let_the_other_process_write(fname: str) -> Any:
        entry = read(fname)
        go.set()
        assert reached.wait(timeout=60)
        return entry

    toucher._read = read_then_let_the_other_process_write  # type: ignore[method-assign]
    assert toucher.touch("session", 1200) is True
    writer.join(timeout=60)
    assert writer.exitcode == 0
    assert _folder_cache(tmp_path, max_entries=10).get("session") == WRITES_DURING_A_TOUCH[write][1]


def test_an_add_to_a_full_shared_folder_that_empties_when_full_does_not_wait_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CULL_FREQUENCY 0 (Django's "empty the folder when full"): an add
    culls holding the folder's lock, and the cull's clear took it again."""
    shared = SharedFileCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 2, "CULL_FREQUENCY": 0}})
    shared.set("a", 1, timeout=600)
    shared.set("b", 2, timeout=600)
    # One process alone: a lock it would wait for is one it holds itself.
    flock = fcntl.flock
    monkeypatch.setattr(fcntl, "flock", lambda f, op: flock(f, op | fcntl.LOCK_NB))
    assert shared.add("c", 3, timeout=600)
    assert (shared.get("a"), shared.get("b"), shared.get("c")) == (None, None, 3)


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Root, who writes anywhere, acting with nobody's rights meanwhile."""
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@contextlib.contextmanager
def _may_not_write(folder: Path) -> Iterator[None]:
    """The folder as a process sees it that may only read it (another user's,
    as the one a health check run from root's crontab makes): read-only, and
    for root, read with nobody's rights meanwhile."""
    folder.chmod(0o555)
    try:
        if os.geteuid() != 0:
            yield
            return
        with _as_nobody():
            yield
    finally:
        folder.chmod(0o755)


@pytest.fixture
def readable_folder() -> Iterator[Path]:
    """A folder that nobody may reach (pytest's own are root's alone)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


def test_a_delete_in_a_folder_this_process_may_not_write_answers_as_the_reads_do(
    readable_folder: Path,
) -> None:
    """A missing entry is not deleted (False), as a get of it answers its
    default, though the folder's lock cannot be made there; an entry there
    to delete is refused as a set is."""
    shared = _folder_cache(readable_folder, max_entries=10)
    shared.set("health-alert", {"mailed": True}, timeout=None)
    (readable_folder / "counts.lock").unlink()  # a folder no write has locked yet
    with _may_not_write(readable_folder):
        assert shared.get("missing", "default") == "default"
        assert shared.delete("missing") is False
        with pytest.raises(PermissionError):
            shared.set("missing", 1)
        with pytest.raises(PermissionError):
            shared.delete("health-alert")
    assert shared.get("health-alert") == {"mailed": True}


def test_clearing_an_empty_folder_this_process_may_not_write_leaves_it_be(readable_folder: Path) -> None:
    shared = _folder_cache(readable_folder, max_entries=10)
    with _may_not_write(readable_folder):
        shared.clear()
    assert list(readable_folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user takes root")
def test_a_lock_file_another_user_made_does_not_stop_this_ones_writes(readable_folder: Path) -> None:
    """A folder both may write (a group's), whose lock file root made first
    (a health check from root's crontab), 0644 as its umask leaves it: the
    web's user still takes the lock, which needs no write to the file."""
    readable_folder.chmod(0o777)
    shared = _folder_cache(readable_folder, max_entries=10)
    shared.set("health-alert", {"mailed": True}, timeout=None)
    assert (readable_folder / "counts.lock").stat().st_uid == 0
    with _as_nobody():
        shared.set("login", 1, timeout=60)
        assert shared.add("window", 1, timeout=60)
        assert shared.incr("window") == 2
        assert shared.delete("login")
    assert shared.get("health-alert") == {"mailed": True}
