"""The admin's site: Django's, with the checks every admin page needs."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup, DisallowedModelAdminToField
from django.contrib.admin.options import TO_FIELD_VAR
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.db.models.fields.reverse_related import ForeignObjectRel
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
        """Every page of the admin refuses a ``_to_field`` (the field a
        pop-up names its choice by) that it may not reference, naming it:
        400. Django checks only a name that is not empty, and the change
        and delete pages then looked up a field named "" (a 500); a name of
        another model's link to this one (``?_to_field=auth_token`` on the
        users) Django took for a field of its own, and failed (a 500)."""
        inner = super().admin_view(view, cacheable)
        # A model's page is a view bound to its ModelAdmin (ModelAdmin.get_urls).
        model_admin = getattr(view, "__self__", None)
        model = model_admin.model if isinstance(model_admin, admin.ModelAdmin) else None

        @functools.wraps(inner)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
            if to_field is not None and (to_field == "" or _is_reverse_relation(model, to_field)):
                return _refused_to_field(request, to_field)
            try:
                response: HttpResponseBase = inner(request, *args, **kwargs)
            except DisallowedModelAdminLookup as exc:
                return _refused_filter(request, exc)
            except DisallowedModelAdminToField:
                # Django refuses only a name it was given.
                return _refused_to_field(request, to_field or "")
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


def _is_reverse_relation(model: type[Model] | None, name: str) -> bool:
    """Whether ``name`` is another model's link to ``model``: Django's
    get_field finds it, and it is no field of the model's own."""
    if model is None:
        return False
    try:
        return isinstance(model._meta.get_field(name), ForeignObjectRel)
    except FieldDoesNotExist:
        return False  # Django refuses it itself


def _shown(name: str) -> str:
    """A name a refusal quotes, cut short as a page quotes it."""
    return f"{name[:SHOWN_FILTER_LENGTH]}…" if len(name) > SHOWN_FILTER_LENGTH else name


def _refused_to_field(request: HttpRequest, name: str) -> HttpResponse:
    """A pop-up's field the page may not name its choice by, named:
    Django's 400 said only that the request could not be understood."""
    return error_response(
        request,
        400,
        "Bad request",
        f"This page cannot name its choice by _to_field={_shown(name)}: a pop-up names a row by its primary key, "
        "or by a field of its own that a link of another model points at.",
    )


def _refused_filter(request: HttpRequest, exc: DisallowedModelAdminLookup) -> HttpResponse:
    """A filter written into a list's address that the list does not take,
    named: Django's 400 said only that the request could not be understood."""
    match = REFUSED_FILTER.fullmatch(str(exc))
    if match is None:
        raise exc
    return error_response(
        request,
        400,
        "Bad request",
        f"This list cannot be filtered by {_shown(match.group(1))}: it takes the filters its side bar offers, and its search.",
    )
