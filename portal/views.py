"""Site-wide pages: home, health, error pages, media files."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.static import serve

from catalog import selectors
from portal import health
from uploads.storage import IMMUTABLE

HOME_REVIEWS = 5
HOME_PEOPLE = 6
HOME_PRODUCTS = 8


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "reviews": selectors.feedback_published()[:HOME_REVIEWS],
            "people": selectors.people_visible().order_by("-updated_at")[:HOME_PEOPLE],
            "products": selectors.products_with_images().order_by("-created_at")[:HOME_PRODUCTS],
        },
    )


@never_cache
def health_view(request: HttpRequest) -> JsonResponse:
    checks = health.run(health.SERVICE_CHECKS + health.SYSTEM_CHECKS)
    healthy = all(c.ok for c in checks)
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": [c.as_dict() for c in checks]},
        status=200 if healthy else 503,
    )


def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Media files served by the portal itself (embedded set-up, no bucket)."""
    response: HttpResponseBase = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    if isinstance(response, FileResponse) and path.startswith(("originals/", "renditions/")):
        response["Cache-Control"] = IMMUTABLE
    return response


def _error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    context: dict[str, Any] = {"status": status, "title": title, "message": message}
    return render(request, "error.html", context, status=status)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, "Page not found", "There is nothing at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "Something went wrong", "The error has been logged; please try again later.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "Forbidden", "You do not have permission to see this page.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "Bad request", "The request could not be understood.")
