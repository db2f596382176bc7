"""The images API (``/api/v1/images/``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.schema import ErrorSerializer
from uploads import selectors, services
from uploads.models import Image, Rendition


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class StorageUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The image store is unavailable; nothing was saved."
    default_code = "storage_unavailable"


class RenditionSerializer(serializers.ModelSerializer[Rendition]):
    url = serializers.CharField(read_only=True)

    class Meta:
        model = Rendition
        fields = ["name", "format", "width", "height", "bytes", "url"]


class ImageSummarySerializer(serializers.ModelSerializer[Image]):
    """What a page or a client needs to show an image; used inside people and products."""

    srcset = serializers.SerializerMethodField()
    src = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "status", "width", "height", "alt", "placeholder", "dominant_color",
            "src", "srcset",
        ]  # fmt: skip

    def _sets(self, image: Image) -> list[selectors.SourceSet]:
        return selectors.source_sets(image) if image.is_ready else []

    def get_srcset(self, image: Image) -> str:
        """The JPEG (else first format) width ladder as an HTML ``srcset``."""
        sets = self._sets(image)
        chosen = next((s for s in sets if s.format == "jpeg"), sets[0] if sets else None)
        return chosen.srcset if chosen else ""

    def get_src(self, image: Image) -> str | None:
        sets = self._sets(image)
        chosen = next((s for s in sets if s.format == "jpeg"), sets[0] if sets else None)
        return chosen.fallback.url if chosen else None


class ImageSerializer(ImageSummarySerializer):
    renditions = RenditionSerializer(many=True, read_only=True)

    class Meta:
        model = Image
        fields = [
            "id", "title", "alt", "original_name", "preset", "status", "error", "sha256",
            "format", "width", "height", "frames", "bytes", "placeholder", "dominant_color",
            "processing_ms", "src", "srcset", "renditions", "created_at", "processed_at",
        ]  # fmt: skip
        read_only_fields = fields


class ImageUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="JPEG, PNG, WebP, GIF, TIFF or BMP; checked by content.",
    )
    preset = serializers.ChoiceField(
        choices=sorted(settings.IMAGE_PRESETS), default=settings.IMAGE_DEFAULT_PRESET
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    alt = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ReprocessSerializer(serializers.Serializer[Any]):
    preset = serializers.ChoiceField(choices=sorted(settings.IMAGE_PRESETS), required=False)


def check_content_length(request: Request) -> None:
    """Refuse an oversized body from its header, before reading it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.IMAGE_MAX_BYTES
    if length > limit + 64 * 1024:
        raise PayloadTooLarge(str(services.ImageTooLarge(length, limit)))


def upload_from_request(request: Request, data: dict[str, Any]) -> Image:
    """Run the upload service, turning its refusals into API errors."""
    try:
        return services.image_upload(
            file=data["file"],
            original_name=data["file"].name or "",
            preset=data.get("preset"),
            title=data.get("title", ""),
            alt=data.get("alt", ""),
            user=request.user,
        )
    except services.ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except services.ImageInvalid as exc:
        raise exceptions.ValidationError({"file": [str(exc)]}, code=exc.code) from exc
    except services.StorageUnavailable as exc:
        raise StorageUnavailable(str(exc)) from exc


class ImageViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Image],
):
    serializer_class = ImageSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    filterset_fields = ["status", "preset", "format"]
    search_fields = ["title", "alt", "original_name"]
    ordering_fields = ["created_at", "bytes", "width", "height"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Image]:
        return selectors.images_with_renditions()

    @extend_schema(
        request={"multipart/form-data": ImageUploadSerializer},
        responses={
            201: ImageSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='Not an accepted image, or over the pixel limit: `{"file": ["why"]}`.',
            ),
            413: OpenApiResponse(ErrorSerializer, description="Over the byte limit."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        check_content_length(request)
        upload = ImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        image = upload_from_request(request, dict(upload.validated_data))
        image = selectors.images_with_renditions().get(pk=image.pk)
        return Response(ImageSerializer(image).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Image) -> None:
        services.image_delete(image=instance)

    @extend_schema(request=ReprocessSerializer, responses={202: ImageSerializer})
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[parsers.JSONParser, parsers.FormParser, parsers.MultiPartParser],
    )
    def reprocess(self, request: Request, pk: str | None = None) -> Response:
        image = self.get_object()
        if not request.user.has_perm("uploads.change_image"):
            raise exceptions.PermissionDenied()
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.image_reprocess(images=[image], preset=body.validated_data.get("preset"))
        image = selectors.images_with_renditions().get(pk=image.pk)
        return Response(ImageSerializer(image).data, status=status.HTTP_202_ACCEPTED)
