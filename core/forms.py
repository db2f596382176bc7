"""Form fields shared by every app's forms, the admin's among them."""

from __future__ import annotations

from typing import Any

from django import forms

from core.validation import composed, composing


class ComposedText:
    """Form field mixin: the text given, composed (``composed``) as the model
    stores it, before the field's checks. Its length is counted as stored:
    "é" sent decomposed is two characters, and a name that fits its column
    composed was refused as too long, while the imports, which compose
    first, took it."""

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)  # type: ignore[misc]
        return composed(value) if isinstance(value, str) else value


class ComposedCharField(ComposedText, forms.CharField):
    """Text of a field the model stores composed, in a form of no model."""


class ComposedTextForm:
    """ModelForm mixin: the fields of the text its model stores composed
    (``TextComposed.composed_fields``) compose it before their checks, as
    the model would after them. Made so once the form has its fields,
    whoever made them: the admin makes those of the forms it builds from
    this one itself (``formfield_for_dbfield``), each of its model field's
    own class (an email's is an ``EmailField``)."""

    fields: dict[str, forms.Field]
    _meta: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in getattr(self._meta.model, "composed_fields", ()):
            field = self.fields.get(name)
            if isinstance(field, forms.CharField):
                # Each form holds its own copy of its fields.
                field.__class__ = composing(ComposedText, type(field))
