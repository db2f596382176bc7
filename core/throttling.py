"""Rate limits keyed on the real client address (see core.net), an IPv6
client's being its /64 network (core.net.address_block)."""

from __future__ import annotations

import math
from typing import Any

from django.core.cache import caches
from rest_framework import throttling
from rest_framework.request import Request

from core.net import address_block, client_ip

_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def seconds_until(ends: Any, now: float, period: int) -> int:
    """The wait for a Retry-After: seconds from ``now`` until a window of
    ``period`` seconds ends at ``ends`` (as read from the shared cache), from
    1 to ``period``; the whole period when the end is expired, never written
    or garbled (NaN, infinite, no number)."""
    if isinstance(ends, bool) or not isinstance(ends, int | float) or not math.isfinite(ends):
        return period
    return min(period, max(1, math.ceil(ends - now)))


class ClientRateThrottle(throttling.AnonRateThrottle):
    """DRF's anonymous throttle, with the client read through trusted proxies
    only (DRF's own reading trusts any X-Forwarded-For, which a client can
    forge to escape its limit), and counted in one atomic step.

    DRF's keeps each client's history of requests and reads it, checks it,
    then writes it back: requests of one client arriving at once at several
    workers all read the same history, all passed, and their writes
    overwrote one another. Here a client's window is a count in the shared
    cache: each request takes its place with one atomic ``incr`` and passes
    if its place is within the limit, so a burst gets exactly the limit
    through, whatever the number of workers. The first request of a client
    opens its window for the period of the rate (``add``, which only one
    can win); the window ends at once for all its requests, and Retry-After
    is the wait until then.

    A fixed window rather than a sliding one: a client that kept to the
    limit as DRF's history counted it (never more than the rate in any
    period) is never refused, so the course's scripts that post a folder
    in a burst keep working as before, while a weighted estimate of two
    windows refuses some of them. The price: at the end of one window and
    the start of the next a client can send up to twice the rate in a short
    time; over any longer span it gets the rate. Requests cost one cache
    round trip (DRF's cost two), the first of a window three.

    With the shared cache away (Redis down) the count is skipped and the
    request passes, with a warning logged (portal.cache).

    A request it refuses carries the limit it broke (``throttled_limits``),
    so that the 429 can name it."""

    # Not DRF's key (``throttle_%(scope)s_%(ident)s``), which holds a history
    # list, no count, in a cache written before this throttle was.
    cache_format = "throttle-window_%(scope)s_%(ident)s"
    # Set from the rate by DRF's __init__ (not in its stubs).
    num_requests: int | None
    duration: int | None

    def __init__(self) -> None:
        # Shared by every worker of the machine, whatever the default cache.
        self.cache = caches["shared"]
        super().__init__()

    def get_ident(self, request: Request) -> str:
        return address_block(client_ip(request))

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:  # a signed-in client
            return True
        self.now = self.timer()
        if self._take_place() <= (self.num_requests or 0):
            return True
        setattr(request, "throttled_limits", [*getattr(request, "throttled_limits", []), self.limit_text()])  # noqa: B010
        return False

    def _take_place(self) -> int:
        """This request's place in its client's window, counted atomically."""
        duration = self.duration or 1
        # A window may end between two steps, and another request open the
        # next one: each turn starts over, counting in whatever window is open.
        for _ in range(3):
            try:
                return int(self.cache.incr(self.key))
            except ValueError:  # no window open
                pass
            except TypeError:  # an entry that is no count (any cache's answer): dropped, a window opens anew
                self.cache.delete(self.key)
            # The first of a window: when it ends first (for Retry-After), then
            # the count, which one request only can add.
            self.cache.add(self._ends_key, self.now + duration, timeout=duration)
            if self.cache.add(self.key, 1, timeout=duration):
                return 1
        # Windows that end as fast as they open (a cache that keeps nothing): not counted.
        return 1

    @property
    def _ends_key(self) -> str:
        return f"{self.key}:ends"

    def wait(self) -> float:
        """Seconds until the client's window ends and its count starts anew."""
        return float(seconds_until(self.cache.get(self._ends_key), self.now, self.duration or 1))

    def limit_text(self) -> str:
        """The rate in words: ``10/min`` is "10 per minute"."""
        count, period = (self.rate or "").split("/")
        return f"{count} per {_PERIODS.get(period[:1], period)}"
