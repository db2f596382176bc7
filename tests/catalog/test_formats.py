from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path

import pytest

from catalog import formats


def test_a_lab_review_reads_title_name_date_and_text() -> None:
    record = formats.parse_review(b"Great\nJohn\n2017-12-21\nVery good.\nSecond line.")
    assert record == formats.ReviewRecord("Great", "John", dt.date(2017, 12, 21), "Very good.\nSecond line.")


def test_crlf_bom_and_blank_trailing_lines_are_tolerated() -> None:
    raw = "\ufeffTitle \r\nKatie\r\n2019-12-09\r\nIt’s great\r\n\r\n\r\n".encode()
    record = formats.parse_review(raw)
    assert (record.title, record.name, record.text) == ("Title", "Katie", "It’s great")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "at least 3 lines"),
        (b"Title\nName", "at least 3 lines"),
        (b"Title\nName\n21/12/2017\ntext", "YYYY-MM-DD"),
        (b"\xff\xfeT\x00\x00\xd8", r"not UTF-16 text \(byte 4\)"),
        (b"Title\xe9\nName\n2020-01-01\ntext", r"not UTF-8 text \(byte 5\); save the file as UTF-8"),
        ("Title\nName\n2020-01-01\ntext".encode("utf-16-le"), "looks like UTF-16 without a byte order mark"),
        (b"Title\x00\nName\n2020-01-01\ntext", r"holds a null character \(character 6\); save"),
    ],
)
def test_a_broken_review_file_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(formats.FormatError, match=reason):
        formats.parse_review(raw)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_its_byte_order_mark_is_read(codec: str) -> None:
    raw = "Tìtle\r\nKatie\r\n2019-12-09\r\nIt’s great".encode(codec)
    if codec == "utf-16-be":
        raw = b"\xfe\xff" + raw
    record = formats.parse_review(raw)
    assert (record.title, record.name, record.text) == ("Tìtle", "Katie", "It’s great")


def test_a_supplier_description_reads_name_weight_and_text() -> None:
    record = formats.parse_description(b"Apple\r\n500 lbs\r\nCrisp red apples.\r\n")
    assert record == formats.DescriptionRecord("Apple", 500, "Crisp red apples.")


@pytest.mark.parametrize(("value", "weight"), [(500, 500), ("500", 500), ("500 lbs", 500), (" 7 lb ", 7)])
def test_weights_are_read_from_numbers_and_strings(value: object, weight: int) -> None:
    assert formats.parse_weight(value) == weight


@pytest.mark.parametrize("value", ["heavy", "", 0, -3, "1.5", True, None])
def test_a_weight_that_is_not_a_positive_whole_number_is_refused(value: object) -> None:
    with pytest.raises(formats.FormatError):
        formats.parse_weight(value)


@pytest.mark.parametrize(
    ("value", "phones"),
    [
        ({"office": "802-867-5309"}, {"office": "802-867-5309"}),
        ('{"cell": "555"}', {"cell": "555"}),
        ("office: 802-867-5309; cell: 802-867-5310", {"office": "802-867-5309", "cell": "802-867-5310"}),
        ("802-867-5309", {"office": "802-867-5309"}),
        ("", {}),
        (None, {}),
        ({"office": None, "cell": 555}, {"cell": "555"}),
        ('"802-867-5309"', {"office": "802-867-5309"}),
    ],
)
def test_phones_are_read_as_labels_to_numbers(value: object, phones: dict[str, str]) -> None:
    assert formats.parse_phone(value) == phones


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("[1, 2, 3]", "phone must be text or a mapping"),
        ('{"office": 555', "phone is not valid JSON"),
        ("[" * 100_000, "nested too deep"),
    ],
    ids=["list", "broken-json", "deep-json"],
)
def test_a_phone_text_that_is_no_phones_is_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(formats.FormatError, match=reason):
        formats.parse_phone(value)


PEOPLE = [
    {
        "name": "Ada Lovelace",
        "username": "ada",
        "phone": {"office": "802-867-5309", "cell": "802-867-5310"},
        "department": "Engineering",
        "role": "Lead",
        "email": "ada@example.com",
        "is_active": True,
    },
    {
        "name": "Blaise, Pascal",
        "username": "blaise",
        "phone": {},
        "department": "Sales",
        "role": "",
        "email": "",
        "is_active": False,
    },
]


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
def test_people_survive_a_dump_and_parse_round_trip(fmt: str) -> None:
    text = formats.dump_people(PEOPLE, fmt)
    assert formats.parse_people(text.encode(), fmt) == PEOPLE


def test_the_csv_header_is_the_courses_with_extra_columns_after() -> None:
    header = formats.dump_people(PEOPLE, "csv").splitlines()[0]
    assert header.startswith("name,username,phone,department,role")


def test_a_csv_without_username_column_is_refused() -> None:
    with pytest.raises(formats.FormatError, match="username"):
        formats.parse_people(b"name,department\nAda,Eng\n", "csv")


def test_a_json_that_is_not_a_list_of_people_is_refused() -> None:
    with pytest.raises(formats.FormatError, match="list of people"):
        formats.parse_people(b'"just a string"', "json")


def _laughs(levels: int) -> bytes:
    """YAML whose aliases nest into 9**levels items in a few hundred bytes."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    lines.append(f"people: [{{name: *l{levels}, username: x}}]")
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("raw", "fmt", "reason"),
    [
        (_laughs(9), "yaml", "person 1: name must be text, not list"),
        (b'[{"name": "Ada", "username": "ada", "phone": {"office": ["1", "2"]}}]', "json", "must be text"),
        (b"[" * 100_000 + b"]" * 100_000, "json", "nested too deep"),
        (b"name,username\n" + b"x" * 200_000 + b",y\n", "csv", "field larger than field limit (131072)"),
    ],
    ids=["yaml-aliases", "nested-phone", "deep-json", "huge-csv-field"],
)
def test_people_files_that_are_not_text_where_text_belongs_are_refused(
    raw: bytes, fmt: str, reason: str
) -> None:
    with pytest.raises(formats.FormatError, match=re.escape(reason)):
        formats.parse_people(raw, fmt)


def bytes_read() -> int:
    """What this process has read from files so far (``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_delivered_file_over_its_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "001.txt"
    with path.open("wb") as fh:  # sparse: no disk
        fh.truncate(1024 * 1024 * 1024)
    before = bytes_read()
    with pytest.raises(formats.FormatError, match=r"^larger than 1,048,576 bytes, the most a description"):
        formats.read_file(path, formats.DESCRIPTION_MAX_BYTES, "a description file")
    assert bytes_read() - before < 64 * 1024


@pytest.mark.parametrize(
    "raw",
    [
        b'name,username,phone\r\nAda,ada,"office: 1\r\ncell: 2"\r\nKofi,kofi,3\r\n',
        codecs.BOM_UTF8 + "name,username\nJosé,jose\n".encode(),
        "name,username\r\nJosé,jose\r\n".encode("utf-16"),
        b"name,username\nAda,ada\nBad,\xe2\x82\n",  # cut short in a character
        codecs.BOM_UTF8 + b"name,username\nAda,ada\xff\n",
        b"name,username\nAda,ada,\0\n" + b"x" * 10,
        b"name,username,phone\nAda,ada,{nope\nKofi,kofi," + b"1" * 200_000 + b"\n",
    ],
    ids=["crlf-in-quotes", "utf8-bom", "utf16", "cut-character", "not-utf8", "null", "fault-order"],
)
def test_people_read_a_byte_at_a_time_are_those_read_whole(raw: bytes) -> None:
    def outcome(chunks: list[bytes]) -> object:
        try:
            return list(formats.people_rows(chunks, "csv"))
        except formats.FormatError as exc:
            return str(exc)

    whole = outcome([raw])
    assert outcome([raw[i : i + 1] for i in range(len(raw))]) == whole
    assert outcome([raw[i : i + 3] for i in range(0, len(raw), 3)]) == whole


def test_a_fault_of_the_csv_further_on_is_told_before_a_bad_row() -> None:
    raw = b"name,username,phone\nAda,ada,{nope\nKofi,kofi," + b"1" * 200_000 + b"\n"
    with pytest.raises(
        formats.FormatError, match=r"^not valid CSV \(line 2\): field larger than field limit"
    ):
        list(formats.people_rows([raw[i : i + 1000] for i in range(0, len(raw), 1000)], "csv"))
