from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from redis import Redis

from portal.cache import ResilientRedisCache, SharedFileCache
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
    assert len(list(tmp_path.iterdir())) == 9


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
