"""What the admin's lists refuse before they query the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.db.models import OrderBy
from django.http import HttpRequest, HttpResponse
from django.utils.text import smart_split
from django_stubs_ext import StrOrPromise

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


class IndexOrderedMixin:
    """For a ModelAdmin of a large table whose sortable columns have an index
    of (column, id): see IndexOrderedChangeList."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return IndexOrderedChangeList
