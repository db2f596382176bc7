"""The shared cache's backends: a Redis cache that degrades instead of
failing, and a folder of var/ that keeps what is still current.

The cache holds throttle counters, the admin lockout and what health alerts
were mailed: losing them for the minute Redis is away is better than
answering every request with a 500. A Redis that hangs instead of refusing
(a network partition) costs a process one timeout, not one per call: after
a call fails, the cache is left alone for ``OPEN_SECONDS``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import pickle
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


# How long a process leaves Redis alone after a call found it away: every
# cache call meanwhile answers its fallback at once, instead of each waiting
# out socket_timeout against a Redis that hangs.
OPEN_SECONDS = 5.0


class _Breaker:
    """Whether one Redis is worth asking, shared by the threads of a process.

    Closed, every call asks. A call that finds Redis away opens it: for
    ``OPEN_SECONDS`` no call asks. Then one call asks again (the others keep
    their fallback while it does): an answer closes it, another failure
    opens it again. A call that ends in neither (SystemExit,
    KeyboardInterrupt, a worker's time limit, anything not an Exception)
    leaves it as it found it; and a call that asks again and never says how
    it went (interrupted before it could) holds the others back for
    ``OPEN_SECONDS`` at most, not for good.
    """

    clock = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._trying: object | None = None  # the call that asks again, while open

    @contextmanager
    def asking(self) -> Iterator[bool]:
        """Whether this call may ask Redis, for the length of the block."""
        me = object()
        with self._lock:
            found = self._open_until
            now = self.clock()
            if found is None:
                allowed = True
            elif now < found:
                allowed = False
            else:
                # Held until it fails or answers, or until OPEN_SECONDS pass.
                self._trying, self._open_until = me, now + OPEN_SECONDS
                allowed = True
        try:
            yield allowed
        finally:
            with self._lock:
                if self._trying is me:  # it neither failed nor answered
                    self._trying, self._open_until = None, found

    def failed(self) -> bool:
        """Opens it (again); True if it was not open already, so that one
        warning says so."""
        with self._lock:
            opened = self._open_until is None or self._trying is not None
            self._open_until = self.clock() + OPEN_SECONDS
            self._trying = None
            return opened

    def answered(self) -> bool:
        """Closes it; True if it was open."""
        with self._lock:
            was_open = self._open_until is not None
            self._open_until = None
            self._trying = None
            return was_open


_breakers: dict[tuple[str, ...], _Breaker] = {}
_breakers_lock = threading.Lock()


def _breaker_of(servers: Any) -> _Breaker:
    """The breaker of a Redis, one per process: Django makes a cache object
    per thread, and the default and shared caches may be the same Redis."""
    key = tuple(servers)
    with _breakers_lock:
        return _breakers.setdefault(key, _Breaker())


def _degrade(fallback: Callable[..., Any]) -> Callable[[F], F]:
    def decorate(method: F) -> F:
        @wraps(method)
        def wrapper(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
            breaker = _breaker_of(self._servers)
            with breaker.asking() as allowed:
                if not allowed:
                    return fallback(*args, **kwargs)
                try:
                    result = method(self, *args, **kwargs)
                except UNAVAILABLE as exc:
                    if breaker.failed():
                        logger.warning(
                            "cache unavailable (%s): %s skipped, as is every cache call of this process for %g s",
                            exc,
                            method.__name__,
                            OPEN_SECONDS,
                        )
                    return fallback(*args, **kwargs)
                except Exception:
                    _answered(breaker)  # an answer all the same, "not found" of an incr included
                    raise
                _answered(breaker)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _answered(breaker: _Breaker) -> None:
    if breaker.answered():
        logger.info("cache available again")


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int past any float
        return False


def _default(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
    return default


# INCRBY of an entry that exists, in one step: Django's asks EXISTS, then
# INCRBY, and an entry that expired between the two came back as a count
# that never expires.
INCR_EXISTING = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end"


def _incr_existing(cache: RedisCache, key: Any, delta: int = 1, version: int | None = None) -> int:
    key = cache.make_and_validate_key(key, version=version)
    try:
        value = cache._cache.get_client(key, write=True).eval(INCR_EXISTING, 1, key, delta)
    except RedisResponseError as exc:
        # An entry that is no count: TypeError, as Django's other caches answer.
        if "not an integer" in str(exc) or str(exc).startswith("WRONGTYPE"):
            raise TypeError(f"Key '{key}' holds no count: {exc}") from exc
        raise
    if value is None:
        raise ValueError(f"Key '{key}' not found.")
    return int(value)


class ResilientRedisCache(RedisCache):
    _servers: list[str]  # Django's own, not in the stubs

    get = _degrade(_default)(RedisCache.get)
    set = _degrade(lambda *a, **k: None)(RedisCache.set)
    add = _degrade(lambda *a, **k: False)(RedisCache.add)
    delete = _degrade(lambda *a, **k: False)(RedisCache.delete)
    touch = _degrade(lambda *a, **k: False)(RedisCache.touch)
    has_key = _degrade(lambda *a, **k: False)(RedisCache.has_key)
    incr = _degrade(lambda key, delta=1, *a, **k: delta)(_incr_existing)
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
    may hold a lockout. One address writes at most about 200 entries in a
    lockout window (its limit across accounts), so that takes failed logins
    from some fifty addresses at once: ``CACHE_URL`` (Redis) is the cache of
    a site that many clients reach.
    """

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        entry = self._read(self._key_to_file(key, version))  # type: ignore[attr-defined]  # Django's own, not in the stubs
        return default if entry is None else entry[1]

    def _read(self, fname: str) -> tuple[float | None, Any] | None:
        """The expiry and value of the entry at ``fname``; None if there is
        none, or it has expired or cannot be read (either dropped)."""
        try:
            with open(fname, "rb") as f:
                live, expiry = self._expiry_if_live(f)
                if not live:
                    return None
                try:
                    return expiry, pickle.loads(zlib.decompress(f.read()))  # noqa: S301 - as Django reads them
                except Exception as exc:  # noqa: BLE001 - garbled bytes unpickle into any error
                    self._drop(f, exc)
                    return None
        except FileNotFoundError:
            return None

    def _is_expired(self, f: Any) -> bool:
        """Django's, where an entry whose expiry cannot be read is dropped as
        if expired, and only the entry read is (see _drop)."""
        return not self._expiry_if_live(f)[0]

    def _expiry_if_live(self, f: Any) -> tuple[bool, float | None]:
        """Whether the entry open in ``f`` is live, and its expiry: the time
        it ends, or None for one that never does (Django's ``timeout=None``,
        as the health alerts' memory is written). An entry that has ended or
        whose expiry is no time (text, NaN, infinite, an object of another
        layout) is dropped: NaN or infinity would keep a lockout for good,
        text failed an incr, and an object may answer a comparison with
        anything (a numpy array, whose truth is an error)."""
        try:
            expiry = pickle.load(f)  # noqa: S301 - as Django reads them
        except EOFError:
            expiry = 0.0  # an empty file, as Django reads it
        except Exception as exc:  # noqa: BLE001 - garbled bytes unpickle into any error
            self._drop(f, exc)
            return False, None
        if expiry is None:
            return True, None
        if isinstance(expiry, bool) or not isinstance(expiry, int | float) or not _finite(expiry):
            self._drop(f, ValueError(f"expiry {expiry!r} is no time"))
            return False, None
        if expiry < time.time():
            self._drop(f)
            return False, None
        return True, float(expiry)

    def _drop(self, f: Any, unreadable: Exception | None = None) -> None:
        """Deletes the entry open in ``f`` if it is still the one at its name.

        A get or a cull reads without the folder's lock: the entry it found
        expired (or garbled) may have been replaced meanwhile by an add of
        another process, a window or lockout that has just begun, which
        deleting by name would have dropped. An entry cut short or garbled
        (a file system that crashed, a copy of var/ from another machine or
        Python) is read as missing: a count kept in it would otherwise
        answer every login of its account with a 500, and a full folder
        could not be culled."""
        if unreadable is not None:
            logger.warning("unreadable shared cache entry %s dropped: %r", f.name, unreadable)
        with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
            if os.stat(f.name).st_ino == os.fstat(f.fileno()).st_ino:
                os.remove(f.name)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        """Django's, where the entry takes its place under the folder's lock
        (only that: the cull and the writing come before it). A touch reads
        an entry and writes it back under that lock: a set of another
        process in between was lost, the value read put back over it."""
        self._createdir()  # type: ignore[attr-defined]  # the folder may have been deleted
        fname = self._key_to_file(key, version)  # type: ignore[attr-defined]  # Django's own, not in the stubs
        self._cull()
        self._replace(fname, self.get_backend_timeout(timeout), value, lock=True)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        # Django's looks for the entry, then writes it: two workers adding
        # at once both wrote, and the second reset what the first counted.
        fname = self._key_to_file(key, version)  # type: ignore[attr-defined]  # Django's own, not in the stubs
        with self._locked():
            if self.has_key(key, version):
                return False
            self._cull()
            self._replace(fname, self.get_backend_timeout(timeout), value)
        return True

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Django's, under the folder's lock, as a set: a touch would put
        back what it deleted. A missing entry answers False without taking
        the lock, as a get answers its default: in a folder this process may
        not write to (another user's, a read-only disk) the lock file cannot
        be made, and there is nothing to write. An entry there to delete is
        refused as a set is (PermissionError). No touch is lost by not
        waiting: one holds an entry that exists all along."""
        fname = self._key_to_file(key, version)  # type: ignore[attr-defined]  # Django's own, not in the stubs
        if not os.path.exists(fname):  # as Django's asks
            return False
        with self._locked():
            return super().delete(key, version)

    def clear(self) -> None:
        # Under the folder's lock, as a set: a touch would put back an entry
        # it deleted. A folder without entries has nothing to write: cleared
        # without the lock, which a read-only folder could not give.
        if self._list_cache_files():  # type: ignore[attr-defined]  # Django's own, not in the stubs
            with self._locked():
                super().clear()

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Django's reads the entry, then writes it: of two workers counting
        at once, one count was lost. Here both happen under the folder's
        lock, and the entry keeps the expiry it had."""
        fname = self._key_to_file(key, version)  # type: ignore[attr-defined]  # Django's own, not in the stubs
        with self._locked():
            entry = self._read(fname)
            if entry is None:
                raise ValueError(f"Key '{key}' not found.")
            expiry, value = entry
            value += delta
            self._replace(fname, expiry, value)
        return value

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Django's unpickles the entry unguarded, so an entry that cannot be
        read answered with an error, and rewrites it where it lies. Here it
        is read as every other read is, and replaced whole under the
        folder's lock, as an incr replaces it: every other write of the
        folder takes that lock too, so none lands between the read and the
        write, to be undone by the value read."""
        fname = self._key_to_file(key, version)  # type: ignore[attr-defined]  # Django's own, not in the stubs
        with self._locked():
            entry = self._read(fname)
            if entry is None:
                return False
            self._replace(fname, self.get_backend_timeout(timeout), entry[1])
        return True

    def _replace(self, fname: str, expiry: float | None, value: Any, *, lock: bool = False) -> None:
        """Writes the entry at ``fname`` whole: readers see the old entry or
        the new, never half of one. With ``lock``, it takes its place under
        the folder's lock (a caller that holds it already passes none)."""
        fd, tmp_path = tempfile.mkstemp(dir=self._dir)  # type: ignore[attr-defined]
        try:
            with open(fd, "wb") as f:
                f.write(pickle.dumps(expiry, self.pickle_protocol))
                f.write(zlib.compress(pickle.dumps(value, self.pickle_protocol)))
            with self._locked() if lock else contextlib.nullcontext():
                os.replace(tmp_path, fname)
        except BaseException:
            # A full disk: no stray file left (neither clear() nor a cull would find it).
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp_path)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The folder's lock (a file that is no entry), which every process
        of the machine takes to write an entry or delete one. Not reentrant:
        a second take in the same process waits for the first for good.

        Opened to read, which is all a lock needs: a lock file another user
        made (a health check from root's crontab, 0644) stops no write of
        the web's user to a folder both may write."""
        path = os.path.join(self._dir, "counts.lock")  # type: ignore[attr-defined]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder deleted: made again only then, as every set takes the lock
            self._createdir()  # type: ignore[attr-defined]
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # which releases the lock

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
            except OSError as exc:
                # One it may not open (another user's): live, for all it can
                # tell, and no reason to refuse every write of the folder.
                logger.warning("shared cache entry %s not read by the cull: %s", name, exc)
                live += 1
        if live >= self._max_entries:
            if self._cull_frequency == 0:  # type: ignore[attr-defined]  # Django's own, not in the stubs
                # CULL_FREQUENCY 0 empties the folder. Django's cull calls
                # clear() for it, which takes the folder's lock: from an add,
                # which holds it already, that waited for good.
                FileBasedCache.clear(self)
                return
            super()._cull()  # type: ignore[misc]
