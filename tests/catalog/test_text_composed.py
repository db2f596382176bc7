"""Text is stored composed (Unicode's NFC) on every path that writes it: a
Mac's file or keyboard sends "José" as "e" and a combining accent, which a
search (read composed), a sort and a comparison took for other text."""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
import tablib
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Feedback, Person, Product
from tests.catalog.test_admin_import_text import admin_import
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory, logged_in, staff_with

pytestmark = pytest.mark.django_db

PEOPLE = "/api/v1/people/"
PRODUCTS = "/api/v1/products/"
FEEDBACK = "/api/v1/feedback/"

# Each as a person types it on most systems: composed.
NAME = "Jos\u00e9 Mart\u00ednez"
DEPARTMENT = "Caf\u00e9"
ROLE = "Ma\u00eetre d\u2019h\u00f4tel"
EMAIL = "jose@caf\u00e9.example"
PRODUCT = "Pi\u00f1a"
DESCRIPTION = "R\u00e9colt\u00e9e \u00e0 la main.\nS\u00fbre."
TITLE = "Tr\u00e8s bon"
TEXT = "Cr\u00e8me br\u00fbl\u00e9e, d\u00e9j\u00e0 vu."


def nfd(text: str) -> str:
    """The text as a Mac sends it: each accent apart from its letter."""
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def person_stored(username: str) -> tuple[str, str, str, str]:
    person = Person.objects.get(username=username)
    return person.name, person.department, person.role, person.email


def review_stored() -> tuple[str, str, str]:
    review = Feedback.objects.get()
    return review.title, review.name, review.text


# --- People -------------------------------------------------------------------


def test_a_person_the_api_creates_or_changes_is_stored_composed(staff: APIClient) -> None:
    body = {
        "name": nfd(NAME),
        "username": "jm",
        "email": nfd(EMAIL),
        "department": nfd(DEPARTMENT),
        "role": nfd(ROLE),
    }
    assert staff.post(PEOPLE, body, format="json").status_code == 201
    assert person_stored("jm") == (NAME, DEPARTMENT, ROLE, EMAIL)

    pk = Person.objects.get().pk
    response = staff.patch(f"{PEOPLE}{pk}/", {"name": nfd("Jos\u00e9 Ruiz")}, format="json")
    assert response.status_code == 200, response.json()
    assert Person.objects.get().name == "Jos\u00e9 Ruiz"


def test_a_person_the_admin_adds_is_stored_composed(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/catalog/person/add/",
        {
            "name": nfd(NAME),
            "username": "jm",
            "email": nfd(EMAIL),
            "phone": "",
            "department": nfd(DEPARTMENT),
            "role": nfd(ROLE),
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert person_stored("jm") == (NAME, DEPARTMENT, ROLE, EMAIL)


def _people_file(kind: str) -> bytes:
    row = {"name": nfd(NAME), "username": "jm", "department": nfd(DEPARTMENT), "role": nfd(ROLE)}
    if kind == "json":
        return json.dumps([row]).encode()
    if kind == "yaml":
        return yaml.safe_dump([row], allow_unicode=True).encode()
    data = tablib.Dataset(list(row.values()), headers=list(row))
    return str(data.export(kind)).encode()


@pytest.mark.parametrize("kind", ["csv", "tsv", "json", "yaml"])
def test_a_person_a_file_imports_is_stored_composed_and_imported_again_is_unchanged(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"people.{kind}"
    path.write_bytes(_people_file(kind))
    call_command("import_people", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert person_stored("jm")[:3] == (NAME, DEPARTMENT, ROLE)

    out = io.StringIO()
    call_command("import_people", str(path), stdout=out, stderr=io.StringIO())
    assert "0 people created, 0 updated, 1 skipped as duplicates" in out.getvalue()


def test_a_person_the_admin_imports_is_stored_composed_and_imported_again_is_unchanged() -> None:
    importer = logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))
    admin_import(importer, "people.csv", _people_file("csv"))

    assert person_stored("jm")[:3] == (NAME, DEPARTMENT, ROLE)
    updated_at = Person.objects.get().updated_at
    admin_import(importer, "people.csv", _people_file("csv"))
    assert Person.objects.get().updated_at == updated_at


def test_a_search_of_the_composed_name_finds_a_person_who_arrived_decomposed(
    tmp_path: Path, visitor: APIClient, client: Client
) -> None:
    path = tmp_path / "people.json"
    path.write_bytes(_people_file("json"))
    call_command("import_people", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    found = visitor.get(PEOPLE, {"search": "Mart\u00ednez"}).json()["results"]
    assert [row["username"] for row in found] == ["jm"]
    assert NAME in client.get("/people/", {"q": "Jos\u00e9"}).content.decode()
    # One department in the directory, not two that read the same.
    PersonFactory(username="other", department=DEPARTMENT)
    assert set(Person.objects.values_list("department", flat=True)) == {DEPARTMENT}


# --- Products -----------------------------------------------------------------


def test_a_product_the_api_creates_or_changes_is_stored_composed(staff: APIClient) -> None:
    body = {"name": nfd(PRODUCT), "weight": 500, "description": nfd(DESCRIPTION)}
    assert staff.post(PRODUCTS, body, format="json").status_code == 201
    product = Product.objects.get()
    assert (product.name, product.description) == (PRODUCT, DESCRIPTION)

    # The same product sent again decomposed is the one held, unchanged.
    again = staff.post(PRODUCTS, body, format="json")
    assert again.status_code == 200, again.json()
    assert Product.objects.count() == 1

    response = staff.patch(
        f"{PRODUCTS}{product.pk}/", {"description": nfd("D\u00e9j\u00e0 vu.")}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert Product.objects.get().description == "D\u00e9j\u00e0 vu."


def test_a_product_the_admin_adds_is_stored_composed(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/catalog/product/add/",
        {
            "name": nfd(PRODUCT),
            "weight": "300",
            "description": nfd(DESCRIPTION),
            "image_name": "",
            "image": "",
        },
    )
    assert response.status_code == 302
    product = Product.objects.get()
    assert (product.name, product.description) == (PRODUCT, DESCRIPTION)


def test_a_fruit_posted_to_the_course_endpoint_is_stored_composed_and_once(client: Client) -> None:
    body = {"name": PRODUCT, "weight": 500, "description": "Ripe.", "image_name": ""}
    assert client.post("/fruits/", body, content_type="application/json").status_code == 201
    # Sent again from a Mac: the same fruit, its description changed.
    again = {**body, "name": nfd(PRODUCT), "description": nfd(DESCRIPTION)}
    client.post("/fruits/", again, content_type="application/json")

    product = Product.objects.get()
    assert (product.name, product.description) == (PRODUCT, DESCRIPTION)


def test_a_supplier_description_is_stored_composed_and_found_by_a_search(
    tmp_path: Path, visitor: APIClient
) -> None:
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "descriptions" / "001.txt").write_text(f"{nfd(PRODUCT)}\n500 lbs\n{nfd(DESCRIPTION)}\n")

    summary = services.supplier_import(folder, wait_seconds=0)

    assert summary.products.created == 1
    product = Product.objects.get()
    assert (product.name, product.description) == (PRODUCT, DESCRIPTION)
    found = visitor.get(PRODUCTS, {"search": "Pi\u00f1a"}).json()["results"]
    assert [row["id"] for row in found] == [product.pk]

    assert services.supplier_import(folder, wait_seconds=0).products.skipped == 1


# --- Reviews ------------------------------------------------------------------


def test_a_review_the_api_takes_or_a_moderator_changes_is_stored_composed(
    visitor: APIClient, staff: APIClient
) -> None:
    body = {"title": nfd(TITLE), "name": nfd(NAME), "text": nfd(TEXT), "date": "2024-05-01"}
    assert visitor.post(FEEDBACK, body, format="json").status_code == 201
    assert review_stored() == (TITLE, NAME, TEXT)

    review = Feedback.objects.get()
    response = staff.patch(f"{FEEDBACK}{review.pk}/", {"title": nfd("D\u00e9j\u00e0 vu")}, format="json")
    assert response.status_code == 200, response.json()
    assert Feedback.objects.get().title == "D\u00e9j\u00e0 vu"


def test_a_review_the_admin_changes_is_stored_composed(admin_client: Client) -> None:
    review = FeedbackFactory(title="Good", name="Ann", text="Fine.")
    response = admin_client.post(
        f"/admin/catalog/feedback/{review.pk}/change/",
        {
            "title": nfd(TITLE),
            "name": nfd(NAME),
            "date": review.date.isoformat(),
            "text": nfd(TEXT),
            "rating": "",
            "product": "",
            "status": review.status,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert review_stored() == (TITLE, NAME, TEXT)


def test_a_review_posted_to_the_course_endpoint_is_stored_composed_and_once(client: Client) -> None:
    composed = {"title": TITLE, "name": NAME, "date": "2024-05-01", "feedback": TEXT}
    assert client.post("/feedback/", composed, content_type="application/json").status_code == 201
    # Sent again from a Mac (a script run again over its folder): the review held.
    body = {"title": nfd(TITLE), "name": nfd(NAME), "date": "2024-05-01", "feedback": nfd(TEXT)}
    client.post("/feedback/", body, content_type="application/json")

    assert review_stored() == (TITLE, NAME, TEXT)


def test_a_review_file_is_imported_composed_and_its_composed_copy_skipped(tmp_path: Path) -> None:
    (tmp_path / "mac.txt").write_text(f"{nfd(TITLE)}\n{nfd(NAME)}\n2024-05-01\n{nfd(TEXT)}\n")
    (tmp_path / "typed.txt").write_text(f"{TITLE}\n{NAME}\n2024-05-01\n{TEXT}\n")
    out = io.StringIO()

    call_command("import_feedback", str(tmp_path), stdout=out, stderr=io.StringIO())

    assert "1 reviews created, 0 updated, 1 skipped as duplicates" in out.getvalue()
    assert review_stored() == (TITLE, NAME, TEXT)


def test_a_review_the_public_form_sends_is_stored_composed_and_found_by_a_search(
    client: Client, visitor: APIClient
) -> None:
    form = {"title": TITLE, "name": nfd(NAME), "rating": "4", "text": nfd(TEXT), "website": ""}
    response = client.post(reverse("catalog:review-submit"), form)
    assert response.status_code == 302
    # Sent again (a second click) with its title decomposed: the review sent first.
    client.post(reverse("catalog:review-submit"), {**form, "title": nfd(TITLE)})

    assert review_stored() == (TITLE, NAME, TEXT)
    found = visitor.get(FEEDBACK, {"search": "br\u00fbl\u00e9e"}).json()["results"]
    assert len(found) == 1


def test_the_fingerprint_of_a_review_is_that_of_its_text_composed() -> None:
    review = FeedbackFactory(title=TITLE, name=NAME, text=TEXT)
    decomposed = Feedback(title=nfd(TITLE), name=nfd(NAME), date=review.date, text=nfd(TEXT))

    assert decomposed.compute_fingerprint() == review.fingerprint


def test_a_product_posted_decomposed_is_the_product_of_that_name(staff: APIClient) -> None:
    product = ProductFactory(name=PRODUCT, image_name="")

    response = staff.post(PRODUCTS, {"name": nfd(PRODUCT), "weight": 7}, format="json")

    assert response.status_code == 200, response.json()
    assert list(Product.objects.values_list("pk", "weight")) == [(product.pk, 7)]


def test_a_file_name_kept_decomposed_is_found_by_a_search_in_either_form(
    visitor: APIClient, admin_client: Client
) -> None:
    """File names are kept as they came: a Mac's "Café.jpg" holds "e" and a
    combining accent. A search read composed alone found it in neither
    form, not even pasted from the Mac's own listing."""
    mac = nfd("Caf\u00e9")
    product = ProductFactory(name="Coffee", image_name=f"{mac}.jpg")
    ProductFactory(name="Tea", image_name="Cafe.jpg")

    for typed in ("Caf\u00e9", mac):
        found = visitor.get(PRODUCTS, {"search": typed}).json()["results"]
        assert [row["id"] for row in found] == [product.pk], typed
        page = admin_client.get("/admin/catalog/product/", {"q": typed}).content.decode()
        assert "Coffee" in page, typed
        assert "Tea" not in page, typed


# --- Lengths, counted composed ------------------------------------------------

LONG_FEEDBACK = {"title": "Good", "name": "Ann", "date": "2024-05-01", "text": "Fine."}


def accented(length: int) -> str:
    """``length`` accented letters sent decomposed: twice as many characters
    as the text stored."""
    return nfd("\u00e9" * length)


def field_limit(limit: int) -> str:
    """DRF's words for a field's ``max_length``."""
    return f"Ensure this field has no more than {limit} characters."


def value_limit(limit: int) -> str:
    """Django's, for a text one character over it: a form's field, or the
    model's own validator (a review's text), which the API runs too."""
    return f"Ensure this value has at most {limit} characters (it has {limit + 1})."


# Each text field with a limit, the model it is stored in, the limit and
# its refusal: every path counts a text as it is stored, composed.
API_LIMITS = [
    (PEOPLE, Person, {"username": "jm", "name": "Ann"}, "name", 200, field_limit),
    (PEOPLE, Person, {"username": "jm", "name": "Ann"}, "department", 100, field_limit),
    (PEOPLE, Person, {"username": "jm", "name": "Ann"}, "role", 100, field_limit),
    (PEOPLE, Person, {"name": "Ann"}, "username", 150, field_limit),
    (PRODUCTS, Product, {"name": "Pear", "weight": 5}, "name", 200, field_limit),
    (FEEDBACK, Feedback, LONG_FEEDBACK, "title", 100, field_limit),
    (FEEDBACK, Feedback, LONG_FEEDBACK, "name", 100, field_limit),
    (FEEDBACK, Feedback, LONG_FEEDBACK, "text", 5000, value_limit),
]


@pytest.mark.parametrize(("address", "model", "body", "field", "limit", "refusal"), API_LIMITS)
def test_the_api_counts_a_decomposed_text_as_long_as_it_is_stored(
    staff: APIClient,
    address: str,
    model: type[Person],
    body: dict[str, object],
    field: str,
    limit: int,
    refusal: Callable[[int], str],
) -> None:
    over = staff.post(address, {**body, field: accented(limit + 1)}, format="json")
    assert over.status_code == 400
    assert over.json() == {field: [refusal(limit)]}
    assert not model.objects.exists()

    response = staff.post(address, {**body, field: accented(limit)}, format="json")

    assert response.status_code == 201, response.json()
    assert getattr(model.objects.get(), field) == "\u00e9" * limit


@pytest.mark.parametrize(("address", "body", "field", "limit"), [
    ("/feedback/", {**LONG_FEEDBACK, "feedback": "Fine."}, "title", 100),
    ("/feedback/", {**LONG_FEEDBACK, "feedback": "Fine."}, "name", 100),
    ("/feedback/", {**LONG_FEEDBACK, "feedback": "Fine."}, "feedback", 5000),
    ("/fruits/", {"name": "Pear", "weight": 5}, "name", 200),
])  # fmt: skip
def test_the_course_endpoints_count_a_decomposed_text_as_long_as_it_is_stored(
    client: Client, address: str, body: dict[str, object], field: str, limit: int
) -> None:
    over = client.post(address, {**body, field: accented(limit + 1)}, content_type="application/json")
    assert over.status_code == 400
    assert over.json() == {field: [field_limit(limit)]}

    response = client.post(address, {**body, field: accented(limit)}, content_type="application/json")

    assert response.status_code == 201, response.json()
    row = Feedback.objects.get() if address == "/feedback/" else Product.objects.get()
    assert getattr(row, "text" if field == "feedback" else field) == "\u00e9" * limit


@pytest.mark.parametrize(("field", "limit"), [("title", 100), ("name", 100), ("text", 5000)])
def test_the_review_form_counts_a_decomposed_text_as_long_as_it_is_stored(
    client: Client, field: str, limit: int
) -> None:
    form = {"title": "Good", "name": "Ann", "rating": "4", "text": "Fine.", "website": ""}
    over = client.post(reverse("catalog:review-submit"), {**form, field: accented(limit + 1)})
    assert over.status_code == 400
    assert over.context["form"].errors == {field: [value_limit(limit)]}
    assert not Feedback.objects.exists()

    response = client.post(reverse("catalog:review-submit"), {**form, field: accented(limit)})

    assert response.status_code == 302
    assert getattr(Feedback.objects.get(), field) == "\u00e9" * limit


PERSON_FORM = {"name": "Ann", "username": "ann", "email": "", "phone": "", "department": "", "role": ""}
PRODUCT_FORM = {"name": "Pear", "weight": "5", "description": "", "image_name": "", "image": ""}
REVIEW_FORM = {
    "title": "Good",
    "name": "Ann",
    "date": "2024-05-01",
    "text": "Fine.",
    "rating": "",
    "product": "",
}

ADMIN_LIMITS = [
    ("person", PersonFactory, PERSON_FORM, "name", 200),
    ("person", PersonFactory, PERSON_FORM, "department", 100),
    ("person", PersonFactory, PERSON_FORM, "role", 100),
    ("person", PersonFactory, PERSON_FORM, "username", 150),
    ("product", ProductFactory, PRODUCT_FORM, "name", 200),
    ("feedback", FeedbackFactory, {**REVIEW_FORM, "status": "published"}, "title", 100),
    ("feedback", FeedbackFactory, {**REVIEW_FORM, "status": "published"}, "name", 100),
    ("feedback", FeedbackFactory, {**REVIEW_FORM, "status": "published"}, "text", 5000),
]


@pytest.mark.parametrize(("model", "factory", "form", "field", "limit"), ADMIN_LIMITS)
def test_the_admin_s_change_form_counts_a_decomposed_text_as_long_as_it_is_stored(
    admin_client: Client,
    model: str,
    factory: type[PersonFactory],
    form: dict[str, str],
    field: str,
    limit: int,
) -> None:
    row = factory()
    address = f"/admin/catalog/{model}/{row.pk}/change/"
    before = getattr(row, field)

    over = admin_client.post(address, {**form, field: accented(limit + 1)})
    assert over.status_code == 200
    assert over.context["adminform"].form.errors == {field: [value_limit(limit)]}
    row.refresh_from_db()
    assert getattr(row, field) == before

    response = admin_client.post(address, {**form, field: accented(limit)})

    assert response.status_code == 302, response.context["adminform"].form.errors
    row.refresh_from_db()
    assert getattr(row, field) == "\u00e9" * limit
