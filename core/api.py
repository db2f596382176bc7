"""API conventions shared by every app: pagination, errors, permissions."""

from __future__ import annotations

import hashlib
import math
import time
from base64 import b64decode, b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib import parse

from django.contrib.auth import get_permission_codename
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import InvalidPage, Page, Paginator
from django.db import IntegrityError, transaction
from django.db.models import Model, Q, QuerySet
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils import html
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import exception_handler as drf_exception_handler

from core import multipart
from core.authentication import set_aside_session
from core.errors import RETRY_AFTER_SECONDS
from core.quoting import quoted
from core.validation import composed, composing

if TYPE_CHECKING:
    from rest_framework.views import APIView

# Counting a large table is the costliest part of a list page (a scan of
# every matching row); above this many rows the count is reused for a while.
LARGE_COUNT = 10_000
COUNT_TTL_SECONDS = 30
# Tells clients how old ``count`` is, in whole seconds: 0 when counted for
# this response, at most COUNT_TTL_SECONDS.
COUNT_HEADER = "Count-Cached-For"
# Counts a process has read from the cache, kept while they are fresh enough:
# most pages then skip the cache's round trip. Bounded, as keys vary by filter.
_LOCAL_COUNTS: dict[str, tuple[int, float]] = {}
_LOCAL_COUNTS_MAX = 1024


def forget_counts() -> None:
    """Drop the counts this process keeps (the shared cache keeps its own)."""
    _LOCAL_COUNTS.clear()


class CachedCountPaginator(Paginator):
    """A paginator whose count of a large result is cached briefly, so the
    pages of a 100,000-row list cost one indexed query, not a full count.
    Small results are always counted exactly.

    A count is kept with the time it was made, in the shared cache and in the
    process, and reused until it is ``COUNT_TTL_SECONDS`` old. It is keyed by
    ``count_key`` when the caller gives one (what determines the queryset), else
    by the queryset's SQL."""

    # Whole seconds since the count was made: 0 when counted just now.
    count_cached_for = 0

    def __init__(self, object_list: Any, per_page: int, *, count_key: str | None = None) -> None:
        super().__init__(object_list, per_page)
        self.count_key = count_key

    def _cache_key(self) -> str | None:
        identity = self.count_key
        if identity is None:
            try:
                identity = str(self.object_list.query)  # type: ignore[attr-defined]
            except (AttributeError, EmptyResultSet):
                return None
        return "api-count:" + hashlib.sha256(identity.encode()).hexdigest()

    @cached_property
    def count(self) -> int:
        key = self._cache_key()
        if key is None:
            return super().count
        now = time.time()
        kept = _LOCAL_COUNTS.get(key)
        if kept is None or now - kept[1] >= COUNT_TTL_SECONDS:
            shared = cache.get(key)
            kept = (int(shared[0]), float(shared[1])) if isinstance(shared, list | tuple) else None
            if kept is not None:
                if len(_LOCAL_COUNTS) >= _LOCAL_COUNTS_MAX:
                    _LOCAL_COUNTS.clear()
                _LOCAL_COUNTS[key] = kept
        if kept is not None and 0 <= now - kept[1] < COUNT_TTL_SECONDS:
            self.count_cached_for = max(1, math.ceil(now - kept[1]))
            return kept[0]
        count = super().count
        if count >= LARGE_COUNT:
            cache.set(key, (count, now), COUNT_TTL_SECONDS)
        return count


class RowsPaginator(CachedCountPaginator):
    """Counts a queryset as it is, and reads each page as ``values(*fields)``:
    the count stays a plain count of the table, without the joins the page's
    columns need."""

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        *,
        fields: Sequence[str] | None = None,
        count_key: str | None = None,
    ) -> None:
        super().__init__(object_list, per_page, count_key=count_key)
        self.fields = fields

    # Django's hook for the page made of a slice (absent from the stubs).
    def _get_page(self, object_list: Any, number: int, paginator: Paginator) -> Page:  # type: ignore[misc]
        if self.fields is not None:
            object_list = object_list.values(*self.fields)
        page: Page = super()._get_page(object_list, number, paginator)  # type: ignore[misc]
        return page


class Pagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    # Set by a view that reads its pages as rows (core.reads.RowReadMixin).
    row_fields: Sequence[str] | None = None
    count_key: str | None = None

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        """The page asked for, or a 404 that names it and the pages there are
        (DRF's says "Invalid page." alone, whatever the page)."""
        number = super().get_page_number(request, paginator)
        try:
            return paginator.validate_number(number)
        except InvalidPage:
            raise exceptions.NotFound(
                f"There is no page {quoted(str(number))}: the pages are numbered 1 to {paginator.num_pages}."
            ) from None

    # DRF calls django_paginator_class(queryset, page_size): a method, to pass the fields on.
    def django_paginator_class(self, object_list: Any, per_page: int) -> RowsPaginator:  # type: ignore[override]
        return RowsPaginator(object_list, per_page, fields=self.row_fields, count_key=self.count_key)

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response[COUNT_HEADER] = str(self.count_cached_for)
        return response

    @property
    def count_cached_for(self) -> int:
        paginator = self.page.paginator if self.page is not None else None
        return paginator.count_cached_for if isinstance(paginator, CachedCountPaginator) else 0


@dataclass(frozen=True)
class Keyset:
    """Where a cursor page starts: after the row whose ordering key is
    ``position`` (its values as text), or before it when ``reverse``. Without
    a position, the first page of the list (the last one when ``reverse``)."""

    reverse: bool = False
    position: tuple[str, ...] | None = None


class CursorPagination(pagination.CursorPagination):
    """Pages that cost one indexed query however deep, for walking a very large
    list: no count, and links carry an opaque cursor instead of a page number.

    The cursor holds the whole ordering key of the row a page follows (a
    keyset), and the page is the rows after that key in the list's order: one
    seek through an index on the ordering, however many rows share its first
    field. (DRF's own cursor holds the first field only and steps over the
    rows that share it with an offset, capped at ``offset_cutoff``: past that
    many equal first fields it stops advancing.) The ordering's fields must
    not be null; the primary key ends it, added when the ordering does not
    name it, so that no two rows share a key."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_ordering(self, request: Request, queryset: QuerySet[Any, Any], view: APIView) -> tuple[str, ...]:
        ordering = super().get_ordering(request, queryset, view)
        pk = queryset.model._meta.pk.name
        ordering = tuple(
            field.replace("pk", pk) if field.lstrip("-") == "pk" else field for field in ordering
        )
        if pk not in {field.lstrip("-") for field in ordering}:
            sign = "-" if ordering[-1].startswith("-") else ""
            ordering += (sign + pk,)
        return ordering

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any, Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        self.page_size = page_size
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)  # type: ignore[arg-type]
        keyset = self.decode_keyset(request)
        order = _reversed(self.ordering) if keyset.reverse else self.ordering
        queryset = queryset.order_by(*order)
        if keyset.position is not None:
            queryset = queryset.filter(_after(order, self._bounds(queryset, keyset.position)))
        rows = list(queryset[: page_size + 1])
        page = rows[:page_size]
        if keyset.reverse:
            page.reverse()
        further, started = len(rows) > page_size, keyset.position is not None
        self.has_next, self.has_previous = (started, further) if keyset.reverse else (further, started)
        self.page = page
        self.display_page_controls = (self.has_next or self.has_previous) and self.template is not None
        return page

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        # An empty page (nothing before a reverse cursor's row): the first page follows it.
        position = self._position(self.page[-1]) if self.page else None
        return self.encode_keyset(Keyset(reverse=False, position=position))

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        # An empty page (nothing after a cursor's row): the last page precedes it.
        position = self._position(self.page[0]) if self.page else None
        return self.encode_keyset(Keyset(reverse=True, position=position))

    def decode_keyset(self, request: Request) -> Keyset:
        """The request's cursor, as DRF writes one (``r`` and ``p`` in a base64
        query string) with one ``p`` per field of the ordering; 404 when it is
        not one."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return Keyset()
        try:
            # validate: without it b64decode drops whatever is not base64, and a
            # cursor of junk alone would read as the first page.
            text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse.parse_qs(text, keep_blank_values=True)
        except ValueError:
            raise exceptions.NotFound(self.invalid_cursor_message) from None
        reverse = tokens.pop("r", ["0"])
        position = tokens.pop("p", None)
        if tokens or reverse not in (["0"], ["1"]):
            raise exceptions.NotFound(self.invalid_cursor_message)
        if position is not None and len(position) != len(self.ordering):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return Keyset(reverse=reverse == ["1"], position=None if position is None else tuple(position))

    def encode_keyset(self, keyset: Keyset) -> str:
        tokens: dict[str, Any] = {}
        if keyset.reverse:
            tokens["r"] = "1"
        if keyset.position is not None:
            tokens["p"] = keyset.position
        base_url = cast(str, self.base_url)
        if not tokens:
            return remove_query_param(base_url, self.cursor_query_param)
        encoded = b64encode(parse.urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")
        return replace_query_param(base_url, self.cursor_query_param, encoded)

    def _position(self, row: Any) -> tuple[str, ...]:
        names = [field.lstrip("-") for field in self.ordering]
        if isinstance(row, dict):
            return tuple(str(row[name]) for name in names)
        return tuple(str(getattr(row, name)) for name in names)

    def _bounds(self, queryset: QuerySet[Any, Any], position: tuple[str, ...]) -> list[Any]:
        """A cursor's values as the ordering's fields hold them; 404 for one
        they could not hold (which a query would fail on, not just miss)."""
        bounds = []
        for field_name, text in zip(self.ordering, position, strict=True):
            field = queryset.model._meta.get_field(field_name.lstrip("-"))
            try:
                value = field.to_python(text)
            except (DjangoValidationError, TypeError, ValueError):
                value = None
            if value is None:
                raise exceptions.NotFound(self.invalid_cursor_message)
            bounds.append(value)
        return bounds


def _reversed(ordering: Sequence[str]) -> tuple[str, ...]:
    return tuple(field[1:] if field.startswith("-") else "-" + field for field in ordering)


def _after(ordering: Sequence[str], bounds: Sequence[Any]) -> Q:
    """Rows after the key ``bounds`` in ``ordering``: a later first field, or
    the same and a later second, and so on. Led by the first field's bound
    (``date <= d AND (date < d OR (date = d AND id < i))``), which an index
    on the ordering seeks to."""
    names = [field.lstrip("-") for field in ordering]
    after = Q()
    for depth, field in enumerate(ordering):
        lookup = "lt" if field.startswith("-") else "gt"
        same = dict(zip(names[:depth], bounds, strict=False))
        after |= Q(**same, **{f"{names[depth]}__{lookup}": bounds[depth]})
    first_lookup = "lte" if ordering[0].startswith("-") else "gte"
    return Q(**{f"{names[0]}__{first_lookup}": bounds[0]}) & after


class Conflict(exceptions.APIException):
    """A write that lost a race with another one (HTTP 409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Another change to the same data was made at the same time; reload it and try again."
    default_code = "conflict"


class PreconditionFailed(exceptions.APIException):
    """A conditional write (``If-Match``) of a row that is no longer as the
    client read it (HTTP 412)."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = (
        "If-Match names no ETag this object has now: it changed since it was read. "
        "Read it again (GET) and send the change with its new ETag."
    )
    default_code = "precondition_failed"


def may_view(user: Any, model: type[Model]) -> bool:
    """Whether ``user`` may view ``model``'s rows, as Django's admin decides
    it (``ModelAdmin.has_view_permission``): with the view permission, or the
    change permission, which includes it. The API asks the same question, so
    that no one may do in one what the other refuses."""
    if user is None or not user.is_authenticated:
        return False
    opts = model._meta
    return bool(
        user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")
        or user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")
    )


class CreatedLocationMixin:
    """A 201 names the new object's address in the API in ``Location``. DRF
    takes the ``url`` field of the body, which here is the public page."""

    def get_success_headers(self, data: Any) -> dict[str, str]:
        try:
            pk = data["id"]
        except (TypeError, KeyError):
            return {}
        return {"Location": self.reverse_action("detail", args=[pk])}  # type: ignore[attr-defined]


class ConcurrentWritesMixin:
    """Creates and updates of a model viewset that hold when two requests
    write the same row at once.

    - An update re-reads its row locked (``SELECT … FOR UPDATE``; SQLite's
      IMMEDIATE transactions serialize writers) and applies only the fields
      it was sent, so a concurrent update of other fields is not overwritten
      with what was read before it, and a row deleted meanwhile answers 404
      instead of being written back. An ``If-Match`` is checked then too.
    - A unique value taken by another request between validation and the
      write is refused as validation would have refused it (400 naming the
      field), not as a database error.
    - A view with conditional writes (``core.reads.RowReadMixin``) answers
      with the ETag of the row written, read in the same transaction.
    """

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        with transaction.atomic():
            self._save(serializer)
            self._note_written(serializer)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        stale = cast(Model, serializer.instance)  # DRF sets it for updates
        with transaction.atomic():
            current = type(stale)._default_manager.select_for_update().filter(pk=stale.pk).first()
            if current is None:
                raise exceptions.NotFound()
            # A view with conditional writes (core.reads.RowReadMixin) checks
            # If-Match against the row now locked, not the one read before.
            check = getattr(self, "check_if_match", None)
            if check is not None:
                check(current.pk)
            serializer.instance = current
            self._save(serializer)
            self._note_written(serializer)

    def _note_written(self, serializer: serializers.BaseSerializer[Any]) -> None:
        note = getattr(self, "note_written", None)
        if note is not None:
            note(cast(Model, serializer.instance).pk)

    def _save(self, serializer: serializers.BaseSerializer[Any]) -> None:
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:
            # Validated again now, the same data names the field it clashes on.
            view = cast(Any, self)  # a GenericAPIView's
            again = view.get_serializer(
                serializer.instance, data=view.request.data, partial=serializer.partial
            )
            again.is_valid(raise_exception=True)
            raise Conflict() from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's ValidationError as a 400 with field messages.

    Every error body is JSON: ``{"detail": "..."}`` for request-level errors, or
    ``{"field": ["message", ...]}`` for invalid fields, as DRF does. A row that
    is gone by the time a write reaches it is a 404, a write that lost a race
    a 409, and a 429 names the limit it enforces.
    """
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": " ".join(exc.messages)})
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, IntegrityError):
        exc = Conflict()
    elif isinstance(exc, exceptions.Throttled) and getattr(context.get("request"), "throttled_limits", None):
        limits = " and ".join(context["request"].throttled_limits)
        wait = getattr(exc, "wait", None)
        exc = exceptions.Throttled(wait, detail=f"Too many requests from this client: the limit is {limits}.")
    elif isinstance(exc, exceptions.UnsupportedMediaType) and "request" in context:
        exc = _unsupported_media_type(context["request"])
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif (
        isinstance(exc, exceptions.NotAuthenticated)
        and "request" in context
        and (why := set_aside_session(context["request"]._request))
    ):
        exc = exceptions.NotAuthenticated(why)
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, list):
        # Raised with a bare message (DRF's search filter, on a null
        # character): an object like every other error body, not a list.
        exc = exceptions.ValidationError({"detail": " ".join(str(m) for m in exc.detail)})
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        # A dependency away: when to try again, as the middleware's 503s say.
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response


def _unsupported_media_type(request: Request) -> exceptions.UnsupportedMediaType:
    """A 415 naming the content types the view reads, not only the one sent:
    a script posting ``data=json.dumps(...)`` sends none, and DRF's
    'Unsupported media type "" in request.' left it to guess what would do."""
    sent = request.content_type.split(";", 1)[0].strip()
    what = f"the content type {quoted(sent)}" if sent else "no Content-Type"
    accepted = list(dict.fromkeys(parser.media_type for parser in request.parsers or ()))
    choice = " or ".join([", ".join(accepted[:-1]), accepted[-1]] if len(accepted) > 1 else accepted)
    return exceptions.UnsupportedMediaType(
        sent, detail=f"The body was sent with {what}; send it as {choice}."
    )


class FileField(serializers.FileField):
    """DRF's file field, which refuses a file kept for want of a usable name,
    saying so, takes a file input left empty for no file, as Django's forms
    do, and refuses several files where it takes one."""

    default_error_messages = {
        "unusable_name": "{message}",
        "several": "Send one file per request; this one has {count}.",
    }

    def get_value(self, dictionary: Any) -> Any:
        # Every file sent under the field's name, not the last alone: the
        # others would be dropped while the answer says the upload was taken.
        if html.is_html_input(dictionary) and len(sent := dictionary.getlist(self.field_name)) > 1:
            return sent
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, list):
            self.fail("several", count=len(data))
        if data == "":
            # A file input left empty: a browser sends its part with no file
            # name, which Django reads as a field, "not a file" to DRF.
            self.fail("required")
        sent = multipart.unusable_name(data)
        if sent is not None:
            self.fail("unusable_name", message=multipart.unusable_name_message(sent))
        return super().to_internal_value(data)


class ComposedText:
    """Serializer field mixin: the text sent, composed (``composed``) as the
    model stores it, before the field's checks. Its length is counted as
    stored: "é" sent decomposed is two characters, and a name that fits its
    column composed was refused as too long, while the imports, which
    compose first, took it."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)  # type: ignore[misc]
        return composed(value) if isinstance(value, str) else value


class ComposedCharField(ComposedText, serializers.CharField):
    """Text of a field the model stores composed, in a serializer of no model."""


# ModelSerializer mixin: the fields it makes of the text its model stores
# composed (``TextComposed.composed_fields``) compose it before their
# checks, as the model would after them. Said here, not in a docstring,
# which the schema would take for each serializer's description.
class ComposedTextSerializer:
    Meta: Any

    def build_standard_field(self, field_name: str, model_field: Any) -> tuple[type[Any], dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)  # type: ignore[misc]
        if field_name in getattr(self.Meta.model, "composed_fields", ()) and issubclass(
            field_class, serializers.CharField
        ):
            field_class = composing(ComposedText, field_class)
        return field_class, kwargs
