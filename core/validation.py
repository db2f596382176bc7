"""Checks every model of the portal makes in ``full_clean()``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError

NULL_CHARACTER_MESSAGE = "Null characters are not allowed."


def holds_null_character(value: object) -> bool:
    """Whether a text, or any key or text inside JSON, holds a null character."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(holds_null_character(k) or holds_null_character(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_null_character(item) for item in value)
    return False


class NullCharactersRefused:
    """Model mixin: ``clean_fields()`` refuses a null character in any field,
    JSON included. Forms and DRF refuse them in text, but imports and JSON
    bodies reach the models by other roads, and PostgreSQL stores neither a
    null in text nor ``\\u0000`` in jsonb: the write would fail as an error
    of the database instead of a refusal that names the field."""

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude)  # type: ignore[misc]
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for field in self._meta.concrete_fields:  # type: ignore[attr-defined]
            if field.name in errors or (exclude and field.name in exclude):
                continue
            if holds_null_character(getattr(self, field.attname)):
                errors[field.name] = [
                    ValidationError(NULL_CHARACTER_MESSAGE, code="null_characters_not_allowed")
                ]
        if errors:
            raise ValidationError(errors)
