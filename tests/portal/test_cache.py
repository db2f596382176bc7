from __future__ import annotations

from portal.cache import ResilientRedisCache
from tests.servers import free_port


def test_a_redis_cache_that_is_away_degrades_instead_of_failing() -> None:
    port = free_port()  # nothing listens there
    cache = ResilientRedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert cache.get("throttle", "fallback") == "fallback"
    cache.set("throttle", [1, 2])
    assert cache.add("lock", 1) is False
    assert cache.incr("lock") == 1
    assert cache.get_many(["a", "b"]) == {}
