"""Error answers shared by the site's views and middleware: JSON for the API
and for scripts, the error page for browsers; never exception text."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from kombu.exceptions import OperationalError as BrokerError

# When to try again after a 503 for a dependency that is away.
RETRY_AFTER_SECONDS = 30

# The course's endpoints (with or without their slash) answer scripts,
# whatever they accept.
JSON_PREFIXES = ("/api/",)
JSON_PATHS = frozenset(p + s for p in ("/feedback", "/fruits", "/upload") for s in ("", "/"))


def wants_json(request: HttpRequest) -> bool:
    """The API, the course's endpoints, and clients that ask for JSON rather
    than HTML get JSON; everyone else the error page."""
    accept = request.META.get("HTTP_ACCEPT", "")
    path = request.path
    return (
        path.startswith(JSON_PREFIXES)
        or path in JSON_PATHS
        or ("application/json" in accept and "text/html" not in accept)
    )


def error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status=status
    )


def methods(*allowed: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page answers ``allowed`` (HEAD with GET), OPTIONS with the list, and
    anything else with 405 naming them, on the error page."""
    names = {*allowed, *(("HEAD",) if "GET" in allowed else ()), "OPTIONS"}
    allow = ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") if m in names)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "OPTIONS":
                response = HttpResponse()
            elif request.method not in names:
                response = error_response(
                    request, 405, "Method not allowed", f"This page answers {allow}, not {request.method}."
                )
            else:
                return view(request, *args, **kwargs)
            response["Allow"] = allow
            return response

        if names <= {"GET", "HEAD", "OPTIONS"}:
            # A page that takes no writes has no form to protect: a POST to it
            # is a 405 saying so, not a 403 saying the form expired.
            checked.csrf_exempt = True  # type: ignore[attr-defined]
        return checked

    return decorate


class DependencyUnavailable(Exception):
    """Raised where a part the portal needs did not answer (its message says
    which, and that nothing was saved)."""


def dependency_unavailable(exc: BaseException) -> str | None:
    """Which dependency an exception says is away, in words for the client.

    A broken constraint or a value the column cannot hold is the request's
    doing (or the code's), not an outage: retrying it would not help."""
    if isinstance(exc, IntegrityError | DataError):
        return None
    if isinstance(exc, DatabaseError):
        return "database"
    if isinstance(exc, BrokerError):
        return "task queue"
    if isinstance(exc, BotoCoreError | ClientError | OSError):
        return "file store"
    return None
