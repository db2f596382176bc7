"""Rate limits keyed on the real client address (see core.net), an IPv6
client's being its /64 network (core.net.address_block)."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from rest_framework import throttling
from rest_framework.request import Request

from core.net import address_block, client_ip

_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


class ClientRateThrottle(throttling.AnonRateThrottle):
    """DRF's anonymous throttle, with the client read through trusted proxies
    only (DRF's own reading trusts any X-Forwarded-For, which a client can
    forge to escape its limit).

    A request it refuses carries the limit it broke (``throttled_limits``),
    so that the 429 can name it."""

    def __init__(self) -> None:
        # Shared by every worker of the machine, whatever the default cache.
        self.cache = caches["shared"]
        super().__init__()

    def get_ident(self, request: Request) -> str:
        return address_block(client_ip(request))

    def allow_request(self, request: Request, view: Any) -> bool:
        if super().allow_request(request, view):
            return True
        setattr(request, "throttled_limits", [*getattr(request, "throttled_limits", []), self.limit_text()])  # noqa: B010
        return False

    def limit_text(self) -> str:
        """The rate in words: ``10/min`` is "10 per minute"."""
        count, period = (self.rate or "").split("/")
        return f"{count} per {_PERIODS.get(period[:1], period)}"
