"""The images API (``/api/v1/images/``)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, parsers, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ComposedCharField, CreatedLocationMixin, FileField, may_view
from core.filters import FilterSet
from core.limits import RequestTooLarge
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.permissions import ModelChangePermissions
from core.reads import ConditionalReadSchema, RowReadMixin, datetime_formatter, lock_row, url_maker
from core.schema import ErrorSerializer
from core.validation import composed, validate_text
from uploads import ondemand, ondemand_api, processing, selectors, services, storage
from uploads.models import Image, Rendition
from uploads.rows import IMAGE_FIELDS, ImageRows, RenditionsByImage, rendition_rows

logger = logging.getLogger(__name__)


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

    def _universal(self, image: Image) -> selectors.SourceSet | None:
        """The set every client can show: JPEG, else the first format. Kept for
        the image being serialized, as ``src`` and ``srcset`` both need it."""
        cached = getattr(self, "_universal_cache", None)
        if cached is None or cached[0] is not image:
            sets = selectors.source_sets(image) if image.is_ready else []
            chosen = next((s for s in sets if s.format == "jpeg"), sets[0] if sets else None)
            cached = self._universal_cache = (image, chosen)
        return cached[1]

    def get_srcset(self, image: Image) -> str:
        """The JPEG (else first format) width ladder as an HTML ``srcset``."""
        chosen = self._universal(image)
        return chosen.srcset if chosen else ""

    def get_src(self, image: Image) -> str | None:
        chosen = self._universal(image)
        return chosen.fallback.url if chosen else None


class FocalPointSerializer(serializers.Serializer[Any]):
    """Where the subject is; cropped renditions keep it in frame."""

    x = serializers.FloatField(min_value=0.0, max_value=1.0, help_text="0 = left edge, 1 = right edge.")
    y = serializers.FloatField(min_value=0.0, max_value=1.0, help_text="0 = top edge, 1 = bottom edge.")
    radius = serializers.FloatField(
        min_value=0.001,
        max_value=1.0,
        required=False,
        allow_null=True,
        default=None,
        help_text="How much around the point to keep, as a fraction of the shorter side.",
    )
    kind = serializers.ChoiceField(
        choices=["manual", "auto"],
        read_only=True,
        help_text="`manual`: set by staff; `auto`: estimated from the pixels when processed.",
    )

    def to_point(self) -> processing.FocalPoint:
        data = self.validated_data
        return processing.FocalPoint(data["x"], data["y"], data.get("radius"))


def focal_point_data(image: Image) -> dict[str, Any] | None:
    """The focal point in force: staff's, else the automatic estimate, else none."""
    point, kind = image.focal_point, "manual"
    if point is None:
        point, kind = image.focal_point_auto, "auto"
    if point is None:
        return None
    return {"x": point.x, "y": point.y, "radius": point.radius, "kind": kind}


# The title and alt text, which a PATCH does not change, are refused by name
# in its body when they differ from the image's: a 200 that moved the point
# and dropped them would read as done. Sent as they are (a client sending back
# the representation it read), they change nothing and pass.
TEXT_NOT_CHANGED_HERE = "Set at upload and changed in the admin; a PATCH here changes the focal point alone."


def _sent(data: Mapping[str, Any], name: str) -> list[Any]:
    """Every value of ``name`` in a body: a form may repeat it."""
    getlist = getattr(data, "getlist", None)
    return list(getlist(name)) if getlist is not None else [data[name]]


def _as_stored(value: Any) -> Any:
    """A title or alt text sent as the image stores it (composed): sent back
    as it was uploaded, decomposed, it is the text the image holds."""
    return composed(value) if isinstance(value, str) else value


class ImageUpdateSerializer(serializers.Serializer[Any]):
    """Read with the image as its instance: the title and alt text it holds
    are the ones a body may repeat."""

    focal_point = FocalPointSerializer(
        allow_null=True,
        help_text="The subject's position (coordinates of the displayed image), or null to go back to "
        "the automatic estimate. Only the cropped renditions are made again.",
    )

    def to_internal_value(self, data: Any) -> Any:
        refused = {
            name: [TEXT_NOT_CHANGED_HERE]
            for name in ("title", "alt")
            if isinstance(data, Mapping)
            and name in data
            and any(_as_stored(value) != getattr(self.instance, name, None) for value in _sent(data, name))
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


# For the schema alone: the view reads a form with ImageUpdateSerializer too,
# which takes a nested serializer's fields from a form under dotted names.
class ImageUpdateFormSerializer(serializers.Serializer[Any]):
    """The focal point as a form: its fields under dotted names
    (`focal_point.x`). A form cannot send null: to go back to the automatic
    estimate, send `{"focal_point": null}` as JSON."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        point = FocalPointSerializer().get_fields()
        return {f"focal_point.{name}": field for name, field in point.items() if not field.read_only}


def may_download_original(request: Request | None) -> bool:
    return may_view(getattr(request, "user", None), Image)


def may_delete(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm("uploads.delete_image"))


class ImageSerializer(ImageSummarySerializer):
    renditions = RenditionSerializer(many=True, read_only=True)
    sha256 = serializers.SerializerMethodField(
        help_text="The original's hash; only for callers who may download the original."
    )
    original = serializers.SerializerMethodField(
        help_text="Where to download the original; only for callers who may."
    )
    error = serializers.SerializerMethodField(
        help_text="Why processing failed; only for callers who may view the original."
    )
    focal_point = serializers.SerializerMethodField(
        help_text="Where the subject is (fractions of the displayed image): set by staff, else "
        "estimated when processed; null until then."
    )

    class Meta:
        model = Image
        fields = [
            "id", "title", "alt", "original_name", "preset", "status", "error", "sha256",
            "format", "width", "height", "frames", "bytes", "placeholder", "dominant_color",
            "processing_ms", "focal_point", "src", "srcset", "renditions", "original", "created_at",
            "processed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Image) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        # What an earlier run made is not listed once it is no longer served:
        # nothing of a failed image, nothing made on demand of an image
        # being processed again (the run's end deletes them).
        data["renditions"] = [r for r in data["renditions"] if ondemand.listed(instance.status, r["name"])]
        return data

    def _private(self) -> bool:
        """Whether this caller may see what fetches the original (asked once
        per response, on the outermost serializer)."""
        root: Any = self.root or self
        cached = getattr(root, "_may_download", None)
        if cached is None:
            cached = root._may_download = may_download_original(self.context.get("request"))
        return bool(cached)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_sha256(self, image: Image) -> str | None:
        return image.sha256 if self._private() else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, image: Image) -> str | None:
        return image.error if self._private() else None

    @extend_schema_field(FocalPointSerializer(allow_null=True))
    def get_focal_point(self, image: Image) -> dict[str, Any] | None:
        return focal_point_data(image)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_original(self, image: Image) -> str | None:
        if not self._private():
            return None
        request = self.context["request"]
        return request.build_absolute_uri(reverse("image-original", args=[image.pk]))


def _optional_text(max_length: int) -> serializers.CharField:
    """A text of an upload, checked by the rules of the image's field, and
    composed first, as the image stores it."""
    return ComposedCharField(
        max_length=max_length,
        required=False,
        allow_blank=True,
        default="",
        validators=[validate_text],
    )


class ImageUploadSerializer(serializers.Serializer[Any]):
    file = FileField(
        allow_empty_file=True,
        help_text="JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF or AVIF; checked by content.",
    )
    preset = serializers.ChoiceField(
        choices=sorted(settings.IMAGE_PRESETS), default=settings.IMAGE_DEFAULT_PRESET
    )
    # Refused before the file is read, as the model refuses them.
    title = _optional_text(200)
    alt = _optional_text(300)


class ReprocessSerializer(serializers.Serializer[Any]):
    preset = serializers.ChoiceField(choices=sorted(settings.IMAGE_PRESETS), required=False)


def upload_from_request(request: Request, data: dict[str, Any], *, once: bool = False) -> Image:
    """Run the upload service, turning its refusals into API errors. ``once``:
    the image held already under the name with the same bytes, if there is
    one (``services.image_upload_once``)."""
    try:
        if once:
            image, _ = services.image_upload_once(
                file=data["file"],
                original_name=data["file"].name or "",
                preset=data.get("preset"),
                user=request.user,
            )
            return image
        return services.image_upload(
            file=data["file"],
            original_name=data["file"].name or "",
            preset=data.get("preset"),
            title=data.get("title", ""),
            alt=data.get("alt", ""),
            user=request.user,
        )
    except services.ImageTooLarge as exc:
        raise RequestTooLarge(exc.size, exc.limit, what="The file") from exc
    except services.ImageInvalid as exc:
        raise exceptions.ValidationError({"file": [str(exc)]}, code=exc.code) from exc
    except services.StorageUnavailable as exc:
        raise StorageUnavailable(str(exc)) from exc


FOCAL_POINT_RESPONSES = {
    200: OpenApiResponse(
        ImageSerializer,
        description="Saved; the cropped renditions are cut around it, unless they cannot be (the original "
        "is missing from the store, the preset is no longer configured, or decoding failed): then the old "
        "crops stay until the image is reprocessed.",
    ),
    202: OpenApiResponse(
        ImageSerializer,
        description="Saved; the cropped renditions could not be cut again now (the image store was "
        "unavailable) and are cut around it shortly. Until then `renditions` holds the old crops.",
    ),
}


class ImageSchema(ConditionalReadSchema):
    """The PATCH body is read whole (``ImageUpdateSerializer`` without
    ``partial=True``), so ``focal_point`` is required in it. drf-spectacular
    takes every PATCH body for a partial one, as DRF's ``partial_update``
    reads it, and would list nothing as required."""

    def resolve_serializer(self, serializer: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        if self.method == "PATCH" and direction == "request" and getattr(serializer, "partial", False):
            serializer = copy.copy(serializer)  # not the instance the caller holds
            serializer.partial = False
        return super().resolve_serializer(serializer, direction, bypass_extensions)


# What files and people call a format, by the name Pillow gives it.
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}


class ImageFilter(FilterSet):
    format = filters.CharFilter(
        method="by_format",
        help_text="The original's format, in any case: `jpeg` (or `jpg`), `png`, `webp`, `gif`, `tiff`, "
        "`heif` (or `heic`)…",
    )

    class Meta:
        model = Image
        fields = ["status", "preset", "format"]

    def by_format(self, queryset: QuerySet[Image], name: str, value: str) -> QuerySet[Image]:
        # Stored as Pillow names them (JPEG, PNG, HEIF for a phone's .heic):
        # an exact match keeps the index.
        wanted = value.strip().upper()
        return queryset.filter(format=FORMAT_ALIASES.get(wanted, wanted))


HIDDEN_FROM_THE_PUBLIC = (
    "A caller without the view or the change permission on images is shown only the images the catalog "
    "shows: a product's picture or an active person's photo. Not an image whose only use is the photo of "
    "an inactive person, nor one tied to no product and no person (an upload not yet linked, such as a "
    "supplier's photo posted to /upload/ before its description: it is shown once its product exists); "
    "reading it is a 404, as for an image that does not exist (a caller with the delete permission "
    "on images still deletes it). Renditions' files stay public at their URLs."
)


@extend_schema_view(
    list=extend_schema(description=f"The images, newest first. {HIDDEN_FROM_THE_PUBLIC}"),
    retrieve=extend_schema(description=f"One image and its renditions. {HIDDEN_FROM_THE_PUBLIC}"),
)
class ImageViewSet(
    CreatedLocationMixin,
    RowReadMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Image],
):
    """Uploaded images and the renditions made of them. An upload needs the
    model's add permission, a deletion its delete permission, and a change
    (the focal point, reprocessing) its change permission."""

    schema = ImageSchema()
    serializer_class = ImageSerializer
    # JSON for the focal point (an object); uploads are multipart.
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    file_actions = frozenset({"create"})
    file_fields = frozenset({"file"})
    # ``?format=`` filters by the image's format here, as on its url action;
    # the response's format is chosen by the Accept header alone.
    content_negotiation_class = ondemand_api.ImageFormatNegotiation
    filterset_class = ImageFilter
    search_fields = ["title", "alt", "original_name"]
    ordering_fields = ["created_at", "bytes", "width", "height"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Image]:
        # An image kept from callers who may not view images (the view or the
        # change permission, as for originals) is a 404 to them on every
        # action, as one that does not exist. But a deletion, to a caller
        # who may delete images (an uploader's token, which may add and
        # delete them without viewing them): its mistaken upload, tied to
        # nothing yet, is still its to delete.
        deleting = self.action == "destroy" and may_delete(getattr(self.request, "user", None))
        return selectors.images_visible(staff=deleting or may_download_original(self.request))

    def get_parsers(self) -> list[parsers.BaseParser]:
        # An upload is a file: a JSON body to create is refused as a media
        # type (415), not read as fields.
        method = (self.request.method or "").lower() if self.request else ""
        if getattr(self, "action_map", {}).get(method) == "create":
            return [MultiPartParser(), FormParser()]
        return super().get_parsers()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # The original is its bytes whatever the client accepts (the schema
        # gives them as application/octet-stream, which a client built from
        # it asks for): no 406; a refusal is JSON, as everywhere else.
        return super().perform_content_negotiation(request, force=force or self.action == "original")

    # Lists and details are read as rows (uploads.rows), in the shape of ImageSerializer.
    read_fields = IMAGE_FIELDS

    def read_variant(self) -> tuple[bool]:
        return (may_download_original(self.request),)

    def read_related(self, rows: list[dict[str, Any]]) -> RenditionsByImage:
        return rendition_rows(row["id"] for row in rows)

    def represent_rows(self, rows: list[dict[str, Any]], related: RenditionsByImage) -> list[dict[str, Any]]:
        images, text = ImageRows(related), datetime_formatter()
        private = may_download_original(self.request)
        original = url_maker("image-original", "pk", int)

        def original_url(pk: int) -> str:
            return self.request.build_absolute_uri(original(pk))

        return [
            images.full(row, private=private, original_url=original_url, datetime_text=text) for row in rows
        ]

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
        upload = ImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        image = upload_from_request(request, dict(upload.validated_data))
        # Just written, with no renditions yet: answered from the row in hand
        # as reads answer from rows (the same representation), not read back
        # (where tasks run in the process, it may be processed already: the
        # answer and its tag are of the upload, and a GET gives the rest).
        row = {name: getattr(image, name) for name in IMAGE_FIELDS}
        [body] = self.represent_rows([row], {})
        self.note_written_row(row, {image.pk: []})  # no renditions, as rendition_rows reads none
        return Response(body, status=status.HTTP_201_CREATED, headers=self.get_success_headers(body))

    def perform_destroy(self, instance: Image) -> None:
        services.image_delete(image=instance)

    @extend_schema(
        request={
            "application/json": ImageUpdateSerializer,
            "application/x-www-form-urlencoded": ImageUpdateFormSerializer,
            "multipart/form-data": ImageUpdateFormSerializer,
        },
        responses=FOCAL_POINT_RESPONSES,
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change the focal point (the one field that can be changed: a body
        changing the title or the alt text, set at upload and changed in the
        admin, is refused whole; one repeating them as they are is not)."""
        image = self.get_object()
        body = ImageUpdateSerializer(image, data=request.data)
        body.is_valid(raise_exception=True)
        point = body.validated_data["focal_point"]
        focal = processing.FocalPoint(point["x"], point["y"], point.get("radius")) if point else None
        return self._set_focal_point(image, focal, conditional=True)

    @extend_schema(request=FocalPointSerializer, responses=FOCAL_POINT_RESPONSES)
    @action(
        detail=True,
        methods=["post"],
        url_path="focal-point",
        url_name="focal-point",
        parser_classes=[JSONParser, FormParser, MultiPartParser],
        # Moving a focal point changes an image: the change permission, not add.
        permission_classes=[ModelChangePermissions],
    )
    def focal_point(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Set the focal point; the cropped renditions are cut again around it."""
        image = self.get_object()
        body = FocalPointSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._set_focal_point(image, body.to_point())

    def _set_focal_point(
        self, image: Image, focal: processing.FocalPoint | None, *, conditional: bool = False
    ) -> Response:
        """``conditional``: on the image's own address, where ``If-Match`` holds
        its ETag (checked with the row locked)."""
        try:
            with transaction.atomic():
                if conditional:
                    self.lock_and_check_if_match(image)
                services.image_set_focal_point(image=image, focal_point=focal)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"focal_point": exc.messages}) from exc
        image, body = self._written(image.pk)
        # Saved either way; 202 while the crops are still to be cut again
        # around it (the store was away): the sweep cuts them shortly.
        code = status.HTTP_202_ACCEPTED if image.crops_outdated else status.HTTP_200_OK
        return Response(body, status=code)

    def _written(self, pk: int) -> tuple[Image, dict[str, Any]]:
        """The image as a write left it, and its representation, read with its
        row locked, as its tag for the answer: another change cannot come
        between the two (core.reads.RowReadMixin.note_written)."""
        with transaction.atomic():
            lock_row(Image, pk)
            image = selectors.images_with_renditions().get(pk=pk)
            body = self.get_serializer(image).data
            self.note_written(pk)
        return image, body

    @extend_schema(request=ReprocessSerializer, responses={202: ImageSerializer})
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[JSONParser, FormParser, MultiPartParser],
        # Reprocessing changes an image: the change permission, not add.
        permission_classes=[ModelChangePermissions],
    )
    def reprocess(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        image = self.get_object()
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.image_reprocess(images=[image], preset=body.validated_data.get("preset"))
        _, written = self._written(image.pk)
        return Response(written, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The original as uploaded (embedded storage)."
            ),
            302: OpenApiResponse(description="A short-lived signed URL of the original (S3)."),
            403: OpenApiResponse(
                ErrorSerializer, description="Neither the view nor the change permission on images."
            ),
            404: OpenApiResponse(
                ErrorSerializer, description="No such image, or its original is missing from the store."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="original",
        url_name="original",
        permission_classes=[permissions.IsAuthenticated],
    )
    def original(self, request: Request, pk: str | None = None, **kwargs: Any) -> HttpResponseBase:
        """The untouched upload, metadata and all: only for callers with the
        view or the change permission on images (as in the admin)."""
        if not may_download_original(request):
            raise exceptions.PermissionDenied(
                "The original of an image is for callers with the view or the change permission on "
                "images (uploads.view_image or uploads.change_image)."
            )
        image = self.get_object()
        try:
            return original_response(image)
        except Http404 as exc:  # its file lost: said in words (a bare 404 says "no such image")
            raise exceptions.NotFound(str(exc)) from exc

    @extend_schema(responses=ondemand_api.RESPONSES)
    @action(
        detail=True,
        methods=["get"],
        url_path="url",
        url_name="rendition-url",
        permission_classes=[permissions.IsAuthenticated],
        content_negotiation_class=ondemand_api.ImageFormatNegotiation,
        schema=ondemand_api.RenditionUrlSchema(),
    )
    def rendition_url(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """A signed URL of a rendition of any size within the limits, made on
        its first request (see uploads.ondemand)."""
        return ondemand_api.rendition_url_response(request, pk)


def original_response(image: Image) -> HttpResponseBase:
    """A signed redirect to the original in a bucket, or its bytes streamed."""
    key = image.file.name or ""
    if not key:  # its file cleared by a save of its row
        raise _original_missing(image, key)
    filename = image.original_name or key.rsplit("/", 1)[-1]
    url = storage.original_url(key, expires=settings.ORIGINAL_URL_SECONDS, filename=filename)
    response: HttpResponseBase
    if url:
        # One HEAD first: a link to a lost object would be answered by the
        # bucket, with its own XML 404, out of the portal's hands. A store
        # that is away raises here (503).
        if not image.file.storage.exists(key):
            raise _original_missing(image, key)
        response = HttpResponseRedirect(url)
    else:
        try:
            opened = image.file.open("rb")
        except FileNotFoundError as exc:
            raise _original_missing(image, key) from exc
        response = FileResponse(
            opened,
            as_attachment=True,
            filename=filename,
            # Bytes to save, not to show: the upload was never checked for
            # what a browser might make of it.
            content_type="application/octet-stream",
        )
    response["Cache-Control"] = "private, no-store"
    return response


def _original_missing(image: Image, key: str) -> Http404:
    """An original lost from the store (restored from an older backup,
    deleted by hand): asking again will not bring it back, unlike a store
    that is briefly away (503)."""
    logger.error("image id=%s: original %s missing from the store", image.pk, key)
    return Http404(f"The original of image {image.pk} is missing from the image store.")
