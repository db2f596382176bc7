"""Odd files in the bulk imports on PostgreSQL, which refuses what SQLite
stores (a null character in text, a lone surrogate anywhere): each is a line
of import_people naming the person and the field, the other rows imported,
or the admin's refusal of the file naming the row; never a traceback or a
server error with the rows before it written."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from catalog import services
from catalog.models import Person, Product
from tests.catalog.test_admin_import_export import PERSON_IMPORT, choice
from tests.factories import logged_in, staff_with
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    ("person", "refusal"),
    [
        ({"name": "Ann", "username": "ann\u0000"}, "username: Null characters are not allowed."),
        ({"name": "Ann\ud800", "username": "ann"}, "name: Surrogate characters are not allowed: U+D800."),
        ({"name": "Ann", "username": "ann\udc80"}, "username: Surrogate characters are not allowed: U+DC80."),
        (
            {"name": "Ann", "username": "ann", "phone": {"office": "1\udc80"}},
            "phone: Surrogate characters are not allowed: U+DC80.",
        ),
    ],
    ids=["null in a username", "surrogate in a name", "surrogate in a username", "surrogate in a phone"],
)
def test_import_people_refuses_text_postgresql_cannot_store_and_imports_the_others(
    postgres_database: PostgresServer, tmp_path: Path, person: dict[str, object], refusal: str
) -> None:
    # A JSON file's escapes (\u0000, half of a UTF-16 pair) reach the rows, which no decoding refused.
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"name": "Al", "username": "al"}, person, {"name": "Bo", "username": "bo"}]))
    err = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("import_people", str(path), stdout=StringIO(), stderr=err)

    assert raised.value.returncode == 2
    assert refusal in err.getvalue()
    assert sorted(Person.objects.values_list("username", flat=True)) == ["al", "bo"]


@pytest.mark.parametrize(
    ("people", "refusal"),
    [
        ([{"name": "Ann", "username": "ann\u0000"}], "Row 1, username: Null characters are not allowed."),
        (
            [{"name": "Bo", "username": "bo"}, {"name": "Ann\ud800", "username": "ann"}],
            "Row 2, name: Surrogate characters are not allowed: U+D800.",
        ),
        (
            [{"name": "Ann", "username": "ann\udc80"}],
            "Row 1, username: Surrogate characters are not allowed: U+DC80.",
        ),
    ],
    ids=["null in a username", "surrogate in a name", "surrogate in a username"],
)
def test_the_admin_import_refuses_a_file_with_text_postgresql_cannot_store(
    postgres_database: PostgresServer, people: list[dict[str, str]], refusal: str
) -> None:
    client = logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))
    page = client.get(PERSON_IMPORT)
    upload = SimpleUploadedFile("people.json", json.dumps(people).encode(), content_type="application/json")

    response = client.post(
        PERSON_IMPORT, {"format": choice(page.content.decode(), "json"), "import_file": upload}
    )

    assert response.status_code == 400
    assert refusal in response.content.decode()
    assert not Person.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [({"name": "Kiwi\u0000"}, "name"), ({"name": "Kiwi", "image_name": "kiwi\ud800.jpg"}, "image_name")],
    ids=["null in a name", "surrogate in an image name"],
)
def test_a_product_looked_up_by_text_postgresql_cannot_store_is_refused_naming_the_field(
    postgres_database: PostgresServer, values: dict[str, str], field: str
) -> None:
    # Every road to it refuses such text before (forms, DRF, the files' decoding);
    # the lookup by name or stem that comes before full_clean() refuses it too.
    with pytest.raises(ValidationError) as raised:
        services.product_upsert(weight=1, **values)

    assert field in raised.value.message_dict
    assert not Product.objects.exists()
