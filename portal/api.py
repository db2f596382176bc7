"""API conventions shared by every app: pagination, errors, permissions."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, pagination, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's ValidationError as a 400 with field messages.

    Every error body is JSON: ``{"detail": "..."}`` for request-level errors, or
    ``{"field": ["message", ...]}`` for invalid fields, as DRF does.
    """
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)


# --- Schema -------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every request-level error (401, 403, 404, 405, 413, 415, 429)."""

    detail = serializers.CharField(help_text="What went wrong, in words.")


_INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: `{"field": ["message", ...]}` per field, or `{"detail": "..."}`.',
)
_ERRORS: dict[str, OpenApiResponse] = {
    "401": OpenApiResponse(ErrorSerializer, description="The token is invalid, or a write needs one."),
    "403": OpenApiResponse(ErrorSerializer, description="No permission for this change (or no CSRF token)."),
    "404": OpenApiResponse(ErrorSerializer, description="No such object, or no such page."),
    "415": OpenApiResponse(ErrorSerializer, description="The body's content type is not accepted."),
    "429": OpenApiResponse(ErrorSerializer, description="Too many requests; see `Retry-After`."),
}


@functools.cache
def schema_class() -> type[Any]:
    """drf-spectacular's AutoSchema, plus the error responses each operation can
    give, so that clients (and schema-driven fuzzers) see every status code
    documented. Views use it as ``schema = schema_class()()``.

    Built on first use: ``drf_spectacular.openapi`` imports
    ``rest_framework.generics``, which imports this module for
    ``DEFAULT_PAGINATION_CLASS``, so it cannot be imported at the top.
    """
    from drf_spectacular.openapi import AutoSchema

    class ErrorDocumentingAutoSchema(AutoSchema):
        def _error_codes(self) -> list[str]:
            codes = ["401", "429"]
            has_body = self.method in {"POST", "PUT", "PATCH"}
            if has_body or self._is_list_view():
                codes.append("400")  # an invalid body, or an invalid filter value
            if self.method not in {"GET", "HEAD", "OPTIONS"}:
                codes.append("403")
            if "{" in self.path or self._is_list_view():
                codes.append("404")  # an unknown id, or a page past the end
            if has_body:
                codes.append("415")
            return codes

        def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
            responses: dict[str, Any] = super()._get_response_bodies(direction)
            for code in self._error_codes():
                if code not in responses:
                    error = _INVALID if code == "400" else _ERRORS[code]
                    responses[code] = self._get_response_for_code(error, code, direction=direction)
            return dict(sorted(responses.items()))

    return ErrorDocumentingAutoSchema
