"""The products API (``/api/v1/products/``): permissions, validation, filters."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Product
from tests.catalog.weights import TOO_HEAVY, WEIGHTS
from tests.factories import ProductFactory
from tests.uploads import corpus
from uploads.models import Image
from uploads.services import image_upload

pytestmark = pytest.mark.django_db

LIST = "/api/v1/products/"


def detail(pk: int) -> str:
    return f"{LIST}{pk}/"


def product_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "Mango",
        "weight": 300,
        "description": "Sweet and juicy.",
        "image_name": "010.jpeg",
    }
    payload.update(overrides)
    return payload


def names(response: Any) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


# --- Permissions --------------------------------------------------------------


def test_a_visitor_can_list_and_read_products(visitor: APIClient) -> None:
    product = ProductFactory(name="Apple", weight=500)

    listing = visitor.get(LIST)
    single = visitor.get(detail(product.pk))

    assert listing.status_code == 200
    assert names(listing) == ["Apple"]
    assert single.status_code == 200
    body = single.json()
    assert body["weight"] == 500
    assert body["image"] is None
    assert body["url"] == product.get_absolute_url()


def test_a_visitor_cannot_create_a_product(visitor: APIClient) -> None:
    response = visitor.post(LIST, product_payload(), format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert not Product.objects.exists()


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_visitor_cannot_change_or_delete_a_product(visitor: APIClient, method: str) -> None:
    product = ProductFactory(name="Unchanged")

    response = getattr(visitor, method)(detail(product.pk), product_payload(), format="json")

    assert response.status_code == 401
    assert list(Product.objects.values_list("name", flat=True)) == ["Unchanged"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "list"), ("patch", "detail"), ("put", "detail"), ("delete", "detail")],
)
def test_an_outsider_cannot_write_products(outsider: APIClient, method: str, path: str) -> None:
    product = ProductFactory(name="Unchanged")
    url = LIST if path == "list" else detail(product.pk)

    response = getattr(outsider, method)(url, product_payload(), format="json")

    assert response.status_code == 403
    assert list(Product.objects.values_list("name", flat=True)) == ["Unchanged"]


@pytest.mark.parametrize("persona", ["staff", "token_client"])
def test_staff_and_tokens_with_permissions_manage_products(
    request: pytest.FixtureRequest, persona: str
) -> None:
    client: APIClient = request.getfixturevalue(persona)

    created = client.post(LIST, product_payload(), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]

    patched = client.patch(detail(pk), {"weight": "250"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["weight"] == 250

    put = client.put(detail(pk), product_payload(name="Mango XL", weight=900), format="json")
    assert put.status_code == 200, put.content
    assert put.json()["name"] == "Mango XL"

    deleted = client.delete(detail(pk))
    assert deleted.status_code == 204
    assert not Product.objects.exists()


# --- Validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"weight": 0}, "weight"),
        ({"weight": -5}, "weight"),
        ({"weight": "heavy"}, "weight"),
        ({"weight": 1.5}, "weight"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"image_name": "i" * 256}, "image_name"),
    ],
)
def test_an_invalid_product_is_refused_with_a_message_on_the_field(
    staff: APIClient, overrides: dict[str, Any], field: str
) -> None:
    response = staff.post(LIST, product_payload(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Product.objects.exists()


@pytest.mark.parametrize(("weight", "expected"), [*WEIGHTS, (TOO_HEAVY, None), (2_147_483_648, None)])
def test_a_weight_is_read_as_a_supplier_description_and_fruits_read_it(
    token_client: APIClient, weight: str | int, expected: int | None
) -> None:
    created = token_client.post(LIST, product_payload(weight=weight), format="json")
    product = ProductFactory(weight=1)
    changed = token_client.patch(detail(product.pk), {"weight": weight}, format="json")
    product.refresh_from_db()
    if expected is None:
        assert (created.status_code, changed.status_code) == (400, 400), (created.content, changed.content)
        assert "weight" in created.json()
        assert not Product.objects.filter(name="Mango").exists()
        assert product.weight == 1
    else:
        assert (created.status_code, changed.status_code) == (201, 200), (created.content, changed.content)
        assert created.json()["weight"] == product.weight == expected


def test_a_product_needs_a_name_and_a_weight(staff: APIClient) -> None:
    response = staff.post(LIST, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"name", "weight"}


def test_the_image_is_read_only(staff: APIClient) -> None:
    response = staff.post(LIST, product_payload(image=42), format="json")

    assert response.status_code == 201
    assert response.json()["image"] is None


# --- Filters, search, ordering -----------------------------------------------


def test_products_filter_by_image_name(visitor: APIClient) -> None:
    ProductFactory(name="Apple", image_name="001.jpeg")
    ProductFactory(name="Banana", image_name="002.jpeg")

    assert names(visitor.get(LIST, {"image_name": "002.jpeg"})) == ["Banana"]


def test_products_filter_by_whether_they_are_on_display(visitor: APIClient) -> None:
    ProductFactory(name="Apple")
    ProductFactory(name="Demo pear", is_demo=True)

    assert names(visitor.get(LIST, {"on_display": "true"})) == ["Apple"]
    assert names(visitor.get(LIST, {"on_display": "0"})) == ["Demo pear"]
    assert names(visitor.get(LIST, {"on_display": ""})) == ["Apple", "Demo pear"]


def test_an_on_display_filter_it_cannot_read_is_a_400_not_every_product(visitor: APIClient) -> None:
    ProductFactory(name="Apple")
    ProductFactory(name="Demo pear", is_demo=True)

    response = visitor.get(LIST, {"on_display": "yes"})

    assert response.status_code == 400
    assert response.json() == {"on_display": ["on_display takes true or false (or 1 or 0), not 'yes'."]}


def test_products_search_looks_in_name_and_description(visitor: APIClient) -> None:
    ProductFactory(name="Apple", description="Red and crunchy.")
    ProductFactory(name="Cherry", description="Small and red.")
    ProductFactory(name="Banana", description="Yellow.")

    assert sorted(names(visitor.get(LIST, {"search": "red"}))) == ["Apple", "Cherry"]
    assert names(visitor.get(LIST, {"search": "banana"})) == ["Banana"]


def test_products_search_typed_decomposed_finds_the_name_stored_composed(visitor: APIClient) -> None:
    ProductFactory(name="Cr\u00e8me br\u00fbl\u00e9e", description="Sweet.")
    ProductFactory(name="Creme", description="Plain.")

    assert names(visitor.get(LIST, {"search": "cre\u0300me"})) == ["Cr\u00e8me br\u00fbl\u00e9e"]


def test_products_are_listed_by_name_and_order_on_request(visitor: APIClient) -> None:
    ProductFactory(name="Cherry", weight=10)
    ProductFactory(name="Apple", weight=500)
    ProductFactory(name="Banana", weight=200)

    assert names(visitor.get(LIST)) == ["Apple", "Banana", "Cherry"]
    assert names(visitor.get(LIST, {"ordering": "weight"})) == ["Cherry", "Banana", "Apple"]
    assert names(visitor.get(LIST, {"ordering": "-name"})) == ["Cherry", "Banana", "Apple"]


# --- Through the catalog services ------------------------------------------------


@pytest.fixture
def photo(django_capture_on_commit_callbacks: Any) -> Any:
    """A supplier photo named ``010.tiff``, processed."""

    with django_capture_on_commit_callbacks(execute=True):
        image = image_upload(file=corpus.photo_jpeg(300, 200), original_name="010.tiff", preset="supplier")
    return Image.objects.get(pk=image.pk)


def test_creating_a_product_links_the_image_of_its_file_stem(staff: APIClient, photo: Any) -> None:
    created = staff.post(LIST, product_payload(image_name="010.jpeg"), format="json")

    assert created.status_code == 201, created.content
    assert created.json()["image"]["id"] == photo.pk
    assert Product.objects.get().image == photo


def test_creating_a_product_twice_under_one_file_stem_updates_it(staff: APIClient) -> None:
    first = staff.post(LIST, product_payload(image_name="010.jpeg"), format="json")
    second = staff.post(LIST, product_payload(image_name="010.png", weight=320), format="json")

    assert first.status_code == 201
    assert second.status_code == 200  # not created: the product of that stem, updated
    assert second.json()["id"] == first.json()["id"]
    assert list(Product.objects.values_list("weight", "image_name")) == [(320, "010.png")]


def test_renaming_the_image_file_relinks_and_other_edits_keep_the_image(staff: APIClient, photo: Any) -> None:
    pk = staff.post(LIST, product_payload(image_name="011.jpeg"), format="json").json()["id"]
    assert Product.objects.get(pk=pk).image is None

    renamed = staff.patch(detail(pk), {"image_name": "010.jpeg"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["image"]["id"] == photo.pk

    reweighed = staff.patch(detail(pk), {"weight": 900}, format="json")
    assert (reweighed.json()["weight"], reweighed.json()["image"]["id"]) == (900, photo.pk)

    replaced = staff.put(detail(pk), product_payload(name=" Mango XL ", image_name="012.jpeg"), format="json")
    assert replaced.status_code == 200
    assert (replaced.json()["name"], replaced.json()["image"]) == ("Mango XL", None)
    assert Product.objects.get(pk=pk).image_stem == "012"


def test_the_response_shape_is_unchanged_by_the_services(staff: APIClient, photo: Any) -> None:
    created = staff.post(LIST, product_payload(), format="json").json()
    assert list(created) == [
        "id", "name", "weight", "description", "image_name", "image", "url", "created_at", "updated_at",
    ]  # fmt: skip
    assert staff.get(detail(created["id"])).json() == created


# --- One product per file stem (else name), whatever the edit -----------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_giving_a_product_the_file_stem_of_another_is_refused_naming_that_product(
    staff: APIClient, method: str
) -> None:
    apple = staff.post(LIST, product_payload(name="Apple", weight=5, image_name="500.jpg"), format="json")
    pear = staff.post(LIST, product_payload(name="Pear", weight=4, image_name="501.jpg"), format="json")
    assert (apple.status_code, pear.status_code) == (201, 201)
    apple_id, pear_id = apple.json()["id"], pear.json()["id"]

    body = (
        {"image_name": "500.png"} if method == "patch" else product_payload(name="Pear", image_name="500.png")
    )
    response = getattr(staff, method)(detail(pear_id), body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "image_name": [
            f"Product “Apple” (id {apple_id}) already has the image file stem “500”: change that product instead."
        ]
    }
    assert list(Product.objects.order_by("pk").values_list("name", "image_name")) == [
        ("Apple", "500.jpg"),
        ("Pear", "501.jpg"),
    ]


def test_a_product_keeps_its_own_file_stem_under_another_extension(staff: APIClient) -> None:
    pk = staff.post(LIST, product_payload(image_name="500.jpg"), format="json").json()["id"]

    response = staff.patch(detail(pk), {"image_name": "500.png", "weight": 7}, format="json")

    assert response.status_code == 200
    assert list(Product.objects.values_list("image_name", "weight")) == [("500.png", 7)]


def test_without_a_file_name_a_product_cannot_take_the_name_of_another_without_one(staff: APIClient) -> None:
    """A POST without a file name updates the product of that name: there
    can be only one."""
    pear = staff.post(LIST, product_payload(name="Pear", image_name=""), format="json").json()
    plum = staff.post(LIST, product_payload(name="Plum", image_name="502.jpg"), format="json").json()

    response = staff.patch(detail(plum["id"]), {"name": "Pear", "image_name": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "name": [
            f"Product “Pear” (id {pear['id']}) already has this name and no image file name: "
            "change that product instead."
        ]
    }
    assert Product.objects.get(pk=plum["id"]).image_name == "502.jpg"
    # With a file name of its own, the name is free to share.
    assert staff.patch(detail(plum["id"]), {"name": "Pear"}, format="json").status_code == 200


@pytest.fixture
def demo_loaded(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())


def test_an_edited_demo_product_becomes_real_and_a_post_of_its_stem_updates_it(
    staff: APIClient, demo_loaded: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        real_photo = image_upload(file=corpus.photo_jpeg(300, 200), original_name="007.jpeg")
    edited = Product.objects.filter(is_demo=True).order_by("pk").last()
    assert edited is not None

    response = staff.patch(detail(edited.pk), {"image_name": "007.jpg"}, format="json")
    assert response.status_code == 200
    # Real now: it shows the real photo of its stem, not its demo one.
    assert response.json()["image"]["id"] == real_photo.pk
    edited.refresh_from_db()
    assert (edited.is_demo, edited.image_stem) == (False, "007")

    again = staff.post(LIST, {"name": "Lime", "weight": 3, "image_name": "007.jpg"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == edited.pk
    assert Product.objects.filter(image_stem="007").count() == 1

    call_command("seed_demo", "--remove", stdout=io.StringIO())
    assert list(Product.objects.values_list("pk", "name", "weight")) == [(edited.pk, "Lime", 3)]


def test_a_demo_product_cannot_be_given_the_file_stem_of_a_real_one(
    staff: APIClient, demo_loaded: None
) -> None:
    real = staff.post(LIST, product_payload(image_name="007.jpg"), format="json").json()
    demo_product = Product.objects.filter(is_demo=True).order_by("pk").first()
    assert demo_product is not None

    response = staff.patch(detail(demo_product.pk), {"image_name": "007.png"}, format="json")

    assert response.status_code == 400
    assert f"(id {real['id']}) already has the image file stem “007”" in response.json()["image_name"][0]
    assert Product.objects.filter(
        pk=demo_product.pk, is_demo=True, image_stem=demo_product.image_stem
    ).exists()


def test_a_file_name_holding_a_control_character_is_refused_on_change_and_in_the_admin(
    staff: APIClient, admin_client: Client
) -> None:
    # An upload of "010\x1b.jpeg" is stored as "010.jpeg": the product would never link.
    reason = "The text cannot contain the control character U+001B."
    product = ProductFactory(name="Mango", image_name="010.jpeg")

    patched = staff.patch(detail(product.pk), {"image_name": "010\x1b.jpeg"}, format="json")
    assert patched.status_code == 400
    assert patched.json() == {"image_name": [reason]}

    changed = admin_client.post(
        f"/admin/catalog/product/{product.pk}/change/",
        {"name": "Mango", "weight": "300", "description": "", "image_name": "010\x1b.jpeg", "image": ""},
    )
    assert changed.status_code == 200
    assert changed.context["adminform"].form.errors == {"image_name": [reason]}

    with pytest.raises(ValidationError) as refused:
        services.product_upsert(name="Kiwi", weight=100, image_name="011\x1b.jpeg")
    assert refused.value.message_dict == {"image_name": [reason]}

    assert list(Product.objects.values_list("image_name", flat=True)) == ["010.jpeg"]
