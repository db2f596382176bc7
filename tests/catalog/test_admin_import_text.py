"""The admin's import of people reads a file's text as ``import_people``
reads it: the same encodings (UTF-8 with or without its BOM, UTF-16 or UTF-32
with its BOM), the same line ends, an emoji escaped in YAML as JSON escapes it; and it
refuses what the command refuses, in the same words."""

from __future__ import annotations

import codecs
import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from catalog.models import Person
from tests.catalog.test_admin_import_export import (
    PERSON_IMPORT,
    PERSON_PROCESS_IMPORT,
    choice,
    confirm_data,
)
from tests.factories import logged_in, staff_with

pytestmark = pytest.mark.django_db

CSV = "name,username,department\nZoë 😀,zoe,Café\nAl,al,Sales\n"
JSON = '[{"name": "Zo\\u00eb \\ud83d\\ude00", "username": "zoe", "department": "Caf\\u00e9"}]\n'
YAML = '- name: "Zo\\xeb \\ud83d\\ude00"\n  username: zoe\n  department: Café\n'
ZOE = ("zoe", "Zoë 😀", "Café")


@pytest.fixture
def importer() -> Client:
    return logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))


def admin_preview(client: Client, name: str, content: bytes) -> Any:
    page = client.get(PERSON_IMPORT).content.decode()
    fmt = choice(page, name.rsplit(".", 1)[1])
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(PERSON_IMPORT, {"format": fmt, "import_file": upload})


def admin_import(client: Client, name: str, content: bytes) -> None:
    page = admin_preview(client, name, content)
    html = page.content.decode()
    assert page.status_code == 200
    assert confirm_data(html), re.findall(r'<ul class="errorlist[^"]*">.*?</ul>', html, re.S)
    assert client.post(PERSON_PROCESS_IMPORT, confirm_data(html)).status_code == 302


def command_import(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    call_command("import_people", str(path), stdout=StringIO(), stderr=StringIO())


def stored() -> set[tuple[str, str, str]]:
    return set(Person.objects.values_list("username", "name", "department"))


def utf16(text: str, codec: str) -> bytes:
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    return bom + text.encode(codec)


ODD_TEXTS = {
    "CSV in UTF-8 with its BOM": ("people.csv", codecs.BOM_UTF8 + CSV.encode()),
    "CSV in UTF-16 LE": ("people.csv", utf16(CSV, "utf-16-le")),
    "CSV in UTF-16 BE": ("people.csv", utf16(CSV, "utf-16-be")),
    "CSV in UTF-32": ("people.csv", CSV.encode("utf-32")),
    "CSV with CRLF": ("people.csv", CSV.replace("\n", "\r\n").encode()),
    "CSV in UTF-16 with CRLF": ("people.csv", utf16(CSV.replace("\n", "\r\n"), "utf-16-le")),
    "CSV with CR alone": ("people.csv", CSV.replace("\n", "\r").encode()),
    "JSON in UTF-8 with its BOM": ("people.json", codecs.BOM_UTF8 + JSON.encode()),
    "JSON in UTF-16 LE": ("people.json", utf16(JSON, "utf-16-le")),
    "JSON in UTF-16 BE": ("people.json", utf16(JSON, "utf-16-be")),
    "YAML with an escaped pair": ("people.yaml", YAML.encode()),
    "YAML in UTF-8 with its BOM": ("people.yaml", codecs.BOM_UTF8 + YAML.encode()),
    "YAML in UTF-16 LE": ("people.yaml", utf16(YAML, "utf-16-le")),
    "YAML in UTF-16 BE": ("people.yaml", utf16(YAML, "utf-16-be")),
    "YAML in UTF-32 BE": ("people.yaml", codecs.BOM_UTF32_BE + YAML.encode("utf-32-be")),
    "YAML with CRLF": ("people.yaml", YAML.replace("\n", "\r\n").encode()),
}


@pytest.mark.parametrize(("name", "content"), ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_the_admin_imports_the_people_import_people_imports_from_the_same_text(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    command_import(tmp_path, name, content)
    by_command = stored()
    Person.objects.all().delete()

    admin_import(importer, name, content)

    assert ZOE in by_command
    assert stored() == by_command


def test_a_tsv_file_in_utf16_is_read_as_its_csv_is(importer: Client) -> None:
    admin_import(importer, "people.tsv", utf16(CSV.replace(",", "\t"), "utf-16-le"))

    assert stored() == {ZOE, ("al", "Al", "Sales")}


NOT_TEXT = {
    "CSV in Latin-1": ("people.csv", CSV.replace(" 😀", "").encode("latin-1")),
    "YAML in Latin-1": ("people.yaml", YAML.replace(" \\ud83d\\ude00", "").encode("latin-1")),
    "CSV in UTF-16 without its BOM": ("people.csv", CSV.encode("utf-16-le")),
    "CSV in UTF-32 without its BOM": ("people.csv", CSV.encode("utf-32-le")),
    "JSON in UTF-16 cut short": ("people.json", utf16(JSON, "utf-16-le")[:-1]),
    "CSV with a null character": ("people.csv", CSV.replace("Al,", "Al\0,").encode()),
}


@pytest.mark.parametrize(("name", "content"), NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_the_admin_refuses_the_file_import_people_refuses_saying_why_in_the_same_words(
    importer: Client, tmp_path: Path, name: str, content: bytes
) -> None:
    with pytest.raises(CommandError) as refused:
        command_import(tmp_path, name, content)

    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert str(refused.value) in page.content.decode()  # "people.csv: not UTF-8 text (byte 28); ..."
    assert not confirm_data(page.content.decode())
    assert not Person.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "half"),
    [
        ("people.yaml", b'- {name: "Ann \\ud83d", username: ann}\n', "D83D"),
        ("people.yaml", b'- {name: "Ann \\ude00\\ud83d", username: ann}\n', "DE00"),
        ("people.json", json.dumps([{"name": "Ann \ud83d", "username": "ann"}]).encode(), "D83D"),
    ],
    ids=["YAML, half a pair", "YAML, halves the wrong way round", "JSON, half a pair"],
)
def test_half_of_a_pair_alone_is_refused_naming_the_row(
    importer: Client, name: str, content: bytes, half: str
) -> None:
    page = admin_preview(importer, name, content)

    assert page.status_code == 400
    assert f"Row 1, name: Surrogate characters are not allowed: U+{half}" in page.content.decode()
    assert not Person.objects.exists()
