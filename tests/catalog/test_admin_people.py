"""Staff editing people in the admin: phone numbers are kept in the one shape
every path stores and the export and the API read, numbers by label."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import factory
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services
from catalog.models import Person
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/catalog/person/add/"
CHANGELIST = "/admin/catalog/person/"


def form(phone: Any) -> dict[str, str]:
    return {
        "name": "Grace Hopper",
        "username": "ghopper",
        "email": "grace@example.com",
        "phone": phone if isinstance(phone, str) else json.dumps(phone),
        "department": "Engineering",
        "role": "Admiral",
        "is_active": "on",
    }


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        (
            {"office": "802-867-5309", "cell": " 802-867-5310 "},
            {"office": "802-867-5309", "cell": "802-867-5310"},
        ),
        ('"802-555"', {"office": "802-555"}),
        ("office: 802-555-1234", {"office": "802-555-1234"}),
        ("office: 555; cell: 556", {"office": "555", "cell": "556"}),
        ("802-555-1234", {"office": "802-555-1234"}),
        ({"office": 8028675309, "fax": ""}, {"office": "8028675309"}),
        ("office: 8028675309; fax:", {"office": "8028675309"}),
        ("", {}),
    ],
)
def test_phones_are_stored_as_numbers_by_label(
    admin_client: Client, phone: Any, stored: dict[str, str]
) -> None:
    response = admin_client.post(ADD, form(phone))
    assert response.status_code == 302
    assert Person.objects.get().phone == stored


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ([1, 2, 3], "phone must be text or a mapping of label to number"),
        ({"office": {"ext": "12"}}, "the phone number for &#x27;office&#x27; must be text"),
        ({"office": ["802-867-5309"]}, "the phone number for &#x27;office&#x27; must be text"),
        ({"office": "8" * 41}, "The &#x27;office&#x27; number is longer than 40 characters."),
        ('{"office": 555', "phone is not valid JSON: &#x27;{&quot;office&quot;: 555&#x27;"),
        ({" ": "555"}, "the phone number &#x27;555&#x27; has a blank label"),
        ("office: 555; : 556", "the phone number &#x27;556&#x27; has a blank label"),
    ],
)
def test_other_shapes_of_phone_are_refused_with_the_reason(
    admin_client: Client, phone: Any, reason: str
) -> None:
    response = admin_client.post(ADD, form(phone))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter phone numbers by label" in page or "number is longer" in page
    assert reason in page
    assert not Person.objects.exists()


def test_people_export_even_with_a_phone_saved_in_another_shape(admin_client: Client) -> None:
    PersonFactory(username="ada", phone={"office": "1"})
    PersonFactory(username="odd", phone=[1, 2, 3])
    page = admin_client.get("/admin/catalog/person/export/")
    response = admin_client.post(
        "/admin/catalog/person/export/",
        {"format": "0", "resource": "0", "personresource_username": "on", "personresource_phone": "on"},
    )
    assert page.status_code == response.status_code == 200
    # Listed in the admin's order (department, then name): the factory's names are random.
    assert sorted(response.getvalue().decode().splitlines()[1:]) == ["ada,office: 1", 'odd,"[1, 2, 3]"']


def test_the_phone_field_says_the_shape_it_reads(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    assert "Numbers by label, e.g. “office: 802-867-5309; cell: 802-867-5310”" in page
    refused = admin_client.post(ADD, form('{"office": 555')).content.decode()
    assert "Enter phone numbers by label, e.g. “office: 802-867-5309; cell: 802-867-5310”" in refused
    assert "Enter a valid JSON" not in refused


def test_the_change_page_shows_the_phones_as_labelled_text(admin_client: Client) -> None:
    person = PersonFactory(phone={"office": "802-867-5309", "cell": "802-867-5310"})
    page = admin_client.get(f"/admin/catalog/person/{person.pk}/change/").content.decode()
    assert 'value="office: 802-867-5309; cell: 802-867-5310"' in page
    # Saved back unchanged, the numbers are as they were.
    response = admin_client.post(
        f"/admin/catalog/person/{person.pk}/change/",
        {**form("office: 802-867-5309; cell: 802-867-5310"), "username": person.username},
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.phone == {"office": "802-867-5309", "cell": "802-867-5310"}


def test_phones_that_labelled_text_would_change_are_shown_and_saved_back_as_json(
    admin_client: Client,
) -> None:
    phones = {"Home: Berlin": "030 1234", "cell": "555; ext 2"}
    person = PersonFactory(phone=phones)
    page = admin_client.get(f"/admin/catalog/person/{person.pk}/change/").content.decode()
    found = re.search(r'name="phone" value="([^"]*)"', page)
    assert found
    shown = html.unescape(found.group(1))
    assert json.loads(shown) == phones
    response = admin_client.post(
        f"/admin/catalog/person/{person.pk}/change/", {**form(shown), "username": person.username}
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.phone == phones


def test_a_phone_saved_in_another_shape_is_shown_as_json(admin_client: Client) -> None:
    person = PersonFactory(phone=[1, 2, 3])
    page = admin_client.get(f"/admin/catalog/person/{person.pk}/change/").content.decode()
    assert 'value="[1, 2, 3]"' in page


def _filter_is_open(html: str, title: str) -> bool:
    found = re.search(rf'<details data-filter-title="{title}"( open)?>', html)
    assert found, f"no {title} filter"
    return found.group(1) is not None


def test_a_filter_with_a_screenful_of_roles_starts_folded(admin_client: Client) -> None:
    """Thousands of people may have as many roles: the role filter is folded
    past a screenful of them, open while one is chosen; a short one stays open."""
    PersonFactory.create_batch(30, department="Sales", role=factory.Sequence(lambda n: f"Role {n}"))
    html = admin_client.get(CHANGELIST).content.decode()
    assert not _filter_is_open(html, "role")
    assert _filter_is_open(html, "department")
    assert html.count("?role=Role+") == 30  # every role is still there, a click away

    chosen = admin_client.get(CHANGELIST, {"role": "Role 7"}).content.decode()
    assert _filter_is_open(chosen, "role")


def _people(client: Client, **query: str) -> set[str]:
    response = client.get(CHANGELIST, query)
    assert response.status_code == 200
    return {person.username for person in response.context["cl"].result_list}


def test_the_people_list_is_searched_by_name_username_and_email(admin_client: Client) -> None:
    PersonFactory(name="Ada Lovelace", username="alovelace", email="countess@example.org")
    PersonFactory(name="Grace Hopper", username="ghopper", email="grace@navy.example")
    PersonFactory(name="Alan Turing", username="aturing", email="alan@example.com", role="Lovelace scholar")
    assert _people(admin_client, q="lovelace") == {"alovelace"}  # the name, not the role
    assert _people(admin_client, q="ghopp") == {"ghopper"}
    assert _people(admin_client, q="navy.example") == {"ghopper"}


def test_the_people_list_filters_by_department_and_role(admin_client: Client) -> None:
    PersonFactory(username="ada", department="Engineering", role="Lead")
    PersonFactory(username="kofi", department="Engineering", role="Developer")
    PersonFactory(username="mia", department="Sales", role="Lead")
    page = admin_client.get(CHANGELIST).content.decode()
    assert 'href="?department=Sales"' in page
    assert 'href="?role=Developer"' in page
    assert _people(admin_client, department="Engineering") == {"ada", "kofi"}
    assert _people(admin_client, role="Lead") == {"ada", "mia"}
    assert _people(admin_client, department="Engineering", role="Lead") == {"ada"}


def test_the_filtered_and_searched_people_list_reads_each_person_once_without_distinct(
    admin_client: Client,
) -> None:
    # Its filters and searched fields are columns of the person: none reaches
    # a to-many relation, for which the admin would read the list DISTINCT.
    PersonFactory(username="ada", name="Ada Lovelace", department="Engineering", role="Lead")
    PersonFactory(username="alan", name="Alan Turing", department="Engineering", role="Developer")
    PersonFactory(username="mia", name="Mia Lovelace", department="Sales", role="Lead")
    query = {"department": "Engineering", "role": "Lead", "is_active__exact": "1", "q": "lovelace"}

    with CaptureQueriesContext(connection) as ran:
        response = admin_client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert [person.username for person in response.context["cl"].result_list] == ["ada"]
    list_reads = [q["sql"] for q in ran if '"catalog_person"."username"' in q["sql"]]
    assert list_reads
    assert not [sql for sql in list_reads if "DISTINCT" in sql]


def test_a_demo_person_changed_in_the_admin_is_made_real_and_kept_by_seed_demo_remove(
    admin_client: Client,
) -> None:
    """As a real import of their username makes them real, and a change to a
    demo product does: the person staff edited is no longer the demo's to take."""
    demo = PersonFactory(is_demo=True, username="ghopper")

    response = admin_client.post(f"{CHANGELIST}{demo.pk}/change/", form(""))

    assert response.status_code == 302
    demo.refresh_from_db()
    assert (demo.is_demo, demo.role) == (False, "Admiral")
    services.demo_remove()
    assert Person.objects.filter(pk=demo.pk).exists()
