"""Throttling of the admin login.

Failures are counted per username and client address: after a few failed
attempts for one account from one address, further attempts for that account
from that address are refused with 429 until the lockout expires. An attacker
therefore locks out only their own attempts, never an administrator who signs
in from elsewhere; the client address is read through the trusted proxies
only (core.net), so behind a proxy everyone is not one address.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.net import client_ip


def _key(request: HttpRequest, username: str) -> str:
    # As the login form reads it (NFKC): a fullwidth "admin" signs in as "admin", so it
    # must count, and be refused, as "admin".
    account = unicodedata.normalize("NFKC", username).strip().casefold()
    account = hashlib.sha256(account.encode()).hexdigest()[:32]
    return f"admin-login:{client_ip(request)}:{account}"


def count_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """``user_login_failed`` handler (connected in PortalConfig.ready())."""
    if request is None:
        return
    key = _key(request, str(credentials.get("username", "")))
    window = settings.ADMIN_LOGIN_LOCKOUT_SECONDS
    state = caches["shared"].get(key) or {"failures": 0, "since": time.time()}
    state["failures"] += 1
    if state["failures"] >= settings.ADMIN_LOGIN_MAX_FAILURES:
        state["until"] = time.time() + window
    caches["shared"].set(key, state, timeout=window)


def throttled_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    if request.method == "POST":
        state = caches["shared"].get(_key(request, request.POST.get("username", ""))) or {}
        remaining = state.get("until", 0) - time.time()
        if remaining > 0:
            return _locked_out(request, state["failures"], math.ceil(remaining))
    return admin.site.login(request, extra_context)


def _locked_out(request: HttpRequest, failures: int, seconds: int) -> HttpResponse:
    minutes = math.ceil(seconds / 60)
    response = render(
        request,
        "error.html",
        {
            "status": 429,
            "title": "Too many failed logins",
            "message": (
                f"{failures} failed attempts for this account from your address (the limit is "
                f"{settings.ADMIN_LOGIN_MAX_FAILURES}). Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}."
            ),
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
