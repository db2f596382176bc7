"""Admin actions sent with a selection no page could have made, or whose
rows are gone."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
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


def selection_gone(request: HttpRequest, queryset: QuerySet[Any]) -> str | None:
    """What to tell staff whose ticked rows are none of them in the list any
    more (another admin deleted them, or changed them out of its filters,
    while the list was open); else None. Django acted on no rows as on
    some: an export led to a page refusing its own address (``id__in=``, a
    400), a deletion asked to confirm the deletion of nothing, a
    publication said "0 review(s) published"."""
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    across = helpers.ActionForm.base_fields["select_across"].clean(request.POST.get("select_across"))
    if not selected or across or queryset.filter(pk__in=selected).exists():
        return None
    return (
        f"The selected {queryset.model._meta.verbose_name_plural} are no longer in the list (deleted, or "
        "changed out of its filters, meanwhile): nothing was done."
    )


class ValidSelectionMixin:
    """For a ModelAdmin: its actions, stock "delete selected" included, answer
    a tampered selection with 400, and a selection whose rows are all gone
    with the list again, saying so."""

    opts: Options

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        refused = refuse_invalid_selection(request, self.opts)
        if refused:
            return refused
        gone = selection_gone(request, queryset)
        if gone:
            self.message_user(request, gone, messages.WARNING)  # type: ignore[attr-defined]
            return None  # the list again, as for a selection of nothing
        return super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc,no-any-return]
