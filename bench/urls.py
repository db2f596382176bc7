"""The portal's URLs plus hand-written baseline views, for the API reads benchmark.

Also a sink for uploads, for the upload acknowledgement benchmark. Served only
when a benchmark starts the portal with
``DJANGO_SETTINGS_MODULE=bench.settings``; never part of the product's URLs.

Each baseline is the least a JSON page of 50 rows can cost: Django's request
and response, the same middleware, ``values()`` queries and ``JsonResponse``,
no framework. People, products and images read what the API reads (a
person's photo or a product's picture by a join, then every rendition of
those images in one more query), but build no URL and no ``srcset``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import portal.urls
from catalog.models import Feedback, Person, Product
from core.limits import accepts_files
from uploads.models import Image, Rendition

PAGE = 50
BASELINE_FIELDS = (
    "id", "title", "name", "date", "text", "rating", "product", "status", "source",
    "created_at", "updated_at",
)  # fmt: skip
SUMMARY = ("id", "status", "width", "height", "alt", "placeholder", "dominant_color")
RENDITION = ("image_id", "name", "format", "width", "height", "bytes", "storage_key")


def _renditions(image_ids: Iterable[int | None]) -> dict[int, list[dict[str, Any]]]:
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    wanted = [pk for pk in image_ids if pk is not None]
    for row in Rendition.objects.filter(image_id__in=wanted).order_by("width", "format").values(*RENDITION):
        by_image[row["image_id"]].append(row)
    return by_image


def _with_image(rows: list[dict[str, Any]], relation: str) -> list[dict[str, Any]]:
    """Fold the joined ``<relation>__*`` columns into a nested image with its renditions."""
    renditions = _renditions(row[f"{relation}__id"] for row in rows)
    for row in rows:
        image = {name: row.pop(f"{relation}__{name}") for name in SUMMARY}
        image["renditions"] = renditions.get(image["id"], [])
        row[relation] = image if image["id"] is not None else None
    return rows


def baseline_feedback(request: HttpRequest) -> JsonResponse:
    """A page of published reviews: one query."""
    rows = Feedback.objects.filter(status="published").order_by("-date", "-id").values(*BASELINE_FIELDS)
    return JsonResponse({"results": list(rows[:PAGE])})


def baseline_people(request: HttpRequest) -> JsonResponse:
    """A page of active people with their photos' renditions: two queries."""
    fields = ("id", "name", "username", "email", "phone", "department", "role", "is_active")
    rows = (
        Person.objects.filter(is_active=True)
        .order_by("department", "name")
        .values(*fields, "created_at", "updated_at", *(f"photo__{f}" for f in SUMMARY))
    )
    return JsonResponse({"results": _with_image(list(rows[:PAGE]), "photo")})


def baseline_products(request: HttpRequest) -> JsonResponse:
    """A page of products with their pictures' renditions: two queries."""
    fields = ("id", "name", "weight", "description", "image_name", "created_at", "updated_at")
    rows = Product.objects.order_by("name", "id").values(*fields, *(f"image__{f}" for f in SUMMARY))
    return JsonResponse({"results": _with_image(list(rows[:PAGE]), "image")})


def baseline_images(request: HttpRequest) -> JsonResponse:
    """A page of images, newest first, each with its renditions: two queries."""
    fields = (
        "id", "title", "alt", "original_name", "preset", "status", "format", "width", "height",
        "frames", "bytes", "placeholder", "dominant_color", "processing_ms", "focal_x", "focal_y",
        "focal_radius", "focal_auto_x", "focal_auto_y", "created_at", "processed_at",
    )  # fmt: skip
    rows = list(Image.objects.order_by("-created_at", "-id").values(*fields)[:PAGE])
    renditions = _renditions(row["id"] for row in rows)
    for row in rows:
        row["renditions"] = renditions.get(row["id"], [])
    return JsonResponse({"results": rows})


@csrf_exempt
@accepts_files  # the API's own body limit, so the same bytes are let through
def upload_sink(request: HttpRequest) -> JsonResponse:
    """Receives a multipart upload as the API does, reads the file and keeps nothing:
    what carrying the bytes to the web process costs, whatever is done with them."""
    size = sum(len(upload.read()) for upload in request.FILES.getlist("file"))
    return JsonResponse({"bytes": size}, status=201)


urlpatterns = [
    path("bench/baseline/feedback/", baseline_feedback, name="bench-baseline-feedback"),
    path("bench/baseline/people/", baseline_people, name="bench-baseline-people"),
    path("bench/baseline/products/", baseline_products, name="bench-baseline-products"),
    path("bench/baseline/images/", baseline_images, name="bench-baseline-images"),
    path("bench/sink/", upload_sink, name="bench-upload-sink"),
    *portal.urls.urlpatterns,
]
handler400 = portal.urls.handler400
handler403 = portal.urls.handler403
handler404 = portal.urls.handler404
handler500 = portal.urls.handler500
