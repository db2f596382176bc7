"""List filters: for values people type (a department, a role), and for a
known set of values."""

from __future__ import annotations

from typing import Any

from django.contrib import admin


class TypedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's filter by every distinct value of a field, folded when it has
    more choices than a screen shows: a directory of thousands of people may
    have as many roles, and a filter listing them all open pushes the others
    a long scroll down. Open while one of its values is chosen; staff unfold
    it with a click, and the admin remembers that for the session."""

    template = "admin/filter_folded_when_long.html"
    # Choices (with "All" and, for a nullable field, "Empty") shown unfolded.
    open_up_to = 25


class KnownValuesFilter(admin.AllValuesFieldListFilter):
    """Django's filter by each value of a field, its choices a known set
    (``known_values``: the values the code writes or the settings name)
    instead of a query for the distinct values of the rows, which reads every
    row of a large table on each page of the list. Every known value is
    listed, with rows or without, as Django's filter of a field's choices
    lists each; a chosen value the set lacks (one since taken out of the
    settings) is listed too, so that the filter shows what the list shows."""

    def known_values(self) -> list[Any]:
        raise NotImplementedError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = self.known_values()
        listed = {str(value) for value in known if value is not None}
        chosen = [value for value in self.lookup_val or [] if value not in listed]
        self.lookup_choices = [*known, *dict.fromkeys(chosen)]  # type: ignore[assignment]
