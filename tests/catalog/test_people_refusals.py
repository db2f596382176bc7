"""What the staff directory refuses of a person on every path that writes
one (the API, the admin's form, ``import_people``, the admin's import), in
the same words: a username whose page a browser cannot reach, text that
would read otherwise on the person's page, more phone numbers than anyone
has, a number with no finite value for text."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import PHONE_LABEL_MAX_LENGTH, PHONE_NUMBERS_MAX, Person
from tests.catalog.test_admin_import_text import admin_import, admin_preview, command_import
from tests.factories import PersonFactory, logged_in, staff_with

pytestmark = pytest.mark.django_db

API = "/api/v1/people/"
ADD = "/admin/catalog/person/add/"


@pytest.fixture
def importer() -> Client:
    return logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))


def person(**fields: Any) -> dict[str, Any]:
    return {"name": "Grace Hopper", "username": "ghopper", **fields}


def admin_form(fields: dict[str, Any]) -> dict[str, str]:
    phone = fields.get("phone", {})
    return {
        **{key: value for key, value in fields.items() if key != "phone"},
        "phone": json.dumps(phone, ensure_ascii=False),
        "is_active": "on",
    }


def refusals(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path, fields: dict[str, Any]
) -> dict[str, Any]:
    """The refusal of a person of ``fields`` on each path, as each says it
    (the API's the errors of its body); nobody is stored by any of them."""
    said: dict[str, Any] = {}

    api = staff.post(API, fields, format="json")
    assert api.status_code == 400, api.json()
    said["api"] = api.json()

    form = admin_client.post(ADD, admin_form(fields))
    assert form.status_code == 200
    said["admin form"] = html.unescape(form.content.decode())

    path = tmp_path / "people.json"
    path.write_text(json.dumps([fields]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)
    said["import_people"] = err.getvalue()

    page = admin_preview(importer, "people.json", json.dumps([fields]).encode())
    assert page.status_code == 400
    said["admin import"] = html.unescape(page.content.decode())

    assert not Person.objects.exists()
    return said


# --- Usernames ----------------------------------------------------------------


@pytest.mark.parametrize("username", [".", ".."])
def test_a_username_of_dots_alone_whose_page_no_browser_reaches_is_refused_on_every_path(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path, username: str
) -> None:
    """Django's username rule allows "." and "..": the directory would link
    /people/./ and /people/../, which browsers read as /people/ and /."""
    said = refusals(staff, admin_client, importer, tmp_path, person(username=username))

    reason = (
        f"A username cannot be {username!r}: a browser takes the address of the person's page "
        f"(/people/{username}/) for another page."
    )
    assert said["api"] == {"username": [reason]}
    assert reason in said["admin form"]
    assert f"rejected {username}: username: {reason}" in said["import_people"]
    assert reason in said["admin import"]


def test_a_person_changed_to_a_username_of_dots_alone_keeps_their_username(
    staff: APIClient, admin_client: Client
) -> None:
    stored = PersonFactory(username="ghopper")

    api = staff.patch(f"{API}{stored.pk}/", {"username": ".."}, format="json")
    form = admin_client.post(f"/admin/catalog/person/{stored.pk}/change/", admin_form(person(username=".")))

    assert api.status_code == 400
    assert "A username cannot be '..'" in api.json()["username"][0]
    assert form.status_code == 200
    assert "A username cannot be '.'" in html.unescape(form.content.decode())
    stored.refresh_from_db()
    assert stored.username == "ghopper"


def test_usernames_with_dots_among_other_characters_are_kept(staff: APIClient) -> None:
    for username in ("...", ".grace", "g.hopper", "hopper."):
        response = staff.post(API, person(username=username), format="json")
        assert response.status_code == 201, response.json()
    assert Person.objects.count() == 4


# --- Usernames in one Unicode form ---------------------------------------------

# "José" typed with a combining accent, and Hangul typed as its letters (jamo):
# each reads as its composed form (NFC) on every page.
JOSE_DECOMPOSED, JOSE = "jose\u0301", "jos\u00e9"
HANGUL_DECOMPOSED, HANGUL = "\u1100\u1161\u11ab", "\uac04"


@pytest.mark.parametrize(
    ("typed", "stored"), [(JOSE_DECOMPOSED, JOSE), (HANGUL_DECOMPOSED, HANGUL)], ids=["accent", "hangul"]
)
def test_a_username_typed_decomposed_is_stored_composed_on_every_path(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path, typed: str, stored: str
) -> None:
    assert typed != stored
    fields = person(username=typed)

    api = staff.post(API, fields, format="json")
    assert api.status_code == 201, api.json()
    assert api.json()["username"] == stored
    assert list(Person.objects.values_list("username", flat=True)) == [stored]
    Person.objects.all().delete()

    form = admin_client.post(ADD, admin_form(fields))
    assert form.status_code == 302, html.unescape(form.content.decode())
    assert list(Person.objects.values_list("username", flat=True)) == [stored]
    Person.objects.all().delete()

    command_import(tmp_path, "people.json", json.dumps([fields]).encode())
    assert list(Person.objects.values_list("username", flat=True)) == [stored]
    Person.objects.all().delete()

    admin_import(importer, "people.json", json.dumps([fields]).encode())
    assert list(Person.objects.values_list("username", flat=True)) == [stored]


def test_a_new_username_that_reads_as_another_s_is_refused_naming_them(
    staff: APIClient, admin_client: Client
) -> None:
    kim = PersonFactory(name="Kim Gan", username=HANGUL)
    fields = person(username=HANGUL_DECOMPOSED)

    api = staff.post(API, fields, format="json")
    form = admin_client.post(ADD, admin_form(fields))

    reason = (
        f"The username {HANGUL!r} is taken by Kim Gan (person {kim.pk}): usernames that read the same "
        "are one, whichever Unicode form they are written in."
    )
    assert api.status_code == 400
    assert api.json() == {"username": [reason]}
    assert form.status_code == 200
    assert reason in html.unescape(form.content.decode())
    assert list(Person.objects.values_list("username", flat=True)) == [HANGUL]


def test_a_change_to_a_username_that_reads_as_another_s_is_refused(staff: APIClient) -> None:
    PersonFactory(name="José Ruiz", username=JOSE)
    other = PersonFactory(username="ghopper")

    response = staff.patch(f"{API}{other.pk}/", {"username": JOSE_DECOMPOSED}, format="json")

    assert response.status_code == 400
    assert "is taken by José Ruiz" in response.json()["username"][0]
    other.refresh_from_db()
    assert other.username == "ghopper"


def test_a_username_kept_decomposed_from_before_is_found_by_a_new_one_that_reads_the_same(
    staff: APIClient,
) -> None:
    kim = PersonFactory(name="Kim Gan", username="kgan")
    Person.objects.filter(pk=kim.pk).update(username=HANGUL_DECOMPOSED)

    response = staff.post(API, person(username=HANGUL), format="json")

    assert response.status_code == 400
    assert response.json()["username"] == [
        f"The username {HANGUL!r} is taken by Kim Gan (person {kim.pk}, stored as "
        f"{HANGUL_DECOMPOSED!a}): usernames that read the same are one, whichever Unicode form "
        "they are written in."
    ]


def test_an_import_of_a_new_username_that_reads_as_one_kept_decomposed_is_refused_naming_them(
    tmp_path: Path, importer: Client
) -> None:
    # The import finds no one by the composed form, so the person would be
    # new: a second person whose username reads the same as Kim's.
    kim = PersonFactory(name="Kim Gan", username="kgan")
    Person.objects.filter(pk=kim.pk).update(username=HANGUL_DECOMPOSED)
    content = json.dumps([person(username=HANGUL, name="Other")]).encode()
    reason = (
        f"The username {HANGUL!r} is taken by Kim Gan (person {kim.pk}, stored as "
        f"{HANGUL_DECOMPOSED!a}): usernames that read the same are one, whichever Unicode form "
        "they are written in."
    )

    path = tmp_path / "people.json"
    path.write_bytes(content)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)
    assert reason in err.getvalue()

    page = admin_preview(importer, "people.json", content)
    assert page.status_code == 400
    assert reason in html.unescape(page.content.decode())
    assert list(Person.objects.values_list("username", "name")) == [(HANGUL_DECOMPOSED, "Kim Gan")]


def test_an_import_finds_the_person_by_their_username_typed_decomposed(
    tmp_path: Path, importer: Client
) -> None:
    jose = PersonFactory(name="José Ruiz", username=JOSE, email="jose@example.com", role="Chef")

    command_import(
        tmp_path, "people.json", json.dumps([person(username=JOSE_DECOMPOSED, role="Cook")]).encode()
    )
    assert list(Person.objects.values_list("pk", "username", "role")) == [(jose.pk, JOSE, "Cook")]

    admin_import(
        importer, "people.json", json.dumps([person(username=JOSE_DECOMPOSED, role="Baker")]).encode()
    )
    assert list(Person.objects.values_list("pk", "username", "role")) == [(jose.pk, JOSE, "Baker")]


def test_a_file_giving_a_username_twice_in_two_forms_is_refused_on_the_second_row(tmp_path: Path) -> None:
    rows = [person(username=JOSE, name="José Ruiz"), person(username=JOSE_DECOMPOSED, name="Other")]
    path = tmp_path / "people.json"
    path.write_text(json.dumps(rows))
    err = io.StringIO()

    with pytest.raises(CommandError, match="1 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)

    assert f"username: {JOSE} is on row 1 already" in err.getvalue()
    assert list(Person.objects.values_list("name", flat=True)) == ["José Ruiz"]


def test_the_person_s_page_at_the_decomposed_address_redirects_to_their_own(client: Client) -> None:
    PersonFactory(username=JOSE)

    response = client.get("/people/jose%CC%81/")

    assert response.status_code == 301
    assert response["Location"] == "/people/jos%C3%A9/"
    assert client.get(response["Location"]).status_code == 200


def test_a_person_kept_with_a_decomposed_username_is_found_at_their_own_address(client: Client) -> None:
    kim = PersonFactory(username="kgan")
    Person.objects.filter(pk=kim.pk).update(username=HANGUL_DECOMPOSED)

    response = client.get(kim.get_absolute_url().replace("kgan", HANGUL_DECOMPOSED))

    assert response.status_code == 200
    assert response.context["person"] == kim


# --- Control characters -------------------------------------------------------

# A null character is refused on each path before its text is read
# (tests/security/test_null_characters.py).


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", "Grace\tHopper", "0009"),
        ("role", "Rear\nAdmiral", "000A"),
        ("department", "Navy\x1b[31m", "001B"),
        ("name", "Grace\x7fHopper", "007F"),
        ("role", "Adm\x85iral", "0085"),
        ("department", "Na\x9fvy", "009F"),
    ],
)
def test_a_person_whose_text_holds_a_control_character_is_refused_on_every_path_naming_it(
    staff: APIClient,
    admin_client: Client,
    importer: Client,
    tmp_path: Path,
    field: str,
    value: str,
    code: str,
) -> None:
    said = refusals(staff, admin_client, importer, tmp_path, person(**{field: value}))

    reason = f"The text cannot contain the control character U+{code}."
    assert said["api"] == {field: [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: {field}: {reason}" in said["import_people"]
    assert reason in said["admin import"]


@pytest.mark.parametrize(
    ("value", "named"),
    [("Grace\u2028Hopper", "line separator U+2028"), ("Grace\u2029Hopper", "paragraph separator U+2029")],
)
def test_a_person_whose_name_breaks_its_line_with_a_separator_is_refused_on_every_path_naming_it(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path, value: str, named: str
) -> None:
    """Unicode's line and paragraph separators break a line as a line feed
    does, which a name of one line refuses."""
    said = refusals(staff, admin_client, importer, tmp_path, person(name=value))

    reason = f"The text cannot contain the {named}, which breaks it into two lines on screen."
    assert said["api"] == {"name": [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: name: {reason}" in said["import_people"]
    assert reason in said["admin import"]


@pytest.mark.parametrize("space", ["\t", "\r\n", "\v", "\f", "\x85", "\u2028", "\u2029"])
def test_breaks_and_spaces_around_a_name_are_trimmed_not_refused(staff: APIClient, space: str) -> None:
    """What a pasted cell brings around a name (its line break, a tab) is no
    part of it: left out, as spaces are, where inside it is refused."""
    response = staff.post(API, person(name=f"{space}Grace Hopper{space}"), format="json")

    assert response.status_code == 201, response.json()
    assert Person.objects.get().name == "Grace Hopper"


def test_a_username_holding_a_control_character_is_refused_naming_it(staff: APIClient) -> None:
    response = staff.post(API, person(username="gra\x85ce"), format="json")

    assert response.status_code == 400
    assert "The text cannot contain the control character U+0085." in response.json()["username"]
    assert not Person.objects.exists()


@pytest.mark.parametrize(
    ("username", "shown"),
    [
        # A terminal's escape: it would set the title of the window the
        # import runs in, and hide what follows.
        ("gh\x1b]0;done\x07", "gh\\x1b]0;done\\x07"),
        # A line break would make a line of the output look like another's.
        ("gh\nrejected nobody", "gh\\nrejected nobody"),
        ("gh\u2028x", "gh\\u2028x"),
        ("gh\ud800", "gh\\ud800"),
    ],
)
def test_import_people_names_a_row_by_its_username_with_what_would_not_print_escaped(
    tmp_path: Path, username: str, shown: str
) -> None:
    path = tmp_path / "people.json"
    path.write_text(json.dumps([person(username=username), person(username=username)]))
    err = io.StringIO()

    with pytest.raises(CommandError, match="2 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"rejected {shown}: username: ")
    assert lines[1].startswith(f"rejected {shown}: username: ")
    assert all(line.isprintable() for line in lines)


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ({"off\x1bice": "555"}, "The phone label 'off\\x1bice' cannot contain the control character U+001B."),
        ({"office": "555\x07"}, "The 'office' number cannot contain the control character U+0007."),
    ],
)
def test_a_phone_whose_label_or_number_holds_a_control_character_is_refused_on_every_path(
    staff: APIClient,
    admin_client: Client,
    importer: Client,
    tmp_path: Path,
    phone: dict[str, str],
    reason: str,
) -> None:
    said = refusals(staff, admin_client, importer, tmp_path, person(phone=phone))

    assert said["api"] == {"phone": [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: phone: {reason}" in said["import_people"]
    assert reason in said["admin import"]


# --- Direction controls -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "control"),
    [("name", "\u202e"), ("role", "\u202d"), ("department", "\u2067"), ("email", "\u202b")],
)
def test_a_person_whose_text_would_read_as_another_s_is_refused_on_every_path(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path, field: str, control: str
) -> None:
    # "Grace Hopper" in the directory, for a name of other letters.
    value = f"grace@exam{control}moc.elp" if field == "email" else f"Grace {control}reppoH"
    said = refusals(staff, admin_client, importer, tmp_path, person(**{field: value}))

    reason = f"The text cannot contain the direction control U+{ord(control):04X}, which changes how it reads on screen."
    assert said["api"] == {field: [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: {field}: {reason}" in said["import_people"]
    assert reason in said["admin import"]


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        (
            {"office\u202e": "555"},
            "The phone label 'office\\u202e' cannot contain the direction control U+202E",
        ),
        ({"office": "555\u2066"}, "The 'office' number cannot contain the direction control U+2066"),
    ],
)
def test_a_phone_whose_label_or_number_would_read_otherwise_is_refused_on_every_path(
    staff: APIClient,
    admin_client: Client,
    importer: Client,
    tmp_path: Path,
    phone: dict[str, str],
    reason: str,
) -> None:
    said = refusals(staff, admin_client, importer, tmp_path, person(phone=phone))

    assert said["api"] == {"phone": [f"{reason}, which changes how it reads on screen."]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: phone: {reason}" in said["import_people"]
    assert reason in said["admin import"]


def test_names_in_right_to_left_scripts_and_their_marks_are_kept(staff: APIClient) -> None:
    name = "\u05d2\u05e8\u05d9\u05d9\u05e1 \u05d4\u05d5\u05e4\u05e8\u200f (Grace)"  # Hebrew, with a right-to-left mark
    response = staff.post(API, person(name=name, role="\u0645\u0647\u0646\u062f\u0633\u0629"), format="json")
    assert response.status_code == 201, response.json()
    assert Person.objects.get().name == name


# --- Phone numbers ------------------------------------------------------------


def phones(count: int) -> dict[str, str]:
    return {f"line {n}": f"802-555-{n:04d}" for n in range(1, count + 1)}


def test_a_person_has_at_most_so_many_phone_numbers_on_every_path(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path
) -> None:
    said = refusals(staff, admin_client, importer, tmp_path, person(phone=phones(PHONE_NUMBERS_MAX + 1)))

    reason = f"A person has at most {PHONE_NUMBERS_MAX} phone numbers, not {PHONE_NUMBERS_MAX + 1}."
    assert said["api"] == {"phone": [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: phone: {reason}" in said["import_people"]
    assert reason in said["admin import"]

    allowed = staff.post(API, person(phone=phones(PHONE_NUMBERS_MAX)), format="json")
    assert allowed.status_code == 201
    assert len(Person.objects.get().phone) == PHONE_NUMBERS_MAX


def test_a_change_that_adds_a_number_past_the_limit_keeps_the_numbers_as_they_were(staff: APIClient) -> None:
    stored = PersonFactory(phone=phones(PHONE_NUMBERS_MAX))
    response = staff.patch(f"{API}{stored.pk}/", {"phone": phones(PHONE_NUMBERS_MAX + 1)}, format="json")
    assert response.status_code == 400
    stored.refresh_from_db()
    assert stored.phone == phones(PHONE_NUMBERS_MAX)


def test_a_phone_label_longer_than_the_limit_is_refused_on_every_path(
    staff: APIClient, admin_client: Client, importer: Client, tmp_path: Path
) -> None:
    """Twenty numbers bound nothing if each label may be a megabyte: the
    person's page lists every one. The refusal shows the label's start."""
    label = "x" * 5000
    said = refusals(staff, admin_client, importer, tmp_path, person(phone={label: "555"}))

    reason = f"The phone label {'x' * 60!r}… (5,000 characters) is longer than {PHONE_LABEL_MAX_LENGTH} characters."
    assert said["api"] == {"phone": [reason]}
    assert reason in said["admin form"]
    assert f"rejected ghopper: phone: {reason}" in said["import_people"]
    assert reason in said["admin import"]
    assert label not in said["import_people"]

    longest = {"y" * PHONE_LABEL_MAX_LENGTH: "555"}
    assert staff.post(API, person(phone=longest), format="json").status_code == 201
    assert Person.objects.get().phone == longest


# --- Numbers where text goes --------------------------------------------------

NOT_FINITE = {
    "JSON 1e400 as the name": (
        "people.json",
        b'[{"name": 1e400, "username": "ann"}]',
        "person 1: name must be text or a finite number, not inf",
    ),
    "JSON NaN as the role": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "role": NaN}]',
        "person 1: role must be text or a finite number, not nan",
    ),
    "JSON -Infinity as a phone number": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "phone": {"cell": -Infinity}}]',
        "person 1: the phone number for 'cell' must be text or a finite number, not -inf",
    ),
    "JSON NaN as the phone": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "phone": NaN}]',
        "person 1: phone must be text or a mapping of label to number, not nan",
    ),
    "YAML .inf as the department": (
        "people.yaml",
        b"- {name: Ann, username: ann, department: .inf}\n",
        "person 1: department must be text or a finite number, not inf",
    ),
    "YAML .nan as a phone label": (
        "people.yaml",
        b"- {name: Ann, username: ann, phone: {.nan: 555}}\n",
        "person 1: the label of the phone number '555' must be text, not the number nan: quote it",
    ),
}

# A phone label YAML reads as no text: stored, ``str`` made another label of
# it than the file shows ("True", "None", "90").
NOT_TEXT_LABELS = {
    "yes": ("{yes: 555}", "true (as YAML reads an unquoted yes, on or true)"),
    "On": ("{On: 555}", "true (as YAML reads an unquoted yes, on or true)"),
    "true": ("{true: 555}", "true (as YAML reads an unquoted yes, on or true)"),
    "no": ("{no: 555}", "false (as YAML reads an unquoted no, off or false)"),
    "off": ("{cell: 556, off: 555}", "false (as YAML reads an unquoted no, off or false)"),
    "~": ("{~: 555}", "null"),
    "null": ("\n    cell: 556\n    null: 555", "null"),
    "a number": ("{2: 555}", "the number 2"),
    "a number of minutes": ("{1:30: 555}", "the number 90"),
    "a hexadecimal number": ("{0x1F: 555}", "the number 31"),
    "a date": ("{2024-01-02: 555}", "the date 2024-01-02"),
}


@pytest.mark.parametrize(("phone", "label"), NOT_TEXT_LABELS.values(), ids=NOT_TEXT_LABELS.keys())
def test_a_yaml_phone_label_that_is_not_text_is_refused_saying_to_quote_it(
    importer: Client, tmp_path: Path, phone: str, label: str
) -> None:
    content = f"- name: Ann\n  username: ann\n  phone: {phone}\n".encode()
    reason = f"person 1: the label of the phone number '555' must be text, not {label}: quote it"
    assert_file_refused(importer, tmp_path, "people.yaml", content, reason)


def test_a_quoted_yaml_phone_label_is_the_text_it_shows_on_both_paths(
    importer: Client, tmp_path: Path
) -> None:
    content = b"- {name: Ann, username: ann, phone: {'yes': 555, \"~\": 556, '1:30': 557}}\n"
    phone = {"yes": "555", "~": "556", "1:30": "557"}
    command_import(tmp_path, "people.yaml", content)
    assert list(Person.objects.values_list("phone", flat=True)) == [phone]

    Person.objects.all().delete()
    admin_import(importer, "people.yaml", content)
    assert list(Person.objects.values_list("phone", flat=True)) == [phone]


def assert_file_refused(importer: Client, tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    """``import_people`` and the admin's import both refuse the file ``name``
    of ``content`` whole, in the same words, storing nobody."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError) as refused:
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert str(refused.value) == f"{name}: {reason}"

    page = admin_preview(importer, name, content)
    assert page.status_code == 400
    assert f"{name}: {reason}" in html.unescape(page.content.decode())
    assert not Person.objects.exists()


@pytest.mark.parametrize(("name", "content", "reason"), NOT_FINITE.values(), ids=NOT_FINITE.keys())
def test_a_number_of_no_finite_value_where_text_goes_is_refused_naming_the_field(
    importer: Client, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    """The file is refused whole, as one giving a list there is, by both
    YAML readers: stored, ``str`` made "inf" or "nan" of it."""
    assert_file_refused(importer, tmp_path, name, content, reason)


def test_a_json_number_too_long_to_read_is_refused_naming_its_line_and_column(
    importer: Client, tmp_path: Path
) -> None:
    content = b'[{"name": "Ann", "username": "ann"},\n {"name": "Bob", "username": ' + b"9" * 5000 + b"}]"
    reason = "not valid JSON: a number longer than 4,300 digits: line 2 column 30 (char 66)"
    assert_file_refused(importer, tmp_path, "people.json", content, reason)


def test_a_finite_number_where_text_goes_is_still_the_text_it_reads_as(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text('[{"name": "Ann", "username": 1042, "role": 7, "phone": {"office": 8028675309}}]')
    call_command("import_people", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert list(Person.objects.values_list("username", "role", "phone")) == [
        ("1042", "7", {"office": "8028675309"})
    ]


YAML_NUMBERS = (
    b"- name: 0755\n  username: 0123\n"
    b"  phone: {office: 0201234567, cell: +447700900123, desk: 867.5300, fax: 1_000, home: 8028675309}\n"
)


@pytest.mark.parametrize("path", ["command", "admin"])
def test_a_yaml_number_where_text_goes_is_the_text_the_file_shows(
    importer: Client, tmp_path: Path, yaml_reader: str, path: str
) -> None:
    """Not the number YAML reads: an octal 33896823 of ``0201234567``, the
    ``+`` dropped, the zeros of a fraction dropped."""
    if path == "command":
        command_import(tmp_path, "people.yaml", YAML_NUMBERS)
    else:
        admin_import(importer, "people.yaml", YAML_NUMBERS)
    assert list(Person.objects.values_list("name", "username", "phone")) == [
        (
            "0755",
            "0123",
            {
                "office": "0201234567",
                "cell": "+447700900123",
                "desk": "867.5300",
                "fax": "1_000",
                "home": "8028675309",
            },
        )
    ]


def test_a_json_number_with_a_fraction_where_text_goes_is_the_text_the_file_shows(tmp_path: Path) -> None:
    command_import(
        tmp_path, "people.json", b'[{"name": "Ann", "username": "ann", "phone": {"desk": 867.5300}}]'
    )
    assert list(Person.objects.values_list("phone", flat=True)) == [{"desk": "867.5300"}]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("people.csv", b'name,username,phone\nAnn,ann,"{""desk"": 867.5300}"\n'),
        ("people.tsv", b'name\tusername\tphone\nAnn\tann\t{"desk": 867.5300}\n'),
    ],
)
def test_a_json_number_with_a_fraction_in_a_phone_cell_is_the_text_the_cell_shows(
    tmp_path: Path, name: str, content: bytes
) -> None:
    """As a JSON file's: a cell's JSON is read by the same rule."""
    command_import(tmp_path, name, content)
    assert list(Person.objects.values_list("phone", flat=True)) == [{"desk": "867.5300"}]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_the_api_refuses_a_number_of_no_finite_value_as_no_json_it_reads(
    staff: APIClient, number: str
) -> None:
    body = f'{{"name": {number}, "username": "ann", "phone": {{"cell": {number}}}}}'
    response = staff.post(API, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")
    assert not Person.objects.exists()


YES_OR_NO = "yes or no (yes, y, true, on, 1; no, n, false, off, 0)"
NOT_YES_OR_NO = {
    "a CSV word for neither": ("people.csv", b"name,username,is_active\nAnn,ann,maybe\n", "'maybe'"),
    "a CSV typo of true": ("people.csv", b"name,username,is_active\nAnn,ann, Ture \n", "'Ture'"),
    "a CSV nan": ("people.csv", b"name,username,is_active\nAnn,ann,nan\n", "'nan'"),
    "a CSV f": ("people.csv", b"name,username,is_active\nAnn,ann,f\n", "'f'"),
    "a JSON 2": ("people.json", b'[{"name": "Ann", "username": "ann", "is_active": 2}]', "2"),
    "a JSON 0.5": ("people.json", b'[{"name": "Ann", "username": "ann", "is_active": 0.5}]', "0.5"),
    "a JSON list": ("people.json", b'[{"name": "Ann", "username": "ann", "is_active": ["no"]}]', "list"),
    "a YAML date": ("people.yaml", b"- {name: Ann, username: ann, is_active: 2024-01-02}\n", "date"),
    "JSON NaN": ("people.json", b'[{"name": "Ann", "username": "ann", "is_active": NaN}]', "nan"),
    "JSON 1e400": ("people.json", b'[{"name": "Ann", "username": "ann", "is_active": 1e400}]', "inf"),
    "JSON -Infinity": (
        "people.json",
        b'[{"name": "Ann", "username": "ann", "is_active": -Infinity}]',
        "-inf",
    ),
    "YAML .nan": ("people.yaml", b"- {name: Ann, username: ann, is_active: .nan}\n", "nan"),
    "YAML .inf": ("people.yaml", b"- {name: Ann, username: ann, is_active: .inf}\n", "inf"),
}


@pytest.mark.parametrize(("name", "content", "value"), NOT_YES_OR_NO.values(), ids=NOT_YES_OR_NO.keys())
def test_an_is_active_neither_yes_nor_no_is_refused_naming_the_field_and_its_words(
    importer: Client, tmp_path: Path, name: str, content: bytes, value: str
) -> None:
    """Read as yes, a typo meant for no made a person the file meant to hide
    one the directory shows."""
    reason = f"person 1: is_active must be {YES_OR_NO}, not {value}"
    assert_file_refused(importer, tmp_path, name, content, reason)


YES_AND_NO = {
    "yes": True, " YES ": True, "y": True, "True": True, "on": True, "1": True,
    "no": False, "N": False, "FALSE": False, " off ": False, "0": False,
}  # fmt: skip


@pytest.mark.parametrize(("word", "active"), YES_AND_NO.items(), ids=YES_AND_NO.keys())
def test_each_word_for_yes_or_no_is_read_as_before_on_both_paths(
    importer: Client, tmp_path: Path, word: str, active: bool
) -> None:
    content = f"name,username,is_active\nAnn,ann,{word}\n".encode()
    command_import(tmp_path, "people.csv", content)
    assert list(Person.objects.values_list("is_active", flat=True)) == [active]

    Person.objects.all().delete()
    admin_import(importer, "people.csv", content)
    assert list(Person.objects.values_list("is_active", flat=True)) == [active]


@pytest.mark.parametrize(
    ("value", "active"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("1.0", True),
        ("0.0", False),
        ('" no "', False),
    ],
)
def test_a_json_boolean_or_the_number_1_or_0_is_read_as_yes_or_no(
    tmp_path: Path, value: str, active: bool
) -> None:
    command_import(
        tmp_path, "people.json", f'[{{"name": "Ann", "username": "ann", "is_active": {value}}}]'.encode()
    )
    assert list(Person.objects.values_list("is_active", flat=True)) == [active]


def test_a_blank_is_active_leaves_the_stored_value_alone(tmp_path: Path) -> None:
    PersonFactory(username="ann", is_active=False)
    command_import(tmp_path, "people.csv", b"name,username,is_active\nAnn,ann,  \n")
    assert list(Person.objects.values_list("is_active", flat=True)) == [False]
