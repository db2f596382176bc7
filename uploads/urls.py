"""Renditions on demand: ``/img/<signature>/<id>/<spec>/<format>/``."""

from __future__ import annotations

from django.urls import path, re_path

from uploads import views

urlpatterns = [
    path("<str:signature>/<str:image_id>/<str:spec>/<str:fmt>/", views.rendition, name="image-rendition"),
    # Without the trailing slash too: the address is signed, not its spelling.
    path("<str:signature>/<str:image_id>/<str:spec>/<str:fmt>", views.rendition),
    re_path(r"^(?P<rest>.*)$", views.unsigned),
]
