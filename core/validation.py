"""Checks the portal's models make in ``full_clean()``: every model's, and
those of the text several apps show; and the one form text is stored in."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterator
from typing import Any, ClassVar

from django.core.exceptions import ValidationError

NULL_CHARACTER_MESSAGE = "Null characters are not allowed."
# DRF's words for what its text fields refuse.
SURROGATE_MESSAGE = "Surrogate characters are not allowed: U+{code:X}."
# Half of a UTF-16 pair, alone: what JSON's and YAML's escapes (``"\ud800"``)
# make of a pair cut in two. No UTF-8 holds it: the database driver fails to
# send it, and PostgreSQL's jsonb refuses its escape.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _texts(value: object) -> Iterator[str]:
    """A text, or every key and text inside JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)


def holds_null_character(value: object) -> bool:
    """Whether a text, or any key or text inside JSON, holds a null character."""
    return any("\0" in text for text in _texts(value))


def surrogate_message(value: object) -> str | None:
    """The refusal of a text, or JSON, holding a lone surrogate; else None."""
    for text in _texts(value):
        if found := _SURROGATE.search(text):
            return SURROGATE_MESSAGE.format(code=ord(found.group()))
    return None


def unstorable(value: object) -> str | None:
    """Why no database column stores a text, or JSON: a null character or
    a lone surrogate in it; else None."""
    if holds_null_character(value):
        return NULL_CHARACTER_MESSAGE
    return surrogate_message(value)


def _refusal(value: object) -> ValidationError | None:
    if holds_null_character(value):
        return ValidationError(NULL_CHARACTER_MESSAGE, code="null_characters_not_allowed")
    if message := surrogate_message(value):
        return ValidationError(message, code="surrogate_characters_not_allowed")
    return None


def check_storable(**values: object) -> None:
    """Refuse, as ``full_clean()`` would, the values a write looks a row up
    by before it can clean them (a username, a product's name): PostgreSQL
    refuses a null character in the query itself, and no driver sends a
    lone surrogate, so the lookup would fail as an error of the database."""
    errors = {name: [error] for name, value in values.items() if (error := _refusal(value))}
    if errors:
        raise ValidationError(errors)


class NullCharactersRefused:
    """Model mixin: ``clean_fields()`` refuses a null character or a lone
    surrogate in any field, JSON included. Forms and DRF refuse them in
    text, but imports and JSON bodies reach the models by other roads, and
    PostgreSQL stores neither a null in text nor ``\\u0000`` in jsonb (nor
    a surrogate anywhere): the write would fail as an error of the database
    instead of a refusal that names the field."""

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude)  # type: ignore[misc]
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for field in self._meta.concrete_fields:  # type: ignore[attr-defined]
            if field.name in errors or (exclude and field.name in exclude):
                continue
            if error := _refusal(getattr(self, field.attname)):
                errors[field.name] = [error]
        if errors:
            raise ValidationError(errors)


def composed(value: str) -> str:
    """Text in Unicode's composed form (NFC), the form the portal stores
    text in and reads a search in (``core.filters.search_text``): "José"
    from a Mac's file or keyboard is "e" and a combining accent, which
    reads the same but is other characters to a search, a sort or a
    comparison."""
    return unicodedata.normalize("NFC", value)


_COMPOSING: dict[tuple[type[Any], type[Any]], type[Any]] = {}


def composing(mixin: type[Any], field_class: type[Any]) -> type[Any]:
    """``field_class`` with ``mixin``, a form's or a serializer's field
    mixin that composes the text it is given, before it: one class for each
    field class, made once."""
    if issubclass(field_class, mixin):
        return field_class
    if (mixin, field_class) not in _COMPOSING:
        _COMPOSING[mixin, field_class] = type(f"Composed{field_class.__name__}", (mixin, field_class), {})
    return _COMPOSING[mixin, field_class]


class TextComposed:
    """Model mixin: ``clean_fields()`` stores the text of the fields named
    in ``composed_fields`` composed (``composed``), before the fields'
    checks, so that a length is counted as stored (NFC writes a few
    characters as two). Every path that writes a row cleans it first (the
    services, the admin's forms, the imports): here it is composed once
    for them all. A field left out of the cleaning (``exclude``) is left as
    it is: a row kept from before stays writable by a change of another
    field. Not for text whose bytes matter (a file's name, a key, a token)."""

    composed_fields: ClassVar[tuple[str, ...]] = ()

    def compose_text(self, exclude: Collection[str] | None = None) -> None:
        """Compose the text of ``composed_fields``, but those in ``exclude``."""
        for name in self.composed_fields:
            if exclude and name in exclude:
                continue
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, composed(value))

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        self.compose_text(exclude)
        super().clean_fields(exclude)  # type: ignore[misc]


# Marks that reorder how text is shown (embeddings, overrides, isolates):
# "Great \u202eesaeler ot evorppa" reads "Great approve to release" to a
# moderator, a person's name written so reads as someone else's in the
# directory, and an image's title as another in the admin. The plain left-to-right and right-to-left marks stay allowed:
# they move no letter, and a name mixing scripts may need them.
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# The control characters (C0, DEL and C1): shown as nothing, as a box or as
# a break of the line depending on where the text goes (a page, the admin,
# a PDF report, a terminal), so that text holding one reads as other text;
# PostgreSQL stores no U+0000 at all. Text of several lines keeps its tabs
# and its line breaks LF and CR.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Unicode's own line breaks, which are no control characters: a browser
# shows a name holding one on two lines. Text of several lines refuses
# them too, as it does the NEXT LINE control (U+0085): the pages, the
# reports and the exports break lines at LF (and CR) alone, so that such a
# break shows in some places and not in others.
LINE_SEPARATORS = re.compile("[\u2028\u2029]")
_SEPARATOR_NAMES = {"\u2028": "line separator", "\u2029": "paragraph separator"}
LINE_BREAKS_ALLOWED = " (tabs and the line breaks LF and CR are allowed)"


def validate_text(value: str, *, what: str = "The text", multiline: bool = False) -> None:
    """Refuse a character that makes text read otherwise than it is: a
    direction control, a control character or a line or paragraph separator
    (but a tab, LF or CR in text of several lines, ``multiline``). The
    refusal names the character as U+XXXX and says what holds it (``what``;
    the field is named by the key the error is given under). Around text of
    one line the forms, the API and the imports trim these first (they trim
    whatever Python calls a space), so that a line break pasted with a cell
    is left out, not refused."""
    if found := DIRECTION_CONTROLS.search(value):
        raise ValidationError(
            f"{what} cannot contain the direction control U+{ord(found.group()):04X}, which "
            "changes how it reads on screen.",
            code="direction_control",
        )
    allowed = LINE_BREAKS_ALLOWED if multiline else ""
    controls = CONTROL_CHARACTERS_BUT_LINE_BREAKS if multiline else CONTROL_CHARACTERS
    if found := controls.search(value):
        raise ValidationError(
            f"{what} cannot contain the control character U+{ord(found.group()):04X}{allowed}.",
            code="control_character",
        )
    if found := LINE_SEPARATORS.search(value):
        separator = found.group()
        why = allowed or ", which breaks it into two lines on screen"
        raise ValidationError(
            f"{what} cannot contain the {_SEPARATOR_NAMES[separator]} U+{ord(separator):04X}{why}.",
            code="line_separator",
        )


def validate_text_lines(value: str) -> None:
    """``validate_text`` of text of several lines (a review, a description)."""
    validate_text(value, multiline=True)


# The name the fields' validator had when it refused direction controls
# alone: the migrations of then name it.
validate_no_direction_controls = validate_text
