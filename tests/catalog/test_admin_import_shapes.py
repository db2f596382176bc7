"""The admin's import of people reads the shapes of file ``import_people``
reads, and refuses the files it refuses, in the same words: a JSON or YAML
file that is a list of people, a mapping whose ``people`` is that list, or one
person; CSV headers in any case, with spaces around them."""

from __future__ import annotations

import html
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from catalog.models import Person
from tests.catalog.test_admin_import_export import confirm_data
from tests.catalog.test_admin_import_text import admin_import, admin_preview, command_import
from tests.factories import PersonFactory, logged_in, staff_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def importer() -> Client:
    return logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))


def stored() -> set[tuple[str, str, str, str]]:
    return set(Person.objects.values_list("username", "name", "department", "role"))


BROKEN = {
    "JSON cut short": ("people.json", b'[{"name": "Ann", "username": "ann"'),
    "JSON without a comma": ("people.json", b'[{"name": "Ann" "username": "ann"}]'),
    "JSON with extra data": ("people.json", b'[{"name": "Ann", "username": "ann"}] []'),
    "YAML with an open list": ("people.yaml", b"- name: Ann\n  username: [ann\n"),
    "YAML with an open quote": ("people.yaml", b'- name: "Ann\n'),
    "YAML of two documents": ("people.yaml", b"- {name: Ann, username: ann}\n---\n- {}\n"),
    "JSON of a number": ("people.json", b"3"),
    "JSON whose people is no list": ("people.json", b'{"people": "ann"}'),
    "JSON of lists": ("people.json", b'[["Ann", "ann"]]'),
    "YAML of texts": ("people.yaml", b"- Ann\n- ann\n"),
    "YAML naming people twice": ("people.yaml", b"people: [{name: Ann, username: ann}]\npeople: []\n"),
    "CSV with a phone that is no JSON": ("people.csv", b'name,username,phone\nAnn,ann,"{""office"": 5"\n'),
    # An empty file: "the CSV file is empty", not the form's "The submitted file is empty."
    "CSV that is empty": ("people.csv", b""),
    "JSON that is empty": ("people.json", b""),
    "YAML that is empty": ("people.yaml", b""),
    # A column every person needs, missing: "the CSV header lacks username", not each row's fault.
    "CSV without a username column": ("people.csv", b"name,phone\nAnn,\n"),
    "CSV without a name column": ("people.csv", b"username\nann\n"),
    "CSV of a header without name and username": ("people.csv", b"department\n"),
    "CSV without a username column, two rows": ("people.csv", b"name,role\nAnn,Chef\nBob,Cook\n"),
    "CSV of a header without a username": ("people.csv", b"name\n"),
    # Read leniently, the rest of the file was Ann's department, and "Ann"x was Annx.
    "CSV with a quote never closed": (
        "people.csv",
        b'name,username,department\nAnn,ann,"Sales\nBob,bob,Ops\n',
    ),
    "TSV with a quote never closed": ("people.tsv", b'name\tusername\n"Ann\tann\nBob\tbob\n'),
    "CSV with text after a closing quote": ("people.csv", b'name,username\n"Ann"x,ann\n'),
    # A column given twice: the later one took its place ("Bea", or a blank username).
    "CSV naming name twice": ("people.csv", b"name,name,username\nAnn,Bea,ann\n"),
    "CSV naming username twice, in other case": ("people.csv", b"name,username, Username \nAnn,ann,\n"),
    # A key given twice, likewise: "person 1 gives name twice".
    "JSON person giving name twice": ("people.json", b'[{"name": "Ann", "username": "ann", "name": "Bea"}]'),
    "JSON of one person giving name twice": (
        "people.json",
        b'{"name": "Ann", "username": "ann", "name": "Bea"}',
    ),
    "YAML person giving name twice": ("people.yaml", b"- {name: Ann, username: ann, name: Bea}\n"),
    "YAML of one person giving name twice": ("people.yaml", b"name: Ann\nusername: ann\nname: Bea\n"),
}


@pytest.mark.parametrize(("name", "content"), BROKEN.values(), ids=BROKEN.keys())
def test_a_file_import_people_cannot_read_is_refused_in_its_words(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, name, content)

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert str(refused.value) in text  # "people.json: not valid JSON: Expecting ',' delimiter: line 1 ..."
    assert "encountered while trying to read file" not in text
    assert not confirm_data(page.content.decode())
    assert not Person.objects.exists()


SHAPES = {
    "JSON mapping with a people list": (
        "people.json",
        b'{"source": "HR", "people": [{"name": "Ann", "username": "ann", "role": "Chef"}]}',
    ),
    "JSON of one person": ("people.json", b'{"name": "Ann", "username": "ann", "role": "Chef"}'),
    "YAML mapping with a people list": (
        "people.yaml",
        b"source: HR\npeople:\n  - name: Ann\n    username: ann\n    role: Chef\n",
    ),
    "YAML of one person": ("people.yaml", b"name: Ann\nusername: ann\nrole: Chef\n"),
    "YAML people list with an anchor": (
        "people.yaml",
        b"people: &all\n  - {name: Ann, username: ann, role: Chef}\n",
    ),
    "JSON whose people give their keys in another order": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "role": "Chef"}, {"role": "Cook", "username": "bob", "name": "Bob"}]',
    ),
    "CSV header in capitals": ("people.csv", b"Name,USERNAME,Role\nAnn,ann,Chef\n"),
    "CSV header with spaces": ("people.csv", b" name , username ,role \nAnn,ann,Chef\n"),
    "TSV header in capitals": ("people.tsv", b"NAME\tUserName\tROLE\nAnn\tann\tChef\n"),
    "JSON person giving a key no import reads twice": (
        "people.json",
        b'[{"name": "Ann", "note": "a", "username": "ann", "role": "Chef", "note": "b"}]',
    ),
    "YAML person giving again a key merged in": (
        "people.yaml",
        b"base: &base {name: Base, role: Chef}\npeople:\n  - {<<: *base, name: Ann, username: ann}\n",
    ),
}


@pytest.mark.parametrize(("name", "content"), SHAPES.values(), ids=SHAPES.keys())
def test_the_admin_imports_the_people_of_every_shape_import_people_reads(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    # import_people takes no TSV: the admin reads it as its CSV.
    command_import(tmp_path, name.replace(".tsv", ".csv"), content.replace(b"\t", b","))
    by_command = stored()
    Person.objects.all().delete()

    admin_import(importer, name, content)

    assert ("ann", "Ann", "", "Chef") in by_command
    assert stored() == by_command


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "people.json",
            b'[{"name": "Ann", "username": "ann", "role": "Chef"}, {"username": "bob", "name": "Bob"}]',
        ),
        ("people.yaml", b"- {name: Ann, username: ann, role: Chef}\n- {username: bob, name: Bob}\n"),
    ],
    ids=["JSON", "YAML"],
)
def test_a_person_whose_row_lacks_a_key_keeps_that_field_as_import_people_keeps_it(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    PersonFactory(username="bob", name="Robert", department="Sales", role="Boss")
    command_import(tmp_path, name, content)
    by_command = stored()
    Person.objects.all().delete()
    PersonFactory(username="bob", name="Robert", department="Sales", role="Boss")

    admin_import(importer, name, content)

    assert ("bob", "Bob", "Sales", "Boss") in by_command
    assert stored() == by_command


GIVEN_TWICE_LATER = {
    "JSON": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "role": "Chef"}, {"name": "Bob", "username": "bob", "name": "Bea"}]',
    ),
    "YAML": (
        "people.yaml",
        b"- {name: Ann, username: ann, role: Chef}\n- {name: Bob, username: bob, username: bea}\n",
    ),
}


@pytest.mark.parametrize(("name", "content"), GIVEN_TWICE_LATER.values(), ids=GIVEN_TWICE_LATER.keys())
def test_a_person_giving_a_key_twice_leaves_everyone_as_they_were(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    PersonFactory(username="ann", name="Ann", department="Sales", role="Boss")
    with pytest.raises(CommandError, match=r"^people\.\w+: person 2 gives (name|username) twice$"):
        command_import(tmp_path, name, content)
    assert stored() == {("ann", "Ann", "Sales", "Boss")}

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert "person 2 gives" in html.unescape(page.content.decode())
    assert not confirm_data(page.content.decode())
    assert stored() == {("ann", "Ann", "Sales", "Boss")}


def _aliased(levels: int) -> bytes:
    """A YAML person whose lists, each ten times the one before by aliases,
    spell out 10 ** ``levels`` items from a few hundred bytes."""
    lines = [b"- x0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"  x{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]".encode())
    return b"\n".join(lines) + b"\n"


ALIASED = {
    "as the name": _aliased(5) + b"  username: ann\n  name: *l4\n",
    "as the role": _aliased(5) + b"  name: Ann\n  username: ann\n  role: *l4\n",
    "in the phone": _aliased(5) + b"  name: Ann\n  username: ann\n  phone: {office: *l4}\n",
    "as is_active": _aliased(5) + b"  name: Ann\n  username: ann\n  is_active: *l4\n",
}


@pytest.mark.parametrize("content", ALIASED.values(), ids=ALIASED.keys())
def test_a_list_of_aliases_where_text_goes_is_refused_in_import_peoples_words_unprinted(
    importer: Client, tmp_path: Path, content: bytes
) -> None:
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, "people.yaml", content)

    page = admin_preview(importer, "people.yaml", content)

    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert str(refused.value) in text  # "people.yaml: person 1: name must be text, not list"
    assert "['x', 'x'" not in text
    assert not confirm_data(page.content.decode())


def test_keys_no_person_has_are_left_unread(importer: Client) -> None:
    content = _aliased(5) + b"  name: Ann\n  username: ann\n  nickname: *l4\n"

    admin_import(importer, "people.yaml", content)

    assert stored() == {("ann", "Ann", "", "")}


def _people_file(name: str, count: int, tail: str = "") -> bytes:
    people = [{"name": f"P {i}", "username": f"p{i}"} for i in range(count)]
    if name.endswith((".json", ".yaml")):
        return (json.dumps(people)[:-1] + tail + "]").encode()
    sep = "\t" if name.endswith(".tsv") else ","
    lines = [f"name{sep}username", *(f"{p['name']}{sep}{p['username']}" for p in people)]
    return ("\n".join(lines) + "\n\n" + tail).encode()


# Past the limit, what no reading of the whole file takes: a fault, or a row that is no person.
PAST_THE_LIMIT = {
    "people.json": ", {}" * 1000 + ", [",
    "people.yaml": ", {}" * 1000 + ", [",
    "people.csv": "x,y\n" * 1000 + '"',
    "people.tsv": "x\ty\n" * 1000 + '"',
}


@pytest.mark.parametrize("name", PAST_THE_LIMIT)
def test_a_file_of_more_rows_than_an_import_takes_is_refused_once_past_the_limit(
    importer: Client, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr("core.admin_import.MAX_ROWS", 30)

    page = admin_preview(importer, name, _people_file(name, 31, PAST_THE_LIMIT[name]))

    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert "A file has at most 30 rows; this one has more. Import it in parts." in text
    assert not confirm_data(page.content.decode())
    assert admin_preview(importer, name, _people_file(name, 30)).status_code == 200
    assert not Person.objects.exists()


NOT_TEXT = {
    "JSON false as the department": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "department": false}]',
    ),
    "JSON true as the role": ("people.json", b'[{"name": "Ann", "username": "ann", "role": true}]'),
    "YAML date as the name": ("people.yaml", b"- {name: 2024-01-01, username: ann}\n"),
    "YAML bytes as the name": ("people.yaml", b"- {name: !!binary aGk=, username: ann}\n"),
}


@pytest.mark.parametrize(("name", "content"), NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_a_value_that_is_no_text_where_text_goes_is_read_as_import_people_reads_it(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    try:
        command_import(tmp_path, name, content)
    except CommandError as exc:
        refusal: str | None = str(exc)
    else:
        refusal = None
    by_command = stored()
    Person.objects.all().delete()

    if refusal is None:
        admin_import(importer, name, content)
        assert stored() == by_command  # ("ann", "Ann", "", ""), not "False"
    else:
        page = admin_preview(importer, name, content)
        assert page.status_code == 400
        assert refusal in html.unescape(page.content.decode())  # "person 1: name must be text, not date"
        assert not Person.objects.exists()


@pytest.mark.parametrize("name", ["people.csv", "people.tsv"])
def test_a_table_with_a_row_past_the_most_a_row_holds_is_refused_naming_the_limit_and_its_line(
    importer: Client, tmp_path: Path, name: str
) -> None:
    kind = name.rsplit(".", 1)[1].upper()
    sep = "\t" if kind == "TSV" else ","
    # The quoted field across lines makes the file's line 4 its third row.
    content = (
        f'name{sep}username{sep}role\nBob{sep}bob{sep}"Chef\nCook"\n"A{"x" * 1_100_000}"{sep}ann\n'.encode()
    )
    refusal = (
        f"{name}: not valid {kind} (line 4): the row is longer than 1,048,576 characters, "
        "the most a row may hold"
    )
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, name, content)
    assert str(refused.value) == refusal

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert refusal in text
    assert "encountered while trying to read file" not in text
    assert not confirm_data(page.content.decode())
    assert not Person.objects.exists()


LONG_NAME = b"A" + b"x" * 1_100_000


def test_a_json_person_past_the_most_a_row_holds_is_refused_naming_the_limit_and_where_it_starts(
    importer: Client, tmp_path: Path
) -> None:
    name = "people.json"
    content = b'[{"name": "Bob", "username": "bob"},\n {"name": "' + LONG_NAME + b'", "username": "ann"}]'
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, name, content)
    assert str(refused.value).startswith(
        "people.json: not valid JSON: the value is longer than 1,048,576 characters, the most a row may hold"
        ": line 2 column 2 (char 38)"
    )

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert str(refused.value) in text
    assert not confirm_data(page.content.decode())
    assert not Person.objects.exists()


@pytest.mark.parametrize("name", ["people.csv", "people.tsv"])
def test_a_field_past_pythons_csv_field_limit_is_read_within_a_rows_limit(
    importer: Client, tmp_path: Path, name: str
) -> None:
    sep = "\t" if name.endswith(".tsv") else ","
    notes = "n" * 200_000  # Python's reader alone takes a field of 131,072
    content = f"name{sep}username{sep}notes\nAnn{sep}ann{sep}{notes}\n".encode()
    command_import(tmp_path, name, content)
    assert stored() == {("ann", "Ann", "", "")}
    Person.objects.all().delete()

    admin_import(importer, name, content)

    assert stored() == {("ann", "Ann", "", "")}


REFUSED_WHOLE = {
    "JSON without a comma": ("people.json", b'[{"name": "Ann" "username": "ann"}]'),
    "Latin-1 CSV": ("people.csv", "name,username\nJosé,jose\n".encode("latin-1")),
    "UTF-16 CSV without its byte order mark": ("people.csv", "name,username\nAnn,ann\n".encode("utf-16-le")),
    "YAML list where a name goes": ("people.yaml", b"- name: [Ann, Lee]\n  username: ann\n"),
}


@pytest.mark.parametrize(("name", "content"), REFUSED_WHOLE.values(), ids=REFUSED_WHOLE.keys())
def test_the_page_of_a_refused_file_still_names_the_columns_an_import_reads(
    importer: Client, name: str, content: bytes
) -> None:
    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    # The page says which columns a file may have, the more so once one was refused.
    assert "<code>name, username, phone, department, role, email, is_active</code>" in page.content.decode()


def everyone() -> set[tuple[object, ...]]:
    return {
        (p.username, p.name, p.email, json.dumps(p.phone), p.department, p.role, p.is_active)
        for p in Person.objects.all()
    }


HEADER = "name,username,email,phone,department,role,is_active\n"
VALUES = {
    "spaces around": HEADER + "  Ann  ,  ann  ,  a@b.co  ,  1  ,  Eng  ,  Chef  ,  no  \n",
    "no-break spaces around": HEADER + "\u00a0Ann\u00a0,\u00a0ann\u00a0,\u00a0a@b.co\u00a0,1,"
    "\u00a0Eng\u00a0,\u00a0Chef\u00a0,\u00a0off\u00a0\n",
    "tabs around": HEADER + "\tAnn\t,\tann\t,\ta@b.co\t,\t1\t,\tEng\t,\tChef\t,\t0\t\n",
    "line breaks around": HEADER + '"\nAnn\n","\nann\n","\na@b.co\n","\n1\n","\nEng\n","\nChef\n","\nno\n"\n',
    "empty cells": HEADER + "Ann,ann,,,,,\n",
    "cells of spaces only": HEADER + "Ann,ann,  ,  ,  ,  ,  \n",
    "columns missing": "name,username\nAnn,ann\n",
    "an email in capitals": HEADER + "Ann,ann,ANN@EXAMPLE.COM,,Eng,Chef,yes\n",
    "is_active a word for yes in capitals": HEADER + "Ann,ann,,,,,Yes\n",
    "100,000 line breaks after the name": 'name,username\n"A' + "\n" * 100_000 + '",ann\n',
    "JSON with spaces around": '[{"name": " Ann ", "username": "ann\\t", "department": "\\u00a0Eng\\n",'
    ' "role": " ", "email": " a@b.co ", "is_active": " N "}]',
    "JSON with nulls": '[{"name": "Ann", "username": "ann", "email": null, "phone": null,'
    ' "department": null, "role": null, "is_active": null}]',
    "YAML with spaces around": "- {name: ' Ann ', username: \"\\tann\", role: \" Chef\\n\", is_active: ' off '}\n",
}


@pytest.mark.parametrize("before", [False, True], ids=["new", "stored"])
@pytest.mark.parametrize("content", VALUES.values(), ids=VALUES.keys())
def test_each_value_is_stored_as_import_people_stores_it(
    importer: Client, tmp_path: Path, content: str, before: bool
) -> None:
    name = {"[": "people.json", "-": "people.yaml"}.get(content[0], "people.csv")

    def start() -> None:
        Person.objects.all().delete()
        if before:
            PersonFactory(
                username="ann", name="Old", email="old@example.com", phone={"cell": "9"},
                department="Sales", role="Boss", is_active=False,
            )  # fmt: skip

    start()
    command_import(tmp_path, name, content.encode())
    by_command = everyone()
    start()

    admin_import(importer, name, content.encode())

    (person,) = by_command  # trimmed by the command: "Ann", not "  Ann  "
    assert all(value == value.strip() for value in person if isinstance(value, str))
    assert everyone() == by_command


REFUSED_ROWS = {
    "a name of spaces": ("people.csv", b"name,username\n  \t ,ann\n", "This field cannot be blank."),
    "a JSON person without a name": (
        "people.json",
        b'[{"username": "ann", "role": "Chef"}]',
        "This field cannot be blank.",
    ),
    "a username with a space inside": (
        "people.csv",
        b"name,username\nAnn, a nn \n",
        "Enter a valid username.",
    ),
    # A name, a role or a department is one line on every page that shows it.
    "line breaks inside": (
        "people.csv",
        b'name,username,role\n"A\nB",ann,"C\nD"\n',
        "The text cannot contain the control character U+000A.",
    ),
}


@pytest.mark.parametrize(("name", "content", "reason"), REFUSED_ROWS.values(), ids=REFUSED_ROWS.keys())
def test_a_row_import_people_rejects_once_read_is_refused_by_the_admin(
    importer: Client, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    PersonFactory(username="ann", name="Ann", department="Sales", role="Boss")
    with pytest.raises(CommandError, match=r"1 row\(s\) rejected"):
        command_import(tmp_path, name, content)

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert reason in page.content.decode()
    assert not confirm_data(page.content.decode())
    assert stored() == {("ann", "Ann", "Sales", "Boss")}


LONG_ROWS = {
    "CSV with a cell past the header": (
        "people.csv",
        b"name,username,role\nAnn,ann,Chef,extra\nBob,bob,Cook\n",
    ),
    "CSV with a comma after each row": ("people.csv", b"name,username,role\nAnn,ann,Chef,\nBob,bob,Cook,\n"),
    "TSV with a cell past the header": (
        "people.tsv",
        b"name\tusername\trole\nAnn\tann\tChef\textra\nBob\tbob\tCook\n",
    ),
}


@pytest.mark.parametrize(("name", "content"), LONG_ROWS.values(), ids=LONG_ROWS.keys())
def test_cells_past_the_header_are_left_out_as_import_people_leaves_them(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    command_import(tmp_path, name.replace(".tsv", ".csv"), content.replace(b"\t", b","))
    by_command = stored()
    assert by_command == {("ann", "Ann", "", "Chef"), ("bob", "Bob", "", "Cook")}
    Person.objects.all().delete()

    admin_import(
        importer, name, content
    )  # was refused: "'InvalidDimensions' encountered while trying to read file"

    assert stored() == by_command


NOBODY = {
    "CSV of a header only": ("people.csv", b"name,username,phone\n"),
    "TSV of a header only": ("people.tsv", b"name\tusername\tphone\n"),
    "JSON of an empty list": ("people.json", b"[]"),
    "YAML whose people are none": ("people.yaml", b"people: []\n"),
}


@pytest.mark.parametrize(("name", "content"), NOBODY.values(), ids=NOBODY.keys())
def test_a_file_of_no_people_is_told_in_import_peoples_words(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name.replace(".tsv", ".csv")
    path.write_bytes(content.replace(b"\t", b","))
    out = StringIO()
    call_command("import_people", str(path), stdout=out, stderr=StringIO())
    told = out.getvalue().strip()  # "0 people created, 0 updated, 0 skipped as duplicates, 0 rejected."

    page = admin_preview(importer, name, content)

    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert told.startswith("0 people created")
    assert f'<li class="info">{told}</li>' in text
    assert "No valid data to import" not in text
    assert not confirm_data(page.content.decode())
    assert not Person.objects.exists()


WITHOUT_A_KEY = {
    "TSV without a username column": (
        "people.tsv",
        b"name\tphone\nAnn\t\n",
        "people.tsv: the TSV header lacks username",
    ),
    "TSV that is empty": ("people.tsv", b"", "people.tsv: the TSV file is empty"),
}


@pytest.mark.parametrize(("name", "content", "error"), WITHOUT_A_KEY.values(), ids=WITHOUT_A_KEY.keys())
def test_a_tsv_file_import_people_would_refuse_as_a_csv_is_refused_naming_tsv(
    importer: Client, tmp_path: Path, name: str, content: bytes, error: str
) -> None:
    # import_people takes no TSV: the admin refuses it as the command refuses its CSV.
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, "people.csv", content.replace(b"\t", b","))

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert str(refused.value).replace("CSV", "TSV").replace(".csv", ".tsv") == error
    assert error in html.unescape(page.content.decode())


PEOPLE_WITHOUT_A_KEY = {
    "JSON person without a username": ("people.json", b'[{"name": "Ann"}]', "username"),
    "JSON person without a name": ("people.json", b'[{"username": "ann"}]', "name"),
    "YAML person without a username": ("people.yaml", b"- name: Ann\n", "username"),
    "YAML person without a name": ("people.yaml", b"- username: ann\n", "name"),
}


@pytest.mark.parametrize(
    ("name", "content", "key"), PEOPLE_WITHOUT_A_KEY.values(), ids=PEOPLE_WITHOUT_A_KEY.keys()
)
def test_a_person_without_a_key_every_person_needs_is_refused_for_the_same_reason(
    importer: Client, tmp_path: Path, name: str, content: bytes, key: str
) -> None:
    """A JSON or YAML file has no columns: each person lacking one is
    refused, by import_people on its error output and by the admin on the
    row, for the same reason."""
    (tmp_path / name).write_bytes(content)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_people", str(tmp_path / name), stdout=StringIO(), stderr=err)
    _label, reason = err.getvalue().strip().removeprefix("rejected ").split(": ", 1)

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert reason == f"{key}: This field cannot be blank."
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page.content.decode(), re.S)
    assert any(key in cell and "This field cannot be blank." in cell for cell in cells)
    assert not Person.objects.exists()


PEOPLE_OF_BLANKS = {
    "CSV row of blank cells": ("people.csv", b"name,username\n,\n", 1),
    "CSV row of spaces after a person": ("people.csv", b"name,username\nAnn,ann\n , \n", 2),
    "JSON person of blank values": ("people.json", b'[{"name": "", "username": ""}]', 1),
    "JSON person of no keys": ("people.json", b"[{}]", 1),
    "JSON of one person of no keys": ("people.json", b"{}", 1),
    "YAML person of no keys": ("people.yaml", b"- {}\n", 1),
}


@pytest.mark.parametrize(
    ("name", "content", "number"), PEOPLE_OF_BLANKS.values(), ids=PEOPLE_OF_BLANKS.keys()
)
def test_a_person_of_blanks_alone_is_refused_as_import_people_refuses_it(
    importer: Client, tmp_path: Path, name: str, content: bytes, number: int
) -> None:
    """Nothing given but blanks: refused for the name and the username, not
    skipped as a row that changes nothing (nor "'AttributeError' encountered
    while trying to read file" for a person of no keys)."""
    (tmp_path / name).write_bytes(content)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_people", str(tmp_path / name), stdout=StringIO(), stderr=err)
    reason = "name: This field cannot be blank.; username: This field cannot be blank."
    assert f"rejected row {number}: {reason}" in err.getvalue()
    Person.objects.all().delete()

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert not confirm_data(page.content.decode())
    said = re.findall(
        r'validation-error-field-label">(\w+)</span>\s*<ul>\s*<li>([^<]*)</li>', page.content.decode()
    )
    assert said == [("name", "This field cannot be blank."), ("username", "This field cannot be blank.")]
    assert not Person.objects.exists()
