"""The people API (``/api/v1/people/``): permissions, who is listed, validation,
filters."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Person
from tests.factories import ImageFactory, PersonFactory, ProductFactory, UserFactory, api_key, jpeg_bytes
from uploads.models import Image

pytestmark = pytest.mark.django_db

LIST = "/api/v1/people/"
IMAGES = "/api/v1/images/"


def detail(pk: int) -> str:
    return f"{LIST}{pk}/"


def person_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Grace Hopper",
        "username": "ghopper",
        "email": "grace@example.com",
        "phone": {"office": "802-867-5309", "cell": "802-867-5310"},
        "department": "Engineering",
        "role": "Rear Admiral",
    }
    payload.update(overrides)
    return payload


def usernames(response: Any) -> set[str]:
    return {row["username"] for row in response.json()["results"]}


# --- Permissions --------------------------------------------------------------


def test_a_visitor_can_list_and_read_people(visitor: APIClient) -> None:
    person = PersonFactory(phone={"office": "802-867-5309"})

    listing = visitor.get(LIST)
    single = visitor.get(detail(person.pk))

    assert listing.status_code == 200
    assert listing.json()["count"] == 1
    assert single.status_code == 200
    body = single.json()
    assert body["username"] == person.username
    assert body["phone"] == {"office": "802-867-5309"}
    assert body["photo"] is None
    assert body["url"] == person.get_absolute_url()


def test_a_visitor_cannot_create_a_person(visitor: APIClient) -> None:
    response = visitor.post(LIST, person_payload(), format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert not Person.objects.exists()


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_visitor_cannot_change_a_person(visitor: APIClient, method: str) -> None:
    person = PersonFactory(name="Unchanged")

    response = getattr(visitor, method)(detail(person.pk), person_payload(), format="json")

    assert response.status_code == 401
    person.refresh_from_db()
    assert person.name == "Unchanged"


def test_a_visitor_cannot_delete_a_person(visitor: APIClient) -> None:
    person = PersonFactory()

    response = visitor.delete(detail(person.pk))

    assert response.status_code == 401
    assert "detail" in response.json()
    assert Person.objects.filter(pk=person.pk).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "list"), ("patch", "detail"), ("put", "detail"), ("delete", "detail")],
)
def test_an_outsider_cannot_write_people(outsider: APIClient, method: str, path: str) -> None:
    person = PersonFactory(name="Unchanged")
    url = LIST if path == "list" else detail(person.pk)

    response = getattr(outsider, method)(url, person_payload(), format="json")

    assert response.status_code == 403
    assert "detail" in response.json()
    assert list(Person.objects.values_list("name", flat=True)) == ["Unchanged"]


@pytest.mark.parametrize("persona", ["staff", "token_client"])
def test_staff_and_tokens_with_permissions_manage_people(
    request: pytest.FixtureRequest, persona: str
) -> None:
    client: APIClient = request.getfixturevalue(persona)

    created = client.post(LIST, person_payload(), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["phone"] == {"office": "802-867-5309", "cell": "802-867-5310"}

    patched = client.patch(detail(pk), {"role": "Commodore", "phone": {"home": "555"}}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["role"] == "Commodore"
    assert patched.json()["phone"] == {"home": "555"}

    put = client.put(detail(pk), person_payload(name="G. Hopper"), format="json")
    assert put.status_code == 200, put.content
    assert put.json()["name"] == "G. Hopper"

    deleted = client.delete(detail(pk))
    assert deleted.status_code == 204
    assert not Person.objects.exists()


# --- Visibility ---------------------------------------------------------------


def test_visitors_see_only_active_people(visitor: APIClient) -> None:
    PersonFactory(username="here")
    gone = PersonFactory(username="gone", is_active=False)

    assert usernames(visitor.get(LIST)) == {"here"}
    assert visitor.get(detail(gone.pk)).status_code == 404
    assert usernames(visitor.get(LIST, {"is_active": "false"})) == set()


@pytest.mark.parametrize("persona", ["staff", "token_client"])
def test_staff_see_inactive_people_too(request: pytest.FixtureRequest, persona: str) -> None:
    client: APIClient = request.getfixturevalue(persona)
    PersonFactory(username="here")
    gone = PersonFactory(username="gone", is_active=False)

    assert usernames(client.get(LIST)) == {"here", "gone"}
    assert usernames(client.get(LIST, {"is_active": "false"})) == {"gone"}
    assert client.get(detail(gone.pk)).status_code == 200


def test_an_inactive_person_has_no_page_and_so_a_null_url(staff: APIClient) -> None:
    here = PersonFactory(username="here")
    gone = PersonFactory(username="gone", is_active=False)

    listed = {row["username"]: row["url"] for row in staff.get(LIST).json()["results"]}
    assert listed == {"here": "/people/here/", "gone": None}
    assert staff.get(detail(gone.pk)).json()["url"] is None
    assert staff.get(detail(here.pk)).json()["url"] == "/people/here/"
    # The answer to a write is drawn by the serializer: it says the same.
    assert staff.patch(detail(here.pk), {"is_active": False}, format="json").json()["url"] is None
    assert staff.patch(detail(gone.pk), {"is_active": True}, format="json").json()["url"] == "/people/gone/"
    assert Client().get("/people/gone/").status_code == 200


def test_staff_deactivate_a_person_and_visitors_stop_seeing_them(
    staff: APIClient, visitor: APIClient
) -> None:
    person = PersonFactory(username="leaver")

    response = staff.patch(detail(person.pk), {"is_active": False}, format="json")

    assert response.status_code == 200
    assert usernames(visitor.get(LIST)) == set()


def test_staff_deactivate_a_person_stored_before_a_rule_of_their_text_keeping_it(staff: APIClient) -> None:
    person = PersonFactory(username="leaver")
    # Stored before text refused control characters: the change checks is_active alone.
    Person.objects.filter(pk=person.pk).update(role="Chef\x07")

    response = staff.patch(detail(person.pk), {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert (person.is_active, person.role) == (False, "Chef\x07")


def image_ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("persona", ["visitor", "outsider"])
def test_a_former_colleagues_portrait_is_neither_listed_nor_shown_to_the_public(
    request: pytest.FixtureRequest, persona: str
) -> None:
    client: APIClient = request.getfixturevalue(persona)
    portrait = ImageFactory(title="Ada", alt="Portrait of Ada", original_name="ada-lovelace.jpg")
    other = ImageFactory()
    PersonFactory(username="ada", photo=portrait, is_active=False)
    ProductFactory(image=other)

    assert image_ids(client.get(IMAGES)) == {other.pk}
    assert image_ids(client.get(IMAGES, {"search": "Ada"})) == set()
    assert client.get(f"{IMAGES}{portrait.pk}/").status_code == 404
    assert client.get(f"{IMAGES}{other.pk}/").status_code == 200


@pytest.mark.parametrize("persona", ["staff", "token_client"])
def test_staff_still_see_a_former_colleagues_portrait(request: pytest.FixtureRequest, persona: str) -> None:
    client: APIClient = request.getfixturevalue(persona)
    portrait = ImageFactory(alt="Portrait of Ada")
    PersonFactory(username="ada", photo=portrait, is_active=False)

    assert image_ids(client.get(IMAGES)) == {portrait.pk}
    assert client.get(f"{IMAGES}{portrait.pk}/").json()["alt"] == "Portrait of Ada"


def test_a_portrait_with_another_use_stays_public(visitor: APIClient) -> None:
    """Only an image whose every use is the photo of someone inactive is kept
    from the public: one a product or an active person shows stays listed."""
    on_a_product = ImageFactory()
    PersonFactory(photo=on_a_product, is_active=False)
    ProductFactory(image=on_a_product)
    of_a_team = ImageFactory()
    PersonFactory(photo=of_a_team, is_active=False)
    PersonFactory(photo=of_a_team)

    assert image_ids(visitor.get(IMAGES)) == {on_a_product.pk, of_a_team.pk}
    for image in (on_a_product, of_a_team):
        assert visitor.get(f"{IMAGES}{image.pk}/").status_code == 200


@pytest.mark.parametrize("persona", ["visitor", "outsider"])
def test_an_image_tied_to_nothing_is_neither_listed_nor_shown_to_the_public(
    request: pytest.FixtureRequest, persona: str
) -> None:
    """An upload no product or person shows yet is no one's to show: its
    title, alt text and renditions' addresses stay with staff."""
    client: APIClient = request.getfixturevalue(persona)
    unused = ImageFactory(title="Draft", alt="Not yet announced")
    shown = ImageFactory()
    ProductFactory(image=shown)

    assert image_ids(client.get(IMAGES)) == {shown.pk}
    assert image_ids(client.get(IMAGES, {"search": "announced"})) == set()
    assert client.get(f"{IMAGES}{unused.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["staff", "token_client"])
def test_staff_see_an_image_tied_to_nothing(request: pytest.FixtureRequest, persona: str) -> None:
    client: APIClient = request.getfixturevalue(persona)
    unused = ImageFactory(alt="Not yet announced")

    assert image_ids(client.get(IMAGES)) == {unused.pk}
    assert client.get(f"{IMAGES}{unused.pk}/").json()["alt"] == "Not yet announced"


def test_a_caller_who_may_delete_images_deletes_one_the_public_is_not_shown() -> None:
    """An uploader's token may add and delete images without viewing them:
    the upload it sent by mistake, tied to nothing yet, or the photo of a
    former colleague, is still its to delete, not a 404."""
    user = UserFactory(username="uploader")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="uploads", codename__in=["add_image", "delete_image"]
        )
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key(user)}")
    unused = ImageFactory()
    portrait = ImageFactory()
    PersonFactory(photo=portrait, is_active=False)

    assert client.get(f"{IMAGES}{unused.pk}/").status_code == 404  # still not shown to it
    for image in (unused, portrait):
        assert client.delete(f"{IMAGES}{image.pk}/").status_code == 204
    assert not Image.objects.filter(pk__in=[unused.pk, portrait.pk]).exists()


def test_a_suppliers_photo_posted_before_its_description_turns_public_once_linked(
    client: Client, visitor: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    """The course's uploaders post the photos first: each is stored, and
    shown to the public with the product its description makes."""
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = client.post("/upload/", {"file": SimpleUploadedFile("001.jpeg", jpeg_bytes())})
    assert uploaded.status_code == 201
    image_id = uploaded.json()["id"]
    assert image_ids(visitor.get(IMAGES)) == set()

    described = client.post(
        "/fruits/",
        {"name": "Apple", "weight": 500, "image_name": "001.jpeg"},
        content_type="application/json",
    )

    assert described.status_code == 201
    assert image_ids(visitor.get(IMAGES)) == {image_id}
    assert visitor.get(f"{IMAGES}{image_id}/").status_code == 200


def test_a_portrait_follows_its_person_out_and_back_in(staff: APIClient, visitor: APIClient) -> None:
    portrait = ImageFactory()
    person = PersonFactory(username="leaver", photo=portrait)
    assert image_ids(visitor.get(IMAGES)) == {portrait.pk}

    staff.patch(detail(person.pk), {"is_active": False}, format="json")
    assert image_ids(visitor.get(IMAGES)) == set()
    assert visitor.get(f"{IMAGES}{portrait.pk}/").status_code == 404

    staff.patch(detail(person.pk), {"is_active": True}, format="json")
    assert image_ids(visitor.get(IMAGES)) == {portrait.pk}
    assert visitor.get(f"{IMAGES}{portrait.pk}/").status_code == 200


def test_the_schema_says_whom_the_images_api_does_not_show_a_portrait(visitor: APIClient) -> None:
    paths = visitor.get("/api/schema/", {"format": "json"}).json()["paths"]

    for path in (IMAGES, IMAGES + "{id}/"):
        description = paths[path]["get"]["description"]
        assert "photo of an inactive person" in description
        assert "tied to no product and no person" in description
        assert "stay public" in description


# --- Validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "802-867-5309"}, "phone"),
        ({"phone": ["802-867-5309"]}, "phone"),
        ({"phone": {"office": "9" * 41}}, "phone"),
        ({"username": ""}, "username"),
        ({"name": ""}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"department": "d" * 101}, "department"),
    ],
)
def test_an_invalid_person_is_refused_with_a_message_on_the_field(
    staff: APIClient, overrides: dict[str, Any], field: str
) -> None:
    response = staff.post(LIST, person_payload(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Person.objects.exists()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (
            {"phone.office": "802-555-0100", "phone.cell": "802-555-0199"},
            {"office": "802-555-0100", "cell": "802-555-0199"},
        ),
        (
            {"phone": "office: 802-555-0100; cell: 802-555-0199"},
            {"office": "802-555-0100", "cell": "802-555-0199"},
        ),
        ({"phone": "802-555-0100"}, {"office": "802-555-0100"}),
    ],
    ids=["labelled-keys", "text", "bare-number"],
)
def test_a_form_body_sets_the_phone_numbers_it_sends(
    token_client: APIClient, sent: dict[str, str], stored: dict[str, str]
) -> None:
    body = {"name": "Grace Hopper", "username": "ghopper", **sent}
    response = token_client.post(LIST, body, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == stored
    assert Person.objects.get().phone == stored


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        (
            {" office ": "802-555-0100", "\tcell\n": "802-555-0199"},
            {"office": "802-555-0100", "cell": "802-555-0199"},
        ),
        ({"\u00a0home": "555"}, {"home": "555"}),
    ],
    ids=["spaces-tabs-line-breaks", "non-breaking-space"],
)
def test_phone_labels_are_trimmed_as_the_admin_and_the_imports_trim_them(
    staff: APIClient, phone: dict[str, str], stored: dict[str, str]
) -> None:
    created = staff.post(LIST, person_payload(phone=phone), format="json")
    assert created.status_code == 201, created.content
    patched = staff.patch(detail(created.json()["id"]), {"phone": phone}, format="json")
    assert patched.status_code == 200, patched.content

    assert created.json()["phone"] == patched.json()["phone"] == stored
    assert Person.objects.get().phone == stored


def test_form_labels_are_trimmed_too(token_client: APIClient) -> None:
    body = {"name": "Grace Hopper", "username": "ghopper", "phone. office ": "802-555-0100"}
    response = token_client.post(LIST, body, format="multipart")
    assert response.status_code == 201, response.content
    assert Person.objects.get().phone == {"office": "802-555-0100"}


@pytest.mark.parametrize("label", ["", "  ", "\n"])
def test_a_blank_phone_label_is_a_400_saying_so(staff: APIClient, label: str) -> None:
    person = PersonFactory(phone={"office": "802-867-5309"})
    phone = {"office": "802-555-0100", label: "802-555-0199"}

    created = staff.post(LIST, person_payload(phone=phone), format="json")
    patched = staff.patch(detail(person.pk), {"phone": phone}, format="json")

    reason = {"phone": ["the phone number '802-555-0199' has a blank label"]}
    assert (created.status_code, created.json()) == (400, reason)
    assert (patched.status_code, patched.json()) == (400, reason)
    person.refresh_from_db()
    assert person.phone == {"office": "802-867-5309"}
    assert Person.objects.count() == 1


@pytest.mark.parametrize("format_", ["json", "multipart"])
def test_two_labels_that_are_one_once_trimmed_are_a_400_not_a_number_lost(
    staff: APIClient, format_: str
) -> None:
    person = PersonFactory(phone={"office": "802-867-5309"})
    phone = {"cell": "802-555-0100", " cell": "802-555-0199"}
    body: dict[str, Any] = {"phone": phone}
    if format_ == "multipart":
        body = {f"phone.{label}": number for label, number in phone.items()}
    payload = {key: value for key, value in person_payload().items() if key != "phone"}

    created = staff.post(LIST, {**payload, **body}, format=format_)
    patched = staff.patch(detail(person.pk), body, format=format_)

    reason = {"phone": ["the phone label 'cell' is given twice"]}
    assert (created.status_code, created.json()) == (400, reason)
    assert (patched.status_code, patched.json()) == (400, reason)
    person.refresh_from_db()
    assert person.phone == {"office": "802-867-5309"}
    assert Person.objects.count() == 1


def test_a_phone_text_that_names_no_number_is_a_400(token_client: APIClient) -> None:
    response = token_client.post(
        LIST, {"name": "G", "username": "g", "phone": '{"office": [1]}'}, format="multipart"
    )
    assert response.status_code == 400
    assert "phone" in response.json()
    assert not Person.objects.exists()


def test_a_duplicate_username_is_a_400(staff: APIClient) -> None:
    PersonFactory(username="ghopper")

    response = staff.post(LIST, person_payload(username="ghopper"), format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert Person.objects.count() == 1


@pytest.mark.parametrize("username", ["image/webp", "a b", "../x", "name?q=1"])
def test_a_username_that_cannot_be_part_of_a_url_is_a_400(staff: APIClient, username: str) -> None:
    response = staff.post(LIST, person_payload(username=username), format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert not Person.objects.exists()


def test_renaming_to_a_username_with_a_slash_is_a_400_and_changes_nothing(staff: APIClient) -> None:
    person = PersonFactory(username="mine")

    response = staff.patch(detail(person.pk), {"username": "mine/yours"}, format="json")

    assert response.status_code == 400
    person.refresh_from_db()
    assert person.username == "mine"


def test_renaming_onto_another_username_is_a_400(staff: APIClient) -> None:
    PersonFactory(username="taken")
    person = PersonFactory(username="mine")

    response = staff.patch(detail(person.pk), {"username": "taken"}, format="json")

    assert response.status_code == 400
    assert "username" in response.json()


def test_the_photo_is_read_only(staff: APIClient) -> None:
    response = staff.post(LIST, person_payload(photo=123), format="json")

    assert response.status_code == 201
    assert response.json()["photo"] is None


# --- Filters, search, ordering -----------------------------------------------


def test_people_filter_by_department_and_role(visitor: APIClient) -> None:
    PersonFactory(username="eng", department="Engineering", role="Engineer")
    PersonFactory(username="lead", department="Engineering", role="Lead")
    PersonFactory(username="sales", department="Sales", role="Engineer")

    assert usernames(visitor.get(LIST, {"department": "Engineering"})) == {"eng", "lead"}
    assert usernames(visitor.get(LIST, {"role": "Engineer"})) == {"eng", "sales"}
    assert usernames(visitor.get(LIST, {"department": "Engineering", "role": "Lead"})) == {"lead"}


def test_people_search_looks_in_name_username_and_email(visitor: APIClient) -> None:
    PersonFactory(username="ada", name="Ada Lovelace", email="ada@example.com")
    PersonFactory(username="charles", name="Charles Babbage", email="cb@engine.org")
    PersonFactory(username="grace", name="Grace Hopper", email="grace@example.com")

    assert usernames(visitor.get(LIST, {"search": "lovelace"})) == {"ada"}
    assert usernames(visitor.get(LIST, {"search": "engine.org"})) == {"charles"}
    assert usernames(visitor.get(LIST, {"search": "GRACE"})) == {"grace"}


def test_people_search_ignores_case_beyond_english_letters(visitor: APIClient, client: Any) -> None:
    PersonFactory(username="sasha", name="Александра Иванова")
    PersonFactory(username="ada", name="Ada Fernández")
    PersonFactory(username="bob", name="Bob 50%_off")

    assert usernames(visitor.get(LIST, {"search": "александра"})) == {"sasha"}
    assert usernames(visitor.get(LIST, {"search": "АЛЕКСАНДРА"})) == {"sasha"}
    assert usernames(visitor.get(LIST, {"search": "FERNÁNDEZ"})) == {"ada"}
    # LIKE's own wildcards in a search are plain characters.
    assert usernames(visitor.get(LIST, {"search": "50%_"})) == {"bob"}
    assert usernames(visitor.get(LIST, {"search": "5_%"})) == set()
    page = client.get("/people/", {"q": "александра"}).content.decode()
    assert "Александра Иванова" in page


def test_people_search_typed_decomposed_finds_the_name_stored_composed(
    visitor: APIClient, client: Any
) -> None:
    # "José" stored composed; searched for as a Mac may type it, "e" and a combining accent.
    PersonFactory(username="jos\u00e9", name="Jos\u00e9 Mart\u00ednez")
    PersonFactory(username="jose", name="Jose Other")

    assert usernames(visitor.get(LIST, {"search": "Jose\u0301"})) == {"jos\u00e9"}
    assert usernames(visitor.get(LIST, {"search": "Marti\u0301nez"})) == {"jos\u00e9"}
    page = client.get("/people/", {"q": "Jose\u0301"}).content.decode()
    assert "Jos\u00e9 Mart\u00ednez" in page
    assert "Jose Other" not in page
    assert "1 result for \u201c<bdi>Jos\u00e9</bdi>\u201d" in page


def test_people_are_listed_by_department_then_name_and_order_on_request(visitor: APIClient) -> None:
    PersonFactory(username="b", name="Bea", department="Sales")
    PersonFactory(username="a", name="Zed", department="Engineering")
    PersonFactory(username="c", name="Al", department="Sales")

    def order(**params: Any) -> list[str]:
        return [row["username"] for row in visitor.get(LIST, params).json()["results"]]

    assert order() == ["a", "c", "b"]
    assert order(ordering="name") == ["c", "b", "a"]
    assert order(ordering="-username") == ["c", "b", "a"]


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_demo_person_changed_through_the_api_is_made_real_and_kept_by_seed_demo_remove(
    staff: APIClient, method: str
) -> None:
    """As a change in the admin makes them real: the person staff edited is
    no longer the demo's to take, with the edits."""
    demo = PersonFactory(is_demo=True, username="ghopper", role="Commodore")
    body = {"role": "Admiral"} if method == "patch" else person_payload(role="Admiral")

    response = getattr(staff, method)(detail(demo.pk), body, format="json")

    assert response.status_code == 200, response.json()
    demo.refresh_from_db()
    assert (demo.is_demo, demo.role) == (False, "Admiral")
    services.demo_remove()
    assert Person.objects.filter(pk=demo.pk).exists()
