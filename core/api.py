"""API conventions shared by every app: pagination, errors, permissions."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any, cast

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page, Paginator
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import RETRY_AFTER_SECONDS

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


class CursorPagination(pagination.CursorPagination):
    """Pages that cost one indexed query however deep, for walking a very large
    list: no count, and links carry an opaque cursor instead of a page number."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class Conflict(exceptions.APIException):
    """A write that lost a race with another one (HTTP 409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Another change to the same data was made at the same time; reload it and try again."
    default_code = "conflict"


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
      instead of being written back.
    - A unique value taken by another request between validation and the
      write is refused as validation would have refused it (400 naming the
      field), not as a database error.
    """

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        self._save(serializer)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        stale = cast(Model, serializer.instance)  # DRF sets it for updates
        with transaction.atomic():
            current = type(stale)._default_manager.select_for_update().filter(pk=stale.pk).first()
            if current is None:
                raise exceptions.NotFound()
            serializer.instance = current
            self._save(serializer)

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
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, list):
        # Raised with a bare message (DRF's search filter, on a null
        # character): an object like every other error body, not a list.
        exc = exceptions.ValidationError({"detail": " ".join(str(m) for m in exc.detail)})
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        # A dependency away: when to try again, as the middleware's 503s say.
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response
