from __future__ import annotations

import codecs
import collections
import datetime as dt
import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

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
        ("Title\nName\n2020-01-01\ntext".encode("utf-16-be"), "looks like UTF-16 without a byte order mark"),
        ("Title\nName\n2020-01-01\ntext".encode("utf-32-le"), "looks like UTF-32 without a byte order mark"),
        ("Title\nName\n2020-01-01\ntext".encode("utf-32-be"), "looks like UTF-32 without a byte order mark"),
        # Past the last code point, after UTF-32's BOM.
        (b"\xff\xfe\x00\x00T\x00\x00\x00\x00\x00\x11\x00", r"not UTF-32 text \(byte 8\)"),
        (b"Title\x00\nName\n2020-01-01\ntext", r"holds a null character \(character 6\); save"),
    ],
)
def test_a_broken_review_file_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(formats.FormatError, match=reason):
        formats.parse_review(raw)


@pytest.mark.parametrize(
    ("codec", "looks"),
    [("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-32-le", "UTF-32"), ("utf-32-be", "UTF-32")],
)
@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_a_file_without_its_byte_order_mark_is_named_when_a_letter_of_it_is_not_utf8(
    codec: str, looks: str, chunk: int | None
) -> None:
    """A name with an accent is where UTF-8's reading of UTF-16 or UTF-32
    stops (``é`` is ``E9 00``), before any null character is told: the file
    is named all the same, whole or read a chunk at a time."""
    raw = "Title\nJosé\n2020-01-01\ntext".encode(codec)
    chunks = [raw] if chunk is None else [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    with pytest.raises(formats.FormatError) as refused:
        "".join(formats.text_chunks(chunks))
    assert str(refused.value).startswith("not UTF-8 text (byte ")
    assert str(refused.value).endswith(
        f"; it looks like {looks} without a byte order mark; save the file as UTF-8"
    )


def test_latin1_is_refused_without_naming_another_encoding() -> None:
    with pytest.raises(formats.FormatError) as refused:
        formats.read_text("Title\nJosé\n2020-01-01\ntext".encode("latin-1"))
    assert str(refused.value) == "not UTF-8 text (byte 9); save the file as UTF-8"


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_a_file_of_another_kind_is_not_named_as_text_without_its_byte_order_mark(chunk: int | None) -> None:
    """An image dropped among the reviews holds many zeros past its first
    bytes, which are not UTF-8: the zeros after the fault do not make it
    look like UTF-16."""
    raw = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500)
    chunks = [raw] if chunk is None else [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    with pytest.raises(formats.FormatError) as refused:
        "".join(formats.text_chunks(chunks))
    assert str(refused.value) == "not UTF-8 text (byte 0); save the file as UTF-8"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_its_byte_order_mark_is_read(codec: str) -> None:
    raw = "Tìtle\r\nKatie\r\n2019-12-09\r\nIt’s great".encode(codec)
    if codec == "utf-16-be":
        raw = b"\xfe\xff" + raw
    record = formats.parse_review(raw)
    assert (record.title, record.name, record.text) == ("Tìtle", "Katie", "It’s great")


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-be"])
def test_utf32_with_its_byte_order_mark_is_read_as_utf16_with_its_is(codec: str) -> None:
    raw = "Tìtle\r\nKatie 😀\r\n2019-12-09\r\nIt’s great".encode(codec)
    if codec == "utf-32-be":
        raw = codecs.BOM_UTF32_BE + raw
    record = formats.parse_review(raw)
    assert (record.title, record.name, record.text) == ("Tìtle", "Katie 😀", "It’s great")
    assert "".join(formats.text_chunks([raw[i : i + 1] for i in range(len(raw))])) == formats.read_text(raw)


def test_a_supplier_description_reads_name_weight_and_text() -> None:
    record = formats.parse_description(b"Apple\r\n500 lbs\r\nCrisp red apples.\r\n")
    assert record == formats.DescriptionRecord("Apple", 500, "Crisp red apples.")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"Apple\nheavy\nRed.", "line 2: weight must be a whole number of lbs, got 'heavy'"),
        (b"Apple\n0 lbs\nRed.", "line 2: weight must be at least 1 lb"),
        (b"Apple\n3000000000 lbs\n", "line 2: weight must be at most 2,147,483,647 lbs"),
        (
            b"Apple\n1,000 lbs",
            "line 2: weight must be a whole number of lbs without separators, got '1,000 lbs'",
        ),
    ],
)
def test_a_description_s_weight_refused_names_its_line(raw: bytes, reason: str) -> None:
    # As a review's date refused names line 3, and a blank name line 1.
    with pytest.raises(formats.FormatError) as refused:
        formats.parse_description(raw)
    assert str(refused.value) == reason


@pytest.mark.parametrize(
    ("parse", "raw", "reason"),
    [
        (
            formats.parse_review,
            b"Title\nName\r\n\r\n",
            "expected at least 3 lines (title, name, date), found 2",
        ),
        (formats.parse_description, b"Apple\n\n", "expected at least 2 lines (name, weight), found 1"),
        (formats.parse_description, b"\n500 lbs\nRed.", "line 1 (the product name) is blank"),
        (
            formats.parse_description,
            b"Apple\x07\n500 lbs\n",
            "line 1 (the product name) cannot contain the control character U+0007.",
        ),
        (
            formats.parse_description,
            b"Apple\n500 lbs\nRed.\n\x07\n",
            "line 4 (the description) cannot contain the control character U+0007 "
            "(tabs and the line breaks LF and CR are allowed).",
        ),
        (
            formats.parse_review,
            b"Title\nName\n2020-01-01\nGood.\nBad\x1b",
            "line 5 (the text) cannot contain the control character U+001B "
            "(tabs and the line breaks LF and CR are allowed).",
        ),
    ],
)
def test_a_review_or_description_refused_names_the_line_and_the_rule(
    parse: Callable[[bytes], object], raw: bytes, reason: str
) -> None:
    with pytest.raises(formats.FormatError) as refused:
        parse(raw)
    assert str(refused.value) == reason


def test_a_tab_in_the_text_of_a_review_or_description_is_kept() -> None:
    assert formats.parse_review(b"Title\nName\n2020-01-01\nSize:\t10").text == "Size:\t10"
    assert formats.parse_description(b"Apple\n500 lbs\nSize:\t10").description == "Size:\t10"


@pytest.mark.parametrize(
    ("value", "weight"),
    [
        (500, 500),
        ("500", 500),
        ("500 lbs", 500),
        (" 7 lb ", 7),
        ("0002147483647 lbs", 2_147_483_647),
        # Digits of other scripts, leading zeros and all: fullwidth, Arabic-Indic.
        ("\uff10" * 12 + "\uff15\uff10 lbs", 50),
        ("\u0660" * 12 + "\u0665", 5),
        # A plus sign, as int() reads it.
        ("+5", 5),
        (" +5 lbs ", 5),
        ("+\uff15\uff10\uff10 lbs", 500),
    ],
)
def test_weights_are_read_from_numbers_and_strings(value: object, weight: int) -> None:
    assert formats.parse_weight(value) == weight


@pytest.mark.parametrize(
    "value",
    ["heavy", "", 0, -3, "1.5", True, None, 2_147_483_648, "2147483648 lbs", "9" * 5000, 1e300],
)
def test_a_weight_that_is_not_a_positive_whole_number_is_refused(value: object) -> None:
    with pytest.raises(formats.FormatError):
        formats.parse_weight(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "weight must be at least 1 lb"),
        (" -5 lbs", "weight must be at least 1 lb"),
        ("-0", "weight must be at least 1 lb"),
        ("-\u0665", "weight must be at least 1 lb"),
        ("- 5", "weight must be a whole number of lbs, got '- 5'"),
        ("-+5", "weight must be a whole number of lbs, got '-+5'"),
        ("+-5", "weight must be a whole number of lbs, got '+-5'"),
        ("++5", "weight must be a whole number of lbs, got '++5'"),
        ("1_000", "weight must be a whole number of lbs without separators, got '1_000'"),
        ("1,000 lbs", "weight must be a whole number of lbs without separators, got '1,000 lbs'"),
        ("1__000", "weight must be a whole number of lbs, got '1__000'"),
        ("_1000", "weight must be a whole number of lbs, got '_1000'"),
    ],
)
def test_a_refused_weight_is_told_the_rule_it_broke(value: str, message: str) -> None:
    """A negative number is refused as the number -5 is; a number written
    with separators, which no path takes, is told so."""
    with pytest.raises(formats.FormatError) as refused:
        formats.parse_weight(value)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (formats.parse_weight, "+" + "5" * 50_000 + " kg"),
        (formats.parse_weight, "1_000" * 10_000),
        (formats.parse_date, "2024-01-02" * 10_000),
        (formats.parse_phone, '{"office": "' + "5" * 10_000),
    ],
    ids=["weight", "weight with separators", "date", "phone of JSON"],
)
def test_a_long_refused_value_is_quoted_cut_with_its_length(
    read: Callable[[str], object], value: str
) -> None:
    with pytest.raises(formats.FormatError) as refused:
        read(value)
    message = str(refused.value)
    assert len(message) < 200
    assert f"{value[:60]!r}… ({len(value):,} characters)" in message


def test_the_long_label_of_a_refused_phone_number_is_quoted_cut_with_its_length() -> None:
    label = "cell" * 1000
    with pytest.raises(formats.FormatError) as refused:
        formats.parse_phone({label: ["555"]})
    assert str(refused.value) == f"the phone number for {label[:60]!r}… (4,000 characters) must be text"


@pytest.mark.parametrize("value", [[1] * 100_000, {"lbs": "5" * 100_000}], ids=["list", "mapping"])
def test_a_long_refused_weight_of_no_text_is_quoted_cut_with_its_length(value: object) -> None:
    """A JSON body's weight may be a list or a mapping of a megabyte."""
    with pytest.raises(formats.FormatError) as refused:
        formats.parse_weight(value)
    message = str(refused.value)
    assert len(message) < 200
    assert (
        message
        == f"weight must be a whole number of lbs, got {repr(value)[:60]}… ({len(repr(value)):,} characters)"
    )


def test_a_short_refused_weight_of_no_text_is_quoted_whole() -> None:
    with pytest.raises(formats.FormatError, match=r"^weight must be a whole number of lbs, got \['x'\]$"):
        formats.parse_weight(["x"])


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
        # A number of JSON is the text it shows, as in a JSON file.
        ('{"desk": 867.5300, "fax": 1e3}', {"desk": "867.5300", "fax": "1e3"}),
        ({" office ": "1", "\u00a0cell\n": "2"}, {"office": "1", "cell": "2"}),
        ("\toffice : 1;  cell\u00a0: 2", {"office": "1", "cell": "2"}),
        ({"": None, " ": ""}, {}),  # no number, so no label to give it
        # As in a mapping: a label with no number after it is no phone.
        ("office: 1; fax: ; cell:", {"office": "1"}),
        ("fax:", {}),
        # A bare number takes a label no number has yet.
        ("phone3: 1; office: 2; 555", {"phone3": "1", "office": "2", "phone4": "555"}),
        # Digits before a colon are no label: a number with its extension.
        ("802-867-5309: 12", {"office": "802-867-5309: 12"}),
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
        ({"": "555"}, "^the phone number '555' has a blank label$"),
        ({" \n": "555"}, "^the phone number '555' has a blank label$"),
        ('{"": "555"}', "^the phone number '555' has a blank label$"),
        ("office: 555; : 556", "^the phone number '556' has a blank label$"),
        ({"cell": "1", " cell": "2"}, "^the phone label 'cell' is given twice$"),
        ('{"cell": "1", "cell ": "2"}', "^the phone label 'cell' is given twice$"),
        ("cell: 1; cell : 2", "^the phone label 'cell' is given twice$"),
        ("802-555-0100; office: 802-555-0199", "^the phone label 'office' is given twice$"),
    ],
    ids=[
        "list",
        "broken-json",
        "deep-json",
        "empty-label",
        "blank-label",
        "empty-label-json",
        "empty-label-text",
        "label-twice-once-trimmed",
        "label-twice-once-trimmed-json",
        "label-twice-text",
        "office-twice-text",
    ],
)
def test_a_phone_text_that_is_no_phones_is_refused_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(formats.FormatError, match=reason):
        formats.parse_phone(value)


@pytest.mark.parametrize(
    "phones",
    [
        {"office": "802-867-5309", "cell": "802-867-5310"},
        {"cell": "ext: 12"},
        {"Home: Berlin": "030 1234"},
        {"2": "555"},
        {"1-800": "555"},
        {"cell": "555; ext 2"},
        {"cell": "555\n556"},
        {"{x": "1"},
        {'"desk"': "1"},
        {},
    ],
    ids=["plain", "colon-in-number", "colon-in-label", "digit-label", "number-like-label",
         "semicolon-in-number", "line-break-in-number", "brace-label", "quoted-label", "none"],
)  # fmt: skip
def test_phones_written_as_text_read_back_as_they_were(phones: dict[str, str]) -> None:
    # The export's cell and the admin's field: a text that read as other
    # numbers (or as broken JSON) would change the person on import or save.
    text = formats.format_phone(phones)
    assert formats.parse_phone(text) == phones
    assert list(formats.parse_phone(text)) == list(phones)


def test_phones_are_written_as_labelled_text_when_it_reads_back() -> None:
    assert formats.format_phone({"office": "802-867-5309", "cell": "ext: 12"}) == (
        "office: 802-867-5309; cell: ext: 12"
    )
    assert formats.format_phone({"Home: Berlin": "030 1234"}) == '{"Home: Berlin": "030 1234"}'


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


@pytest.mark.parametrize(("written", "active"), [("1.0", True), ("0.0", False), ("1", True), ("0", False)])
def test_a_json_is_active_of_one_or_zero_with_a_fraction_is_yes_or_no(written: str, active: bool) -> None:
    raw = f'[{{"name": "Ada", "username": "ada", "is_active": {written}}}]'.encode()
    assert formats.parse_people(raw, "json") == [{**ADA, "is_active": active}]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_false_where_text_goes_in_a_json_or_yaml_people_file_is_blank(fmt: str) -> None:
    raw = b'[{"name": "Ada", "username": "ada", "department": false, "role": null}]'
    assert formats.parse_people(raw, fmt) == [{**ADA, "department": "", "role": ""}]


def test_the_csv_header_is_the_courses_with_extra_columns_after() -> None:
    header = formats.dump_people(PEOPLE, "csv").splitlines()[0]
    assert header.startswith("name,username,phone,department,role")


def test_a_csv_header_names_its_columns_in_any_case_with_spaces_around_them() -> None:
    raw = b" Name ,USERNAME,\tRole\nAda,ada,Lead\n"
    assert formats.parse_people(raw, "csv") == [{"name": "Ada", "username": "ada", "role": "Lead"}]
    formats.check_table_header(raw.decode(), ",")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "the CSV file is empty"),
        (b"name,department\nAda,Eng\n", "the CSV header lacks username"),
        (b"username,department\nada,Eng\n", "the CSV header lacks name"),
        # A blank first line is the header still, not an empty file.
        (b"\nname,username\nAda,ada\n", "the CSV header lacks name, username"),
        # The later column would take the place of the first unseen.
        (b"name,username, Name\nAda,ada,Bea\n", "the CSV header names name twice"),
        (
            b"phone,name,username,PHONE,username\n1,Ada,ada,2,ada\n",
            "the CSV header names phone, username twice",
        ),
    ],
    ids=["empty", "no-username", "no-name", "blank-first-line", "name-twice", "two-twice"],
)
def test_a_csv_header_that_does_not_name_each_column_a_person_needs_once_is_refused(
    raw: bytes, reason: str
) -> None:
    for refused in (
        lambda: formats.parse_people(raw, "csv"),
        lambda: formats.check_table_header(raw.decode(), ","),
    ):
        with pytest.raises(formats.FormatError, match=f"^{re.escape(reason)}$"):
            refused()


def test_a_csv_column_no_import_reads_may_come_twice() -> None:
    raw = b"name,username,notes,Notes\nAda,ada,one,two\n"
    assert formats.parse_people(raw, "csv") == [ADA]
    formats.check_table_header(raw.decode(), ",")


UNCLOSED = "the quoted field that opens there is never closed"
AFTER_QUOTE = "text after the quote that closes a field"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Read leniently, the rest of the file was Ann's department.
        (b'name,username,department\nAnn,ann,"Sales\nBob,bob,Ops\nCy,cy,Ops\n', f"(line 2): {UNCLOSED}"),
        (b'name,username,department\n"Ann,ann,Sales\nBob,bob,Ops', f"(line 2): {UNCLOSED}"),
        # A quote written twice within it ends no field.
        (b'name,username\n"Ann ""The Chef"" Smith,ann\nBob,bob\n', f"(line 2): {UNCLOSED}"),
        # Lines of a quoted field before it are counted as the file's lines.
        (
            b'name,username,department\nAnn,ann,"Sales\nEast"\nBob,bob,"Ops\nCy,cy,Ops\n',
            f"(line 4): {UNCLOSED}",
        ),
        # Left open on the second line of a row, it is told there.
        (
            b'name,username,department,role\nAnn,ann,"Sales\nEast","Chef\nBob,bob,Ops,Cook\n',
            f"(line 3): {UNCLOSED}",
        ),
        # Read leniently, "Ann"x was Annx.
        (b'name,username\n"Ann"x,ann\n', f"(line 2): {AFTER_QUOTE}"),
        (b'name,username,department\nAnn,ann,"Sales\nEast"\n"Bob" ,bob,Ops\n', f"(line 4): {AFTER_QUOTE}"),
        (b'name,username,department\nAnn,ann,"Sales\n\nEast"x\n', f"(line 4): {AFTER_QUOTE}"),
        (b'name,"user"name\nAnn,ann\n', f"(line 1): {AFTER_QUOTE}"),
    ],
    ids=[
        "unclosed",
        "unclosed-at-end",
        "unclosed-with-quotes-written-twice",
        "unclosed-after-lines",
        "unclosed-in-a-row",
        "after",
        "after-lines",
        "after-in-a-row",
        "after-in-header",
    ],
)
def test_a_csv_quote_that_does_not_end_its_field_is_refused_naming_the_files_line(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(formats.FormatError, match=f"^not valid CSV {re.escape(reason)}"):
        formats.parse_people(raw, "csv")


def test_a_tsv_quote_never_closed_is_refused_naming_tsv() -> None:
    with pytest.raises(formats.FormatError, match=re.escape(f"not valid TSV (line 2): {UNCLOSED}")):
        formats.parse_people(b'name\tusername\n"Ann\tann\nBob\tbob\n', "tsv")


def test_quoted_fields_across_lines_and_quotes_written_twice_are_read() -> None:
    raw = b'name,username,department\n"Ann ""The Chef""",ann,"Sales\n\nEast"\nBob,bob,\n'
    assert [p["department"] for p in formats.parse_people(raw, "csv")] == ["Sales\n\nEast", ""]


ROW_LIMIT = 1_048_576


def test_a_csv_row_of_the_most_characters_a_row_holds_is_read() -> None:
    name = "A" * (ROW_LIMIT - len(",ann"))  # past the 131,072 of Python's reader
    (person,) = formats.parse_people(f"name,username\n{name},ann\n".encode(), "csv")
    assert person["name"] == name


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "A" * (ROW_LIMIT - len(",ann") + 1) + ",ann",
            "(line 3): the row is longer than 1,048,576 characters",
        ),
        # A quoted field across lines counts as its row, told where the row starts.
        ('Ann,"' + ("x" * 1000 + "\n") * 1100 + '"', "(line 3): the row is longer than 1,048,576 characters"),
    ],
    ids=["one-line", "lines"],
)
def test_a_csv_row_longer_than_a_row_holds_is_refused_naming_the_limit_and_line(
    row: str, reason: str
) -> None:
    raw = f"name,username\nBob,bob\n{row}\nCy,cy\n".encode()
    with pytest.raises(formats.FormatError, match=f"^not valid CSV {re.escape(reason)}"):
        formats.parse_people(raw, "csv")


@pytest.mark.parametrize(
    ("row", "where"),
    [('Ann,"ann', "opens there"), ('Ann,"two\nlines","ann', "opens on line 4")],
    ids=["on-its-line", "further-on"],
)
def test_a_quote_left_open_past_the_rows_limit_is_named_with_its_line(row: str, where: str) -> None:
    raw = f"name,username\nBob,bob\n{row}\n".encode() + b"Cy,cy\n" * 200_000
    with pytest.raises(formats.FormatError) as refused:
        formats.parse_people(raw, "csv")
    assert str(refused.value) == (
        "not valid CSV (line 3): the row is longer than 1,048,576 characters, the most a row may hold; "
        f"the quoted field that {where} runs past it: is its closing quote missing?"
    )


def _refused_with_peak(pieces: Iterator[bytes], kind: str) -> tuple[formats.FormatError, int]:
    """The refusal of a people file read in ``pieces`` and the most memory
    reading it took."""
    tracemalloc.start()
    try:
        with pytest.raises(formats.FormatError) as refused:
            list(formats.people_rows(pieces, kind))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return refused.value, peak


def test_a_huge_csv_line_is_refused_without_holding_it() -> None:
    piece = b"x" * (256 * 1024)

    def pieces() -> Iterator[bytes]:
        yield b"name,username\n"
        for _ in range(800):  # 200 MB on one line
            yield piece

    refused, peak = _refused_with_peak(pieces(), "csv")
    assert str(refused).startswith("not valid CSV (line 2): the row is longer than 1,048,576 characters")
    assert peak < 16 * 1024 * 1024, f"peak {peak:,} bytes"


# A JSON value read whole, as (the file before it, its text before and after
# the characters that make it as long as asked, the file after it).
LONG_VALUES = {
    "json item": ('[{"name": "Ann", "username": "ann"},\n ', '{"username": "bob", "notes": "', '"}', "]"),
    "json people of an object": ('{"people": [\n  ', '{"username": "bob", "notes": "', '"}', "]}"),
    "json one person": ('{"name": "Bob",\n "username": "bob",\n "notes": ', '"', '"', "}"),
}


def long_value(shape: str, chars: int) -> tuple[bytes, str]:
    """A file of ``shape`` whose value read whole is ``chars`` long, and
    where that value starts as its format tells a place."""
    before, head, tail, after = LONG_VALUES[shape]
    raw = (before + head + "x" * (chars - len(head) - len(tail)) + tail + after).encode()
    line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
    return raw, f": line {line} column {column} (char {len(before)})"


@pytest.mark.parametrize("shape", LONG_VALUES)
def test_a_json_value_of_the_most_characters_a_row_holds_is_read(shape: str) -> None:
    raw, _ = long_value(shape, ROW_LIMIT)
    for size in (64 * 1024, len(raw)):
        people = people_in_pieces(raw, size, "json")
        assert isinstance(people, list), people
        assert "bob" in [person["username"] for person in people]


@pytest.mark.parametrize("shape", LONG_VALUES)
def test_a_json_value_longer_than_a_row_holds_is_refused_naming_the_limit_and_where_it_starts(
    shape: str,
) -> None:
    raw, where = long_value(shape, ROW_LIMIT + 1)
    reason = "not valid JSON: the value is longer than 1,048,576 characters, the most a row may hold"
    for size in (64 * 1024, len(raw)):
        refused = people_in_pieces(raw, size, "json")
        assert isinstance(refused, str), "read"
        assert refused.startswith(reason + where), refused


def test_a_json_value_of_the_most_characters_cut_short_by_the_end_is_refused_as_json_loads_refuses_it() -> (
    None
):
    raw, _ = long_value("json item", ROW_LIMIT + 2)
    text = raw.decode()[: -len('"}]')]  # a string of the item's ROW_LIMIT characters left open
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    for size in (64 * 1024, len(raw)):
        assert people_in_pieces(text.encode(), size, "json") == f"not valid JSON: {raised.value}"


def huge_value() -> Iterator[bytes]:
    """A JSON file of two people, the second's notes 200 MB on one line."""
    yield b'[{"name": "Ann", "username": "ann"},\n {"name": "Bob", "notes": "'
    for _ in range(800):
        yield b"y" * (256 * 1024)


def test_a_huge_json_value_is_refused_without_holding_it() -> None:
    refused, peak = _refused_with_peak(huge_value(), "json")
    assert str(refused).startswith(
        "not valid JSON: the value is longer than 1,048,576 characters, the most a row may hold"
        ": line 2 column 2 (char 38)"
    )
    assert peak < 16 * 1024 * 1024, f"peak {peak:,} bytes"


def test_a_json_fault_far_from_the_end_of_a_huge_file_is_refused_without_holding_the_rest() -> None:
    def huge_file() -> Iterator[bytes]:
        yield b'[{"name": "Ann",, "username": "ann"},\n {"name": "Bob", "notes": "'
        for _ in range(128):
            yield b"y" * (256 * 1024)
        yield b'"}]'

    refused, peak = _refused_with_peak(huge_file(), "json")
    assert str(refused) == (
        "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 17 (char 16)"
    )
    assert peak < 16 * 1024 * 1024, f"peak {peak:,} bytes"


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
        (
            b"- name: " + b"[" * 5_000 + b"]" * 5_000 + b"\n  username: a\n",
            "yaml",
            "not valid YAML: nested too deep",
        ),
        (
            b"name,username\n" + b"x" * 1_100_000 + b",y\n",
            "csv",
            "(line 2): the row is longer than 1,048,576 characters",
        ),
    ],
    ids=["yaml-aliases", "nested-phone", "deep-json", "deep-yaml", "huge-csv-field"],
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


def test_a_delivered_file_of_its_limit_exactly_is_read(tmp_path: Path) -> None:
    path = tmp_path / "001.txt"
    path.write_bytes(b"x" * 1000)
    assert formats.read_file(path, 1000, "a review file") == b"x" * 1000
    path.write_bytes(b"x" * 1001)
    with pytest.raises(
        formats.FormatError, match=r"^larger than 1,000 bytes, the most a review file may take$"
    ):
        formats.read_file(path, 1000, "a review file")


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
        # Read whole, the bytes that are not text are told before the CSV's fault.
        b'name,username\n"Ada"x,ada\nKofi,kofi\n\xff\n',
    ],
    ids=[
        "crlf-in-quotes",
        "utf8-bom",
        "utf16",
        "cut-character",
        "not-utf8",
        "null",
        "fault-order",
        "csv-fault-before-bytes-not-text",
    ],
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


def test_a_short_csv_row_is_blank_in_the_columns_it_lacks_and_a_cell_past_them_left_out() -> None:
    raw = b"name,username,email,role\nAda,ada\nBea,bea,bea@example.com,Chef,extra\n"
    assert formats.parse_people(raw, "csv") == [
        {**ADA, "email": "", "role": ""},
        {"name": "Bea", "username": "bea", "email": "bea@example.com", "role": "Chef"},
    ]


def test_a_blank_csv_line_is_no_person_and_people_are_numbered_past_it() -> None:
    raw = b"name,username,is_active\n\nAda,ada,yes\n\n\nBea,bea,maybe\n"
    with pytest.raises(formats.FormatError, match=r"^person 2: is_active must be yes or no"):
        formats.parse_people(raw, "csv")
    assert formats.parse_people(raw.replace(b"maybe", b"no"), "csv") == [
        {**ADA, "is_active": True},
        {"name": "Bea", "username": "bea", "is_active": False},
    ]


def test_a_fault_of_the_csv_further_on_is_told_before_a_bad_row() -> None:
    raw = b"name,username,phone\nAda,ada,{nope\nKofi,kofi," + b"1" * 1_100_000 + b"\n"
    with pytest.raises(
        formats.FormatError, match=r"^not valid CSV \(line 3\): the row is longer than 1,048,576 characters"
    ):
        list(formats.people_rows([raw[i : i + 1000] for i in range(0, len(raw), 1000)], "csv"))


def people_in_pieces(raw: bytes, size: int, fmt: str) -> object:
    """The people of ``raw`` read ``size`` bytes at a time, or the fault."""
    try:
        return list(formats.people_rows([raw[i : i + size] for i in range(0, len(raw), size)], fmt))
    except formats.FormatError as exc:
        return str(exc)


ADA = {"name": "Ada", "username": "ada"}


@pytest.mark.parametrize(
    ("raw", "fmt", "people"),
    [
        (b'[{"name": "Ada", "username": "ada"}]', "json", [ADA]),
        (b'{"source": [1, {"x": "]"}], "people": [{"name": "Ada", "username": "ada"}]}', "json", [ADA]),
        (b'{"name": "Ada", "username": "ada", "notes": {"people": 1}}', "json", [ADA]),
        (b'{"people": null, "people": [{"name": "Ada", "username": "ada"}]}', "json", [ADA]),
        (b" [ ] ", "json", []),
        (
            b'{"name": "Ada", "username": "ada", "role": 1.5, "department": 1' + b"0" * 30 + b"}",
            "json",
            [{**ADA, "role": "1.5", "department": "1" + "0" * 30}],
        ),
        (b"- name: Ada\n  username: ada\n", "yaml", [ADA]),
        (b"meta: [1, 2]\npeople:\n- name: Ada\n  username: ada\n", "yaml", [ADA]),
        (b"name: Ada\nusername: ada\n", "yaml", [ADA]),
        (
            b"base: &base {department: Eng}\n<<: *base\nname: Ada\nusername: ada\n",
            "yaml",
            [{**ADA, "department": "Eng"}],
        ),
        (
            b"- &ada {name: Ada, username: ada}\n- <<: *ada\n  username: ada2\n",
            "yaml",
            [
                ADA,
                {**ADA, "username": "ada2"},
            ],
        ),
        (b"people: &all [{name: Ada, username: ada}]\n", "yaml", [ADA]),
        (b"---\n[]\n...\n", "yaml", []),
        # JSON's escape of a character past U+FFFF, in two halves, as json.loads reads it.
        (b'- {name: "Ada \\ud83d\\ude00", username: ada}\n', "yaml", [{**ADA, "name": "Ada \U0001f600"}]),
    ],
    ids=[
        "json-list",
        "json-people-key",
        "json-one-person",
        "json-last-people-key",
        "json-empty",
        "json-numbers-as-text",
        "yaml-list",
        "yaml-people-key",
        "yaml-one-person",
        "yaml-merge-at-the-top",
        "yaml-alias-to-an-earlier-person",
        "yaml-anchored-list",
        "yaml-explicit-document",
        "yaml-escaped-emoji",
    ],
)
def test_json_and_yaml_people_come_in_every_shape_they_came_in_whole(
    raw: bytes, fmt: str, people: list[dict[str, str]]
) -> None:
    for size in (1, 7, len(raw) or 1):
        assert people_in_pieces(raw, size, fmt) == people


@pytest.mark.parametrize(
    ("raw", "fmt", "reason"),
    [
        (b'[{"name": "Ada", "username": "ada"}, 5]', "json", "the JSON file must hold a list of people"),
        (b'{"people": {"name": "Ada"}}', "json", "the JSON file must hold a list of people"),
        (b"", "yaml", "the YAML file must hold a list of people"),
        (b"people: 5\n", "yaml", "the YAML file must hold a list of people"),
        (b'[{"name": ["x"], "username": "a"}, 5]', "json", "the JSON file must hold a list of people"),
        (b'[{"name": ["x"], "username": "a"}, 5', "json", "not valid JSON: Expecting ',' delimiter: line 1"),
        (b"- name: [x]\n  username: a\n- 5\n", "yaml", "the YAML file must hold a list of people"),
        (
            b"- name: Ada\n  username: a\n- x: !!python/name:os.system\n- [",
            "yaml",
            "not valid YAML: while parsing",
        ),
        (
            b"- name: Ada\n  username: a\n- x: !!python/name:os.system\n",
            "yaml",
            "could not determine a constructor",
        ),
        (b"- name: Ada\n  username: a\n---\n- 1\n", "yaml", "expected a single document in the stream"),
        (b"- {name: Ada, username: a}\n- *nobody\n", "yaml", "found undefined alias 'nobody'"),
        (b'{"people": [], "people": []}', "json", 'the JSON file names "people" more than once'),
        (b"people: []\npeople: []\n", "yaml", 'the YAML file names "people" more than once'),
        (b'[{"name": 1' + b"0" * 5000 + b', "username": "a"}]', "json", "a number longer than 4,300 digits"),
        (b"- {name: 1" + b"0" * 5000 + b", username: a}\n", "yaml", "a number longer than 4,300 digits"),
        # Read whatever their length, as no decimal number is: no text either.
        (b"- {name: 0x" + b"f" * 5000 + b", username: a}\n", "yaml", "a number longer than 4,300 digits"),
        (
            b"- {name: Ada, username: a, is_active: 0b" + b"1" * 20000 + b"}\n",
            "yaml",
            "a number longer than 4,300 digits",
        ),
        (
            b"- {name: Ada, username: a, phone: {cell: " + b"59:" * 3000 + b"1}}\n",
            "yaml",
            "a number longer than 4,300 digits",
        ),
        (b"- {name: Ada, username: a, born: 2020-13-45}\n", "yaml", "not valid YAML: month must be in 1..12"),
        (
            b'{"name": "Ada", "username": "ada", "role": NaN}',
            "json",
            "person 1: role must be text or a finite number, not nan",
        ),
        (
            b'[{"name": 1e400, "username": "a"}, {"name": -Infinity, "username": "b"}]',
            "json",
            "person 1: name must be text or a finite number, not inf",
        ),
        (
            b'[{"name": "Ada", "username": "a", "phone": {"cell": -1e400}}]',
            "json",
            "person 1: the phone number for 'cell' must be text or a finite number, not -inf",
        ),
        (
            b'[{"name": "Ada", "username": "a", "phone": NaN}]',
            "json",
            "person 1: phone must be text or a mapping of label to number, not nan",
        ),
        (
            b"- {name: Ada, username: a, role: .inf}\n",
            "yaml",
            "person 1: role must be text or a finite number, not inf",
        ),
    ],
    ids=[
        "json-not-a-person",
        "json-people-not-a-list",
        "yaml-empty",
        "yaml-people-not-a-list",
        "json-not-a-person-before-a-bad-person",
        "json-fault-of-the-text-first",
        "yaml-not-a-person-before-a-bad-person",
        "yaml-fault-of-the-text-first",
        "yaml-python-tag",
        "yaml-two-documents",
        "yaml-undefined-alias",
        "json-people-twice",
        "yaml-people-twice",
        "json-long-number",
        "yaml-long-number",
        "yaml-long-hexadecimal-number",
        "yaml-long-binary-number-as-is-active",
        "yaml-long-sexagesimal-number-as-a-phone-number",
        "yaml-no-such-date",
        "json-nan-as-text",
        "json-infinity-as-text",
        "json-infinity-as-a-phone-number",
        "json-nan-as-the-phone",
        "yaml-infinity-as-text",
    ],
)
def test_json_and_yaml_people_files_are_refused_for_what_they_are(raw: bytes, fmt: str, reason: str) -> None:
    for size in (1, 7, len(raw) or 1):
        fault = people_in_pieces(raw, size, fmt)
        assert isinstance(fault, str), fault
        assert reason in fault


GIVEN_TWICE = {
    "json-list": (
        b'[{"name": "Ann", "username": "ann", "name": "Bea"}]',
        "json",
        "person 1 gives name twice",
    ),
    "json-people-key": (
        b'{"people": [{"name": "Ada", "username": "ada"}, {"role": "a", "name": "B", "username": "b", "role": "b"}]}',
        "json",
        "person 2 gives role twice",
    ),
    "json-one-person": (
        b'{"name": "Ann", "username": "ann", "name": "Bea", "username": "bea"}',
        "json",
        "person 1 gives name, username twice",
    ),
    "yaml-list": (b"- {name: Ann, username: ann, name: Bea}\n", "yaml", "person 1 gives name twice"),
    "yaml-people-key": (
        b"people:\n- {name: Ada, username: ada}\n- name: Ann\n  username: ann\n  'is_active': no\n  is_active: yes\n",
        "yaml",
        "person 2 gives is_active twice",
    ),
    "yaml-one-person": (b"name: Ann\nusername: ann\nname: Bea\n", "yaml", "person 1 gives name twice"),
    "yaml-twice-in-what-is-merged": (
        b"- {<<: {name: Ann, name: Bea}, username: ann}\n",
        "yaml",
        "person 1 gives name twice",
    ),
    "yaml-one-person-twice-in-what-is-merged": (
        b"<<: {name: Ann, name: Bea}\nusername: ann\n",
        "yaml",
        "person 1 gives name twice",
    ),
}


@pytest.mark.parametrize(("raw", "fmt", "reason"), GIVEN_TWICE.values(), ids=GIVEN_TWICE.keys())
@pytest.mark.usefixtures("yaml_reader")  # each YAML reader
def test_a_person_giving_a_key_an_import_reads_twice_is_refused_naming_it(
    raw: bytes, fmt: str, reason: str
) -> None:
    # The later value took the place of the first unseen ("Bea" for "Ann").
    for size in (1, 7, len(raw)):
        assert people_in_pieces(raw, size, fmt) == reason
    with pytest.raises(formats.FormatError, match=f"^{reason}$"):
        formats.document_rows(raw.decode(), fmt)


GIVEN_ONCE = {
    "json-a-key-no-import-reads-twice": (
        b'[{"name": "Ada", "notes": 1, "username": "ada", "notes": 2}]',
        "json",
        [ADA],
    ),
    "json-one-person-a-key-no-import-reads-twice": (
        b'{"name": "Ada", "source": "HR", "username": "ada", "source": "IT"}',
        "json",
        [ADA],
    ),
    "json-a-nested-key-twice": (
        b'[{"name": "Ada", "username": "ada", "phone": {"office": "1", "office": "2"}}]',
        "json",
        [{**ADA, "phone": {"office": "2"}}],
    ),
    "yaml-a-key-no-import-reads-twice": (
        b"- {name: Ada, notes: 1, username: ada, notes: 2}\n",
        "yaml",
        [ADA],
    ),
    "yaml-a-nested-key-twice": (
        b"- {name: Ada, username: ada, phone: {office: 1, office: 2}, x: {name: a, name: b}}\n",
        "yaml",
        [{**ADA, "phone": {"office": "2"}}],
    ),
    # A merged key given again is overridden, as YAML defines, not given twice.
    "yaml-a-merged-key-given-again": (
        b"- &base {name: Base, username: ada, role: Lead}\n- {<<: *base, name: Ada, role: Dev}\n",
        "yaml",
        [{"name": "Base", "username": "ada", "role": "Lead"}, {**ADA, "role": "Dev"}],
    ),
    "yaml-a-key-twice-in-what-is-merged-given-again": (
        b"- {<<: {name: Ann, name: Bea}, username: ada, name: Ada}\n",
        "yaml",
        [ADA],
    ),
    "yaml-keys-of-two-merged-mappings": (
        b"- {<<: [{name: Ada}, {name: Bea}], username: ada}\n",
        "yaml",
        [ADA],
    ),
    # Merging rewrites the mapping merged in: its merged keys then looked given.
    "yaml-an-alias-to-what-was-merged": (
        b"- {<<: &ada {<<: {name: Ann}, name: Ada, username: ada}, role: Dev}\n- *ada\n",
        "yaml",
        [{**ADA, "role": "Dev"}, ADA],
    ),
    "yaml-one-person-a-merged-key-given-again": (
        b"base: &base {name: Base, role: Dev}\n<<: *base\nname: Ada\nusername: ada\n",
        "yaml",
        [{**ADA, "role": "Dev"}],
    ),
}


@pytest.mark.parametrize(("raw", "fmt", "people"), GIVEN_ONCE.values(), ids=GIVEN_ONCE.keys())
@pytest.mark.usefixtures("yaml_reader")  # each YAML reader
def test_a_key_no_import_reads_or_a_merged_one_may_come_again(
    raw: bytes, fmt: str, people: list[dict[str, str]]
) -> None:
    for size in (1, 7, len(raw)):
        assert people_in_pieces(raw, size, fmt) == people
    assert len(formats.document_rows(raw.decode(), fmt)) == len(people)


@pytest.mark.parametrize(
    ("raw", "fmt", "reason"),
    [
        (
            b'[{"name": "A", "name": "B", "username": "a"}, 5]',
            "json",
            "the JSON file must hold a list of people",
        ),
        (b'[{"name": "A", "name": "B", "username": "a"}, [', "json", "not valid JSON: Expecting value"),
        (b"- {name: A, name: B, username: a}\n- 5\n", "yaml", "the YAML file must hold a list of people"),
        (b"- {name: A, name: B, username: a}\n- [\n", "yaml", "not valid YAML: while parsing"),
    ],
    ids=["json-not-a-person", "json-fault-of-the-text", "yaml-not-a-person", "yaml-fault-of-the-text"],
)
def test_a_fault_of_the_file_further_on_is_told_before_a_key_given_twice(
    raw: bytes, fmt: str, reason: str
) -> None:
    for size in (1, 7, len(raw)):
        fault = people_in_pieces(raw, size, fmt)
        assert isinstance(fault, str)
        assert fault.startswith(reason), fault
    with pytest.raises(formats.FormatError, match=f"^{re.escape(reason)}"):
        formats.document_rows(raw.decode(), fmt)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  \n ",
        "[",
        '[\n  {"name": "Ada",\n   "username": "ada"}\n  {}]',
        '{"name": "Ada",}',
        '{"name" "Ada"}',
        '{"name": "Ada" "username": "ada"}',
        '{"people": [1 2]}',
        '[{"name": "Ada\n"}]',
        '[{"name": "\\u00"}]',
        "[1,]",
        "[] []",
        "1 2",
        '{"name": "Ada", "username": "ada"} []',
        "[-Infinit]",
        # A byte order mark is read as the file's encoding once, not twice.
        "\ufeff\ufeff[]",
        # Past the text read first, a line break is the first character of what is read next.
        "[" + " " * 5000 + "\n  1 2]",
        '[{"name": "' + "x" * 300 + '"}, {"name": "' + "y" * 300,
    ],
)
def test_a_json_people_file_read_in_pieces_is_refused_in_the_words_of_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    raw = text.encode()
    for size in (1, 3, 64, len(raw) or 1):
        assert people_in_pieces(raw, size, "json") == f"not valid JSON: {raised.value}"


def yaml_fault(text: str, loader: type) -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as raised:
        yaml.load(text, Loader=loader)  # noqa: S506  # a safe loader
    return raised.value


@pytest.mark.parametrize(
    "text",
    [
        "- name: Ada\n  username: [ada\n",
        "people:\n- {name: " + "x" * 100 + ", username: y: z}\n",
        "- name: Ada\n  username: \x01\n",
        "- name: Ada\n" + "  notes: " + "n" * 500 + "\n" + "  bad: : :\n",
        "- &a {name: Ada}\n- &a {name: Bea}\n",
    ],
)
def test_a_yaml_people_file_read_in_pieces_is_refused_in_the_words_of_safe_load(
    text: str, yaml_reader: str
) -> None:
    # libyaml's words for a fault its scanner or parser finds, with the line
    # of each place named shown as the pure-Python reader shows it; the
    # pure-Python composer's (an anchor twice), or reader's (a character
    # libyaml refuses: the file is read again), for the others.
    fault = yaml_fault(text, yaml.SafeLoader)
    if yaml_reader == "libyaml":
        found = yaml_fault(text, yaml.CSafeLoader)
        if isinstance(found, (yaml.scanner.ScannerError, yaml.parser.ParserError)):
            for place in ("context_mark", "problem_mark"):
                if (mark := getattr(found, place)) is not None:
                    shown = yaml.Mark(mark.name, mark.index, mark.line, mark.column, text, mark.index)
                    setattr(found, place, shown)
            fault = found
    raw = text.encode()
    for size in (1, 3, 64, len(raw) or 1):
        assert people_in_pieces(raw, size, "yaml") == f"not valid YAML: {fault}"


def test_a_yaml_fault_libyaml_finds_shows_the_line_it_is_on(yaml_reader: str) -> None:
    raw = b"- name: Ada\n  username: ada\n" * 5000 + b"- name: Bea\n  username: [bea\n"
    fault = people_in_pieces(raw, 1000, "yaml")
    assert fault == (
        "not valid YAML: while parsing a flow sequence\n"
        '  in "<unicode string>", line 10002, column 13:\n'
        "      username: [bea\n"
        "                ^\n"
        + (
            "did not find expected ',' or ']'\n"
            if yaml_reader == "libyaml"
            else "expected ',' or ']', but got '<stream end>'\n"
        )
        + '  in "<unicode string>", line 10003, column 1:\n'
        "    \n"
        "    ^"
    )


@pytest.mark.parametrize("size", [1, 7, 1000])
@pytest.mark.parametrize("again", [True, False], ids=["list", "iterator"])
def test_an_emoji_escaped_far_into_a_yaml_file_is_read_as_near_its_start(
    size: int, again: bool, yaml_reader: str
) -> None:
    # libyaml refuses an escaped surrogate half: the file is read again by
    # the pure-Python reader, past the people already given.
    raw = b"- {name: Ada, username: ada}\n" * 50 + b'- {name: "Bea \\ud83d\\ude00", username: bea}\n'
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
    people = list(formats.people_rows(pieces if again else iter(pieces), "yaml"))
    assert people == [ADA] * 50 + [{"name": "Bea \U0001f600", "username": "bea"}]
    rows = formats.document_rows(raw.decode(), "yaml")
    assert rows[-1] == {"name": "Bea \U0001f600", "username": "bea"}
    assert len(rows) == 51


def test_a_yaml_people_file_is_read_by_libyaml_where_pyyaml_has_it(
    yaml_reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds: list[type] = []
    read = formats._yaml_read

    def recorded(kind: type, text: formats._YamlText) -> Iterator[object]:
        kinds.append(kind)
        return read(kind, text)

    monkeypatch.setattr(formats, "_yaml_read", recorded)
    raw = b"- name: Ada\n  username: ada\n"
    assert formats.parse_people(raw, "yaml") == [ADA]
    assert formats.document_rows(raw.decode(), "yaml") == [ADA]
    expected = formats._CYamlLoader if yaml_reader == "libyaml" else formats._YamlLoader
    assert kinds == [expected, expected]


@pytest.mark.parametrize("again", [True, False], ids=["list", "iterator"])
def test_a_large_yaml_people_file_is_read_in_little_memory(again: bool) -> None:
    # PyYAML reads about 1 MB in 3 s under tracemalloc: 800 KB, which held
    # whole (twice) with its nodes takes some 2.5 MB.
    lines = ("    " + "n" * 200 + "\n") * 100
    raw = "".join(f"- name: Person {i}\n  username: p{i}\n  notes: |\n{lines}" for i in range(40)).encode()
    assert len(raw) > 800_000
    pieces = [raw[i : i + 32 * 1024] for i in range(0, len(raw), 32 * 1024)]
    tracemalloc.start()
    try:
        people = formats.people_rows(pieces if again else iter(pieces), "yaml")
        last = collections.deque(people, maxlen=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert last == collections.deque([{"name": "Person 39", "username": "p39"}])
    assert peak < len(raw) / 2, f"peak {peak:,} bytes"


TOO_LONG = b"9" * 5000  # past int()'s 4,300 digits


@pytest.mark.parametrize(
    ("before", "number", "after"),
    [
        (b'[{"name": "Ann", "username": "ann"},\n {"name": "Bob", "username": ', TOO_LONG, b"}]"),
        (b'{"people": [\n  {"name": "Bob", "username": ', b"-" + TOO_LONG, b"}]}"),
        (b'{"name": "Ann",\n "username": ', TOO_LONG, b"}"),
        # Digits, and a quote escaped, in a string before it are no number.
        (b'[{"name": "Bob \\" ' + TOO_LONG + b'",\n  "role": 1.5e3, "username": ', TOO_LONG, b"}]"),
    ],
    ids=["second person", "people of an object", "one person", "after a string of digits"],
)
def test_a_json_number_too_long_to_read_is_placed_where_it_starts(
    before: bytes, number: bytes, after: bytes
) -> None:
    """Not where the value it is in starts: a whole person, or the file's list."""
    raw = before + number + after
    line, column = before.count(b"\n") + 1, len(before) - before.rfind(b"\n")
    reason = (
        f"not valid JSON: a number longer than 4,300 digits: line {line} column {column} (char {len(before)})"
    )
    for size in (len(raw), 1000, 7):
        assert people_in_pieces(raw, size, "json") == reason


def test_a_long_json_value_is_put_together_once_per_doubling_not_once_per_piece(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Joining each piece to what came before copied the value so far once
    # per piece: a value of a few hundred MB took minutes, where json.loads
    # takes a second.
    builds = 0
    more = formats._JsonReader._more

    def counted(self: formats._JsonReader, *args: int) -> bool:
        nonlocal builds
        builds += 1
        return more(self, *args)

    monkeypatch.setattr(formats._JsonReader, "_more", counted)
    raw = b'[{"name": "Ada", "username": "ada", "notes": "' + b"n" * 400_000 + b'"}]'
    assert people_in_pieces(raw, 100, "json") == [ADA]
    assert builds < 40, f"{builds:,} times for {len(raw) // 100:,} pieces"


def test_a_yaml_is_active_made_of_aliases_is_refused_without_being_spelt_out() -> None:
    # Six lines that name a list of a list ... of ten each: spelt out (to
    # look for "no" or "off") it is megabytes, and each further line ten
    # times more, from a file of a few hundred bytes.
    lines = ["- name: Ada", "  username: ada", "  l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 6)]
    raw = "\n".join([*lines, "  is_active: *l5", ""]).encode()
    tracemalloc.start()
    try:
        people = people_in_pieces(raw, len(raw), "yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Refused by its type alone: a list is not a word for yes or no.
    assert (
        people
        == "person 1: is_active must be yes or no (yes, y, true, on, 1; no, n, false, off, 0), not list"
    )
    assert peak < 50 * len(raw) + 200_000, f"peak {peak:,} bytes"


@pytest.mark.parametrize(
    ("text", "trimmed", "exact"),
    [
        ("2024-01-02", dt.date(2024, 1, 2), dt.date(2024, 1, 2)),
        ("2024-1-2", dt.date(2024, 1, 2), None),
        (" 2024-01-02\n", dt.date(2024, 1, 2), None),
        ("20240102", None, None),
        ("2024-W01-2", None, None),
        ("10/25/2006", None, None),
    ],
)
def test_a_review_date_is_read_trimmed_or_exact(
    text: str, trimmed: dt.date | None, exact: dt.date | None
) -> None:
    for wanted, strict in ((trimmed, False), (exact, True)):
        if wanted is None:
            with pytest.raises(formats.FormatError, match="not a date in YYYY-MM-DD form"):
                formats.parse_date(text, exact=strict)
        else:
            assert formats.parse_date(text, exact=strict) == wanted
