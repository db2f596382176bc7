from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from portal.cache import ResilientRedisCache, SharedFileCache
from tests.servers import free_port


def test_a_redis_cache_that_is_away_degrades_instead_of_failing() -> None:
    port = free_port()  # nothing listens there
    cache = ResilientRedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert cache.get("throttle", "fallback") == "fallback"
    cache.set("throttle", [1, 2])
    assert cache.add("lock", 1) is False
    assert cache.incr("lock") == 1
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
