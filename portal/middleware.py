"""Site-wide middleware: probes, security headers, addresses, body limits, dependency errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponsePermanentRedirect
from django.middleware import common
from django.urls import resolve, reverse
from django.utils.functional import cached_property
from django.utils.http import escape_leading_slashes

from core import limits, multipart
from core.errors import (
    RETRY_AFTER_SECONDS,
    database_limit,
    dependency_unavailable,
    error_response,
    field_error_response,
)
from portal.csp import IMAGE_SOURCE, REPORT_URI

logger = logging.getLogger(__name__)

# What a load balancer and Prometheus ask for (see ProbeMiddleware).
PROBES = ("health-live", "health-ready", "metrics")


class ProbeMiddleware:
    """Answers the probes and the metrics scrape whatever the Host and the
    scheme, before host validation and the HTTPS redirect run.

    A load balancer asks each server by its address over plain HTTP, and
    Prometheus scrapes gunicorn directly: ALLOWED_HOSTS would refuse them
    (400) and SECURE_SSL_REDIRECT send them away (301), so a healthy server
    would be taken out of rotation. None of these views builds a URL from
    the Host, and /metrics keeps its own check of the caller's network or
    token. Only these exact paths: every other page stays strict.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @cached_property
    def paths(self) -> frozenset[str]:
        return frozenset(reverse(name) for name in PROBES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path not in self.paths:
            return self.get_response(request)
        match = request.resolver_match = resolve(request.path_info)
        try:
            response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            # Not through the other middleware: answer an outage as they would.
            unavailable = dependency_error_response(request, exc)
            if unavailable is None:
                raise
            return unavailable
        return response


# The admin's export page (django-import-export) has one inline handler, its
# "Select all" box: allowed by its hash alone, not inline script at large.
_EXPORT_TOGGLE = "'unsafe-hashes' 'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='"


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL (the host alone for one
    without a scheme, ``//host/…``); empty for a path on this site."""
    parts = urlsplit(url)
    if not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc


def media_origins() -> list[str]:
    """Where the site's images come from besides itself: the origin of the
    media storage's URLs (a bucket's endpoint, its CDN domain), which is also
    where ``/img/`` redirects, and MEDIA_URL's if it is absolute, then the
    sources PORTAL_CSP_IMG_SOURCES adds. Making a URL asks the bucket
    nothing: it is string work on the storage's settings."""
    for source in settings.CSP_IMG_SOURCES:
        if not IMAGE_SOURCE.fullmatch(source):
            raise ImproperlyConfigured(
                f"PORTAL_CSP_IMG_SOURCES: {source!r} is not an origin such as https://media.example.com"
            )
    found = [
        _origin(storages["default"].url("renditions/probe.webp")),
        _origin(settings.MEDIA_URL),
        *settings.CSP_IMG_SOURCES,
    ]
    return list(dict.fromkeys(o for o in found if o))


def content_security_policy(*, script: str = "") -> str:
    """The policy of the site's pages: everything from the site itself (no
    CDN), images also from the media origins, no inline script (``script``
    adds the sources one page needs), no plugins, no framing, forms posted
    only here. Style attributes are allowed, style elements are not: pictures
    carry their own placeholder colour, blurhash and shape in one (values per
    image, which no static sheet can hold); an attribute has no selectors, so
    it cannot read the page the way an injected sheet can, and what it may
    load is bounded by img-src."""
    directives = [
        "default-src 'self'",
        " ".join(["img-src 'self' data:", *media_origins()]),
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        f"script-src 'self' {script}".strip(),
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
    return "; ".join(directives + _reporting())


# A JSON answer is never a page: it may load, run or be framed by nothing.
JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _reporting() -> list[str]:
    uri = settings.CSP_REPORT_URI
    if not uri:
        return []
    if not REPORT_URI.fullmatch(uri):
        raise ImproperlyConfigured(f"PORTAL_CSP_REPORT_URI: {uri!r} is not an http(s) URL or a path")
    return [f"report-uri {uri}"]


def _is_json(response: HttpResponseBase) -> bool:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    return kind == "application/json" or kind.endswith("+json")


class SecurityHeadersMiddleware:
    """The Content-Security-Policy (enforced, or with PORTAL_CSP_REPORT_ONLY
    only reported) and the Permissions-Policy of every answer. A view that
    sets its own policy keeps it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = (
            "Content-Security-Policy-Report-Only" if settings.CSP_REPORT_ONLY else "Content-Security-Policy"
        )
        self.page = content_security_policy()
        self.export = content_security_policy(script=_EXPORT_TOGGLE)
        self.json = "; ".join([JSON_POLICY, *_reporting()])

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path
        if _is_json(response):
            csp = self.json
        elif path.startswith("/admin/") and path.endswith("/export/"):
            csp = self.export
        else:
            csp = self.page
        response.headers.setdefault(self.header, csp)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class CommonMiddleware(common.CommonMiddleware):
    """Django's, except that the redirect adding a missing slash keeps a
    write's method and body (308). A 301 makes clients send a GET instead:
    a review posted to ``/api/v1/feedback`` was lost without a word."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        answer = super().process_response(request, response)
        ours = answer is not response and isinstance(answer, HttpResponsePermanentRedirect)
        if ours and request.method not in ("GET", "HEAD"):
            answer.status_code = 308
        return answer

    def get_full_path_with_slash(self, request: HttpRequest) -> str:
        # Django refuses to redirect a write when DEBUG is on, as a 301 would
        # lose it; a 308 does not.
        return escape_leading_slashes(request.get_full_path(force_append_slash=True))


class NullCharacterMiddleware:
    """Refuses an address with a null character (``%00``) with 400: no page
    wants one, and PostgreSQL cannot even compare text with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.GET
        if "\x00" in request.path or any("\x00" in k or "\x00" in "".join(query.getlist(k)) for k in query):
            return error_response(
                request, 400, "Bad request", "Null characters are not allowed in an address."
            )
        return self.get_response(request)


class BodyLimitMiddleware:
    """Refuses a body over its endpoint's limit with 413 before anything reads
    it (CSRF, form and JSON parsing come later), and records the limit for the
    streaming check of file parts."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Checked before any middleware reads the header (the metrics' counts
        # it as a number).
        if limits.content_length(request) is None:
            return error_response(request, 400, "Bad request", "The Content-Length header is not a number.")
        if limits.body_unmeasured(request):
            # Django reads a body of the length the header gives: without
            # one, a chunked body would be taken as empty.
            return error_response(
                request,
                411,
                "Length required",
                "Send the body with a Content-Length header; a chunked body is not read.",
            )
        if request.content_type in multipart.FORM_TYPES and request.encoding:
            # Checked before anything reads the form (CSRF, the admin's
            # views, the API's parsers), each of which failed on such a one.
            unreadable = multipart.charset_refusal(request.encoding)
            if unreadable is not None:
                return error_response(request, 400, "Bad request", unreadable)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        files = limits.upload_files_allowed(view_func, request.method or "GET")
        limit = limits.body_limit(files)
        request.max_body_bytes = limit  # type: ignore[attr-defined]
        length = limits.content_length(request) or 0
        if length > limit:
            return self._too_large(request, limits.RequestTooLarge(length, limit))
        if files and request.content_type == "multipart/form-data":
            # Parse here, before CSRF reads the form, so that a file cut off
            # while it streams is answered with 413 (DRF reuses the parse).
            # A file whose name Django would drop is kept, for the view to
            # say why it is refused instead of that no file was sent.
            multipart.keep_unusable_names(request)
            try:
                request.POST  # noqa: B018 - reading it parses the body
            except limits.RequestTooLarge as exc:
                return self._too_large(request, exc)
            except multipart.NotText as exc:
                if exc.of_value and exc.field in limits.upload_file_fields(view_func):
                    exc = exc.as_file()
                # Refused as the API's parser refuses it: DRF reuses this parse.
                return field_error_response(request, exc.field, exc.message)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, limits.RequestTooLarge):
            return self._too_large(request, exception)
        return None

    def _too_large(self, request: HttpRequest, exc: limits.RequestTooLarge) -> HttpResponse:
        # The body is not read: the connection must close, or the server
        # would read all of it before the next request. Not under wsgiref
        # (runserver): it refuses hop-by-hop headers from the application
        # (a 500), and reads what is left of the body itself.
        response = error_response(request, 413, "Too large", str(exc.detail))
        if not request.META.get("SERVER_SOFTWARE", "").startswith("WSGIServer/"):
            response["Connection"] = "close"
        return response


class DependencyErrorMiddleware:
    """A database, storage or broker that is away: the detail goes to the log,
    the client gets a plain 503 and a hint when to retry, never exception text.
    A query the database refuses for its size or shape is no outage: a 400
    naming the kind of limit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        limit = database_limit(exception)
        if limit is not None:
            # Logged in full: the path that let the request this far should
            # check it first, and name the limit it sets.
            logger.warning(
                "query past the database's limits answering %s %s",
                request.method,
                request.path,
                exc_info=exception,
            )
            return error_response(
                request,
                400,
                "Bad request",
                f"This request asks the database for more than it allows ({limit}); "
                "narrow it (fewer words, values or selected items) and send it again.",
            )
        return dependency_error_response(request, exception)


def dependency_error_response(request: HttpRequest, exception: Exception) -> HttpResponse | None:
    """503 for an exception that says a dependency is away; None for any other."""
    what = dependency_unavailable(exception)
    if what is None:
        return None
    logger.error("%s unavailable answering %s %s", what, request.method, request.path, exc_info=exception)
    response = error_response(
        request, 503, "Temporarily unavailable", f"The {what} is unavailable; please try again shortly."
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
