"""Filter backends of the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import QuerySet
from django_filters import rest_framework as django_filters
from rest_framework.request import Request

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
