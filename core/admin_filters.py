"""List filters for values people type (a department, a role)."""

from __future__ import annotations

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
