"""Admin actions sent with a selection no page could have made."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.options import Options
from django.http import HttpRequest, HttpResponse

from core.errors import error_response


def refuse_invalid_selection(request: HttpRequest, opts: Options) -> HttpResponse | None:
    """A 400 for selected ids that are not ids at all: the admin would look
    them up as they are and fail with a 500."""
    try:
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            opts.pk.to_python(value)
    except ValidationError:
        return error_response(request, 400, "Bad request", "The selected items are not valid ids.")
    return None


class ValidSelectionMixin:
    """For a ModelAdmin: its actions, stock "delete selected" included, answer
    a tampered selection with 400."""

    opts: Options

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        refused = refuse_invalid_selection(request, self.opts)
        return refused or super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]
