"""API conventions shared by every app: pagination, errors, permissions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page, Paginator
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# Counting a large table is the costliest part of a list page (a scan of
# every matching row); above this many rows the count is reused for a while.
LARGE_COUNT = 10_000
COUNT_TTL_SECONDS = 30
# Tells clients how old ``count`` may be: 0 when counted for this response.
COUNT_HEADER = "Count-Cached-For"


class CachedCountPaginator(Paginator):
    """A paginator whose count of a large result is cached briefly, so the
    pages of a 100,000-row list cost one indexed query, not a full count.
    Small results are always counted exactly."""

    # Seconds the count may lag behind the table: 0 when counted just now.
    count_cached_for = 0

    @cached_property
    def count(self) -> int:
        try:
            sql = str(self.object_list.query)  # type: ignore[attr-defined]
        except (AttributeError, EmptyResultSet):
            return super().count
        key = "api-count:" + hashlib.sha256(sql.encode()).hexdigest()
        cached = cache.get(key)
        if cached is not None:
            self.count_cached_for = COUNT_TTL_SECONDS
            return int(cached)
        count = super().count
        if count >= LARGE_COUNT:
            cache.set(key, count, COUNT_TTL_SECONDS)
        return count


class RowsPaginator(CachedCountPaginator):
    """Counts a queryset as it is, and reads each page as ``values(*fields)``:
    the count stays a plain count of the table, without the joins the page's
    columns need."""

    def __init__(self, object_list: Any, per_page: int, *, fields: Sequence[str] | None = None) -> None:
        super().__init__(object_list, per_page)
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

    # DRF calls django_paginator_class(queryset, page_size): a method, to pass the fields on.
    def django_paginator_class(self, object_list: Any, per_page: int) -> RowsPaginator:  # type: ignore[override]
        return RowsPaginator(object_list, per_page, fields=self.row_fields)

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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's ValidationError as a 400 with field messages.

    Every error body is JSON: ``{"detail": "..."}`` for request-level errors, or
    ``{"field": ["message", ...]}`` for invalid fields, as DRF does.
    """
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)
