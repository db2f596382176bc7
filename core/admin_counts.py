"""How the admin's lists of large tables count their rows.

Counting a table on PostgreSQL reads every row of it: a list of 100,000
reviews spent longer on its count than on its page. The whole table's count
(a list with no search and no filter) comes instead from the planner's
estimate, which PostgreSQL keeps up to date as it analyses the table, and the
page says "about". A filtered list is counted for real up to ``count_up_to``
rows (10,000), and no further: a filter that keeps most of the table (a year
of the drill-down that holds nearly every review) would read all it keeps.
Past that the page says "about N" (the planner's estimate of the filtered
rows, on PostgreSQL) or "more than 10,000", and pages as the whole table's
list does. Small tables and SQLite are counted exactly, filtered up to that bound.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, cast

from django.contrib.admin.options import IncorrectLookupParameters, ShowFacets
from django.contrib.admin.views.main import ALL_VAR, PAGE_VAR, ChangeList
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from core.api import LARGE_COUNT

# The planner's own reckoning (PostgreSQL's estimate_rel_size): the rows per
# page the last analysis found, times the pages the table has now, so that
# rows added since are in it. reltuples < 0: never analysed, nothing known.
_ESTIMATE = """
    SELECT CASE
        WHEN c.reltuples < 0 THEN NULL
        WHEN c.relpages = 0 THEN c.reltuples
        ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::integer)
    END
    FROM pg_class c WHERE c.oid = to_regclass(%s)
"""


def is_whole_table(queryset: Any) -> bool:
    """Whether ``queryset`` counts as its whole table: no condition, no
    distinct, no grouping, no slice."""
    if not isinstance(queryset, QuerySet):
        return False
    query = queryset.query
    return not (query.where or query.distinct or query.group_by or query.combinator or query.is_sliced)


def table_estimate(queryset: Any) -> int | None:
    """The planner's estimate of the rows of ``queryset``, on PostgreSQL,
    when the queryset is its whole table; else None, as for a table never
    analysed."""
    if not is_whole_table(queryset):
        return None
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_ESTIMATE, [connection.ops.quote_name(queryset.model._meta.db_table)])
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return round(row[0])


def filtered_estimate(queryset: QuerySet[Any]) -> int | None:
    """The planner's estimate of the rows of ``queryset``, on PostgreSQL
    (EXPLAIN, which plans the statement and reads no row); else None."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return round(plan[0]["Plan"]["Plan Rows"])


class PastTheEnd(EmptyPage):
    """A page after the list's last one, which is ``last``. An empty page as
    Django's paginator raises it, so that any view paging with it (the
    admin's autocomplete) answers a page past the end as it would with
    Django's: 404, not a 500."""

    def __init__(self, last: int) -> None:
        super().__init__(f"The list ends on page {last}.")
        self.last = last


class EstimatedCountPaginator(Paginator):
    """Counts a whole table of more than ``estimate_above`` rows by the
    planner's estimate (``estimated`` then says so); any other whole table for
    real, and a filtered list up to ``count_up_to`` rows: more are estimated
    too, by the planner or at more than that.
    A list staff asked to show whole (``show_all_up_to`` rows at most) is
    counted up to that many, so that an estimate far too high (the table
    shrank since its last analysis) does not hide that it can be.

    The estimate may be short or long of the truth, so a page is not held to
    the pages it makes: any page is read, and what it finds settles the
    count. A page less than full is the last one, and gives the exact count;
    a full page at or past the estimated end looks for one row more. A page
    past the end raises PastTheEnd with the last page (counted then, once),
    as does a page past the end of a list counted for real, or a page far
    past the estimate."""

    estimate_above: ClassVar[int] = LARGE_COUNT
    count_up_to: ClassVar[int] = LARGE_COUNT
    show_all_up_to: int | None = None
    _estimated = False
    # The bound a list was counted up to and found more than, if it was.
    _more_than: int | None = None

    def _count_up_to(self, bound: int, queryset: QuerySet[Any] | None = None) -> int:
        """The rows of the list (or of ``queryset``, a part of it), or
        bound + 1 if it has more: it reads no more rows than that (in any
        order: ORDER BY could sort them all)."""
        if queryset is None:
            queryset = cast("QuerySet[Any]", self.object_list)
        return queryset.order_by()[: bound + 1].count()

    @cached_property
    def count(self) -> int:
        queryset = isinstance(self.object_list, QuerySet) and not self.object_list.query.is_sliced
        if queryset and self.show_all_up_to is not None:
            rows = self._count_up_to(self.show_all_up_to)
            if rows <= self.show_all_up_to:
                return rows
        estimate = table_estimate(self.object_list)
        if estimate is not None and estimate > self.estimate_above:
            self._estimated = True
            return estimate
        if not queryset or is_whole_table(self.object_list):
            # A table never analysed, or small, or on SQLite.
            counted: int = super().count
            return counted
        rows = self._count_up_to(self.count_up_to)
        if rows <= self.count_up_to:
            return rows
        self._estimated = True
        estimate = filtered_estimate(cast("QuerySet[Any]", self.object_list))
        if estimate is not None and estimate >= rows:
            return estimate
        self._more_than = self.count_up_to
        return rows

    def _settle(self, count: int, *, estimated: bool) -> None:
        self.__dict__["count"] = count
        self.__dict__.pop("num_pages", None)
        self._estimated = estimated

    @property
    def estimated(self) -> bool:
        """Whether ``count`` is the planner's estimate (counting decides it)."""
        _ = self.count
        return self._estimated

    def _whole_number(self, number: Any) -> int:
        """Django's checks of a page number, but for the last page."""
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from exc
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def rows(self, queryset: QuerySet[Any], bottom: int, top: int) -> Any:
        """The rows of the list from ``bottom`` up to ``top``."""
        return queryset[bottom:top]

    def more_after(self, queryset: QuerySet[Any], top: int) -> bool:
        """Whether the list has a row past its first ``top``."""
        return queryset[top:].exists()

    def page(self, number: Any) -> Page:
        number = self._whole_number(number)
        if not self.estimated:
            if number > self.num_pages:
                raise PastTheEnd(self.num_pages)
            if not isinstance(self.object_list, QuerySet):
                return super().page(number)
            # Django's page, its rows read by rows().
            bottom = (number - 1) * self.per_page
            top = bottom + self.per_page
            if top + self.orphans >= self.count:
                top = self.count
            return self._get_page(self.rows(self.object_list, bottom, top), number, self)  # type: ignore[attr-defined,no-any-return]
        # Only a queryset is estimated (table_estimate).
        queryset = cast("QuerySet[Any]", self.object_list)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if bottom > 2 * self.count:
            # No link leads that far past the estimate (nor may an offset be
            # past what the database reads): where does the list end?
            self._settle(queryset.count(), estimated=False)
            if number > self.num_pages:
                raise PastTheEnd(self.num_pages)
        rows = self.rows(queryset, bottom, top)
        found = len(rows)
        if found == 0 and number > 1:
            self._settle(queryset.count(), estimated=False)
            raise PastTheEnd(self.num_pages)
        if found < self.per_page:
            self._settle(bottom + found, estimated=False)
        elif number >= math.ceil(self.count / self.per_page):
            if self.more_after(queryset, top):
                self._settle(max(self.count, top + 1), estimated=True)
            else:
                self._settle(top, estimated=False)
        return self._get_page(rows, number, self)  # type: ignore[attr-defined,no-any-return]

    @property
    def about(self) -> int:
        """The estimate as a page tells it: to two significant figures."""
        if self.count < 100:
            return self.count
        return round(self.count, 1 - int(math.log10(self.count)))

    @property
    def told(self) -> str:
        """An estimated count as a page tells it: "about 100,000", or "more
        than 10,000" for a list counted that far and estimated no further."""
        if self._more_than is not None:
            return f"more than {self._more_than:,}"
        return f"about {self.about:,}"


class EstimatedCountMixin:
    """For a ModelAdmin of a large table: its unfiltered list is counted by
    the planner's estimate (see EstimatedCountPaginator), and a filtered or
    searched one does not count the whole table besides ("N results" and
    a link to show all, instead of "N results (M total)"). Its filters
    offer no "Show counts": those count the rows of each of their choices,
    each a read of every row the list shows."""

    paginator: ClassVar[type] = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER

    def get_paginator(
        self, request: HttpRequest, queryset: Any, per_page: int, *args: Any, **kwargs: Any
    ) -> Any:
        """A list staff asked to show whole is counted as far as it can be shown."""
        paginator = super().get_paginator(request, queryset, per_page, *args, **kwargs)  # type: ignore[misc]
        if isinstance(paginator, EstimatedCountPaginator) and ALL_VAR in request.GET:
            paginator.show_all_up_to = self.list_max_show_all  # type: ignore[attr-defined]
        return paginator

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """The list's count as its page settled it (the last page's is exact),
        and whether the list is its whole table (a search box then tells no
        count of results: the list shows them all)."""
        try:
            changelist: ChangeList = super().get_changelist_instance(request)  # type: ignore[misc]
        except IncorrectLookupParameters as exc:
            # The list takes any invalid page for a bad filter (?e=1); a page
            # past the end leads to the last page instead (changelist_view).
            if isinstance(exc.__context__, PastTheEnd):
                raise exc.__context__ from None
            raise
        changelist.unfiltered = is_whole_table(changelist.queryset)  # type: ignore[attr-defined]
        paginator = changelist.paginator
        if isinstance(paginator, EstimatedCountPaginator) and changelist.result_count != paginator.count:
            changelist.result_count = paginator.count
            changelist.multi_page = paginator.count > changelist.list_per_page
            changelist.can_show_all = paginator.count <= changelist.list_max_show_all
        return changelist

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A page past the end leads to the last page."""
        try:
            response: HttpResponse = super().changelist_view(request, extra_context)  # type: ignore[misc]
        except PastTheEnd as end:
            query = request.GET.copy()
            query[PAGE_VAR] = str(end.last)
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        if isinstance(response, TemplateResponse) and response.context_data:
            changelist = response.context_data.get("cl")
            paginator = getattr(changelist, "paginator", None)
            if isinstance(paginator, EstimatedCountPaginator) and paginator.estimated:
                response.context_data["selection_note_all"] = f"All ({paginator.told}) selected"
        return response
