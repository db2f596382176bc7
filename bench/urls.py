"""The portal's URLs plus a hand-written baseline view, for the API reads benchmark.

Also a sink for uploads, for the upload acknowledgement benchmark. Served only
when a benchmark starts the portal with
``DJANGO_SETTINGS_MODULE=bench.settings``; never part of the product's URLs.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import portal.urls
from catalog.models import Feedback

BASELINE_FIELDS = (
    "id", "title", "name", "date", "text", "rating", "product", "status", "source",
    "created_at", "updated_at",
)  # fmt: skip


def baseline_feedback(request: HttpRequest) -> JsonResponse:
    """The least a JSON page of 50 published reviews can cost: one query, no framework."""
    rows = Feedback.objects.filter(status="published").order_by("-date", "-id").values(*BASELINE_FIELDS)
    return JsonResponse({"results": list(rows[:50])})


@csrf_exempt
def upload_sink(request: HttpRequest) -> JsonResponse:
    """Receives a multipart upload as the API does, reads the file and keeps nothing:
    what carrying the bytes to the web process costs, whatever is done with them."""
    size = sum(len(upload.read()) for upload in request.FILES.getlist("file"))
    return JsonResponse({"bytes": size}, status=201)


urlpatterns = [
    path("bench/baseline/feedback/", baseline_feedback, name="bench-baseline-feedback"),
    path("bench/sink/", upload_sink, name="bench-upload-sink"),
    *portal.urls.urlpatterns,
]
handler400 = portal.urls.handler400
handler403 = portal.urls.handler403
handler404 = portal.urls.handler404
handler500 = portal.urls.handler500
