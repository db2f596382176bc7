"""Response headers Django's SecurityMiddleware does not set."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Everything is served from here (no CDN); Swagger UI needs its inline start-up script.
_CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob: {media}",
        "style-src 'self' 'unsafe-inline'",
        "script-src 'self'{docs}",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        media = settings.MEDIA_URL if settings.MEDIA_URL.startswith("http") else ""
        self.csp = _CSP.format(media=media, docs="").replace("  ", " ")
        self.csp_docs = _CSP.format(media=media, docs=" 'unsafe-inline'")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        docs = request.path.startswith("/api/docs")
        response.headers.setdefault("Content-Security-Policy", self.csp_docs if docs else self.csp)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
