"""The OpenAPI schema: every operation documents the errors it can answer."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request

from core.api import CreatedLocationMixin


class StaffSessionScheme(SessionScheme):
    """The session cookie, as for DRF's own session authentication."""

    target_class = "core.authentication.StaffSessionAuthentication"


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every request-level error (401, 403, 404, 405, 409, 412, 413, 415, 429)."""

    detail = serializers.CharField(help_text="What went wrong, in words.")


_INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: `{"field": ["message", ...]}` per field, or `{"detail": "..."}`.',
)
_ERRORS: dict[str, OpenApiResponse] = {
    "401": OpenApiResponse(ErrorSerializer, description="The token is invalid, or a write needs one."),
    "403": OpenApiResponse(
        ErrorSerializer,
        description="No permission for this change, which names the one lacking (or no CSRF token).",
    ),
    "404": OpenApiResponse(ErrorSerializer, description="No such object, or no such page."),
    "409": OpenApiResponse(
        ErrorSerializer, description="Another change to the same data was made at the same time; retry."
    ),
    "413": OpenApiResponse(
        ErrorSerializer, description="The body is over its limit, which the message names."
    ),
    "415": OpenApiResponse(ErrorSerializer, description="The body's content type is not accepted."),
    "429": OpenApiResponse(ErrorSerializer, description="Too many requests; see `Retry-After`."),
}

_LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=["201"],
    required=True,
    description="The address of the new object in the API.",
)


class ErrorDocumentingAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses each operation can
    give, so that clients (and schema-driven fuzzers) see every status code
    documented. The default schema class of every view (settings)."""

    def get_description(self) -> str:  # type: ignore[override]  # as drf-spectacular's own
        """The action's docstring, else the view class's own. drf-spectacular
        falls back on the first docstring up the class hierarchy, which for a
        viewset built of mixins is a mixin's note on how it works (say
        ``CreatedLocationMixin``'s on ``Location``), shown as the description
        of every operation the view does not document."""
        action = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        view_class = type(self.view)
        return get_doc(action) or (get_doc(view_class) if view_class.__dict__.get("__doc__") else "")

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
            codes += ["409", "413", "415"]
        return codes

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        creates = self.method == "POST" and getattr(self.view, "action", None) == "create"
        if creates and isinstance(self.view, CreatedLocationMixin):
            parameters.append(_LOCATION)
        return parameters

    def get_auth(self) -> list[dict[str, Any]]:
        """The operation's security, with ``{}`` (no credentials) where the
        view's permissions let an anonymous caller through: reads, a review,
        and the course's writes from the portal's own networks.
        drf-spectacular knows this only of DRF's two open permission classes."""
        auths: list[dict[str, Any]] = super().get_auth()
        if {} not in auths and self._open_to_anonymous():
            auths.append({})
        return auths

    def _open_to_anonymous(self) -> bool:
        http = HttpRequest()
        http.method = self.method
        http.META["REMOTE_ADDR"] = "127.0.0.1"
        request = Request(http)
        request.user = AnonymousUser()
        return all(p.has_permission(request, self.view) for p in self.view.get_permissions())

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                error = _INVALID if code == "400" else _ERRORS[code]
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return dict(sorted(responses.items()))
