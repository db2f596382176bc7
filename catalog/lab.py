"""The course's web service contract: ``/feedback/``, ``/fruits/``, ``/upload/``.

Clients written for it post JSON, form or multipart bodies with no auth, with or
without the trailing slash, check for 201 and read ``id``. Browsers asking
for HTML at the same URLs get the public pages.

Reviews may be posted from anywhere, as through the public form. Products and
images change what every visitor sees, so without credentials they are taken
only from ``LAB_WRITE_NETWORKS`` (where the suppliers' scripts run); from
elsewhere a write needs a token with the model permissions.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, status, throttling
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.api import ReviewDateField, ReviewTextField, WeightField
from catalog.models import Feedback, validate_not_future
from core.api import ComposedText, FileField
from core.authentication import TokenAuthentication
from core.net import UNTRUSTED_PROXY, client_in_networks, through_untrusted_proxy
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.throttling import ClientRateThrottle
from uploads.api import upload_from_request


class LabThrottle(ClientRateThrottle):
    scope = "lab"


class TrimmedDateField(ReviewDateField):
    """A ``YYYY-MM-DD`` date, trimmed like every other field: course clients
    post the lines of a file as readlines() gives them, ``"2017-12-21\n"``.
    Read as ``import_feedback`` reads a review file's date, so that a file
    it takes is a body this takes, and the reverse."""

    exact = False


class LineField(serializers.CharField):
    """A line of a lab file, trimmed. A file a Windows editor saved as UTF-8
    starts with a byte order mark, which ``open()`` keeps at the start of the
    first line (it is no whitespace to ``strip()``): it goes too, as
    ``import_feedback`` and ``import_supplier`` read the same file, so that a
    review or product posted is the one they would make of it."""

    def run_validation(self, data: Any = empty) -> Any:
        if isinstance(data, str):
            data = data.lstrip().removeprefix("\ufeff")
        return super().run_validation(data)


class TextLineField(ComposedText, LineField):
    """A line of text the model stores composed, composed before its checks
    (``ComposedText``); a file's name is a ``LineField``, kept as sent."""


class ReviewTextLineField(ComposedText, LineField, ReviewTextField):
    pass


class LabFeedbackSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    title = TextLineField(max_length=100, allow_blank=True, required=False, default="")
    name = TextLineField(max_length=100, allow_blank=True, required=False, default="")
    date = TrimmedDateField(validators=[validate_not_future])
    feedback = ReviewTextLineField(
        source="text", max_length=5000, allow_blank=True, required=False, default=""
    )


class LabFruitSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = TextLineField(max_length=200)
    weight = WeightField()
    description = TextLineField(allow_blank=True, required=False, default="")
    image_name = LineField(max_length=255, allow_blank=True, required=False, default="")


class LabUploadSerializer(serializers.Serializer[Any]):
    file = FileField(allow_empty_file=True)


class LabUploadedSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    file = serializers.CharField(help_text="The file name as sent.")
    image_name = serializers.CharField()
    status = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class LabWriteAllowed(permissions.BasePermission):
    """Reads and reviews for anyone; a write to the catalog or its images from
    the configured networks, or with a token whose user holds the view's
    ``write_permissions``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        perms = getattr(view, "write_permissions", ())
        if request.method in permissions.SAFE_METHODS or not perms:
            return True
        if client_in_networks(request, settings.LAB_WRITE_NETWORKS):
            return True
        user = request.user
        if user.is_authenticated and user.has_perms(perms):
            return True
        # The setting is named, not its networks: where the suppliers' scripts
        # run is for the operator to know, not for whoever is refused.
        if user.is_authenticated:
            lacking = [perm for perm in perms if not user.has_perm(perm)]
            self.message = (
                f"From outside the networks set in PORTAL_LAB_WRITE_NETWORKS, {request.path} takes "
                f"writes from a token whose user has the permissions {', '.join(perms)}; this token's "
                f"user {user.get_username()!r} lacks {', '.join(lacking)}."
            )
        else:
            self.message = (
                f"Without credentials, {request.path} takes writes only from the networks set in "
                f"PORTAL_LAB_WRITE_NETWORKS; from elsewhere send a token whose user has the permissions "
                f"{', '.join(perms)}."
            )
        if through_untrusted_proxy(request):
            self.message += f" {UNTRUSTED_PROXY}."
        return False


# A plain JSON list has no pages: ``GET /feedback/`` and ``GET /fruits/`` list
# this many, the newest, and point at the API for the rest.
LIST_LIMIT = 1000


class LabView(APIView):
    # A token, never a session: the endpoints stay free of CSRF checks.
    authentication_classes = [TokenAuthentication]
    permission_classes = [LabWriteAllowed]
    write_permissions: tuple[str, ...] = ()
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    public_page = "home"
    api_list: str  # the URL name of the API list a cut-short GET points at
    api_list_query = ""  # and its query, so that it lists the same rows

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        if request.authenticators and not request.successful_authenticator:
            # Say what would do, not DRF's bare "credentials were not provided".
            raise exceptions.NotAuthenticated(message, code)
        super().permission_denied(request, message, code)

    def get_throttles(self) -> list[throttling.BaseThrottle]:
        return [LabThrottle()] if self.request.method == "POST" else []

    def wants_html(self, request: Request) -> bool:
        accept = request.META.get("HTTP_ACCEPT", "")
        return "text/html" in accept and "application/json" not in accept

    def html_redirect(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(self.public_page))

    def listing(
        self, items: list[Any], serializer: type[serializers.Serializer[Any]], *, cut: bool, total: Any
    ) -> Response:
        """The course's plain JSON list of ``items``. One ``cut`` short says so
        in its headers: ``X-Total-Count``, the whole number (``total()``), and a
        ``Link`` to the API list that walks through every one."""
        response = Response(serializer(items, many=True).data)
        if cut:
            response["X-Total-Count"] = str(total())
            url = self.request.build_absolute_uri(reverse(self.api_list) + self.api_list_query)
            response["Link"] = f'<{url}>; rel="alternate"'
        return response


# The headers of a list cut short, in the schema.
CUT_LIST_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        int,
        OpenApiParameter.HEADER,
        response=True,
        description=f"Only on a list cut short at {LIST_LIMIT}: how many there are in all.",
    ),
    OpenApiParameter(
        "Link",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description='Only on a list cut short: `<URL>; rel="alternate"`, the API list that walks through every one.',
    ),
]


class LabFeedbackView(LabView):
    public_page = "catalog:review-list"
    api_list = "feedback-cursor"
    # The published ones: a caller who may moderate reviews sees the others
    # there too, which this list neither shows nor counts.
    api_list_query = "?status=published"

    @extend_schema(
        responses=LabFeedbackSerializer(many=True),
        parameters=CUT_LIST_HEADERS,
        description=f"The newest {LIST_LIMIT} published reviews, newest first.",
    )
    def get(self, request: Request) -> Response | HttpResponseRedirect:
        if self.wants_html(request):
            return self.html_redirect()
        reviews = selectors.feedback_published()
        newest = list(reviews[: LIST_LIMIT + 1])
        return self.listing(
            newest[:LIST_LIMIT], LabFeedbackSerializer, cut=len(newest) > LIST_LIMIT, total=reviews.count
        )

    @extend_schema(request=LabFeedbackSerializer, responses={201: LabFeedbackSerializer})
    def post(self, request: Request) -> Response:
        body = LabFeedbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            # Posted again (a script run twice): the review held, with the
            # same 201, so that an unchanged script goes on to its next file.
            review, _ = services.feedback_submit_once(
                title=data["title"],
                name=data["name"],
                date=data["date"],
                text=data["text"],
                source=Feedback.Source.API,
            )
        except ValidationError as exc:
            raise _as_sent(exc, body) from exc
        return Response(LabFeedbackSerializer(review).data, status=status.HTTP_201_CREATED)


def _as_sent(exc: ValidationError, body: serializers.Serializer[Any]) -> exceptions.ValidationError:
    """The model's refusal, each field named as the client sent it: the
    review's text is ``feedback`` in the course's body, ``text`` in the model."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({"detail": " ".join(exc.messages)})  # as core.api words it
    sent = {field.source: name for name, field in body.fields.items()}
    return exceptions.ValidationError(
        {sent.get(key, key): errors for key, errors in exc.message_dict.items()}
    )


class LabFruitsView(LabView):
    public_page = "catalog:product-list"
    # A post updates the product of the same file stem, if there is one.
    write_permissions = ("catalog.add_product", "catalog.change_product")
    api_list = "product-list"
    api_list_query = "?on_display=true"

    @extend_schema(
        responses=LabFruitSerializer(many=True),
        parameters=CUT_LIST_HEADERS,
        description=f"The products on display in the order they were added; past {LIST_LIMIT}, the newest {LIST_LIMIT}.",
    )
    def get(self, request: Request) -> Response | HttpResponseRedirect:
        if self.wants_html(request):
            return self.html_redirect()
        # In the order they were added, as the course listed them; past the
        # limit, the newest (a product just posted is among them).
        fruits = selectors.products_on_display(with_images=False)
        newest = list(fruits.order_by("-pk")[: LIST_LIMIT + 1])
        return self.listing(
            newest[:LIST_LIMIT][::-1], LabFruitSerializer, cut=len(newest) > LIST_LIMIT, total=fruits.count
        )

    @extend_schema(request=LabFruitSerializer, responses={201: LabFruitSerializer})
    def post(self, request: Request) -> Response:
        body = LabFruitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product, _ = services.product_upsert(**body.validated_data)
        return Response(LabFruitSerializer(product).data, status=status.HTTP_201_CREATED)


class LabUploadView(LabView):
    public_page = "catalog:product-list"
    write_permissions = ("uploads.add_image",)
    parser_classes = [MultiPartParser, FormParser]
    file_actions = frozenset({"post"})
    file_fields = frozenset({"file"})

    serializer_class = LabUploadSerializer

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponseRedirect:
        return self.html_redirect()

    @extend_schema(
        request={"multipart/form-data": LabUploadSerializer},
        responses={201: LabUploadedSerializer},
    )
    def post(self, request: Request) -> Response:
        body = LabUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # Sent again (an uploader run twice): the image held, with the same 201.
        image = upload_from_request(request, {**body.validated_data, "preset": "supplier"}, once=True)
        uploaded = {
            "id": image.pk,
            "file": image.original_name,
            "image_name": image.original_name,
            "status": image.status,
            "width": image.width,
            "height": image.height,
        }
        return Response(LabUploadedSerializer(uploaded).data, status=status.HTTP_201_CREATED)
