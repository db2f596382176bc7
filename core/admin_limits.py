"""What the admin's lists refuse before they query the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, FullResultSet
from django.db import NotSupportedError, connections
from django.db.models import OrderBy, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.text import smart_split
from django.utils.timezone import make_aware
from django_stubs_ext import StrOrPromise

from core.admin_counts import EstimatedCountPaginator
from core.errors import error_response
from core.filters import MAX_SEARCH_TERMS, search_forms, too_many_search_terms


class SearchLimitMixin:
    """For a ModelAdmin: a search of more than MAX_SEARCH_TERMS words is a 400
    naming the limit, as in the API. The admin tests every searched field for
    each word, and SQLite refuses the query of a thousand words ("Expression
    tree is too large"), which the site would answer as an outage. The search
    is composed as the API's is (``search_forms``), in the list and in the
    search of a link's choice (autocomplete) alike."""

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

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """The search composed, and decomposed too where that differs
        (``search_forms``): file names are kept as they came."""
        found, duplicates = queryset.none(), False
        for form in search_forms(search_term):
            rows, spawned = super().get_search_results(request, queryset, form)  # type: ignore[misc]
            found, duplicates = found | rows, duplicates or spawned
        return found, duplicates


# Lookups no list takes from its address: each database reads a pattern its
# own way and fails on one it cannot read (SQLite's with Python's error, a
# 503; PostgreSQL's with a DataError, a 500), and no link of the admin
# filters by one.
PATTERN_LOOKUPS = frozenset({"regex", "iregex"})
# The integers a column holds (a signed 64-bit one): SQLite's driver cannot
# send a larger one at all.
INTEGER_BOUND = 2**63


def unrunnable_filter(queryset: QuerySet[Any]) -> str | None:
    """Why no database runs the statement of ``queryset``, when its filters
    fail only once it is made or sent; else None.

    Django checks a filter's value as it builds the query, but not a number
    past any column's in ``pk__in`` or a relation's lookup (``?photo=10**20``),
    a year no date has (``?created_at__year=99999``, ``10**20``) or a range
    of one value (``?pk__range=1``): each failed as the page was drawn."""
    try:
        _, params = queryset.query.get_compiler(queryset.db).as_sql()
    except (EmptyResultSet, FullResultSet):
        return None  # a condition nothing (or everything) meets: the statement is sound
    except (ValueError, TypeError, IndexError, OverflowError, NotSupportedError) as exc:
        return f"the filter cannot be applied ({type(exc).__name__})"
    for value in params:
        if isinstance(value, int) and not -INTEGER_BOUND <= value < INTEGER_BOUND:
            return f"a number past any column's: {value}"
    return None


class CheckedFilterChangeList(ChangeList):
    """A list whose filters from its address no database can run (see
    ``unrunnable_filter``) is refused as the admin refuses any filter it
    cannot apply (``?e=1``), in the list and in the export page that takes
    the list's filters."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        queryset = super().get_queryset(request, exclude_parameters)
        refused = unrunnable_filter(queryset)
        if refused is not None:
            raise IncorrectLookupParameters(refused)
        return queryset


class FilterLimitMixin:
    """For a ModelAdmin: its list refuses a filter by a pattern (400, as a
    lookup the admin does not allow) and one no database can run (see
    CheckedFilterChangeList)."""

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if lookup.rsplit(LOOKUP_SEP, 1)[-1] in PATTERN_LOOKUPS:
            return False
        allowed: bool = super().lookup_allowed(lookup, value, request)  # type: ignore[misc]
        return allowed

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        changelist: type[ChangeList] = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        return mixed(CheckedFilterChangeList, changelist)


DRILL_DOWN_PARTS = ("year", "month", "day")


def drill_down_start(changelist: ChangeList) -> datetime | None:
    """The first moment of the period a list's drill-down is at, as Django
    reads it (``?date__year=9999&date__month=12``: 9999-12-01 00:00), when
    that period is the last of the calendar: Django bounds it by the first
    moment of the next, which no date holds. Else None, for Django to bound
    (or refuse) as it does."""
    field = changelist.date_hierarchy
    if not field:
        return None
    parts = [changelist.filter_params.get(f"{field}__{part}") for part in DRILL_DOWN_PARTS]
    year, month, day = (values[-1] if values else None for values in parts)
    if year is None:
        return None
    try:
        start = datetime(
            int(year), int(month if month is not None else 1), int(day if day is not None else 1)
        )
    except (ValueError, OverflowError):
        return None  # not a date: Django refuses it
    try:
        _period_end(start, by_day=day is not None, by_month=month is not None)
    except (ValueError, OverflowError):
        return start
    return None


def _period_end(start: datetime, *, by_day: bool, by_month: bool) -> datetime:
    """The first moment after the period from ``start``, as Django reckons it."""
    if by_day:
        return start + timedelta(days=1)
    if by_month:
        return (start + timedelta(days=32)).replace(day=1)
    return start.replace(year=start.year + 1)


class OpenEndedDrillDownChangeList(ChangeList):
    """A list whose drill-down is at the calendar's last year, month or day
    (9999, 9999-12, 9999-12-31) shows what is on or after its first day, the
    end of the calendar being the end of the period. Django bounds a period
    by the first day of the next one, which is past any date: a ValueError or
    an OverflowError, which the admin answered as a filter it cannot apply
    (or a 500) for reviews that are there."""

    _open_start: datetime | None = None

    def get_filters(self, request: HttpRequest) -> Any:
        self._open_start = drill_down_start(self)
        try:
            specs, has_filters, found, duplicates, active = super().get_filters(request)
        finally:
            start, self._open_start = self._open_start, None
        lookup_params: dict[str, Any] = found
        if start is not None:
            lookup_params[f"{self.date_hierarchy}__gte"] = [make_aware(start) if settings.USE_TZ else start]
        return specs, has_filters, lookup_params, duplicates, active

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        """With a link to clear the filters that keeps the drill-down as its
        own links give it (``?date__year=2024``): Django's kept the bounds it
        turns a drill-down into (``?date__gte=2024-01-01 00:00:00``), which a
        date filter that takes days alone refuses."""
        queryset = super().get_queryset(request, exclude_parameters)
        field = self.date_hierarchy
        if field and f"{field}__year" in self.filter_params:
            kept = QueryDict(self.clear_all_filters_qs.removeprefix("?"), mutable=True)
            for bound in (f"{field}__gte", f"{field}__lt"):
                kept.pop(bound, None)
            for part in DRILL_DOWN_PARTS:
                if f"{field}__{part}" in self.filter_params:
                    kept.setlist(f"{field}__{part}", self.filter_params[f"{field}__{part}"])
            self.clear_all_filters_qs = f"?{urlencode(sorted(kept.lists()), doseq=True)}"
        return queryset

    def get_filters_params(self, params: Any = None) -> Any:
        """Without the drill-down's year, month and day while the filters
        are read, for Django not to bound the period itself."""
        lookup_params = super().get_filters_params(params)
        if params is None and self._open_start is not None:
            for part in DRILL_DOWN_PARTS:
                lookup_params.pop(f"{self.date_hierarchy}__{part}", None)
        return lookup_params


# One class for each list's own (built once, as a class should be).
_MIXED: dict[tuple[type[ChangeList], type[ChangeList]], type[ChangeList]] = {}


def mixed(extra: type[ChangeList], changelist: type[ChangeList]) -> type[ChangeList]:
    """``changelist`` doing what ``extra`` adds to a ChangeList too, so that
    the mixins of one ModelAdmin that each bring a ChangeList combine in any
    order (one class per pair, made once)."""
    if issubclass(changelist, extra):
        return changelist
    if (extra, changelist) not in _MIXED:
        name = f"{extra.__name__}With{changelist.__name__}"
        _MIXED[extra, changelist] = type(name, (extra, changelist), {})
    return _MIXED[extra, changelist]


class DateHierarchyMixin:
    """For a ModelAdmin with a ``date_hierarchy``: a drill-down to a year,
    month or day too large for a date (``?date__year=10**30``) is refused as
    the admin refuses any filter it cannot apply, in the list and in the
    export page that takes the list's filters. Django turns the ValueError
    of ``year=10000`` into that, but not the OverflowError of a number past a
    C long, which was a 500. The calendar's last year, month and day list
    their rows, and the link to clear the filters keeps the drill-down (see
    OpenEndedDrillDownChangeList)."""

    date_hierarchy: ClassVar[str | None]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        changelist: type[ChangeList] = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        return mixed(OpenEndedDrillDownChangeList, changelist)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist: ChangeList = self._drill_down(request, super().get_changelist_instance)  # type: ignore[misc]
        return changelist

    def get_export_queryset(self, request: HttpRequest) -> Any:
        """(django-import-export's export, for an admin that has it.)"""
        return self._drill_down(request, super().get_export_queryset)  # type: ignore[misc]

    def _drill_down(self, request: HttpRequest, build: Callable[[HttpRequest], Any]) -> Any:
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
    one page runs, would show it.

    A page past the first part starts in the second where the first part's
    rows end. The first part is counted for that up to ``count_up_to`` rows,
    as the list is: a page past that many rows, which would read them all
    to skip them, reads instead that count of them, and none of the first
    part at all when it ends before the page. Only a first part longer than
    that is read to its end, by the page's own offset, and then counted no
    further than that offset."""

    # The list whose first part was sized, and its rows (None: more than count_up_to).
    _sized: tuple[QuerySet[Any], int | None] | None = None

    def rows(self, queryset: QuerySet[Any], bottom: int, top: int) -> Any:
        parts = self._parts(queryset)
        if parts is None:
            return super().rows(queryset, bottom, top)
        first, second = parts
        end = self._first_size(queryset, first, bottom)
        rows: list[Any] = []
        if end is None or bottom < end:
            rows = list(first[bottom:top])
            if len(rows) == top - bottom:
                return rows
            if rows:
                end = bottom + len(rows)
            elif end is None:
                # The first part ends at or before this page, past count_up_to rows.
                end = self._count_up_to(bottom, first)
        return rows + list(second[max(bottom - end, 0) : top - end])

    def _first_size(self, queryset: QuerySet[Any], first: QuerySet[Any], bottom: int) -> int | None:
        """The rows of the first part when a count of at most ``count_up_to``
        rows finds them, counted once for a page that far down (a page
        before reads its rows, which tell where the part ends); else None."""
        if self._sized is not None and self._sized[0] is queryset:
            return self._sized[1]
        if bottom < self.count_up_to:
            return None
        counted = self._count_up_to(self.count_up_to, first)
        size = counted if counted <= self.count_up_to else None
        self._sized = (queryset, size)
        return size

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
        changelist: type[ChangeList] = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        return mixed(IndexOrderedChangeList, changelist)
