"""Rate limits keyed on the real client address (see core.net)."""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.request import Request

from core.net import client_ip


class ClientRateThrottle(throttling.AnonRateThrottle):
    """DRF's anonymous throttle, with the client read through trusted proxies
    only (DRF's own reading trusts any X-Forwarded-For, which a client can
    forge to escape its limit)."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)
