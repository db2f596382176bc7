"""Site-wide pages: home, health probes, metrics, error pages, media files."""

from __future__ import annotations

import errno
import hmac
import os
import posixpath
import re
from typing import TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import URLPattern, re_path
from django.views.decorators.cache import never_cache
from django.views.decorators.vary import vary_on_headers
from django.views.static import serve
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from catalog import selectors
from catalog import views as catalog_views
from core.errors import error_response, methods, wants_json
from core.net import UNTRUSTED_PROXY, client_in_networks, through_untrusted_proxy
from portal import health
from uploads import metrics as upload_metrics
from uploads.storage import IMMUTABLE, PUBLIC_PREFIXES, object_content_type

HOME_REVIEWS = 5
HOME_PEOPLE = 6
HOME_PRODUCTS = 8


@methods("GET")
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "reviews": selectors.feedback_published()[:HOME_REVIEWS],
            "people": selectors.people_visible().order_by("-updated_at")[:HOME_PEOPLE],
            "products": selectors.products_on_display().order_by("-created_at")[:HOME_PRODUCTS],
        },
    )


def _bearer_matches(request: HttpRequest, secret: str) -> bool:
    """The header's bytes (which the server hands on as Latin-1 text) against
    the secret's UTF-8: compare_digest refuses text past ASCII, and a secret
    may hold an accent as well as a hostile client's header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    try:
        sent = token.strip().encode("latin-1")
    except UnicodeEncodeError:  # not a header's bytes
        return False
    return bool(secret) and scheme.lower() == "bearer" and hmac.compare_digest(sent, secret.encode())


_Answer = TypeVar("_Answer", bound=HttpResponseBase)


def _answered(response: _Answer) -> _Answer:
    """A health answer of 503 is the answer asked for, not a failure of the
    server: Django would log each as an error and mail it to ADMINS, saying
    nothing of which check failed (a load balancer probing every few seconds
    through an outage made an error line a probe). The readiness check logs
    what failed, and the health alerts mail it."""
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's mark, not in the stubs
    return response


def _summary(checks: list[health.Check]) -> JsonResponse:
    """What anyone may see: each check's name and whether it passed."""
    healthy = all(c.ok for c in checks)
    return _answered(
        JsonResponse(
            {
                "status": "ok" if healthy else "unhealthy",
                "checks": {c.name: "ok" if c.ok else "fail" for c in checks},
            },
            status=200 if healthy else 503,
        )
    )


@never_cache
@methods("GET")
def health_live(request: HttpRequest) -> JsonResponse:
    """The process answers. Touches nothing, so it cannot fail under load."""
    return JsonResponse({"status": "ok"})


@never_cache
@methods("GET")
def health_ready(request: HttpRequest) -> JsonResponse:
    """The database and the storage answer (cheap reads, reused for a few seconds)."""
    return _summary(health.readiness.get())


@never_cache
@vary_on_headers("Accept")
@methods("GET")
def health_view(request: HttpRequest) -> HttpResponse:
    """Staff, or a caller with the health token, get every check with its
    detail; anyone else the readiness summary. A browser (the footer's
    Status link) gets them as a page; monitors and scripts, which do not ask
    for HTML, as JSON."""
    user = getattr(request, "user", None)
    detailed = _bearer_matches(request, settings.HEALTH_TOKEN) or bool(user and user.is_staff)
    checks = health.run(health.SERVICE_CHECKS + health.SYSTEM_CHECKS) if detailed else health.readiness.get()
    healthy = all(c.ok for c in checks)
    status = 200 if healthy else 503
    if "text/html" in request.META.get("HTTP_ACCEPT", ""):
        context = {"healthy": healthy, "checks": checks, "detailed": detailed}
        return _answered(render(request, "status.html", context, status=status))
    if not detailed:
        return _summary(checks)
    return _answered(
        JsonResponse(
            {"status": "ok" if healthy else "unhealthy", "checks": [c.as_dict() for c in checks]},
            status=status,
        )
    )


@never_cache
@methods("GET")
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics for the configured networks, or a bearer token.
    Never kept by a cache: the answer depends on who asks."""
    allowed = client_in_networks(request, settings.METRICS_ALLOWED_NETWORKS)
    if not (allowed or _bearer_matches(request, settings.METRICS_TOKEN)):
        message = "Metrics are not served to this address."
        if through_untrusted_proxy(request):
            message = f"{UNTRUSTED_PROXY}; send the metrics token."
        return error_response(request, 403, "Forbidden", message)
    return HttpResponse(generate_latest(_metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _metrics_registry() -> CollectorRegistry:
    """The process's registry; with PROMETHEUS_MULTIPROC_DIR (several
    gunicorn workers), one that gathers every process's files instead, plus
    the figures read from the database at scrape time, which are in no file."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    upload_metrics.register(registry)
    return registry


def media_route(media_url: str) -> URLPattern:
    """The address the portal serves media at: MEDIA_URL's path, as written.
    An absolute MEDIA_URL (a CDN that fetches them from the portal) is
    answered at its path, and the path's characters are matched as they are,
    not read as a pattern's ("+", ".", "(")."""
    prefix = re.escape(urlsplit(media_url).path.lstrip("/"))
    return re_path(rf"^{prefix}(?P<path>.*)$", media, name="media")


@methods("GET")
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Renditions served by the portal itself (embedded set-up, no bucket).

    Only the public prefixes are served: originals live in their own private
    storage, and even a copy left under the media root is never handed out.
    """
    if posixpath.normpath(path) != path or not path.startswith(PUBLIC_PREFIXES):
        raise Http404  # "..", "//", "./" and everything outside the public prefixes
    try:
        response: HttpResponseBase = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    except OSError as exc:
        # A name longer than the file system takes names no file: not found,
        # not a file store that is down (any other error still is one).
        if exc.errno != errno.ENAMETOOLONG:
            raise
        raise Http404 from exc
    # A 304 too: it carries the Cache-Control its 200 would (RFC 9110,
    # 15.4.5), but no Content-Type: it has no body (Django takes it off).
    if isinstance(response, FileResponse | HttpResponseNotModified):
        response["Cache-Control"] = IMMUTABLE
    if isinstance(response, FileResponse):
        response["Content-Type"] = object_content_type(path) or response["Content-Type"]
    return response


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404, "Page not found", "There is nothing at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(
        request, 500, "Something went wrong", "The error has been logged; please try again later."
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403, "Forbidden", "You do not have permission to see this page.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its security token: most often a page left open
    until its cookie expired, or cookies blocked. A review is shown again as
    typed rather than lost."""
    match = request.resolver_match
    if match is not None and match.view_name == "catalog:review-submit" and not wants_json(request):
        return catalog_views.review_form_expired(request)
    return error_response(
        request,
        403,
        "Form expired",
        "This form could not be checked (its security cookie is missing or expired). "
        "Go back, reload the page and send it again; this site needs cookies for forms.",
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400, "Bad request", _refusal(exception))


def _refusal(exception: Exception | None) -> str:
    """Why a request is refused, naming the limit when it broke one a client
    can keep to; nothing of the exception's own text."""
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return f"At most {limit:,} parameters may be sent in an address or a form, each repeat counted."
    if isinstance(exception, TooManyFilesSent):
        return f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files may be sent at once."
    return "The request could not be understood."
