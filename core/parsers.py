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

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ParseError

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
            raise ParseError(f"JSON parse error - {exc}") from exc
        if depth_over(data, MAX_DEPTH):
            raise ParseError(_TOO_DEEP)
        if _LONG_DIGITS.search(raw):
            return json.loads(raw)
        return data
