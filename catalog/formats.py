"""Reading and writing the file shapes the automation exchanges.

Pure functions, no database: the lab review format, the supplier description
format, and the people records (CSV / JSON / YAML) of the course's data.
"""

from __future__ import annotations

import codecs
import collections
import csv
import datetime as dt
import functools
import io
import itertools
import json
import math
import re
import sys
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from django.core.exceptions import ValidationError

from core import dropfolder, spreadsheets
from core.quoting import quoted
from core.validation import validate_text

PEOPLE_FIELDS = ("name", "username", "phone", "department", "role")
PEOPLE_EXTRA_FIELDS = ("email", "is_active")
PERSON_COLUMNS = PEOPLE_FIELDS + PEOPLE_EXTRA_FIELDS


class FormatError(ValueError):
    """A file that cannot be read as the format it claims; the message says why."""


# The most a review file may hold. The longest valid review is 5,200
# characters (title and name 100 each, text 5,000): at most 4 bytes each in
# UTF-8, 20,800 bytes, a third of this with its lines and spaces.
REVIEW_MAX_BYTES = 64 * 1024
# A description as long as the API would take in one request.
DESCRIPTION_MAX_BYTES = 1024 * 1024


def read_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a delivered file of at most ``limit`` bytes; a larger one
    raises FormatError unread (or, grown meanwhile, after reading only past
    the limit). ChangedWhileRead when it was written to while it was read, or its
    name no longer leads to a file of its folder (dropfolder.opened),
    OSError when it cannot be read."""
    with dropfolder.opened(path) as (fh, before):
        if before.st_size > limit:
            raise FormatError(f"larger than {limit:,} bytes, the most {what} may take")
        raw = fh.read(limit + 1)
        dropfolder.check_unchanged(path, fh.fileno(), before)
    if len(raw) > limit:
        raise FormatError(f"larger than {limit:,} bytes, the most {what} may take")
    return raw


def read_text(raw: bytes) -> str:
    """Decode a delivered text file: UTF-8 (with or without BOM), or UTF-16
    or UTF-32 with its BOM (what Windows calls "Unicode" is UTF-16); CRLF
    or LF. Null characters are refused: no database column takes them, and
    they mark UTF-16 or UTF-32 saved without its BOM."""
    return "".join(text_chunks([raw]))


# A byte order mark names its encoding. UTF-32's LE mark starts with UTF-16's
# (FF FE), so it is looked for first: a UTF-16 file whose first character
# is a null character, the only other reading, is refused either way.
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
    (codecs.BOM_UTF8, "UTF-8"),
)
# The bytes looked at to tell which encoding without a BOM a file with null
# characters is in.
SAMPLE_BYTES = 4096


def _encoding_of(head: bytes) -> tuple[str, int]:
    """The encoding a file starting with ``head`` is read in, and how many
    bytes of its BOM go before the text is decoded (UTF-16's and UTF-32's
    decoders read theirs to know the byte order)."""
    for bom, name in BYTE_ORDER_MARKS:
        if head.startswith(bom):
            return name, len(bom) if name == "UTF-8" else 0
    return "UTF-8", 0


def _without_bom(sample: bytes, zeros: int, size: int) -> str | None:
    """The encoding a file read as UTF-8 that holds null characters looks
    like it was saved in without its BOM, from its first bytes (``sample``)
    and how many of its ``size`` bytes are zeros; None when it looks like
    neither. A UTF-32 unit is a code point of at most 0x10FFFF: its high
    byte is zero and the next at most 0x10, the way round of its byte
    order. UTF-16 of Latin text is half zeros."""
    sample = sample[: len(sample) // 4 * 4]
    if sample:
        for high, next_ in ((3, 2), (0, 1)):  # little-endian, big-endian
            if not any(sample[high::4]) and max(sample[next_::4]) <= 0x10:
                return "UTF-32"
    if zeros * 4 >= size:
        return "UTF-16"
    return None


def _not_text(
    exc: UnicodeDecodeError, offset: int, *, encoding: str, read: tuple[bytes, int, int, bytes] | None = None
) -> FormatError:
    """The error for bytes that are not text, at ``offset`` plus where in
    what the decoder was given they are. ``read``, for UTF-8: the sample of
    the bytes decoded before, how many of them are zeros and how many they
    are, and the bytes given since. What came before the fault may name the
    encoding without a BOM the file is in: a name with an accent (``E9 00``)
    is where UTF-8's reading of UTF-16 stops, before any null character."""
    at = offset + exc.start
    looks = None
    if read is not None:
        sample, zeros, fed, given = read
        # Before the fault alone: a file of another kind (an image) may
        # hold many zeros past its first bytes, which are not text.
        given = given[: max(at - fed, 0)]
        zeros += given.count(0)
        if zeros:
            looks = _without_bom((sample + given)[: min(at, SAMPLE_BYTES)], zeros, at)
    hint = f"; it looks like {looks} without a byte order mark" if looks else ""
    return FormatError(f"not {encoding} text (byte {at}){hint}; save the file as UTF-8")


def text_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """``read_text`` of a file read a chunk at a time, as the chunks come:
    the same text (line breaks as LF), refused with the same message. A null
    character is told at the end, once the whole file has shown whether it
    is UTF-16 or UTF-32 without its BOM (and whether it is text at all)."""
    source = iter(chunks)
    head = b""
    for chunk in source:  # the first bytes tell the encoding
        head += chunk
        if len(head) >= 4:
            break
    encoding, bom = _encoding_of(head)
    # UTF-8's offsets are told after its BOM, as bytes.decode("utf-8-sig") tells them.
    decoder = codecs.getincrementaldecoder(encoding)()
    head = head[bom:]
    sample = b""
    fed = zeros = decoded = 0
    null_at: int | None = None
    carry = ""  # a CR that may be the first half of a CRLF
    for chunk in itertools.chain([head], source):
        try:
            text = decoder.decode(chunk, final=False)
        except UnicodeDecodeError as exc:
            read = (sample, zeros, fed, chunk) if encoding == "UTF-8" else None
            raise _not_text(exc, fed - len(decoder.getstate()[0]), encoding=encoding, read=read) from exc
        if len(sample) < SAMPLE_BYTES:
            sample += chunk[: SAMPLE_BYTES - len(sample)]
        fed += len(chunk)
        zeros += chunk.count(0)
        if null_at is None and "\0" in text:
            null_at = decoded + text.index("\0")
        decoded += len(text)
        text = carry + text
        carry = "\r" if text.endswith("\r") else ""
        text = text[: len(text) - len(carry)]
        if text:
            yield text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        read = (sample, zeros, fed, b"") if encoding == "UTF-8" else None
        raise _not_text(exc, fed - len(decoder.getstate()[0]), encoding=encoding, read=read) from exc
    if null_at is None and "\0" in text:
        null_at = decoded + text.index("\0")
    if null_at is not None:
        looks = _without_bom(sample, zeros, bom + fed) if encoding == "UTF-8" else None
        hint = f"; it looks like {looks} without a byte order mark" if looks else ""
        raise FormatError(f"holds a null character (character {null_at + 1}){hint}; save the file as UTF-8")
    text = (carry + text).replace("\r\n", "\n").replace("\r", "\n")
    if text:
        yield text


# --- Reviews ------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRecord:
    title: str
    name: str
    date: dt.date
    text: str


# A review's date as the course's endpoint reads it (``strptime``): four
# digits, a dash, a month and a day of one or two digits (``2024-01-02``,
# ``2024-1-2``). Every path reads it with ``parse_date``: the week and ordinal
# forms that ``date.fromisoformat`` reads on Python 3.11 (``20240102``,
# ``2024-W01-1``) and the forms of a locale (``10/25/2006``) are refused by
# all of them alike. The API, whose schema says ``format: date`` (RFC 3339's
# full-date), takes it ``exact``: the ten characters of ``2024-01-02`` alone.
DATE_FORM = "YYYY-MM-DD"


def parse_date(value: str, *, exact: bool = False) -> dt.date:
    """A review's date in ``DATE_FORM``, around which spaces and line breaks
    are trimmed (course clients send a file's lines as they read them); or,
    ``exact``, in that form to the character: untrimmed, its month and day
    of two digits."""
    text = value if exact else value.strip()
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        day = None
    if day is None or (exact and day.isoformat() != text):
        raise FormatError(f"not a date in {DATE_FORM} form: {quoted(text)}")
    return day


def parse_review(raw: bytes) -> ReviewRecord:
    """Line 1 title, line 2 reviewer, line 3 date (``DATE_FORM``), then the text."""
    lines = read_text(raw).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3:
        raise FormatError(f"expected at least 3 lines (title, name, date), found {len(lines)}")
    title, name, date_text = (line.strip() for line in lines[:3])
    _check_line(title, 1, "the title")
    _check_line(name, 2, "the reviewer's name")
    try:
        date = parse_date(date_text)
    except FormatError as exc:
        raise FormatError(f"line 3 is {exc}") from exc
    for number, line in enumerate(lines[3:], start=4):
        _check_line(line, number, "the text", multiline=True)
    text = "\n".join(lines[3:]).strip()
    return ReviewRecord(title=title, name=name, date=date, text=text)


def _check_line(line: str, number: int, what: str, *, multiline: bool = False) -> None:
    """Refuse line ``number`` of a file if it holds a character its text may
    not (``validate_text``), saying which line: the model would name only
    the field."""
    try:
        validate_text(line, what=f"line {number} ({what})", multiline=multiline)
    except ValidationError as exc:
        raise FormatError(" ".join(exc.messages)) from None


# --- Supplier descriptions ----------------------------------------------------


@dataclass(frozen=True)
class DescriptionRecord:
    name: str
    weight: int
    description: str


# The most a weight may be: what PostgreSQL's integer column holds (SQLite's
# holds more, which a move to PostgreSQL would then refuse).
WEIGHT_MAX = 2_147_483_647


def _characters(chars: list[str]) -> str:
    """A pattern matching one of ``chars`` that ECMA-262 (the API schema's
    dialect, with or without its ``u`` flag) and Python read alike: a class
    of ``\\uXXXX`` ranges for the Basic Multilingual Plane, the characters
    past it each as an alternative of its own (a class of them is two UTF-16
    halves to ECMA-262 without ``u``, a range of them out of order)."""
    ranges: list[list[int]] = []
    for code in sorted(ord(c) for c in chars if ord(c) <= 0xFFFF):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    parts = [f"\\u{a:04X}" if a == b else f"\\u{a:04X}-\\u{b:04X}" for a, b in ranges]
    beyond = sorted(c for c in chars if ord(c) > 0xFFFF)
    return f"(?:[{''.join(parts)}]|{'|'.join(beyond)})" if beyond else f"[{''.join(parts)}]"


@functools.cache
def weight_pattern() -> re.Pattern[str]:
    """What a weight given as text may be: ``500``, ``500 lbs``, ``7 LB.``,
    ``+500``.

    The digits are those of any script (Arabic-Indic, fullwidth), the spaces any
    Unicode space, a plus sign before the digits, as ``int()`` reads them, and
    the course's clients read a weight with ``int()``. Not its underscores
    between digits (``1_000``): a weight is not written so, and they are
    refused as ``1,000`` is, named as separators. Written out as characters,
    not ``\\d`` and ``\\s``, which are ASCII alone in the schema's dialect,
    so that the pattern the API publishes takes what the server takes (a
    minus sign too, refused as less than 1 lb). The spaces before the unit are
    inside its optional group: two runs of spaces side by side took time
    growing with the square of their length to refuse."""
    digits: list[str] = []
    spaces: list[str] = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if char.isdecimal():
            digits.append(char)
        elif char.isspace():
            spaces.append(char)
    digit, space = _characters(digits), _characters(spaces)
    return re.compile(f"^{space}*\\+?({digit}+)(?:{space}*[Ll][Bb][Ss]?\\.?)?{space}*$")


# A separator between digits (``1_000``, ``1,000``): told apart in a refusal.
_THOUSANDS = re.compile(r"(?<=\d)[_,](?=\d)")


def _negative(text: str) -> bool:
    """Whether ``text`` is a weight but for a minus sign before its digits,
    as ``int()`` reads it (``-5``, ``-5 lbs``): refused as the number -5 is."""
    unsigned = text.lstrip()
    return (
        unsigned[:1] == "-" and unsigned[1:2].isdecimal() and bool(weight_pattern().fullmatch(unsigned[1:]))
    )


def parse_weight(value: object) -> int:
    """``500``, ``"500"``, ``"+500"`` or ``"500 lbs"`` → 500; anything else
    is an error. Every path that writes a product reads its weight with this.
    ``"-5"`` is refused as ``-5`` is, as less than 1 lb."""
    if isinstance(value, bool):
        raise FormatError("weight must be a whole number of lbs")
    if isinstance(value, int):
        weight = value
    elif isinstance(value, float) and value.is_integer():
        weight = int(value)
    elif isinstance(value, str) and (match := weight_pattern().fullmatch(value)):
        # Digits of any script (Arabic-Indic, fullwidth), their zeros too: read as ASCII.
        digits = "".join(str(unicodedata.digit(c)) for c in match.group(1)).lstrip("0") or "0"
        # Longer is too heavy, and past 4,300 digits more than int() reads.
        weight = int(digits) if len(digits) <= len(str(WEIGHT_MAX)) else WEIGHT_MAX + 1
    elif isinstance(value, str) and _negative(value):
        raise FormatError("weight must be at least 1 lb")
    elif isinstance(value, str) and weight_pattern().fullmatch(_THOUSANDS.sub("", value)):
        raise FormatError(f"weight must be a whole number of lbs without separators, got {quoted(value)}")
    else:
        raise FormatError(f"weight must be a whole number of lbs, got {quoted(value)}")
    if weight < 1:
        raise FormatError("weight must be at least 1 lb")
    if weight > WEIGHT_MAX:
        raise FormatError(f"weight must be at most {WEIGHT_MAX:,} lbs")
    return weight


def parse_description(raw: bytes) -> DescriptionRecord:
    """Line 1 product name, line 2 ``NNN lbs``, then the description."""
    lines = [line.strip() for line in read_text(raw).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise FormatError(f"expected at least 2 lines (name, weight), found {len(lines)}")
    if not lines[0]:
        raise FormatError("line 1 (the product name) is blank")
    _check_line(lines[0], 1, "the product name")
    for number, line in enumerate(lines[2:], start=3):
        _check_line(line, number, "the description", multiline=True)
    try:
        weight = parse_weight(lines[1])
    except FormatError as exc:
        raise FormatError(f"line 2: {exc}") from exc
    return DescriptionRecord(name=lines[0], weight=weight, description="\n".join(lines[2:]).strip())


# --- People -------------------------------------------------------------------


# What a person's field may hold in JSON or YAML: anything else (a list, a
# mapping, YAML's aliases nested into a billion items) is refused, not printed.
# A number is taken as the text it reads as (a phone number, an employee
# number as the username), but one that is no finite number is refused.
_SCALARS = (str, int, float)


_Number = TypeVar("_Number", int, float)


class _WrittenInt(int):
    """A number of a file whose text is not the one Python makes of it: its
    text is the file's, as written (``_as_written``)."""

    written: str

    def __str__(self) -> str:
        return self.written


class _WrittenFloat(float):
    """As ``_WrittenInt``, of a number with a fraction."""

    written: str

    def __str__(self) -> str:
        return self.written


def _as_written(value: _Number, text: str) -> _Number:
    """``value``, read from ``text``, whose text is ``text`` where Python
    would make another of it: YAML reads an unquoted ``0201234567`` as an
    octal number (33896823), drops the ``+`` of ``+447700900123``, and YAML
    and JSON the zeros of ``867.5300``; each field of a person takes a
    number as text, which would be another than the file shows. A number of
    no finite value keeps its own, which is refused."""
    if isinstance(value, bool) or str(value) == text or _not_finite(value):
        return value
    if isinstance(value, int):
        whole = _WrittenInt(value)
        whole.written = text
        return whole
    fraction = _WrittenFloat(value)
    fraction.written = text
    return fraction


def _not_finite(value: object) -> bool:
    """Whether ``value`` is a number of no text: JSON's ``NaN``, a number
    past a double's range (``1e400``, ``-1e400``) and YAML's ``.nan`` and
    ``.inf`` are read as floats that would be stored as "nan" and "inf"."""
    return isinstance(value, float) and not math.isfinite(value)


class _GivenTwice(dict[Any, Any]):
    """A mapping of a JSON or YAML file that gives ``keys``, which an import
    reads, more than once: it holds the last one's value, as ``json.loads``
    and ``yaml.safe_load`` keep it, for the person it is to be refused."""

    def __init__(self, keys: Iterable[str], items: Mapping[Any, Any] | None = None) -> None:
        super().__init__(items or {})
        self.keys_twice = tuple(keys)


def _twice_given(keys: Iterable[object]) -> list[str]:
    """Those of ``keys`` that an import reads and that come more than once.
    A key no import reads may repeat, as a CSV column may: nothing of it is
    stored, whichever value is kept."""
    counts = collections.Counter(key for key in keys if isinstance(key, str) and key in PERSON_COLUMNS)
    return sorted(key for key, count in counts.items() if count > 1)


def _check_given_once(row: Mapping[str, Any], number: int) -> None:
    """That person ``number`` gave each key an import reads once: given
    twice, the later value took the place of the first unseen."""
    if isinstance(row, _GivenTwice):
        raise FormatError(f"person {number} gives {', '.join(row.keys_twice)} twice")


def _text(row: Mapping[str, Any], key: str, number: int) -> str:
    value = row.get(key)
    if value is None or value is False:
        return ""
    if not isinstance(value, _SCALARS):
        raise FormatError(f"person {number}: {key} must be text, not {type(value).__name__}")
    if _not_finite(value):
        raise FormatError(f"person {number}: {key} must be text or a finite number, not {value}")
    return str(value).strip()


def parse_phone(value: object) -> dict[str, str]:
    """Phone numbers by label from any of the shapes files carry.

    A mapping is taken as it is; a string may be JSON (``{"office": "..."}``;
    a JSON list or quoted string is read as JSON too, so a list is refused),
    ``label: number; label: number``, or a bare number (labelled ``office``).
    """
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        labelled: list[tuple[object, str]] = []
        for label, number in value.items():
            if number is None:
                continue
            if not isinstance(number, _SCALARS):
                raise FormatError(f"the phone number for {quoted(str(label))} must be text")
            if _not_finite(number):
                raise FormatError(
                    f"the phone number for {quoted(str(label))} must be text or a finite number, not {number}"
                )
            if str(number).strip():
                labelled.append((label, str(number).strip()))
        return phones_by_label(labelled)
    if not isinstance(value, _SCALARS):
        raise FormatError("phone must be text or a mapping of label to number")
    if _not_finite(value):
        raise FormatError(f"phone must be text or a mapping of label to number, not {value}")
    text = str(value).strip()
    if text.startswith(("{", "[", '"')):
        try:
            # The decoder of the JSON files: a number is the text the cell shows.
            return parse_phone(_JSON_DECODER.decode(text))
        except json.JSONDecodeError as exc:
            raise FormatError(f"phone is not valid JSON: {quoted(text)}") from exc
        except RecursionError:
            raise FormatError("phone is not valid JSON: nested too deep") from None
    phones: dict[str, str] = {}
    for raw_part in re.split(r"[;\n]", text):
        part = raw_part.strip()
        if not part:
            continue
        label, sep, number = part.partition(":")
        number = number.strip()
        # Nothing before the colon is a blank label, as "" is in a mapping.
        if sep and not re.fullmatch(r"[\d\s()+.-]+", label):
            # A label with nothing after it is no phone, as in a mapping:
            # kept as a blank number, a JSON export imported again dropped
            # it, and the API refused the person sent back as it gave them.
            if number:
                _add_phone(phones, phone_label(label, number), number)
        elif "office" not in phones:
            phones["office"] = part
        else:
            # A bare number after the first: a label no number has yet.
            count = len(phones) + 1
            while f"phone{count}" in phones:
                count += 1
            phones[f"phone{count}"] = part
    return phones


def phone_label(label: object, number: str) -> str:
    """The label of ``number`` as every path stores it: trimmed of spaces,
    tabs and line breaks around it. A blank one is refused: it cannot be
    shown, nor written as ``label: number`` and read back. So is a label
    that is not text, which only a YAML file gives (a key of JSON is text):
    YAML reads an unquoted ``yes``, ``on`` or ``no`` as a boolean, ``~`` as
    null, ``2024-01-02`` as a date and ``1:30`` as the number 90, which
    would be stored as "True", "None" or "90", not the label the file shows."""
    if not isinstance(label, str):
        raise FormatError(
            f"the label of the phone number {quoted(number)} must be text, not {_read_as(label)}: quote it"
        )
    text = label.strip()
    if not text:
        raise FormatError(f"the phone number {quoted(number)} has a blank label")
    return text


def _read_as(value: object) -> str:
    """``value``, which is not text, as a refusal names it: by its type
    alone when it is no scalar, not spelt out (YAML's aliases make a short
    file a huge one)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        words = "yes, on or true" if value else "no, off or false"
        return f"{str(value).lower()} (as YAML reads an unquoted {words})"
    if isinstance(value, int | float):
        return f"the number {value!r}"  # as YAML reads it (``1:30`` is 90), not as written
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def phones_by_label(pairs: Iterable[tuple[object, str]]) -> dict[str, str]:
    """Numbers by their labels as every path stores them (``phone_label``).
    Two labels that are one once trimmed (``cell`` and `` cell``) are
    refused: the later number would take the first one's place unseen."""
    phones: dict[str, str] = {}
    for label, number in pairs:
        _add_phone(phones, phone_label(label, number), number)
    return phones


def _add_phone(phones: dict[str, str], label: str, number: str) -> None:
    if label in phones:
        raise FormatError(f"the phone label {quoted(label)} is given twice")
    phones[label] = number


def format_phone(phones: Mapping[str, str]) -> str:
    """Phones as labelled text (``office: 802-867-5309; cell: ...``), which
    ``parse_phone`` reads back, or as JSON where that text would read as
    other numbers: a label with a colon or of digits alone, a number with a
    semicolon or a line break. An export imported, or an admin form saved
    as it was shown, changes nobody's numbers."""
    text = "; ".join(f"{label}: {number}" for label, number in phones.items())
    try:
        same = list(parse_phone(text).items()) == list(phones.items())
    except FormatError:  # "{x: 1" is broken JSON
        same = False
    return text if same else json.dumps(dict(phones), ensure_ascii=False)


# The words of a file's is_active, in any case. Any other is refused: read
# as yes, a typo meant for no ("of", "ture") would show a person the file
# meant to hide. A blank cell is neither: it leaves what is stored alone.
_YES_WORDS = ("yes", "y", "true", "on", "1")
_NO_WORDS = ("no", "n", "false", "off", "0")
_YES_OR_NO = f"yes or no ({', '.join(_YES_WORDS)}; {', '.join(_NO_WORDS)})"


def _truthy(value: object, number: int) -> bool:
    """Person ``number``'s is_active as a file gives it: a boolean, one of
    the words for yes or no, or the number 1 or 0."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, _SCALARS):
        # A list, mapping or date: named by its type, not spelt out (YAML's
        # aliases make a short file a huge one).
        raise FormatError(f"person {number}: is_active must be {_YES_OR_NO}, not {type(value).__name__}")
    if _not_finite(value):
        raise FormatError(f"person {number}: is_active must be {_YES_OR_NO}, not {value}")
    if isinstance(value, str):
        word = value.strip().lower()
    elif value in (0, 1):
        word = str(int(value))  # JSON's 1.0 as 1
    else:
        word = str(value)
    if word in _YES_WORDS:
        return True
    if word in _NO_WORDS or word == "":
        return False
    shown = quoted(value.strip()) if isinstance(value, str) else word
    raise FormatError(f"person {number}: is_active must be {_YES_OR_NO}, not {shown}")


def parse_people(raw: bytes, fmt: str) -> list[dict[str, Any]]:
    """Rows of people as dicts of the fields the file carries, phone as a
    label → number mapping."""
    return list(people_rows([raw], fmt))


def people_rows(chunks: Iterable[bytes], fmt: str) -> Iterator[dict[str, Any]]:
    """``parse_people`` of a file read a chunk at a time. People come as the
    file is read (a CSV line, a JSON or YAML list item at a time), so a file
    of any size takes the memory of a few of its people. A file that is not
    valid raises the FormatError ``parse_people`` raises, after the people
    before the fault: read it through once before acting on its people.
    ``chunks`` that can be read again (a list, not an iterator) let libyaml
    read a YAML file (see ``_yaml_rows``)."""
    texts = [text_chunks(chunks)]

    def again() -> Iterator[str]:
        texts.append(text_chunks(chunks))
        return texts[-1]

    try:
        if fmt in ("csv", "tsv"):
            yield from _csv_people(texts[0], delimiter="\t" if fmt == "tsv" else ",")
        elif fmt == "json":
            yield from _document_people(_json_rows(texts[0]), fmt)
        elif fmt == "yaml":
            rows = _yaml_rows(texts[0], None if isinstance(chunks, Iterator) else again)
            yield from _document_people(rows, fmt)
        else:
            raise FormatError(f"unknown format {fmt!r}; use csv, tsv, json or yaml")
    except FormatError:
        # Told first, as when the file was decoded whole before parsing:
        # bytes further on that are not text.
        for _ in texts[-1]:
            pass
        raise


def document_rows(text: str, fmt: str, *, max_rows: int | None = None) -> list[Mapping[str, Any]]:
    """The people of a JSON or YAML file's text as the file writes them (a
    mapping each, its values unchecked), found as ``people_rows`` finds them:
    the file's list of people, the ``people`` list of its mapping, or the one
    person the mapping is. A file that is not valid, or holds anything else,
    raises the FormatError ``people_rows`` raises. A file of more than
    ``max_rows`` people is refused once that many have been read, not after
    reading millions (``[{}, {}, ...]``)."""
    if fmt == "json":
        found = _json_rows(iter([text]))
    elif fmt == "yaml":
        found = _yaml_rows(iter([text]), lambda: iter([text]))
    else:
        raise FormatError(f"unknown format {fmt!r}; use json or yaml")
    rows = list(found if max_rows is None else itertools.islice(found, max_rows + 1))
    if max_rows is not None and len(rows) > max_rows:
        raise too_many_rows(max_rows)
    people: list[Mapping[str, Any]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise _not_people(fmt)
        people.append(row)
    return [_document_person(row, number) for number, row in enumerate(people, start=1)]


def too_many_rows(max_rows: int) -> FormatError:
    """The refusal of a file found to hold more than ``max_rows`` rows."""
    return FormatError(f"A file has at most {max_rows:,} rows; this one has more. Import it in parts.")


def table_rows_over(text: str, delimiter: str, max_rows: int) -> bool:
    """Whether a CSV or TSV file's text holds more than ``max_rows`` rows
    besides its header (blank lines aside, as tablib reads it), found by
    reading no more than one past them. A file the reading cannot take is
    refused as ``import_people`` refuses it (``table_records``)."""
    records = (cells for _, cells in table_records(io.StringIO(text), delimiter=delimiter) if cells)
    return sum(1 for _ in itertools.islice(records, max_rows + 2)) > max_rows + 1


def _document_person(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    """The keys of ``row`` a person may have (``people_rows`` reads no
    other), its text as the file gives it; a value that is not text where
    text goes read as ``people_rows`` reads it (``false`` is blank, a YAML
    date or a list refused in its words). YAML's aliases make a short file
    of a list nested into a billion items, which printing or walking it
    would take hours and gigabytes to spell out: it is never read further."""
    _check_given_once(row, number)
    person: dict[str, Any] = {}
    for key, value in row.items():
        if key not in PEOPLE_FIELDS and key not in PEOPLE_EXTRA_FIELDS:
            continue
        person[key] = value
        if key not in ("phone", "is_active"):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, _SCALARS) or _not_finite(value)
            ):
                person[key] = _text(row, key, number)
            continue
        if not isinstance(value, (list, tuple, Mapping)):
            continue
        if key == "phone":
            try:
                parse_phone(value)
            except FormatError as exc:
                raise FormatError(f"person {number}: {exc}") from None
        else:
            _truthy(value, number)  # refused, as people_rows refuses it
    return person


# The most characters a row of a CSV or TSV file may hold, its line break
# aside (a quoted field across lines counts with its row): the longest row of
# people is a few hundred; Python's reader alone takes a field of 131,072
# and a row of any length, gathered whole before it is refused.
TABLE_ROW_MAX_CHARS = 1024 * 1024
# Past this, a field is refused as its row is: by length, before the reader.
csv.field_size_limit(max(csv.field_size_limit(), TABLE_ROW_MAX_CHARS + 1))


def _longer_than_a_row(what: str) -> str:
    """The refusal of ``what`` (a CSV or TSV row, a value of a JSON file
    read whole) past ``TABLE_ROW_MAX_CHARS``, in the words of each."""
    return f"{what} is longer than {TABLE_ROW_MAX_CHARS:,} characters, the most a row may hold"


# Possessive: a quote written twice ("") is never taken as the field's end.
_QUOTED = re.compile(r'"[^"]*+(?:""[^"]*+)*+"')


class _TableLines:
    """The lines of a table's text that comes in pieces, each with its LF,
    for ``csv.reader``: counted as the file's lines, and those of a row
    kept until the next row starts (``start``). A row longer than
    ``TABLE_ROW_MAX_CHARS`` is refused as soon as it is found to be, a
    line of it not gathered past them (a file of one 200 MB line)."""

    def __init__(self, text: Iterable[str], kind: str, delimiter: str) -> None:
        self._pieces = iter(text)
        self._ready: collections.deque[str] = collections.deque()
        self._pending: list[str] = []  # a line in pieces: joined once, however many
        self._pending_chars = 0
        self._ended = False
        self.kind, self.delimiter = kind, delimiter
        self.number = 0  # the file's line last given to the reader
        self.row_start = 1
        self.row: list[str] = []
        self._row_chars = 0

    def start(self) -> None:
        """A row starts with the next line."""
        self.row_start, self.row, self._row_chars = self.number + 1, [], 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while not self._ready and not self._ended:
            self._read()
        if not self._ready:
            raise StopIteration
        line = self._ready.popleft()
        self.number += 1
        self.row.append(line)
        self._row_chars += len(line)
        if self._row_chars - line.endswith("\n") > TABLE_ROW_MAX_CHARS:
            raise self.too_long()
        return line

    def _read(self) -> None:
        piece = next(self._pieces, None)
        if piece is None:
            self._ended = True
            if self._pending:
                self._ready.append("".join(self._pending))
            return
        *whole, rest = piece.split("\n")
        if whole:
            whole[0] = "".join([*self._pending, whole[0]])
            self._ready.extend(line + "\n" for line in whole)
            self._pending, self._pending_chars = [], 0
        if rest:
            self._pending.append(rest)
            self._pending_chars += len(rest)
            if self._pending_chars > TABLE_ROW_MAX_CHARS:
                # Longer than any row may be: read no further; its row is refused.
                self._ready.append("".join(self._pending)[: TABLE_ROW_MAX_CHARS + 1])
                self._pending, self._ended = [], True

    def error(self, line: int, message: str) -> FormatError:
        return FormatError(f"not valid {self.kind} (line {line}): {message}")

    def quote_opened(self) -> int | None:
        """The line of the quote that opens the field the row's lines so far
        leave open, if one does."""
        text, at = "".join(self.row), 0
        while at < len(text):
            if text[at] == '"':
                quoted = _QUOTED.match(text, at)
                if quoted is None:
                    return self.row_start + text.count("\n", 0, at)
                at = quoted.end()
            ends = [i for i in (text.find(self.delimiter, at), text.find("\n", at)) if i >= 0]
            at = min(ends, default=len(text)) + 1
        return None

    def too_long(self) -> FormatError:
        message = _longer_than_a_row("the row")
        opened = self.quote_opened()
        if opened is not None:
            where = "there" if opened == self.row_start else f"on line {opened}"
            message += f"; the quoted field that opens {where} runs past it: is its closing quote missing?"
        return self.error(self.row_start, message)

    def not_read(self, exc: csv.Error) -> FormatError:
        """The refusal of the fault ``csv.reader`` found in the row."""
        opened = self.quote_opened()
        if "unexpected end of data" in str(exc) and opened is not None:
            return self.error(
                opened,
                "the quoted field that opens there is never closed, so the rest of the file would be "
                'read as that field; close it (a quote within a quoted field is written twice: "")',
            )
        if "expected after" in str(exc):
            return self.error(
                self.number,
                "text after the quote that closes a field; a quote within a quoted field is written "
                'twice (""), and a field with a quote inside is quoted whole',
            )
        return self.error(self.number, str(exc))


def table_records(text: Iterable[str], *, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The rows of a CSV file's text (or with ``delimiter`` a tab, a TSV
    file's), in pieces as they come, each with the line of the file it
    starts on; a blank line is a row of no cells. Read strictly: a quote
    never closed (which Python's reader takes as a field holding the rest of
    the file), text after a closing quote (``"Ann"x``, read as ``Annx``) and
    a row longer than ``TABLE_ROW_MAX_CHARS`` raise FormatError naming the
    file's line where the fault is: counted as the file's lines, which a
    quoted field across lines makes more than the rows."""
    lines = _TableLines(text, "TSV" if delimiter == "\t" else "CSV", delimiter)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        lines.start()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise lines.not_read(exc) from exc
        yield lines.row_start, cells


def csv_header(name: str | None) -> str:
    """The field a CSV column's header names: in any case, with spaces
    around it (``Name``, `` username ``)."""
    return (name or "").strip().lower()


def _check_header(fieldnames: Sequence[str] | None, kind: str) -> None:
    """That a table's first line (``fieldnames``; None: the file has no
    line) names the columns every person needs; else the FormatError
    ``import_people`` refuses its file with."""
    if fieldnames is None:
        raise FormatError(f"the {kind} file is empty")
    columns = [csv_header(f) for f in fieldnames]
    missing = {"name", "username"} - set(columns)
    if missing:
        raise FormatError(f"the {kind} header lacks {', '.join(sorted(missing))}")
    # A column read twice: the later one took its place unseen (a name of
    # "Bea" for "Ann", or a username blank though given).
    twice = sorted(c for c, n in collections.Counter(columns).items() if n > 1 and c in PERSON_COLUMNS)
    if twice:
        raise FormatError(f"the {kind} header names {', '.join(twice)} twice")


def check_table_header(text: str, delimiter: str) -> None:
    """That a CSV or TSV file's text names, on its first line, the columns
    every person needs, as ``import_people`` checks a CSV's: an empty file
    or a header that lacks one is refused in its words."""
    first = next(table_records(io.StringIO(text), delimiter=delimiter), None)
    _check_header(None if first is None else first[1], "TSV" if delimiter == "\t" else "CSV")


def _csv_people(text: Iterable[str], *, delimiter: str) -> Iterator[dict[str, Any]]:
    """The people of a CSV file, or with ``delimiter`` a tab, of a TSV file
    (the admin's export offers both): each row's cells by the header's
    columns, a cell past them left out, one a short row lacks blank."""
    records = table_records(text, delimiter=delimiter)
    first = next(records, None)
    header = [] if first is None else [csv_header(name) for name in first[1]]
    _check_header(None if first is None else header, "TSV" if delimiter == "\t" else "CSV")
    fault: FormatError | None = None
    number = 0
    for _, cells in records:
        if not cells or fault is not None:
            continue
        number += 1
        try:
            # A cell the admin's export marked as text for a spreadsheet: as it was stored.
            # A cell past the header's columns is left out; one a short row lacks is blank.
            row = {
                key: spreadsheets.read_text(value)
                for key, value in itertools.zip_longest(header, cells)
                if key is not None
            }
            person = person_fields(row, number)
        except FormatError as exc:
            # A fault of the CSV itself further on is told first, as
            # when every row was read before any was checked.
            fault = exc
            continue
        yield person
    if fault is not None:
        raise fault


def _document_people(rows: Iterator[object], fmt: str) -> Iterator[dict[str, Any]]:
    """The people of the rows a JSON or YAML file lists, told as when the
    whole file was parsed before any row was checked: a fault of the file
    itself first (``rows`` raises it), then a row that is not a person at
    all, then the first person with a fault."""
    not_a_person = False
    fault: FormatError | None = None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            not_a_person = True
            continue
        if not_a_person or fault is not None:
            continue  # read on: the rest of the file may not be valid
        try:
            person = person_fields(row, number)
        except FormatError as exc:
            fault = exc
            continue
        yield person
    if not_a_person:
        raise _not_people(fmt)
    if fault is not None:
        raise fault


def _not_people(fmt: str) -> FormatError:
    return FormatError(f"the {fmt.upper()} file must hold a list of people")


def _twice(fmt: str) -> FormatError:
    # Its people were taken as the file was read: the list named last,
    # which would be the one, cannot take their place.
    return FormatError(f'the {fmt.upper()} file names "people" more than once')


def _people_list(items: Iterator[object], *, first: bool) -> Iterator[object]:
    """The items of a "people" list as they come if it is the file's first;
    a later one is read through (to find the file's faults) and refused
    once the file is read."""
    if first:
        yield from items
    for _ in items:
        pass


def _too_long(exc: ValueError) -> str:
    """What a value Python refuses to read says, in the terms of the file."""
    if str(exc).startswith("Exceeds the limit"):  # int("9" * 5000)
        return f"a number longer than {sys.get_int_max_str_digits():,} digits"
    return str(exc)


# The keys of a file's mapping that can matter: the list of people, or the
# fields of the one person it is.
_DOCUMENT_KEYS = frozenset({"people", *PEOPLE_FIELDS, *PEOPLE_EXTRA_FIELDS})
# The most of a JSON file's text its reader is given at a time: a text
# given whole (the admin's) is read as a file read a chunk at a time, a
# value longer than a row may be found to be without reading it whole.
_DOCUMENT_PIECE_CHARS = 64 * 1024


def _in_pieces(text: Iterable[str]) -> Iterator[str]:
    """``text`` in pieces of at most ``_DOCUMENT_PIECE_CHARS``."""
    for piece in text:
        for start in range(0, len(piece), _DOCUMENT_PIECE_CHARS):
            yield piece[start : start + _DOCUMENT_PIECE_CHARS]


# --- People in JSON -----------------------------------------------------------


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as ``json.loads`` makes it, the last value of a key given
    twice kept; one giving a key an import reads twice says so."""
    mapping = dict(pairs)
    if len(mapping) < len(pairs) and (twice := _twice_given(key for key, _ in pairs)):
        return _GivenTwice(twice, mapping)
    return mapping


_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_json_object, parse_float=lambda text: _as_written(float(text), text)
)
_JSON_NOT_SPACE = re.compile(r"[^ \t\n\r]")
# A string, skipped whole (digits in it are no number), or a number as the
# decoder reads it: ``int()`` makes it of its integer part alone, and
# ``float()`` of one with a fraction or an exponent.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(?P<integer>-?(?:0|[1-9][0-9]*))(?P<rest>[.eE])?')
# How close to the end of what has been read a fault of a value may be and
# still be the value cut short there ("tru", "-Infinit", "\u00").
_JSON_CUT = 16


class _JsonReader:
    """JSON text that comes in pieces, read a value at a time with the
    decoder ``json.loads`` uses, its faults told as ``json.loads`` tells them
    (line, column and character of the whole text)."""

    def __init__(self, text: Iterator[str]) -> None:
        self._text = _in_pieces(text)
        self._buffer = ""
        self._at = 0  # where the reader is in the buffer
        self._base = 0  # characters of the text before the buffer
        self._lines = 0  # line breaks before the buffer
        self._line_start = 0  # where the line the buffer starts in starts
        self._eof = False

    def _more(self, wanted: int = 0) -> bool:
        """Read the next piece, and more until ``wanted`` characters are
        unread, dropping what has been read; False at the end. The buffer is
        put together once: a piece at a time would copy a long value once
        per piece."""
        pieces: list[str] = []
        unread = len(self._buffer) - self._at
        while not self._eof and (not pieces or unread < wanted):
            piece = next(self._text, None)
            if piece is None:
                self._eof = True
                break
            pieces.append(piece)
            unread += len(piece)
        if not pieces:
            return False
        done = self._at
        if (last := self._buffer.rfind("\n", 0, done)) >= 0:
            self._line_start = self._base + last + 1
        self._lines += self._buffer.count("\n", 0, done)
        self._base += done
        self._buffer = "".join([self._buffer[done:], *pieces])
        self._at = 0
        return True

    def error(self, message: str, at: int | None = None) -> FormatError:
        at = self._at if at is None else at
        line = self._lines + self._buffer.count("\n", 0, at) + 1
        last = self._buffer.rfind("\n", 0, at)
        column = at - last if last >= 0 else self._base + at - self._line_start + 1
        return FormatError(f"not valid JSON: {message}: line {line} column {column} (char {self._base + at})")

    def _too_long_error(self, exc: ValueError) -> FormatError:
        """The refusal of a number the decoder found but ``int()`` would not
        read (past ``sys.get_int_max_str_digits()``), told where the number
        starts: the decoder's ValueError tells no place, and the value being
        read (a whole person, or the file's one list) starts elsewhere.
        Where no such number is found, no place is told rather than one that
        is not the number's."""
        limit = sys.get_int_max_str_digits()
        for token in _JSON_TOKEN.finditer(self._buffer, self._at):
            number = token["integer"]
            if number and not token["rest"] and len(number.lstrip("-")) > limit > 0:
                return self.error(_too_long(exc), token.start())
        return FormatError(f"not valid JSON: {_too_long(exc)}")

    def peek(self, *, space: bool = False) -> str:
        """The next character but spaces ("" at the end); with ``space``, the
        next character."""
        while True:
            if not space:
                found = _JSON_NOT_SPACE.search(self._buffer, self._at)
                self._at = found.start() if found else len(self._buffer)
            if self._at < len(self._buffer):
                return self._buffer[self._at]
            if not self._more():
                return ""

    def take(self) -> None:
        """Step over the character ``peek`` returned."""
        self._at += 1

    def value(self) -> object:
        """The next value, read whole. One longer than ``TABLE_ROW_MAX_CHARS``
        (a person, or a value of the file's object) is refused where it
        starts, found without reading it whole: what is read of it at most
        doubles until it is found longer, as a CSV row is refused."""
        self.peek()
        while True:
            try:
                value, end = _JSON_DECODER.raw_decode(self._buffer, self._at)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated string")
                cut = exc.pos >= len(self._buffer) - _JSON_CUT or unterminated
                # Where the decoder stopped (a string left open runs to the end
                # of what has been read): further on than a row may hold, the
                # value is too long, whatever comes after.
                if (len(self._buffer) if unterminated else exc.pos) - self._at > TABLE_ROW_MAX_CHARS:
                    raise self.error(_longer_than_a_row("the value")) from None
                if self._eof or not cut:
                    raise self.error(exc.msg, exc.pos) from None
            except ValueError as exc:
                raise self._too_long_error(exc) from None
            else:
                if end - self._at > TABLE_ROW_MAX_CHARS:
                    raise self.error(_longer_than_a_row("the value"))
                # A number at the end may go on ("1" of "1.5e3").
                if self._eof or end <= len(self._buffer) - 3:
                    self._at = end
                    return value
            # Cut short by the end of what has been read: read as much again.
            self._more(2 * (len(self._buffer) - self._at) + 1)

    def items(self) -> Iterator[object]:
        """The values of the list whose "[" was just taken."""
        if self.peek() == "]":
            self.take()
            return
        while True:
            yield self.value()
            char = self.peek()
            if char not in (",", "]"):
                raise self.error("Expecting ',' delimiter")
            self.take()
            if char == "]":
                return

    def end(self) -> None:
        """Check that nothing but spaces follows the document."""
        if self.peek():
            raise self.error("Extra data")


def _json_rows(text: Iterator[str]) -> Iterator[object]:
    """The items of a JSON file's list of people (its top-level list, or the
    "people" list of its top-level object, or the object itself), decoded one
    at a time; the file's faults raised as ``json.loads`` finds them."""
    reader = _JsonReader(text)
    try:
        if reader.peek(space=True) == "\ufeff":
            raise reader.error("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        first = reader.peek()
        if first == "[":
            reader.take()
            yield from reader.items()
            reader.end()
        elif first == "{":
            reader.take()
            yield from _json_object_rows(reader)
        else:
            reader.value()
            reader.end()
            raise _not_people("json")
    except RecursionError:
        raise FormatError("not valid JSON: nested too deep") from None


def _json_object_rows(reader: _JsonReader) -> Iterator[object]:
    """The rows of a top-level object whose "{" was just taken: the items of
    its "people" list as they come, or else the object itself (only the keys
    a person may have are kept)."""
    fields: dict[str, object] = {}
    repeated: set[str] = set()
    listed = twice = False
    char = reader.peek()
    done = char == "}"
    if done:
        reader.take()
    while not done:
        if char != '"':
            raise reader.error("Expecting property name enclosed in double quotes")
        key = reader.value()
        if reader.peek() != ":":
            raise reader.error("Expecting ':' delimiter")
        reader.take()
        twice = twice or (key == "people" and listed)
        if key == "people" and reader.peek() == "[":
            reader.take()
            fields.pop("people", None)
            yield from _people_list(reader.items(), first=not listed)
            listed = True
        else:
            value = reader.value()
            if key in _DOCUMENT_KEYS:
                if key in fields and key in PERSON_COLUMNS:
                    repeated.add(str(key))
                fields[str(key)] = value
        char = reader.peek()
        if char not in (",", "}"):
            raise reader.error("Expecting ',' delimiter")
        reader.take()
        done = char == "}"
        char = reader.peek()
    reader.end()
    if twice:
        raise _twice("json")
    if listed:
        return
    if "people" in fields:
        raise _not_people("json")  # not a list: a list starts with "["
    yield _GivenTwice(sorted(repeated), fields) if repeated else fields


# --- People in YAML -----------------------------------------------------------


# How much of a line around a fault a YAML error shows, either side (PyYAML
# shows up to 37 characters).
_YAML_CONTEXT = 40
# How much of the text read libyaml's reader keeps: 16 KB of bytes, as many
# characters at most, and the line being read (a fault is shown in it).
_YAML_RECENT = 64 * 1024


class _YamlText:
    """Text that comes in pieces, as a file ``yaml.SafeLoader`` reads. Named
    as ``yaml.safe_load`` names the text it is given, so that a fault is told
    in the same words. With ``recent``, the last of the text read is kept,
    to show where a fault libyaml tells (which shows none) is."""

    name = "<unicode string>"

    def __init__(self, text: Iterator[str], *, recent: bool = False) -> None:
        self._text = text
        self._recent: collections.deque[tuple[int, str]] | None = collections.deque() if recent else None
        self._read = 0  # characters read

    def read(self, size: int = -1, /) -> str:
        piece = next(self._text, "")
        if self._recent is not None and piece:
            self._recent.append((self._read, piece))
            self._read += len(piece)
            # libyaml reads 16 KB ahead of where it is: what lies further
            # back than that and a line's worth is not kept.
            while self._read - self._recent[0][0] - len(self._recent[0][1]) > _YAML_RECENT:
                self._recent.popleft()
        return piece

    def mark(self, mark: Any) -> Any:
        """``mark`` (libyaml's, which holds no text) with the text around
        it, as the pure-Python reader marks a place, if that text is kept."""
        if self._recent is None or mark is None or mark.buffer is not None:
            return mark
        start = max(0, mark.index - _YAML_CONTEXT)
        end = mark.index + _YAML_CONTEXT + 1
        if not self._recent or start < self._recent[0][0]:
            return mark
        around = "".join(
            piece[max(0, start - at) : end - at]
            for at, piece in self._recent
            if at < end and at + len(piece) > start
        )
        return yaml.Mark(mark.name, mark.index, mark.line, mark.column, around, mark.index - start)

    def marked(self, exc: Exception) -> Exception:
        """``exc`` with the text around its places, if libyaml told it."""
        if isinstance(exc, yaml.MarkedYAMLError):
            exc.context_mark = self.mark(exc.context_mark)
            exc.problem_mark = self.mark(exc.problem_mark)
        return exc


_SURROGATE_HALF = re.compile("[\ud800-\udfff]")


def _joined_pairs(text: str) -> str:
    """``text`` with each pair of surrogate halves (an emoji escaped as JSON
    escapes it, ``"\\ud83d\\ude00"``) as the character they make, as
    ``json.loads`` reads them (PyYAML leaves the halves, which no database
    stores); a half alone stays, to be refused."""
    if not _SURROGATE_HALF.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


_YAML_MERGE = "tag:yaml.org,2002:merge"
_YAML_STR = "tag:yaml.org,2002:str"


class _OnceConstructor(yaml.constructor.SafeConstructor):
    """``yaml.constructor.SafeConstructor`` whose mapping that gives a key an
    import reads more than once is a ``_GivenTwice``.

    Only the keys a mapping gives itself count, and those of a mapping merged
    into it (``<<``) that it does not give: a merged key that the mapping
    gives again is overridden, as YAML defines, not given twice. The mapping
    is told as it was written: merging rewrites it, its merged keys then
    looking given (an alias to it constructs it again)."""

    _written: weakref.WeakKeyDictionary[yaml.Node, tuple[str, ...]] | None = None

    def _given_twice(self, node: yaml.MappingNode) -> tuple[str, ...]:
        if self._written is None:
            self._written = weakref.WeakKeyDictionary()
        if (twice := self._written.get(node)) is not None:
            return twice
        own = [
            key.value
            for key, _ in node.value
            if isinstance(key, yaml.ScalarNode) and key.tag == _YAML_STR and key.value in PERSON_COLUMNS
        ]
        found = set(_twice_given(own))
        for key, value in node.value:
            if key.tag == _YAML_MERGE:
                merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in merged:
                    if isinstance(source, yaml.MappingNode):
                        found.update(set(self._given_twice(source)) - set(own))
        self._written[node] = twice = tuple(sorted(found))
        return twice

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        self._given_twice(node)  # before merging rewrites it
        super().flatten_mapping(node)

    def construct_yaml_map(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:  # type: ignore[override]
        twice = self._given_twice(node)
        data: dict[Any, Any] = _GivenTwice(twice) if twice else {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # A hexadecimal, binary or sexagesimal number is read whatever its
        # length, where a decimal one past int()'s limit of digits is
        # refused: as long, it has no text either, which every field takes
        # of it. Refused here as that one is (a ValueError), not where the
        # text is taken, where it would escape as an error of the portal's.
        value = super().construct_yaml_int(node)
        str(value)  # ValueError past sys.get_int_max_str_digits()
        return _as_written(value, node.value)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        return _as_written(super().construct_yaml_float(node), node.value)


_OnceConstructor.add_constructor(  # type: ignore[type-var]  # the stubs know PyYAML's own loaders alone
    "tag:yaml.org,2002:map", _OnceConstructor.construct_yaml_map
)
_OnceConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:int", _OnceConstructor.construct_yaml_int
)
_OnceConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:float", _OnceConstructor.construct_yaml_float
)


class YamlLoader(_OnceConstructor, yaml.SafeLoader):
    """``yaml.SafeLoader`` reading a text, with an emoji or another character
    past U+FFFF escaped as JSON escapes it, as two halves, as that character
    (``_joined_pairs``), and a mapping giving a key an import reads twice
    telling it (``_OnceConstructor``)."""

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        return _joined_pairs(super().construct_yaml_str(node))


YamlLoader.add_constructor(_YAML_STR, YamlLoader.construct_yaml_str)


class _YamlLoader(YamlLoader):
    """``YamlLoader`` reading text in pieces, keeping in memory the
    piece being read and a line's worth of what came before: a fault shows
    the line it is on, as when the whole text is read."""

    def update(self, length: int) -> None:
        if self.raw_buffer is None:  # the whole text is in the buffer
            return
        kept = max(0, self.pointer - _YAML_CONTEXT)
        self.buffer = self.buffer[kept:]
        self.pointer -= kept
        while len(self.buffer) - self.pointer < length:
            if not self.eof:
                self.update_raw()
            data = self.raw_buffer
            self.check_printable(data)
            self.buffer += data
            self.raw_buffer = ""
            if self.eof:
                self.buffer += "\0"
                self.raw_buffer = None
                break

    def node(self, key: Any = None) -> Any:
        """The next node, whole (the value of ``key``'s, if given)."""
        return self.compose_node(None, key)  # type: ignore[arg-type]  # the stubs want an index

    def get_mark(self) -> yaml.Mark:
        if len(self.buffer) - self.pointer <= _YAML_CONTEXT:
            self.update(_YAML_CONTEXT + 1)
        start = max(0, self.pointer - _YAML_CONTEXT)
        around = self.buffer[start : self.pointer + _YAML_CONTEXT + 1]
        return yaml.Mark(self.name, self.index, self.line, self.column, around, self.pointer - start)


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: its pure-Python reader alone
    _CYamlLoader: type[Any] | None = None
else:

    class _LibYamlLoader(CParser, yaml.composer.Composer, _OnceConstructor, yaml.resolver.Resolver):
        """``YamlLoader`` whose text is read by libyaml, some twenty times as
        fast, in pieces as ``_YamlLoader`` reads it (``yaml.CSafeLoader`` is
        this but that it composes a whole document at a time in C)."""

        def __init__(self, stream: _YamlText) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            _OnceConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

        def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
            return _joined_pairs(super().construct_yaml_str(node))

        def node(self, key: Any = None) -> Any:
            """The next node, whole (the value of ``key``'s, if given)."""
            return self.compose_node(None, key)  # type: ignore[arg-type]  # the stubs want an index

    _LibYamlLoader.add_constructor(  # type: ignore[type-var]  # the stubs know PyYAML's own loaders alone
        _YAML_STR, _LibYamlLoader.construct_yaml_str
    )
    _CYamlLoader = _LibYamlLoader


class _ReadAgain(Exception):  # not an error: a way out of a reading
    """Raised by libyaml's reading of a text that the pure-Python reader
    reads otherwise."""


def _pure_python_reads(exc: yaml.YAMLError) -> bool:
    """Whether libyaml's ``exc`` is one the pure-Python reader does not
    raise, or raises in its own words: an escaped surrogate half (which it
    takes, to be joined to its pair) and a character libyaml refuses as
    unprintable (a byte order mark within the text, which it takes)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return True
    return (
        isinstance(exc, yaml.scanner.ScannerError)
        and exc.problem == "found invalid Unicode character escape code"
    )


def _yaml_rows(text: Iterator[str], again: Callable[[], Iterator[str]] | None = None) -> Iterator[object]:
    """The items of a YAML file's list of people (its top-level list, or the
    "people" list of its top-level mapping, or the mapping itself), composed
    and constructed one at a time by ``yaml.SafeLoader``: the same values,
    refused for the same faults, as ``yaml.safe_load`` of the whole text.
    Anchors stay defined to the end of the document, so an alias may name a
    node of an earlier item.

    Read by libyaml where PyYAML has it and the text can be read ``again``
    from its start: a text libyaml reads otherwise (an escaped emoji) is
    then read again by the pure-Python reader, past the rows already given.
    A fault libyaml finds is told in its words, at the same line and column."""
    if _CYamlLoader is None or again is None:
        yield from _yaml_read(_YamlLoader, _YamlText(text))
        return
    given = 0
    try:
        for row in _yaml_read(_CYamlLoader, _YamlText(text, recent=True)):
            yield row
            given += 1
        return
    except _ReadAgain:
        pass
    yield from itertools.islice(_yaml_read(_YamlLoader, _YamlText(again())), given, None)


def _yaml_read(kind: type[Any], text: _YamlText) -> Iterator[object]:
    """``_yaml_rows`` read by a loader of ``kind``."""
    loader: Any = None
    try:
        loader = kind(text)  # the pure-Python one reads the first piece
        yield from _YamlDocument(loader, text).rows()
    except yaml.YAMLError as exc:
        if kind is _CYamlLoader and _pure_python_reads(exc):
            raise _ReadAgain from exc
        raise FormatError(f"not valid YAML: {text.marked(exc)}") from exc
    except RecursionError:
        raise FormatError("not valid YAML: nested too deep") from None
    except FormatError:
        raise
    except ValueError as exc:  # a date that is none, a number too long to read
        raise FormatError(f"not valid YAML: {_too_long(exc)}") from exc
    finally:
        if loader is not None:
            loader.dispose()


class _YamlDocument:
    """The one document of a YAML stream, its rows read as they come.

    ``yaml.safe_load`` composes the whole document before it constructs any
    of it: a fault of the text is told before a value that cannot be
    constructed. So the first fault of a construction is kept, nothing more
    is constructed, and it is raised once the document has been read.
    """

    def __init__(self, loader: Any, text: _YamlText) -> None:
        self.loader = loader  # a _YamlLoader or a _CYamlLoader
        self.text = text
        self.fault: Exception | None = None

    def rows(self) -> Iterator[object]:
        loader = self.loader
        loader.get_event()  # the stream's start
        if loader.check_event(yaml.StreamEndEvent):
            raise _not_people("yaml")  # an empty file is None
        loader.get_event()  # the document's start
        start = loader.peek_event()
        if self._streams(start, yaml.SequenceStartEvent):
            loader.get_event()
            yield from self._items()
            self._end(start)
        elif self._streams(start, yaml.MappingStartEvent):
            loader.get_event()
            yield from self._mapping_rows(start)
        else:  # anything else is read whole
            rows = self._construct(loader.node())
            self._end(start)
            if isinstance(rows, Mapping):
                rows = rows.get("people", [rows])
            if not isinstance(rows, list):
                raise _not_people("yaml")
            yield from rows

    def _construct(self, node: Any) -> Any:
        """The value of ``node`` (None after a fault, which is kept)."""
        if self.fault is not None:
            return None
        try:
            return self.loader.construct_document(node)
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            self.fault = self.text.marked(exc)  # its place shown while the text is at hand
            return None

    def _end(self, start: Any) -> None:
        """Read to the end of the stream, which must hold one document, then
        raise the fault of a construction, if any."""
        loader = self.loader
        loader.get_event()  # the document's end
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                start.start_mark,
                "but found another document",
                event.start_mark,
            )
        if self.fault is not None:
            raise self.fault

    def _streams(self, event: Any, kind: type[yaml.Event]) -> bool:
        """Whether ``event`` starts a plain list or mapping (``kind``): one
        without an anchor (which would have to be kept whole) or a tag (which
        makes it something else, or refuses it) is read an item at a time."""
        if not isinstance(event, kind):
            return False
        found: Any = event  # a collection's start: with a tag, and implicit or not
        if found.anchor is not None:
            return False
        sequence = kind is yaml.SequenceStartEvent
        tag = found.tag
        if tag is None or tag == "!":
            node = yaml.SequenceNode if sequence else yaml.MappingNode
            tag = self.loader.resolve(node, None, found.implicit)
        plain = self.loader.DEFAULT_SEQUENCE_TAG if sequence else self.loader.DEFAULT_MAPPING_TAG
        return bool(tag == plain)

    def _items(self) -> Iterator[object]:
        """The items of the list whose start was just read, each alone."""
        loader = self.loader
        while not loader.check_event(yaml.SequenceEndEvent):
            item = self._construct(loader.node())
            if self.fault is None:
                yield item
        loader.get_event()

    def _mapping_rows(self, start: Any) -> Iterator[object]:
        """The rows of a top-level mapping whose start was just read: the
        items of its "people" list as they come, or else the mapping itself.
        Each key and value is constructed as a mapping of its own (so that a
        merge key merges, and an unhashable key is refused, as in the whole
        mapping); only what a person may have is kept. A key an import reads
        given twice, or twice in a mapping merged in and not given, is told
        as ``_OnceConstructor`` tells it."""
        loader = self.loader
        explicit: dict[object, object] = {}
        merged: dict[object, object] = {}
        given_twice: set[str] = set()
        merged_twice: set[str] = set()
        listed = twice = False
        while not loader.check_event(yaml.MappingEndEvent):
            key_node = loader.node()
            is_people = (
                isinstance(key_node, yaml.ScalarNode)
                and key_node.tag != _YAML_MERGE
                and self._construct(key_node) == "people"
            )
            twice = twice or (is_people and listed)
            if is_people and self._streams(loader.peek_event(), yaml.SequenceStartEvent):
                loader.get_event()
                explicit.pop("people", None)
                yield from _people_list(self._items(), first=not listed)
                listed = True
                continue
            value_node = loader.node(key_node)
            pair = yaml.MappingNode(
                "tag:yaml.org,2002:map", [(key_node, value_node)], start.start_mark, value_node.end_mark
            )
            fields = self._construct(pair) or {}
            kept = {key: value for key, value in fields.items() if key in _DOCUMENT_KEYS}
            if key_node.tag == _YAML_MERGE:
                merged.update(kept)
                if isinstance(fields, _GivenTwice):
                    merged_twice.update(fields.keys_twice)
            else:
                given_twice.update(str(key) for key in kept if key in explicit and key in PERSON_COLUMNS)
                explicit.update(kept)
        loader.get_event()
        self._end(start)
        if twice:
            raise _twice("yaml")
        if listed:
            return
        rows = {**merged, **explicit}
        given_twice.update(merged_twice - explicit.keys())
        if "people" not in rows:
            yield _GivenTwice(sorted(given_twice), rows) if given_twice else rows
        elif isinstance(rows["people"], list):
            yield from rows["people"]
        else:
            raise _not_people("yaml")


def person_fields(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    """The fields of person ``number`` as a file's row gives them (its keys
    the fields' names), read as every import of a file reads them, to store
    as ``services.person_upsert`` takes them: text trimmed of spaces, tabs
    and line breaks around it (a non-breaking space too), a name and a
    username always (blank when the row lacks them), phones by label, and
    is_active one of the words for yes or no (another is refused).

    Only what the file carries: a column or key it lacks (the course's CSV
    has no email) leaves the stored value alone, as does a blank is_active
    cell."""
    _check_given_once(row, number)
    person: dict[str, Any] = {
        key: _text(row, key, number)
        for key in ("name", "username", "email", "department", "role")
        if key in ("name", "username") or key in row
    }
    if "phone" in row:
        try:
            person["phone"] = parse_phone(row["phone"])
        except FormatError as exc:
            raise FormatError(f"person {number}: {exc}") from None
    active = row.get("is_active")
    if active is not None and (not isinstance(active, _SCALARS) or str(active).strip() != ""):
        person["is_active"] = _truthy(active, number)
    return person


def dump_people(people: Iterable[Mapping[str, Any]], fmt: str) -> str:
    rows = [
        {
            "name": p["name"],
            "username": p["username"],
            "phone": dict(p["phone"]),
            "department": p["department"],
            "role": p["role"],
            "email": p["email"],
            "is_active": p["is_active"],
        }
        for p in people
    ]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*PEOPLE_FIELDS, *PEOPLE_EXTRA_FIELDS], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            # Opened in a spreadsheet as the admin's export is: a text it would
            # run as a formula is marked as text, and import_people reads the
            # mark back.
            cells = {**row, "phone": format_phone(row["phone"])}
            writer.writerow({key: spreadsheets.as_text(value) for key, value in cells.items()})
        return out.getvalue()
    raise FormatError(f"unknown format {fmt!r}; use csv, json or yaml")
