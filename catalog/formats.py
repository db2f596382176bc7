"""Reading and writing the file shapes the automation exchanges.

Pure functions, no database: the lab review format, the supplier description
format, and the people records (CSV / JSON / YAML) of the course's data.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core import dropfolder

PEOPLE_FIELDS = ("name", "username", "phone", "department", "role")
PEOPLE_EXTRA_FIELDS = ("email", "is_active")


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
    the limit). ChangedWhileRead when it was written to while it was read,
    OSError when it cannot be read."""
    with path.open("rb") as fh:
        before = os.fstat(fh.fileno())
        if stat.S_ISREG(before.st_mode) and before.st_size > limit:
            raise FormatError(f"larger than {limit:,} bytes, the most {what} may take")
        raw = fh.read(limit + 1)
        dropfolder.check_unchanged(path, fh.fileno(), before)
    if len(raw) > limit:
        raise FormatError(f"larger than {limit:,} bytes, the most {what} may take")
    return raw


def read_text(raw: bytes) -> str:
    """Decode a delivered text file: UTF-8 (with or without BOM), or UTF-16
    with its BOM (what Windows calls "Unicode"); CRLF or LF. Null characters
    are refused: no database column takes them, and they mark UTF-16 saved
    without its BOM."""
    return "".join(text_chunks([raw]))


def _not_text(exc: UnicodeDecodeError, offset: int, *, utf16: bool) -> FormatError:
    """The error for bytes that are not text, at ``offset`` plus where in
    what the decoder was given they are."""
    name = "UTF-16" if utf16 else "UTF-8"
    return FormatError(f"not {name} text (byte {offset + exc.start}); save the file as UTF-8")


def text_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """``read_text`` of a file read a chunk at a time, as the chunks come:
    the same text (line breaks as LF), refused with the same message. A null
    character is told at the end, once the whole file has shown whether it
    is UTF-16 without its BOM (and whether it is text at all)."""
    source = iter(chunks)
    head = b""
    for chunk in source:  # the first bytes tell the encoding
        head += chunk
        if len(head) >= 3:
            break
    utf16 = head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    # UTF-8's offsets are told after its BOM, as bytes.decode("utf-8-sig") tells them.
    bom = 3 if not utf16 and head[:3] == codecs.BOM_UTF8 else 0
    decoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8")()
    head = head[bom:]
    fed = zeros = decoded = 0
    null_at: int | None = None
    carry = ""  # a CR that may be the first half of a CRLF
    for chunk in itertools.chain([head], source):
        try:
            text = decoder.decode(chunk, final=False)
        except UnicodeDecodeError as exc:
            raise _not_text(exc, fed - len(decoder.getstate()[0]), utf16=utf16) from exc
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
        raise _not_text(exc, fed - len(decoder.getstate()[0]), utf16=utf16) from exc
    if null_at is None and "\0" in text:
        null_at = decoded + text.index("\0")
    if null_at is not None:
        hint = "; it looks like UTF-16 without a byte order mark" if zeros * 4 >= bom + fed else ""
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


def parse_review(raw: bytes) -> ReviewRecord:
    """Line 1 title, line 2 reviewer, line 3 date (YYYY-MM-DD), then the text."""
    lines = read_text(raw).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3:
        raise FormatError(f"expected at least 3 lines (title, name, date), found {len(lines)}")
    title, name, date_text = (line.strip() for line in lines[:3])
    try:
        date = dt.date.fromisoformat(date_text)
    except ValueError as exc:
        raise FormatError(f"line 3 is not a date in YYYY-MM-DD form: {date_text!r}") from exc
    text = "\n".join(lines[3:]).strip()
    return ReviewRecord(title=title, name=name, date=date, text=text)


# --- Supplier descriptions ----------------------------------------------------


@dataclass(frozen=True)
class DescriptionRecord:
    name: str
    weight: int
    description: str


# Written without flags so that the API schema can give it as a pattern.
WEIGHT_PATTERN = re.compile(r"^\s*(\d+)\s*(?:[Ll][Bb][Ss]?\.?)?\s*$")


def parse_weight(value: object) -> int:
    """``500``, ``"500"`` or ``"500 lbs"`` → 500; anything else is an error."""
    if isinstance(value, bool):
        raise FormatError("weight must be a whole number of lbs")
    if isinstance(value, int):
        weight = value
    elif isinstance(value, float) and value.is_integer():
        weight = int(value)
    elif isinstance(value, str) and (match := WEIGHT_PATTERN.match(value)):
        weight = int(match.group(1))
    else:
        raise FormatError(f"weight must be a whole number of lbs, got {value!r}")
    if weight < 1:
        raise FormatError("weight must be at least 1 lb")
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
    return DescriptionRecord(
        name=lines[0],
        weight=parse_weight(lines[1]),
        description="\n".join(lines[2:]).strip(),
    )


# --- People -------------------------------------------------------------------


# What a person's field may hold in JSON or YAML: anything else (a list, a
# mapping, YAML's aliases nested into a billion items) is refused, not printed.
_SCALARS = (str, int, float)


def _text(row: Mapping[str, Any], key: str, number: int) -> str:
    value = row.get(key)
    if value is None or value is False:
        return ""
    if not isinstance(value, _SCALARS):
        raise FormatError(f"person {number}: {key} must be text, not {type(value).__name__}")
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
        labelled = {}
        for label, number in value.items():
            if number is None:
                continue
            if not isinstance(number, _SCALARS):
                raise FormatError(f"the phone number for {str(label)[:40]!r} must be text")
            if str(number).strip():
                labelled[str(label).strip()] = str(number).strip()
        return labelled
    if not isinstance(value, _SCALARS):
        raise FormatError("phone must be text or a mapping of label to number")
    text = str(value).strip()
    if text.startswith(("{", "[", '"')):
        try:
            return parse_phone(json.loads(text))
        except json.JSONDecodeError as exc:
            raise FormatError(f"phone is not valid JSON: {text[:80]!r}") from exc
        except RecursionError:
            raise FormatError("phone is not valid JSON: nested too deep") from None
    phones: dict[str, str] = {}
    for raw_part in re.split(r"[;\n]", text):
        part = raw_part.strip()
        if not part:
            continue
        label, sep, number = part.partition(":")
        if sep and not re.fullmatch(r"[\d\s()+.-]*", label):
            phones[label.strip()] = number.strip()
        else:
            phones["office" if "office" not in phones else f"phone{len(phones) + 1}"] = part
    return phones


def format_phone(phones: Mapping[str, str]) -> str:
    return "; ".join(f"{label}: {number}" for label, number in phones.items())


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in {"0", "false", "no", "n", "off", ""}


def parse_people(raw: bytes, fmt: str) -> list[dict[str, Any]]:
    """Rows of people as dicts of the fields the file carries, phone as a
    label → number mapping."""
    return list(people_rows([raw], fmt))


def people_rows(chunks: Iterable[bytes], fmt: str) -> Iterator[dict[str, Any]]:
    """``parse_people`` of a file read a chunk at a time. A CSV file's people
    come as its lines are read, so a file of any size takes the memory of a
    few lines; JSON and YAML are parsed whole. A file that is not valid
    raises the FormatError ``parse_people`` raises, after the people before
    the fault: read it through once before acting on its people."""
    text = text_chunks(chunks)
    try:
        if fmt == "csv":
            yield from _csv_people(_lines(text))
        elif fmt in {"json", "yaml"}:
            yield from _document_people("".join(text), fmt)
        else:
            raise FormatError(f"unknown format {fmt!r}; use csv, json or yaml")
    except FormatError:
        # Told first, as when the file was decoded whole before parsing:
        # bytes further on that are not text.
        for _ in text:
            pass
        raise


def _lines(text: Iterable[str]) -> Iterator[str]:
    """The lines of text that comes in pieces, each with its LF."""
    pending: list[str] = []  # a line in pieces: joined once, however many
    for piece in text:
        *lines, rest = piece.split("\n")
        if lines:
            lines[0] = "".join([*pending, lines[0]])
            pending = []
            for line in lines:
                yield line + "\n"
        if rest:
            pending.append(rest)
    if pending:
        yield "".join(pending)


def _csv_people(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(lines)
    fault: FormatError | None = None
    try:
        if reader.fieldnames is None:
            raise FormatError("the CSV file is empty")
        missing = {"name", "username"} - {f.strip().lower() for f in reader.fieldnames}
        if missing:
            raise FormatError(f"the CSV header lacks {', '.join(sorted(missing))}")
        for number, row in enumerate(reader, start=1):
            if fault is not None:
                continue
            try:
                person = _person({(k or "").strip().lower(): v for k, v in row.items()}, number)
            except FormatError as exc:
                # A fault of the CSV itself further on is told first, as
                # when every row was read before any was checked.
                fault = exc
                continue
            yield person
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
        raise FormatError(f"not valid CSV (line {reader.line_num}): {exc}") from exc
    if fault is not None:
        raise fault


def _document_people(text: str, fmt: str) -> Iterator[dict[str, Any]]:
    rows: Any
    try:
        rows = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise FormatError(f"not valid {fmt.upper()}: {exc}") from exc
    except RecursionError:
        raise FormatError(f"not valid {fmt.upper()}: nested too deep") from None
    if isinstance(rows, Mapping):
        rows = rows.get("people", [rows])
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise FormatError(f"the {fmt.upper()} file must hold a list of people")
    people = [_person(row, number) for number, row in enumerate(rows, start=1)]
    yield from people


def _person(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    # Only what the file carries: a column or key it lacks (the course's
    # CSV has no email) leaves the stored value alone, as does a blank
    # is_active cell.
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
    if row.get("is_active") is not None and str(row["is_active"]).strip() != "":
        person["is_active"] = _truthy(row["is_active"])
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
            writer.writerow({**row, "phone": format_phone(row["phone"])})
        return out.getvalue()
    raise FormatError(f"unknown format {fmt!r}; use csv, json or yaml")
