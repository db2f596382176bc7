"""Throttling of the admin login: after a few failed attempts from one address,
further attempts are refused with 429 until the lockout expires."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _client(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _key(request: HttpRequest) -> str:
    return f"admin-login-failures:{_client(request)}"


@receiver(user_login_failed, dispatch_uid="portal.count_login_failure")
def count_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is None:
        return
    key = _key(request)
    cache.add(key, 0, timeout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS)


def throttled_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    failures = cache.get(_key(request), 0)
    if request.method == "POST" and failures >= settings.ADMIN_LOGIN_MAX_FAILURES:
        minutes = max(1, settings.ADMIN_LOGIN_LOCKOUT_SECONDS // 60)
        response = render(
            request,
            "error.html",
            {
                "status": 429,
                "title": "Too many failed logins",
                "message": (
                    f"{failures} failed attempts from your address (the limit is "
                    f"{settings.ADMIN_LOGIN_MAX_FAILURES}). Try again in {minutes} minutes."
                ),
            },
            status=429,
        )
        response["Retry-After"] = str(settings.ADMIN_LOGIN_LOCKOUT_SECONDS)
        return response
    return admin.site.login(request, extra_context)
