"""What the admin's lists refuse before they query the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import OrderBy, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.text import smart_split
from django_stubs_ext import StrOrPromise

from core.admin_counts import EstimatedCountPaginator
from core.errors import error_response
from core.filters import MAX_SEARCH_TERMS, too_many_search_terms


class SearchLimitMixin:
    """For a ModelAdmin: a search of more than MAX_SEARCH_TERMS words is a 400
    naming the limit, as in the API. The admin tests every searched field for
    each word, and SQLite refuses the query of a thousand words ("Expression
    tree is too large"), which the site would answer as an outage."""

    search_help_text: ClassVar[StrOrPromise | None] = (
        f"Every word must be found in one of the searched fields; at most {MAX_SEARCH_TERMS} words "
        "(a phrase in quotes counts as one)."
    )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        term = request.GET.get(SEARCH_VAR, "")
        if term and self.get_search_fields(request):  # type: ignore[attr-defined]
            # Split as the admin's search splits it (a quoted phrase is one word).
            refused = too_many_search_terms(sum(1 for _ in smart_split(term)))
            if refused:
                return error_response(request, 400, "Bad request", refused)
        response: HttpResponse = super().changelist_view(request, extra_context)  # type: ignore[misc]
        return response


class DateHierarchyMixin:
    """For a ModelAdmin with a ``date_hierarchy``: a drill-down to a year,
    month or day too large for a date (``?date__year=10**30``) is refused as
    the admin refuses any filter it cannot apply, in the list and in the
    export page that takes the list's filters. Django turns the ValueError
    of ``year=10000`` into that, but not the OverflowError of a number past a
    C long, which was a 500. Nor the ValueError of the year after 9999, the
    end of a drill-down to the year 9999 (``?date__year=9999``)."""

    date_hierarchy: ClassVar[str | None]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist: ChangeList = self._drill_down(request, super().get_changelist_instance)  # type: ignore[misc]
        return changelist

    def get_export_queryset(self, request: HttpRequest) -> Any:
        """(django-import-export's export, for an admin that has it.)"""
        return self._drill_down(request, super().get_export_queryset)  # type: ignore[misc]

    def _drill_down(self, request: HttpRequest, build: Callable[[HttpRequest], Any]) -> Any:
        field = self.date_hierarchy
        year = request.GET.get(f"{field}__year")
        if year is not None and not any(f"{field}__{part}" in request.GET for part in ("month", "day")):
            try:
                last = int(year) >= dt.MAXYEAR
            except ValueError:
                last = False  # not a year: the admin refuses it itself
            if last:
                raise IncorrectLookupParameters(f"No year after {year} to end the drill-down at.")
        try:
            return build(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class IndexOrderedChangeList(ChangeList):
    """The admin makes an order total by adding the primary key, always
    descending (``ORDER BY bytes, id DESC``): only an index of both columns
    in those directions, and another for the other direction, serves that
    without reading the whole table. Here the key goes the way of the sort
    before it (``bytes, id`` or ``bytes DESC, id DESC``), so that one index of
    (column, id), read forwards or backwards, serves a column both ways."""

    def _get_deterministic_ordering(self, ordering: Any) -> list[Any]:
        given = list(ordering)
        total: list[Any] = super()._get_deterministic_ordering(given)  # type: ignore[misc]
        if given and total == [*given, "-pk"]:
            last = given[-1]
            if isinstance(last, OrderBy):
                descending = last.descending
            else:
                descending = isinstance(last, str) and last.startswith("-")
            total[-1] = "-pk" if descending else "pk"
        return total


def nullable_relation_order(queryset: QuerySet[Any]) -> tuple[str, bool] | None:
    """The nullable foreign key whose related model's order, then the primary
    key the same way, is the order of ``queryset`` (``product, pk`` or
    ``-product, -pk``), and whether descending; else None."""
    order = queryset.query.order_by
    if len(order) != 2:
        return None
    first, last = order
    if not (isinstance(first, str) and isinstance(last, str)):
        return None
    descending = first.startswith("-")
    name = first.removeprefix("-")
    if last != ("-pk" if descending else "pk"):
        return None
    try:
        field = queryset.model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if not (field.many_to_one and field.null):
        return None
    return name, descending


class IndexOrderedPaginator(EstimatedCountPaginator):
    """A list sorted by a nullable foreign key (reviews by product) is sorted
    by the related rows' order over an outer join, which no index serves: the
    database reads and sorts both tables for each page. Its page is read in
    two parts instead, each read in the order of an index: the rows with a
    related row (an inner join, walked along the related table's index of its
    order and each one's rows by the index of the key), and the rows without
    one (by id). The parts come in the order the database sorts an empty key in
    (PostgreSQL: last going up, first going down; SQLite the other way), so
    that a page reads as the list's one query, which a list short enough for
    one page runs, would show it."""

    def rows(self, queryset: QuerySet[Any], bottom: int, top: int) -> Any:
        parts = self._parts(queryset)
        if parts is None:
            return super().rows(queryset, bottom, top)
        first, second = parts
        rows = list(first[bottom:top])
        if len(rows) == top - bottom:
            return rows
        # The first part ends on this page, or before it.
        end = bottom + len(rows) if rows else first.count()
        return rows + list(second[max(bottom - end, 0) : top - end])

    def more_after(self, queryset: QuerySet[Any], top: int) -> bool:
        if self._parts(queryset) is None:
            return super().more_after(queryset, top)
        return bool(self.rows(queryset, top, top + 1))

    @staticmethod
    def _parts(queryset: QuerySet[Any]) -> tuple[QuerySet[Any], QuerySet[Any]] | None:
        found = nullable_relation_order(queryset)
        if found is None:
            return None
        name, descending = found
        # Django makes the join of the related rows an inner one for this condition.
        related = queryset.filter(**{f"{name}__isnull": False})
        unrelated = queryset.filter(**{f"{name}__isnull": True}).order_by("-pk" if descending else "pk")
        # Without the outer join of a related row there is not, which would
        # keep the planner from reading them in the order of an index.
        joined = unrelated.query.select_related
        if isinstance(joined, dict) and name in joined:
            unrelated.query.select_related = {k: v for k, v in joined.items() if k != name} or False
        empty_first = connections[queryset.db].features.nulls_order_largest == descending
        return (unrelated, related) if empty_first else (related, unrelated)


class IndexOrderedMixin:
    """For a ModelAdmin of a large table whose sortable columns have an index
    of (column, id): see IndexOrderedChangeList, and IndexOrderedPaginator for
    a column of a nullable foreign key. Before EstimatedCountMixin, whose
    paginator this one is."""

    paginator: ClassVar[type] = IndexOrderedPaginator

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return IndexOrderedChangeList
