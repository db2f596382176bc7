"""Error answers shared by the site's views and middleware: JSON for the API
and for scripts, the error page for browsers; never exception text."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from kombu.exceptions import OperationalError as BrokerError


def wants_json(request: HttpRequest) -> bool:
    """API paths, and clients that do not ask for HTML (scripts, the course's
    uploaders), get JSON."""
    return request.path.startswith("/api/") or "text/html" not in request.META.get("HTTP_ACCEPT", "")


def error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status=status
    )


def dependency_unavailable(exc: BaseException) -> str | None:
    """Which dependency an exception says is away, in words for the client."""
    if isinstance(exc, DatabaseError):
        return "database"
    if isinstance(exc, BrokerError):
        return "task queue"
    if isinstance(exc, BotoCoreError | ClientError | OSError):
        return "file store"
    return None
