"""Filter backends of the API."""

from __future__ import annotations

import operator
import unicodedata
from functools import reduce
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Model, QuerySet
from django_filters import rest_framework as django_filters
from django_filters.widgets import BooleanWidget
from rest_framework import exceptions, filters
from rest_framework.request import Request

from core.quoting import quoted

if TYPE_CHECKING:
    from rest_framework.views import APIView


class FilterBackend(django_filters.DjangoFilterBackend):
    """django-filter's backend, skipped when the request names none of the
    view's filters: building and validating a filter form costs more than
    reading a page, and with no filter given it leaves the rows as they are."""

    _names: ClassVar[dict[type, frozenset[str]]] = {}

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: APIView) -> QuerySet[Any]:
        names = self._names.get(type(view))
        if names is None:
            filterset_class = self.get_filterset_class(view, queryset)
            names = frozenset(filterset_class.base_filters) if filterset_class else frozenset()
            self._names[type(view)] = names
        # A filter's parameters start with its name (range filters add a suffix).
        given = request.query_params
        if not any(param.startswith(name) for param in given for name in names):
            return queryset
        return super().filter_queryset(request, queryset, view)


# What a yes-or-no filter reads, in any case: the words django-filter's
# BooleanWidget has always taken, so every link that worked still does.
BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False}


class StrictBooleanWidget(BooleanWidget):
    """django-filter's, handing on the value as given for the field to read.
    Its own turns a word it does not know into None, which means "no
    filter": ``?on_display=yes`` listed every product, demo products
    included, as if nothing had been asked."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)


class StrictBooleanField(forms.NullBooleanField):
    """True, False, or None when the parameter is absent or empty (the
    browsable API's filter form sends an empty value for "any"); any other
    value is refused, naming the parameter and the words it takes."""

    # The query parameter, set by FilterSet for the message.
    parameter = ""

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # as the stubs of NullBooleanField
        if isinstance(value, bool):
            return value
        if value is None or value == "":
            return None
        read = BOOLEAN_WORDS.get(str(value).lower())
        if read is None:
            raise ValidationError(
                "%(name)s takes true or false (or 1 or 0), not %(value)s.",
                code="invalid",
                params={"name": self.parameter or "This filter", "value": quoted(str(value))},
            )
        return read


class BooleanFilter(django_filters.BooleanFilter):
    """A yes-or-no filter that refuses a value it cannot read with a 400."""

    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", StrictBooleanWidget)
        super().__init__(*args, **kwargs)


class IntegerFilter(django_filters.NumberFilter):
    """A number filter of a whole-number field, that refuses a fraction
    (400, "Enter a whole number."). django-filter's reads a decimal, which
    the lookup then cuts down: ``?rating=1.5`` listed the reviews rated 1."""

    field_class = forms.IntegerField


class FilterSet(django_filters.FilterSet):
    """The API's filter sets: a model's boolean field filters with
    BooleanFilter, and its refusal names the query parameter; a whole-number
    field with IntegerFilter."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
        # Each integer field django-filter names (the others inherit from one).
        **{
            field: {"filter_class": IntegerFilter}
            for field in (
                models.AutoField,
                models.IntegerField,
                models.SmallIntegerField,
                models.PositiveIntegerField,
                models.PositiveSmallIntegerField,
            )
        },
    }

    def get_form_class(self) -> type[forms.Form]:
        for name, filter_ in self.filters.items():
            if isinstance(filter_.field, StrictBooleanField):
                filter_.field.parameter = name
        return super().get_form_class()


# The words a search may have, in the API and the admin alike: each word is
# a test of every searched field, and a thousand of them is a query the
# database refuses (SQLite: "Expression tree is too large"), which would read
# as an outage instead of a bad request.
MAX_SEARCH_TERMS = 20


def too_many_search_terms(count: int) -> str | None:
    """Why a search of ``count`` words is refused, or None when it is not."""
    if count > MAX_SEARCH_TERMS:
        return f"At most {MAX_SEARCH_TERMS} words may be searched for; {count} were given."
    return None


def search_text(value: str) -> str:
    """A search in Unicode's composed form (NFC): the form usernames are
    stored in, and the one pages and keyboards send text in nearly always.
    "José" typed as "e" and a combining accent (as a Mac may send it) reads
    as the "José" stored, but as typed it is other characters, and a search
    of it finds nothing."""
    return unicodedata.normalize("NFC", value)


def search_forms(value: str) -> list[str]:
    """The forms a word of a search is looked for in: composed
    (``search_text``), as text is stored, and decomposed too where that
    differs, as file names are kept as they came (a Mac's "Café.jpg" holds
    "e" and a combining accent), which a search of the word composed alone
    found in neither form."""
    forms = [search_text(value)]
    decomposed = unicodedata.normalize("NFD", value)
    if decomposed != forms[0]:
        forms.append(decomposed)
    return forms


class SearchFilter(filters.SearchFilter):
    """DRF's, with a bound on the words of a search (MAX_SEARCH_TERMS), and
    each word composed (``search_text``), and decomposed too
    (``search_forms``)."""

    search_description = f"Words to find in the searched fields, at most {MAX_SEARCH_TERMS}; each must match."

    def get_search_terms(self, request: Request) -> list[str]:
        terms = [search_text(term) for term in super().get_search_terms(request)]
        refused = too_many_search_terms(len(terms))
        if refused:
            raise exceptions.ValidationError({self.search_param: [refused]})
        return terms

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: APIView) -> QuerySet[Any]:
        """DRF's, each word found in any searched field in any of its forms."""
        search_fields = self.get_search_fields(view, request)
        search_terms = self.get_search_terms(request)
        if not search_fields or not search_terms:
            return queryset
        lookups = [self.construct_search(str(field), queryset) for field in search_fields]
        base = queryset
        queryset = queryset.filter(
            *(
                reduce(
                    operator.or_,
                    (models.Q(**{lookup: form}) for lookup in lookups for form in search_forms(term)),
                )
                for term in search_terms
            )
        )
        if self.must_call_distinct(queryset, search_fields):
            # As DRF: each row once, however many related rows matched.
            queryset = base.filter(models.Exists(queryset.filter(pk=models.OuterRef("pk"))))
        return queryset


class OrderingFilter(filters.OrderingFilter):
    """DRF's, with the order made total: the primary key ends it, the way of
    the field before it, unless a field no two rows share is in it already.

    Rows that tie on every field of the order come in whatever order the
    database likes, which PostgreSQL chooses afresh for each LIMIT and OFFSET:
    the pages of people of one department listed some twice and others never.
    The key going the way of the field before it (``bytes, id`` or ``bytes
    DESC, id DESC``) lets one index of (field, id) serve the sort both ways,
    as in the admin (``core.admin_limits.IndexOrderedChangeList``)."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: APIView) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        if not ordering or not all(isinstance(field, str) for field in ordering):
            return ordering
        if any(_is_unique(queryset.model, field.lstrip("-")) for field in ordering):
            return ordering
        return [*ordering, "-pk" if ordering[-1].startswith("-") else "pk"]


def _is_unique(model: type[Model], name: str) -> bool:
    """Whether no two rows of ``model`` share the value of the field ``name``."""
    if name == "pk":
        return True
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return bool(getattr(field, "primary_key", False)) or (
        bool(getattr(field, "unique", False)) and not getattr(field, "null", False)
    )
