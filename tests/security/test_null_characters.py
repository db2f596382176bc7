"""A null character, or a lone surrogate, reaches no row by any road: forms and
DRF refuse them in text, and the models refuse them everywhere else (JSON
escapes, phone labels, imports). PostgreSQL would store neither, so it must be
a refusal naming the field, not a database error."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import Person, Product
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


def test_import_people_refuses_a_null_escaped_in_json(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"name": "Ann\u0000", "username": "ann", "phone": {"office\u0000": "1"}}]))

    with pytest.raises(CommandError) as raised:
        call_command("import_people", str(path))

    assert raised.value.returncode == 2
    assert not Person.objects.filter(username="ann").exists()


@pytest.mark.parametrize(
    ("phone", "body"),
    [
        ({"office": "555\u0000"}, "json"),
        ({"office\u0000": "555"}, "json"),
        ("office: 555\u0000", "multipart"),
    ],
)
def test_the_api_refuses_a_null_in_a_phone(token_client: APIClient, phone: object, body: str) -> None:
    response = token_client.post(
        "/api/v1/people/", {"name": "Bo", "username": "bo", "phone": phone}, format=body
    )

    assert response.status_code == 400
    assert "Null characters are not allowed." in json.dumps(response.json()["phone"])
    assert not Person.objects.filter(username="bo").exists()


def test_an_update_with_a_null_in_a_phone_keeps_the_old_numbers(token_client: APIClient) -> None:
    person = PersonFactory(phone={"office": "555"})

    response = token_client.patch(
        f"/api/v1/people/{person.pk}/", {"phone": {"cell": "1\u0000"}}, format="json"
    )

    assert response.status_code == 400
    person.refresh_from_db()
    assert person.phone == {"office": "555"}


def test_the_course_endpoint_refuses_a_null_in_a_description(client: Client) -> None:
    body = {"name": "Kiwi", "weight": 5, "description": "Green\u0000", "image_name": "010.jpeg"}

    response = client.post("/fruits/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert "Null characters are not allowed." in response.content.decode()
    assert not Product.objects.filter(name="Kiwi").exists()


@pytest.mark.parametrize(
    "person",
    [
        {"name": "Ann\ud800", "username": "ann"},
        {"name": "Ann", "username": "ann\udc80"},
        {"name": "Ann", "username": "ann", "phone": {"office\ud83d": "1"}},
        {"name": "Ann", "username": "ann", "phone": {"office": "1\ude00"}},
    ],
    ids=["name", "username", "phone label", "phone number"],
)
def test_import_people_refuses_a_lone_surrogate_escaped_in_json(
    tmp_path: Path, person: dict[str, object]
) -> None:
    # Half of an emoji's UTF-16 pair, as a JSON writer that cut the pair in two escapes it.
    path = tmp_path / "people.json"
    path.write_text(json.dumps([person, {"name": "Bo", "username": "bo"}]))
    err = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("import_people", str(path), stderr=err)

    assert raised.value.returncode == 2
    assert "Surrogate characters are not allowed: U+D" in err.getvalue()
    assert list(Person.objects.values_list("username", flat=True)) == ["bo"]
