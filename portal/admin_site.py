"""The admin's site: Django's, with the checks every admin page needs."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup, DisallowedModelAdminToField
from django.contrib.admin.options import TO_FIELD_VAR
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.text import smart_split

from core.errors import error_response, methods
from core.filters import too_many_search_terms

View = TypeVar("View", bound=Callable[..., Any])

# How Django words a filter a list does not take (django.contrib.admin.views.main).
REFUSED_FILTER = re.compile(r"Filtering by (.+) not allowed", re.DOTALL)
# As much of a refused filter's name as the refusal repeats.
SHOWN_FILTER_LENGTH = 100


class PortalAdminSite(admin.AdminSite):
    def admin_view(self, view: View, cacheable: bool = False) -> View:
        """Every page of the admin refuses an empty ``_to_field`` (the field
        a pop-up names its choice by) as it refuses any field it may not
        reference: 400. Django checks only a name that is not empty, and the
        change and delete pages then looked up a field named "" (a 500)."""
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
            if to_field == "":
                raise DisallowedModelAdminToField("The field name in _to_field is empty.")
            try:
                response: HttpResponseBase = inner(request, *args, **kwargs)
            except DisallowedModelAdminLookup as exc:
                return _refused_filter(request, exc)
            return response

        return cast("View", checked)

    # The stubs say a TemplateResponse; Django's answers a redirect (?next=) too.
    def logout(  # type: ignore[override]
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        """Signing out is the form's POST (a link would let any page sign
        staff out); anything else is a 405 saying so, on the site's error
        page: Django's is empty, a blank page for a bookmark of the address."""
        return methods("POST")(super().logout)(request, extra_context)

    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        """The search of a link's choice (a product for a review, a user for
        a token) holds to the words a list's search does (SearchLimitMixin):
        SQLite refuses the query of a thousand words, a 500."""
        # Split as the admin's search splits it (a quoted phrase is one word).
        refused = too_many_search_terms(sum(1 for _ in smart_split(request.GET.get("term", ""))))
        if refused:
            return error_response(request, 400, "Bad request", refused)
        return super().autocomplete_view(request)


def _refused_filter(request: HttpRequest, exc: DisallowedModelAdminLookup) -> HttpResponse:
    """A filter written into a list's address that the list does not take,
    named: Django's 400 said only that the request could not be understood."""
    match = REFUSED_FILTER.fullmatch(str(exc))
    if match is None:
        raise exc
    name = match.group(1)
    if len(name) > SHOWN_FILTER_LENGTH:
        name = f"{name[:SHOWN_FILTER_LENGTH]}…"
    return error_response(
        request,
        400,
        "Bad request",
        f"This list cannot be filtered by {name}: it takes the filters its side bar offers, and its search.",
    )
