"""The JSON API of people, feedback and products (``/api/v1/``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models, transaction
from django.db.models import Model, QuerySet
from django.utils.text import normalize_newlines
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status, throttling, viewsets
from rest_framework.decorators import action
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils import html

from catalog import formats, selectors, services
from catalog.forms import ReviewDateFormField
from catalog.models import (
    PHONE_LABEL_MAX_LENGTH,
    PHONE_NUMBER_MAX_LENGTH,
    PHONE_NUMBERS_MAX,
    Feedback,
    Person,
    Product,
    normal_username,
    username_clash_check,
    validate_not_future,
    validate_phone,
    validate_username_not_dots,
)
from core.api import ComposedTextSerializer, ConcurrentWritesMixin, CreatedLocationMixin, CursorPagination
from core.filters import BooleanFilter, FilterBackend, FilterSet, SearchFilter
from core.permissions import ModelPermissions
from core.reads import RowReadMixin, datetime_formatter, url_maker
from core.throttling import ClientRateThrottle
from core.validation import NULL_CHARACTER_MESSAGE, holds_null_character, validate_text
from uploads.api import ImageSummarySerializer
from uploads.rows import ImageRows, RenditionsByImage, rendition_rows, summary_fields

# --- Shared -------------------------------------------------------------------


class FeedbackThrottle(ClientRateThrottle):
    """Anonymous review submissions, per client address (API and web form alike)."""

    scope = "feedback"

    def note_sent(self, sent: str, *, seconds: int) -> None:
        """Keep for ``seconds`` that the client ``allow_request`` counted sent
        the review ``sent`` (a key of it): one cache write, no query."""
        key = getattr(self, "key", None)
        if key is not None:  # None for a client the throttle does not count
            self.cache.set(f"{key}:sent:{sent}", True, timeout=seconds)

    def has_sent(self, sent: str) -> bool:
        """Whether this client sent the review ``sent`` lately (``note_sent``)."""
        key = getattr(self, "key", None)
        return key is not None and bool(self.cache.get(f"{key}:sent:{sent}"))


class ModelPermissionsOrCreate(ModelPermissions):
    """Reads and creates are open; changes need the model permission."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "action", None) == "create":
            return True
        return super().has_permission(request, view)


def can_moderate(request: Request, model: type[Model]) -> bool:
    user = request.user
    opts = model._meta
    return bool(
        user and user.is_authenticated and user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
    )


def sees_every_row(view: Any, model: type[Model]) -> bool:
    """Whether the view's caller reaches the rows the public is not shown
    (a review held or hidden, an inactive person): one who may change them,
    or one deleting a row with the delete permission, as on images (a
    cleaning tool's token deletes the spam held for moderation, not a 404)."""
    request = view.request
    if can_moderate(request, model):
        return True
    user, opts = request.user, model._meta
    return bool(
        getattr(view, "action", None) == "destroy"
        and user
        and user.is_authenticated
        and user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")
    )


# --- People -------------------------------------------------------------------


class _FormText(str):
    """A form's ``phone=…`` (JSON bodies send an object)."""


class PhoneField(serializers.DictField):
    """Numbers by label. A form may send them as ``phone.<label>=<number>``,
    or as one text (``office: 802-555-0100; cell: …``), as files do."""

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            return _FormText(dictionary.get(self.field_name))
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, _FormText):
            try:
                data = formats.parse_phone(data)
            except formats.FormatError as exc:
                raise serializers.ValidationError(str(exc)) from exc
        phones = cast(dict[str, str], super().to_internal_value(data))
        if any(holds_null_character(label) for label in phones):  # the child checks the numbers
            raise serializers.ValidationError(NULL_CHARACTER_MESSAGE, code="null_characters_not_allowed")
        try:
            # Labels as the admin and the imports read them.
            return formats.phones_by_label(phones.items())
        except formats.FormatError as exc:
            raise serializers.ValidationError(str(exc), code="phone_label") from exc


class GivenBooleanField(serializers.BooleanField):
    """A boolean that a body which leaves it out does not give. DRF reads a
    boolean missing from a form or multipart body as false: a person created
    that way was inactive, and a PUT without it deactivated them, while a
    PUT without any other field keeps it. Left out, a new person gets the
    model's default and an update keeps the value."""

    default_empty_html = empty


def _username_characters(value: str) -> None:
    # Called, not given as a pattern: the schema would carry its \w, which
    # is ASCII alone in JSON Schema, while usernames may be in any script.
    UnicodeUsernameValidator()(value)


class UsernameField(serializers.CharField):
    """A username composed (``normal_username``) before it is checked, as
    the model keeps it: its checks and the row written see the one form."""

    def to_internal_value(self, data: Any) -> str:
        return normal_username(super().to_internal_value(data))


class UsernameFree:
    """Refuse a username another person has (``username_clash_check``)."""

    requires_context = True

    def __call__(self, value: str, field: serializers.Field[Any, Any, Any, Any]) -> None:
        person = field.parent.instance if field.parent is not None else None
        username_clash_check(value, person_pk=getattr(person, "pk", None))


class PersonSerializer(ComposedTextSerializer, serializers.ModelSerializer[Person]):
    # The username is part of the person's page URL, so no "/" or spaces.
    username = UsernameField(
        max_length=150,
        validators=[validate_text, _username_characters, validate_username_not_dots, UsernameFree()],
        help_text="Letters (of any script), digits and @ . + - _ only, not `.` or `..`; unique.",
    )
    phone = PhoneField(
        child=serializers.CharField(max_length=PHONE_NUMBER_MAX_LENGTH),
        required=False,
        validators=[validate_phone],
        help_text=f"Numbers by label (at most {PHONE_NUMBERS_MAX}, each label at most {PHONE_LABEL_MAX_LENGTH} "
        'characters), e.g. {"office": "802-867-5309"}; '
        "a form may send `phone.office=802-867-5309`, or `phone=office: 802-867-5309; cell: 802-555-0100`.",
    )
    is_active = GivenBooleanField(
        required=False, help_text="Listed in the directory. A new person is active unless told otherwise."
    )
    photo = ImageSummarySerializer(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField(
        help_text="Path of the public page, e.g. `/people/ghopper/`; null for an inactive person, "
        "who has no page."
    )

    class Meta:
        model = Person
        fields = [
            "id", "name", "username", "email", "phone", "department", "role",
            "is_active", "photo", "url", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def create(self, validated_data: dict[str, Any]) -> Person:
        return services.person_create(values=validated_data)

    def update(self, instance: Person, validated_data: dict[str, Any]) -> Person:
        # As the admin's change: a demo person changed becomes real.
        return services.person_update(person=instance, values=validated_data)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_url(self, person: Person) -> str | None:
        return person.get_absolute_url() if person.is_active else None


class PersonFilter(FilterSet):
    class Meta:
        model = Person
        fields = ["department", "role", "is_active"]


def phone_text(phone: Any) -> Any:
    """The phone numbers as ``PersonSerializer.phone`` writes them (text by label)."""
    if not isinstance(phone, dict):
        return phone
    return {str(label): None if number is None else str(number) for label, number in phone.items()}


class PersonViewSet(CreatedLocationMixin, ConcurrentWritesMixin, RowReadMixin, viewsets.ModelViewSet[Person]):
    """The people of the directory. Only active people are shown to a caller
    who may not change people; writes need the model's add, change or
    delete permission (which deletes an inactive person too)."""

    serializer_class = PersonSerializer
    filterset_class = PersonFilter
    search_fields = ["name", "username", "email", "department", "role"]
    ordering_fields = ["name", "username", "department", "role", "created_at"]
    ordering = ["department", "name"]
    read_fields = (
        "id", "name", "username", "email", "phone", "department", "role", "is_active",
        "created_at", "updated_at", *summary_fields("photo"),
    )  # fmt: skip

    def get_queryset(self) -> QuerySet[Person]:
        return selectors.people_visible(staff=sees_every_row(self, Person))

    def read_variant(self) -> tuple[bool]:
        return (can_moderate(self.request, Person),)

    def read_related(self, rows: list[dict[str, Any]]) -> RenditionsByImage:
        return rendition_rows(row["photo__id"] for row in rows)

    def represent_rows(self, rows: list[dict[str, Any]], related: RenditionsByImage) -> list[dict[str, Any]]:
        images, text = ImageRows(related), datetime_formatter()
        url = url_maker("catalog:person-detail", "username")
        return [
            {
                "id": row["id"],
                "name": row["name"],
                "username": row["username"],
                "email": row["email"],
                "phone": phone_text(row["phone"]),
                "department": row["department"],
                "role": row["role"],
                "is_active": row["is_active"],
                "photo": images.summary_of(row, "photo"),
                "url": url(row["username"]) if row["is_active"] else None,
                "created_at": text(row["created_at"]),
                "updated_at": text(row["updated_at"]),
            }
            for row in rows
        ]


# --- Products -----------------------------------------------------------------


class WeightField(serializers.IntegerField):
    """A weight in lbs: an integer, or a string holding one (``"500"``,
    ``"500 lbs"``, in digits of any script), read as every other path reads
    it (``formats.parse_weight``)."""

    def to_internal_value(self, data: Any) -> int:
        try:
            return formats.parse_weight(data)
        except formats.FormatError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class WeightFieldSchema(OpenApiSerializerFieldExtension):
    """In the schema, what the field takes (a number or such a string) apart
    from what it answers (always a number)."""

    target_class = WeightField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        number = {"type": "integer", "minimum": 1, "maximum": formats.WEIGHT_MAX}
        if direction == "response":
            return {**number, "description": "Weight in lbs."}
        text = {"type": "string", "pattern": formats.weight_pattern().pattern, "example": "500 lbs"}
        return {
            "oneOf": [number, text],
            "description": f'Weight in lbs, 1 to {formats.WEIGHT_MAX:,}: 500, "500" or "500 lbs", '
            "the digits of any script.",
        }


class ProductSerializer(ComposedTextSerializer, serializers.ModelSerializer[Product]):
    weight = WeightField()
    image = ImageSummarySerializer(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField(
        help_text="Path of the public page, e.g. `/catalog/1/`; null for a product the catalog does not "
        "show (a demo product, once the store has products of its own), which has no page."
    )

    class Meta:
        model = Product
        fields = [
            "id", "name", "weight", "description", "image_name", "image", "url",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_url(self, product: Product) -> str | None:
        return product.get_absolute_url() if selectors.product_shown(product) else None


class ProductFilter(FilterSet):
    on_display = BooleanFilter(
        method="filter_on_display",
        label="true: only the products the public catalog (and `GET /fruits/`) shows; false: only the "
        "others (the demo products, once the store has products of its own).",
    )

    class Meta:
        model = Product
        fields = ["image_name"]

    def filter_on_display(self, queryset: QuerySet[Product], name: str, value: bool) -> QuerySet[Product]:
        shown = selectors.on_display()
        return queryset.filter(shown) if value else queryset.exclude(shown)


class ProductViewSet(CreatedLocationMixin, RowReadMixin, viewsets.ModelViewSet[Product]):
    """The products of the catalog. Reads are open; writes need the model's
    add, change or delete permission."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ["name", "description", "image_name"]
    ordering_fields = ["name", "weight", "created_at"]
    ordering = ["name"]
    read_fields = (
        "id", "name", "weight", "description", "image_name", "created_at", "updated_at", "shown",
        *summary_fields("image"),
    )  # fmt: skip

    def get_queryset(self) -> QuerySet[Product]:
        # Whether each has a public page, for its url (a count leaves it out).
        return selectors.products_with_images().annotate(shown=selectors.on_display())

    def read_related(self, rows: list[dict[str, Any]]) -> RenditionsByImage:
        return rendition_rows(row["image__id"] for row in rows)

    def represent_rows(self, rows: list[dict[str, Any]], related: RenditionsByImage) -> list[dict[str, Any]]:
        images, text = ImageRows(related), datetime_formatter()
        url = url_maker("catalog:product-detail", "pk", int)
        return [
            {
                "id": row["id"],
                "name": row["name"],
                "weight": row["weight"],
                "description": row["description"],
                "image_name": row["image_name"],
                "image": images.summary_of(row, "image"),
                "url": url(row["id"]) if row["shown"] else None,
                "created_at": text(row["created_at"]),
                "updated_at": text(row["updated_at"]),
            }
            for row in rows
        ]

    # Writes go through the services, as on every other path: a product
    # posted twice (same image file stem) is updated, and images link by stem.
    @extend_schema(
        responses={
            201: ProductSerializer,
            200: OpenApiResponse(
                ProductSerializer,
                description="A product with this image file stem (or, without one, this name) "
                "existed and was updated: this needs the change permission too.",
            ),
        }
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            product, outcome = services.product_upsert(
                name=data["name"],
                weight=data["weight"],
                description=data.get("description", ""),
                image_name=data.get("image_name", ""),
            )
            if outcome != "created" and not request.user.has_perm("catalog.change_product"):
                raise exceptions.PermissionDenied(
                    f"Product {product.pk} has this image file stem (or name); "
                    "changing it needs the permission to change products (catalog.change_product)."
                )
            self.note_written(product.pk)
        serializer.instance = product
        created = outcome == "created"
        return Response(
            serializer.data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=self.get_success_headers(serializer.data) if created else None,
        )

    def perform_update(self, serializer: ProductSerializer) -> None:  # type: ignore[override]
        product = cast(Product, serializer.instance)  # DRF sets it for updates
        data = serializer.validated_data
        # One transaction: the row stays locked until its tag is read.
        with transaction.atomic():
            serializer.instance = services.product_update(
                product_id=product.pk,
                name=data.get("name"),
                weight=data.get("weight"),
                description=data.get("description"),
                image_name=data.get("image_name"),
                precondition=lambda locked: self.check_if_match(locked.pk),
            )
            self.note_written(product.pk)

    def perform_destroy(self, instance: Product) -> None:
        services.product_delete(product=instance)


# --- Feedback -----------------------------------------------------------------


class ReviewTextField(serializers.CharField):
    """A review's text with LF line breaks before its length is checked, as
    the model keeps it: a form body carries each line break as CRLF."""

    def to_internal_value(self, data: Any) -> str:
        return normalize_newlines(super().to_internal_value(data))


class ReviewDateField(serializers.DateField):
    """A review's date read by ``formats.parse_date``, the one rule of every
    path; ``exact`` here, as the schema gives it (``format: date``). Django's
    reading, which DRF's field uses, took what ``date.fromisoformat`` takes on
    Python 3.11 too (``20240102``, ``2024-W01-2``)."""

    exact = True

    def to_internal_value(self, value: Any) -> dt.date:
        if not isinstance(value, str):
            self.fail("invalid", format=formats.DATE_FORM)
        try:
            return formats.parse_date(value, exact=self.exact)
        except formats.FormatError:
            self.fail("invalid", format=formats.DATE_FORM)


class ProductIdField(serializers.PrimaryKeyRelatedField[Product]):
    """A product by its id. A number with a fraction is refused: the lookup
    would cut ``1.5`` down to product 1 and tie the review to it unasked."""

    default_error_messages = {
        "not_whole": "A product id is a whole number, not {value}.",
    }

    def to_internal_value(self, data: Any) -> Product:
        if isinstance(data, float) and not data.is_integer():
            self.fail("not_whole", value=data)
        return super().to_internal_value(data)


class FeedbackSerializer(ComposedTextSerializer, serializers.ModelSerializer[Feedback]):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TextField: ReviewTextField,
    }
    date = ReviewDateField(
        required=False, validators=[validate_not_future], help_text="Defaults to today; not in the future."
    )
    product = ProductIdField(queryset=Product.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Feedback
        fields = [
            "id", "title", "name", "date", "text", "rating", "product", "status",
            "source", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["status", "source", "created_at", "updated_at"]

    def update(self, instance: Feedback, validated_data: dict[str, Any]) -> Feedback:
        return services.feedback_update(review=instance, values=validated_data)


class FeedbackModerationSerializer(FeedbackSerializer):
    status = serializers.ChoiceField(choices=Feedback.Status.choices, required=False)


class ReviewDateFilter(filters.DateFilter):
    """A day to filter reviews by, read as the API reads a review's date."""

    field_class = ReviewDateFormField


class FeedbackFilter(FilterSet):
    date_after = ReviewDateFilter(field_name="date", lookup_expr="gte", exact=True)
    date_before = ReviewDateFilter(field_name="date", lookup_expr="lte", exact=True)

    class Meta:
        model = Feedback
        fields = ["status", "source", "rating", "product"]


class FeedbackCursorPagination(CursorPagination):
    # Newest first, as the numbered pages; the id breaks ties within a day.
    ordering = ("-date", "-id")


class FeedbackViewSet(
    CreatedLocationMixin, ConcurrentWritesMixin, RowReadMixin, viewsets.ModelViewSet[Feedback]
):
    """Reviews of the products. Anyone may submit one (at a limited rate);
    only published reviews are shown to a caller who may not change reviews,
    and changing one (moderation) or deleting it needs the model's change or
    delete permission (which deletes a review held or hidden too)."""

    permission_classes = [ModelPermissionsOrCreate]
    filterset_class = FeedbackFilter
    search_fields = ["title", "name", "text"]
    ordering_fields = ["date", "created_at", "rating", "id"]
    ordering = ["-date", "-id"]
    read_fields = FeedbackSerializer.Meta.fields

    def get_queryset(self) -> QuerySet[Feedback]:
        return selectors.feedback_visible(staff=sees_every_row(self, Feedback))

    def read_variant(self) -> tuple[bool]:
        return (can_moderate(self.request, Feedback),)

    def represent_rows(self, rows: list[dict[str, Any]], related: Any) -> list[dict[str, Any]]:
        # values() already names every field as the serializer does ("product"
        # is the product's id), and the renderer writes a date as DRF does.
        text = datetime_formatter()
        for row in rows:
            row["created_at"] = text(row["created_at"])
            row["updated_at"] = text(row["updated_at"])
        return rows

    @extend_schema(responses=FeedbackSerializer(many=True))
    @action(
        detail=False,
        methods=["get"],
        url_path="cursor",
        url_name="cursor",
        pagination_class=FeedbackCursorPagination,
        filter_backends=[FilterBackend, SearchFilter],
    )
    def cursor(self, request: Request, **kwargs: Any) -> Response:
        """The list walked with a cursor: newest first, each page one indexed
        query however deep, and no ``count``. Follow ``next`` from the first
        page; filters and ``search`` as on the list, no ``ordering``."""
        return self.list(request)

    def get_serializer_class(self) -> type[FeedbackSerializer]:
        if self.action in {"update", "partial_update"}:
            return FeedbackModerationSerializer
        return FeedbackSerializer

    def get_throttles(self) -> list[throttling.BaseThrottle]:
        throttles = super().get_throttles()
        if self.action == "create":
            throttles.append(FeedbackThrottle())
        return throttles

    def perform_create(self, serializer: FeedbackSerializer) -> None:  # type: ignore[override]
        data = serializer.validated_data
        with transaction.atomic():
            serializer.instance = services.feedback_submit(
                title=data.get("title", ""),
                name=data.get("name", ""),
                date=data.get("date"),
                text=data.get("text", ""),
                rating=data.get("rating"),
                product=data.get("product"),
                source=Feedback.Source.API,
            )
            self.note_written(serializer.instance.pk)
