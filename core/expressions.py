"""Query expressions Django lacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType


class IsDistinctFrom(models.Func):
    """Whether two values differ, a null differing from any value but not
    from another null: never null itself, so it can be negated or or-ed
    as it is. It takes no parameters of its own, which lets it be the
    condition of a partial index that a query repeating it is served by
    (SQLite matches a query's condition with an index's by their terms, and
    takes a parameter inside a function's arguments for another term than
    the index's literal)."""

    arity = 2
    arg_joiner = " IS DISTINCT FROM "
    template = "(%(expressions)s)"
    output_field = models.BooleanField()

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _AsSqlType:
        # SQLite's IS NOT: the same, under its own name.
        return self.as_sql(compiler, connection, arg_joiner=" IS NOT ", **extra_context)
