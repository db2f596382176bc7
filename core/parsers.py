"""The API's JSON parser: orjson, and a bound on how deep a body may nest.

The standard library's decoder recurses once per level: a 2 KB body of nested
brackets raised RecursionError, a 500 for anyone. orjson stops at 1024
levels by itself; nothing the API takes needs more than a few, so a body
nested deeper than MAX_DEPTH is refused with a 400 that says so.

orjson reads an integer past 64 bits as a float: a 30-digit number sent for
a text field would be kept as "1.2345678901234568e+29". A body with a run of
that many digits anywhere (rare: ids, counts and ratings are short) is read
again by the standard library's decoder, which keeps every integer whole;
by then its depth is known to be within MAX_DEPTH, far from the decoder's
recursion limit, and every number within a double's range (orjson refuses
the others), far from Python's limit of 4,300 digits.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any, Final
from urllib.parse import parse_qsl

import orjson
from django.conf import settings
from django.http import QueryDict
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError, ValidationError

from core import multipart

MAX_DEPTH: Final = 32
_TOO_DEEP: Final = f"JSON parse error - nested more than {MAX_DEPTH} levels deep; the limit is {MAX_DEPTH}."
# 2**63 has 19 digits: a shorter integer is one orjson keeps whole.
_LONG_DIGITS: Final = re.compile(rb"\d{19}")


def depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, (list, dict))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, (list, dict)) for node in level)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        raw = stream.read()
        try:
            if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raw = raw.decode(encoding).encode()
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if str(exc).startswith("depth limit"):  # orjson's own, at 1024
                raise ParseError(_TOO_DEEP) from exc
            raise ParseError(f"JSON parse error - {exc}") from exc
        except (UnicodeError, LookupError) as exc:
            # The codec's own words name bytes and offsets, not what to do.
            raise ParseError(f"JSON parse error - the body is not text in its charset {encoding!r}.") from exc
        if depth_over(data, MAX_DEPTH):
            raise ParseError(_TOO_DEEP)
        if _LONG_DIGITS.search(raw):
            return json.loads(raw)
        return data


# A byte of a form value that is no text in the body's encoding, as
# ``errors="surrogateescape"`` reads it (a valid text holds no such code).
_UNDECODED: Final = re.compile("[\udc80-\udcff]")


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing text that is not in the body's encoding.

    Django reads such bytes as U+FFFD when they are percent-escaped, or the
    whole body as Latin-1 when they are sent bare: a script posting the
    lines of a file saved as Latin-1 as bytes (``requests.post(url,
    data=...)``) got a 201 for a review it never wrote ("Caf\ufffd"), where
    ``import_feedback`` refuses the same file, naming UTF-8. A value is
    checked only when it holds U+FFFD: one sent as the UTF-8 of that
    character is kept.
    """

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        name = encoding.upper()
        # Django takes any charset Python has a codec of (base64, rot13).
        # Refused before (portal.middleware.BodyLimitMiddleware), and here for
        # a parse of no request that passed it.
        unreadable = multipart.charset_refusal(encoding)
        if unreadable is not None:
            raise ParseError(unreadable)
        raw = stream.read()
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"The form is not {name} text (byte {exc.start}); send it as {name}.") from exc
        except UnicodeError as exc:  # a codec's own refusal, of no place
            raise ParseError(f"The form is not {name} text; send it as {name}.") from exc
        data = QueryDict(raw, encoding=encoding)
        if any("\ufffd" in key or any("\ufffd" in v for v in values) for key, values in data.lists()):
            _refuse_undecoded(text, encoding)
        return data


def _refuse_undecoded(text: str, encoding: str) -> None:
    """A 400 naming the first field of the form ``text`` whose value is not
    text in ``encoding`` once its escapes are read; nothing if none is."""
    pairs = parse_qsl(
        text,
        keep_blank_values=True,
        encoding=encoding,
        errors="surrogateescape",
        max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
    )
    for key, value in pairs:
        if _UNDECODED.search(key):
            shown = key.encode(encoding, errors="surrogateescape").decode(encoding, errors="replace")
            raise refusal(multipart.NotText.field_name(shown, encoding))
        if _UNDECODED.search(value):
            raise refusal(multipart.NotText.value(key, encoding))


def refusal(exc: multipart.NotText) -> APIException:
    """The 400 for a form's field, field name or file name that is not text."""
    if exc.field is None:
        return ParseError(exc.message)
    return ValidationError({exc.field: [exc.message]})


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser with the project's (``NameKeepingParser``):
    a text field that is not text in the form's charset is a 400 naming it,
    as in a plain form, not a value stored with U+FFFD; a field name or a
    file name that is not text is a 400 quoting it, not a part left out."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            data, files = multipart.NameKeepingParser(meta, stream, request.upload_handlers, encoding).parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        except multipart.NotText as exc:
            raise refusal(exc) from exc
        return parsers.DataAndFiles(data, files)
