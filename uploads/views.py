"""Renditions on demand at their signed URLs (see uploads.ondemand)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase

from core.errors import methods, wants_json
from uploads import ondemand, storage

# The rendition behind a signed URL changes only when its image is processed
# again or its focal point moves (a fill is cut anew): browsers and proxies may
# keep the answer for an hour, the rendition itself (at the redirect's
# target) for a year. A replaced rendition's object is kept as long as a
# redirect to it may be.
MAX_AGE_SECONDS = storage.REPLACED_KEEP_SECONDS
RETRY_PENDING_SECONDS = 5
RETRY_BUSY_SECONDS = 10


def _refuse(
    request: HttpRequest, status: int, message: str, *, retry_after: int | None = None
) -> HttpResponse:
    """A short answer in words (an <img> shows nothing of a page anyway),
    never cached: the next request may well succeed."""
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"detail": message}, status=status)
    else:
        response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# Not a form: a write is a 405 naming what it takes, not a 403 for a form's token.
@methods("GET")
def rendition(request: HttpRequest, signature: str, image_id: str, spec: str, fmt: str) -> HttpResponseBase:
    """Redirect to the rendition, or make it first (then answer its bytes)."""
    # The signature is checked on the text as it came: nothing is parsed or
    # looked up for an address the portal did not sign.
    if not image_id.isdigit() or not ondemand.signature_valid(signature, image_id, spec, fmt):
        return _refuse(
            request,
            403,
            "This image address is not signed for this image, size and format; "
            "ask the portal (a page, the API or the admin) for one.",
        )
    try:
        parsed, image_format = ondemand.parse_spec(spec), ondemand.parse_format(fmt)
    except ondemand.SpecInvalid as exc:
        # Signed before the limits were lowered.
        return _refuse(request, 403, f"{exc} Limits: {ondemand.limits_text()}.")
    try:
        made = ondemand.rendition_get_or_make(image_id=int(image_id), spec=parsed, fmt=image_format)
    except ondemand.Gone as exc:
        return _refuse(request, 404, str(exc))
    except ondemand.NotReady as exc:
        return _refuse(request, 202, f"{exc} Try again shortly.", retry_after=RETRY_PENDING_SECONDS)
    except ondemand.OverLimit as exc:
        return _refuse(request, 403, str(exc))
    except ondemand.SpecInvalid as exc:
        # Too large for this image: signed before the limit was checked against it.
        return _refuse(request, 403, f"{exc} Limits: {ondemand.limits_text()}.")
    except ondemand.Unmakeable as exc:
        return _refuse(request, 422, str(exc))
    except ondemand.Busy as exc:
        return _refuse(request, 503, str(exc), retry_after=RETRY_BUSY_SECONDS)
    response: HttpResponseBase
    if made.data is None:
        response = HttpResponseRedirect(made.rendition.url)
    else:
        # Made by this request: the bytes are at hand, no need for a second trip.
        response = HttpResponse(made.data, content_type=made.rendition.content_type)
    response["Cache-Control"] = f"public, max-age={MAX_AGE_SECONDS}"
    return response


@methods("GET")
def unsigned(request: HttpRequest, rest: str = "") -> HttpResponse:
    return _refuse(
        request,
        404,
        "Image addresses look like /img/<signature>/<id>/<size>/<format>/ and are handed out by the "
        "portal; this one is incomplete.",
    )
