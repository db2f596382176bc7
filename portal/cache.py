"""The shared cache's backends: a Redis cache that degrades instead of
failing, and a folder of var/ that keeps what is still current.

The cache holds throttle counters, the admin lockout and what health alerts
were mailed: losing them for the minute Redis is away is better than
answering every request with a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _degrade(fallback: Callable[..., Any]) -> Callable[[F], F]:
    def decorate(method: F) -> F:
        @wraps(method)
        def wrapper(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except UNAVAILABLE as exc:
                logger.warning("cache unavailable (%s): %s skipped", exc, method.__name__)
                return fallback(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _default(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
    return default


class ResilientRedisCache(RedisCache):
    get = _degrade(_default)(RedisCache.get)
    set = _degrade(lambda *a, **k: None)(RedisCache.set)
    add = _degrade(lambda *a, **k: False)(RedisCache.add)
    delete = _degrade(lambda *a, **k: False)(RedisCache.delete)
    touch = _degrade(lambda *a, **k: False)(RedisCache.touch)
    has_key = _degrade(lambda *a, **k: False)(RedisCache.has_key)
    incr = _degrade(lambda key, delta=1, *a, **k: delta)(RedisCache.incr)
    get_many = _degrade(lambda *a, **k: {})(RedisCache.get_many)
    set_many = _degrade(lambda keys, *a, **k: list(keys))(RedisCache.set_many)
    delete_many = _degrade(lambda *a, **k: None)(RedisCache.delete_many)


class SharedFileCache(FileBasedCache):
    """The shared cache of one machine without Redis (``var/cache/shared``).

    Its entries are state, not copies: an admin lockout, what a health alert
    mailed. Django's folder cache, once full, deletes a random third of its
    entries, live or not, so a few hundred failed logins under other names
    would have dropped a lockout with them. Here a full folder first drops
    what has expired (a lockout or rate window over, read from the file's
    own expiry), and only if it is still full Django's random third, which
    may hold a lockout: ``CACHE_URL`` (Redis) is the cache of a site that
    many clients reach.
    """

    def _cull(self) -> None:
        files = self._list_cache_files()  # type: ignore[attr-defined]  # Django's own, not in the stubs
        if len(files) < self._max_entries:
            return
        live = 0
        for name in files:
            try:
                with open(name, "rb") as f:
                    live += not self._is_expired(f)  # type: ignore[attr-defined]  # deletes an expired file
            except FileNotFoundError:
                continue  # deleted meanwhile
        if live >= self._max_entries:
            super()._cull()  # type: ignore[misc]
