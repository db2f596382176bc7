"""The admin's date drill-down (``date_hierarchy``) read from an index.

Django lists the years, months or days that have rows with a ``SELECT
DISTINCT DATE_TRUNC(...)`` over every row the list shows: on a table of
100,000 reviews, a read of the whole table on each page of the list. Here the
periods come from the index of the date instead, one step per period with
rows (a loose index scan, in one recursive query): the first date, then the
first date of the next period onwards, and so on. The links are Django's
own, and so are the periods they list.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Literal

from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import DateField, DateTimeField, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest

# The first day of the period after the one of {day}, by database and period.
_NEXT_PERIOD = {
    "postgresql": {
        "year": "CAST(DATE_TRUNC('year', CAST({day} AS timestamp)) + INTERVAL '1 year' AS date)",
        "month": "CAST(DATE_TRUNC('month', CAST({day} AS timestamp)) + INTERVAL '1 month' AS date)",
        "day": "({day} + 1)",
    },
    "sqlite": {
        "year": "DATE({day}, 'start of year', '+1 years')",
        "month": "DATE({day}, 'start of month', '+1 months')",
        "day": "DATE({day}, '+1 days')",
    },
}


def _period(day: dt.date, kind: str) -> dt.date:
    if kind == "year":
        return day.replace(month=1, day=1)
    if kind == "month":
        return day.replace(day=1)
    return day


def walk_dates(
    queryset: QuerySet[Any],
    field_name: str,
    kind: Literal["year", "month", "week", "day"],
    order: Literal["ASC", "DESC"] = "ASC",
) -> list[dt.date]:
    """What ``queryset.dates(field_name, kind, order)`` gives (the first day
    of each year, month or day with rows), one index lookup per period. A
    date and time field, a week, or another database: ``dates()`` itself."""
    connection = connections[queryset.db]
    steps = _NEXT_PERIOD.get(connection.vendor, {})
    field = get_fields_from_path(queryset.model, field_name)[-1]
    if kind not in steps or not isinstance(field, DateField) or isinstance(field, DateTimeField):
        return list(QuerySet.dates(queryset, field_name, kind, order))
    walk, day = connection.ops.quote_name("date_walk"), connection.ops.quote_name("day")
    # The earliest date of the rows, as the list filters them: ORDER BY the
    # date LIMIT 1, which an index of the date (with the list's filter
    # before it, if any) answers at its first entry.
    earliest = queryset.order_by(field_name).values_list(field_name, flat=True)
    first = earliest.filter(**{f"{field_name}__isnull": False})[:1]
    # The column of the walk's last step: only this module's text goes in.
    step = steps[kind].format(day=f"{walk}.{day}")
    after = RawSQL(step, (), output_field=DateField())  # noqa: S611
    then = earliest.filter(**{f"{field_name}__gte": after})[:1]
    try:
        first_sql, first_params = first.query.get_compiler(using=queryset.db).as_sql()
        then_sql, then_params = then.query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:
        # A filter no row can match, such as a number past its column's
        # range (?rating=-1): the ORM runs no statement for it, nor does this.
        return []
    # This module's text, and the ORM's statements with their placeholders.
    # Each step goes forward, or the walk ends: past 9999 SQLite's DATE()
    # gives NULL, or on some builds a text of five digits, which sorts
    # before the last date and would find it again for ever.
    statement = (
        f"WITH RECURSIVE {walk} ({day}) AS ("  # noqa: S608
        f"SELECT ({first_sql}) "
        f"UNION ALL SELECT ({then_sql}) FROM {walk} WHERE {walk}.{day} IS NOT NULL AND {step} > {walk}.{day}"
        f") SELECT {day} FROM {walk} WHERE {day} IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, (*first_params, *then_params))
        found = [_period(field.to_python(row[0]), kind) for row in cursor.fetchall()]
    return found[::-1] if order == "DESC" else found


class DateDrillDownMixin:
    """For a ModelAdmin of a large table with a ``date_hierarchy`` on a date
    field: the drill-down's years, months and days come from the index of
    the date (see walk_dates), not from every row of the list."""

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist: ChangeList = super().get_changelist_instance(request)  # type: ignore[misc]
        if changelist.date_hierarchy:
            # The drill-down (Django's date_hierarchy tag) asks the list's
            # queryset for its dates; this one queryset answers by the walk.
            # Its copies (the pages, the actions) are plain querysets.
            queryset = changelist.queryset
            queryset.dates = functools.partial(walk_dates, queryset)  # type: ignore[method-assign]
        return changelist
