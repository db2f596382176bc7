"""Error answers shared by the site's views and middleware: JSON for the API
and for scripts, the error page for browsers; never exception text."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt, csrf_protect
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
    return _json_by_address(request) or ("application/json" in accept and "text/html" not in accept)


def error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    response = _error_response(request, status, title, message)
    if not _json_by_address(request):
        # Chosen by the Accept header: a cache keeps the page and the JSON apart.
        patch_vary_headers(response, ("Accept",))
    return response


def field_error_response(request: HttpRequest, field: str | None, message: str) -> HttpResponse:
    """A 400 for one field of a form (None: the form): ``{field: [message]}``
    in JSON, as the API's own validation errors are, or the error page."""
    if field is None or not wants_json(request):
        return error_response(
            request, 400, "Bad request", message if field is None else f"{field}: {message}"
        )
    response = JsonResponse({field: [message]}, status=400)
    if not _json_by_address(request):
        patch_vary_headers(response, ("Accept",))
    return response


def _json_by_address(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path in JSON_PATHS


def _error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    # Drawn without the signed-in user and their pending messages: both are
    # read from the session, in the database, which may be what failed (a
    # page that raised here gives the server's bare 500 instead of this one).
    # The messages wait for the next page.
    context = {
        "status": status,
        "title": title,
        "message": message,
        "user": AnonymousUser(),
        "messages": (),
    }
    return render(request, "error.html", context, status=status)


def methods(*allowed: str) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """A page answers ``allowed`` (HEAD with GET), OPTIONS with the list, and
    anything else with 405 naming them, on the error page."""
    names = {*allowed, *(("HEAD",) if "GET" in allowed else ()), "OPTIONS"}
    allow = ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") if m in names)

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        # The form's check (CSRF) is made here, once the method is known to be
        # one the page takes: a PUT to a form's page, or a POST to a page that
        # takes no writes, is a 405 saying so, not a 403 saying the form expired.
        answer = csrf_protect(view) if names - {"GET", "HEAD", "OPTIONS"} else view

        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "OPTIONS":
                response = HttpResponse()
            elif request.method not in names:
                response = error_response(
                    request, 405, "Method not allowed", f"This page answers {allow}, not {request.method}."
                )
            else:
                return answer(request, *args, **kwargs)
            response["Allow"] = allow
            return response

        return csrf_exempt(checked)

    return decorate


class DependencyUnavailable(Exception):
    """Raised where a part the portal needs did not answer (its message says
    which, and that nothing was saved)."""


# SQLite's words for a statement past one of its limits (most have no code
# of their own: SQLITE_ERROR), by how its message starts, and ours for them.
SQLITE_LIMITS = {
    "too many SQL variables": "too many values",
    "Expression tree is too large": "too many conditions",
    "parser stack overflow": "too many conditions",
    "LIKE or GLOB pattern too complex": "a search pattern too long",
    "string or blob too big": "a value too long",
    "too many terms in compound SELECT": "too many parts",
    "too many terms in ORDER BY clause": "too many sort keys",
    "too many columns": "too many columns",
}
# PostgreSQL's SQLSTATE class 54, "program limit exceeded".
POSTGRES_LIMITS = {
    "54001": "too many conditions",  # statement_too_complex: "stack depth limit exceeded"
    "54011": "too many columns",
    "54023": "too many arguments",
}
POSTGRES_LIMIT = "a value or a query too large"  # 54000: index row size, tsvector or tsquery too long…


def database_limit(exc: BaseException) -> str | None:
    """Which of the database's limits a statement went past, in words for the
    client; None for any other error.

    Such a statement fails again whenever it is sent: the request's size or
    shape is at fault, not the database, which is up. The request paths that
    can reach a limit check their input first and name the limit themselves;
    this catches the rest."""
    if not isinstance(exc, DatabaseError):
        return None
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)  # psycopg's errors carry it
    if isinstance(sqlstate, str) and sqlstate.startswith("54"):
        return POSTGRES_LIMITS.get(sqlstate, POSTGRES_LIMIT)
    if isinstance(cause, sqlite3.Error):
        message = str(cause)
        return next((words for start, words in SQLITE_LIMITS.items() if message.startswith(start)), None)
    return None


def dependency_unavailable(exc: BaseException) -> str | None:
    """Which dependency an exception says is away, in words for the client.

    A broken constraint, a value the column cannot hold or a statement past
    the database's limits is the request's doing (or the code's), not an
    outage: retrying it would not help."""
    if isinstance(exc, IntegrityError | DataError) or database_limit(exc):
        return None
    if isinstance(exc, DatabaseError):
        return "database"
    if isinstance(exc, BrokerError):
        return "task queue"
    if isinstance(exc, BotoCoreError | ClientError | OSError):
        return "file store"
    return None
