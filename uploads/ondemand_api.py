"""``GET /api/v1/images/{id}/url/?spec=…&format=…``: a signed URL of a
rendition on demand (the action itself is ``ImageViewSet.rendition_url``).

Reading an image is public, but every signed URL lets its holder make the
portal cut one more rendition, so handing them out is kept to authenticated
callers with the view (or the change) permission on images; pages get theirs
from the ``{% picture %}`` tag.
"""

from __future__ import annotations

from typing import Any

from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api import may_view
from core.renderers import ContentNegotiation
from core.schema import ErrorDocumentingAutoSchema, ErrorSerializer
from uploads import ondemand
from uploads.models import Image

SPEC_PATTERN = (
    r"^(fill-[1-9][0-9]{0,5}x[1-9][0-9]{0,5}|max-[1-9][0-9]{0,5}x[1-9][0-9]{0,5}|width-[1-9][0-9]{0,5})$"
)
SPEC_HELP = (
    "`fill-WxH`: exactly that size, cropped around the focal point; `width-W`: that width, the height "
    "to scale; `max-WxH`: the whole picture inside that box. Never larger than the original (a fill "
    "that does not fit keeps its shape at the largest size that does). Limits: each side at most "
    "IMAGE_ONDEMAND_MAX_SIZE px (default 4000); at most IMAGE_ONDEMAND_MAX_PER_IMAGE (default 20) "
    "sizes-and-formats made per image."
)
FORMAT_HELP = (
    "One of IMAGE_ONDEMAND_FORMATS (default webp, jpeg, avif, png); `jpg` means jpeg. Without it: webp, or "
    "the first of those formats when webp is not among them."
)


class _NoFormatOverride:
    """The API's settings, minus the ``?format=`` override of the response's
    renderer: on this endpoint ``format`` names the image's format."""

    def __getattr__(self, name: str) -> Any:
        return None if name == "URL_FORMAT_OVERRIDE" else getattr(api_settings, name)


class ImageFormatNegotiation(ContentNegotiation):
    settings = _NoFormatOverride()  # type: ignore[assignment]


def default_format() -> str:
    """WebP where it is made on demand, else the first format that is: a
    caller naming none is never refused for one it did not ask for."""
    made = ondemand.formats()
    return "webp" if "webp" in made else made[0]


class RenditionUrlQuerySerializer(serializers.Serializer[Any]):
    spec = serializers.CharField(max_length=40, help_text=SPEC_HELP)
    format = serializers.CharField(max_length=10, default=default_format, help_text=FORMAT_HELP)

    def validate_spec(self, value: str) -> ondemand.Spec:
        try:
            return ondemand.parse_spec(value)
        except ondemand.SpecInvalid as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_format(self, value: str) -> str:
        try:
            return ondemand.parse_format(value)
        except ondemand.SpecInvalid as exc:
            raise serializers.ValidationError(str(exc)) from exc


class RenditionUrlSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(help_text="The signed URL: made on its first request, then redirected to.")
    spec = serializers.CharField(help_text="The spec in its canonical spelling (the rendition's name).")
    format = serializers.CharField()
    width = serializers.IntegerField(help_text="The rendition's width, known beforehand.")
    height = serializers.IntegerField(help_text="The rendition's height, known beforehand.")
    made = serializers.BooleanField(
        help_text="Whether it exists already (the URL then redirects at once); never while the image is "
        "processed (again): it is made anew once the image is ready."
    )


class RenditionUrlInvalidSerializer(serializers.Serializer[Any]):
    spec = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Why the size is refused: malformed, over the limits, or one more than the image may have.",
    )
    format = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Why the format is refused."
    )
    detail = serializers.CharField(
        required=False, help_text="Why no size of this image is signed: it failed to process."
    )


def parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "spec", OpenApiTypes.STR, required=True, pattern=SPEC_PATTERN, description=SPEC_HELP
        ),
        OpenApiParameter("format", OpenApiTypes.STR, enum=ondemand.formats(), description=FORMAT_HELP),
    ]


class RenditionUrlSchema(ErrorDocumentingAutoSchema):
    """The parameters are made with the schema, not at import: the formats
    it offers are those IMAGE_ONDEMAND_FORMATS names, as the endpoint takes."""

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), *parameters()]


RESPONSES = {
    200: RenditionUrlSerializer,
    400: OpenApiResponse(
        RenditionUrlInvalidSerializer,
        description="A size or format outside the limits, or the image has as many renditions on demand as "
        'it may: `{"spec": ["why"]}` or `{"format": ["why"]}`; or the image failed to process, and nothing '
        'is made of it until it is reprocessed: `{"detail": "why"}`.',
    ),
    401: OpenApiResponse(ErrorSerializer, description="Signed URLs are for authenticated callers."),
    403: OpenApiResponse(
        ErrorSerializer, description="Neither the view nor the change permission on images."
    ),
    404: OpenApiResponse(ErrorSerializer, description="No such image."),
}


def rendition_url_response(request: Request, pk: str | None) -> Response:
    if not may_view(request.user, Image):
        raise exceptions.PermissionDenied(
            "Signed rendition URLs are for callers with the view or the change permission on images."
        )
    # Any image: a caller past the check above sees every one
    # (selectors.images_visible), and needs none of its renditions here.
    image = generics.get_object_or_404(Image.objects.all(), pk=pk)
    if image.status == Image.Status.FAILED:
        # Its URL would only answer 404: nothing is made from an image that failed.
        raise exceptions.ValidationError(
            {"detail": f"Image {image.pk} failed to process; reprocess it before asking for renditions."}
        )
    query = RenditionUrlQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    spec: ondemand.Spec = query.validated_data["spec"]
    fmt: str = query.validated_data["format"]
    try:
        ondemand.check_size(spec, (image.width, image.height))
    except ondemand.SpecInvalid as exc:
        raise exceptions.ValidationError({"spec": [str(exc)]}) from exc
    # Those of an image being processed again are not counted: its run's end deletes them.
    made_before = ondemand.made(image)
    made = any(r.name == spec.name and r.format == fmt for r in made_before)
    if not made and len(made_before) >= (limit := ondemand.max_per_image()):
        raise exceptions.ValidationError({"spec": [str(ondemand.OverLimit(image.pk, limit))]})
    width, height = spec.size((image.width, image.height))
    response = Response(
        {
            "url": request.build_absolute_uri(ondemand.url_path(image.pk, spec, fmt)),
            "spec": spec.name,
            "format": fmt,
            "width": width,
            "height": height,
            "made": made,
        }
    )
    # Handed to permitted callers alone: a shared cache that kept it would
    # give anyone asking the same address a URL that makes renditions.
    response["Cache-Control"] = "private, no-store"
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response
