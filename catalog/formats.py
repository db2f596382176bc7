"""Reading and writing the file shapes the automation exchanges.

Pure functions, no database: the lab review format, the supplier description
format, and the people records (CSV / JSON / YAML) of the course's data.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
    raises FormatError after reading only past the limit, not the whole file.
    OSError when it cannot be read."""
    with path.open("rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise FormatError(f"larger than {limit:,} bytes, the most {what} may take")
    return raw


def read_text(raw: bytes) -> str:
    """Decode a delivered text file: UTF-8 (with or without BOM), or UTF-16
    with its BOM (what Windows calls "Unicode"); CRLF or LF. Null characters
    are refused: no database column takes them, and they mark UTF-16 saved
    without its BOM."""
    encoding = "utf-16" if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise FormatError(f"not {name} text (byte {exc.start}); save the file as UTF-8") from exc
    if "\0" in text:
        hint = "; it looks like UTF-16 without a byte order mark" if raw.count(0) * 4 >= len(raw) else ""
        raise FormatError(
            f"holds a null character (character {text.index(chr(0)) + 1}){hint}; save the file as UTF-8"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
    text = read_text(raw)
    rows: list[Any]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            raise FormatError("the CSV file is empty")
        missing = {"name", "username"} - {f.strip().lower() for f in reader.fieldnames}
        if missing:
            raise FormatError(f"the CSV header lacks {', '.join(sorted(missing))}")
        try:
            rows = [{(k or "").strip().lower(): v for k, v in row.items()} for row in reader]
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
            raise FormatError(f"not valid CSV (line {reader.line_num}): {exc}") from exc
    elif fmt in {"json", "yaml"}:
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
    else:
        raise FormatError(f"unknown format {fmt!r}; use csv, json or yaml")
    people = []
    for number, row in enumerate(rows, start=1):
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
        people.append(person)
    return people


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
