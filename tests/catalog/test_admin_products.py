"""Staff adding and editing products in the admin: the same services as every
other path, so a product links to its photo by file stem; adding one never
doubles nor overwrites another."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import formats, services
from catalog.models import Product
from tests.catalog.weights import TOO_HEAVY, WEIGHTS
from tests.factories import FeedbackFactory, ProductFactory, UserFactory
from tests.uploads import corpus
from uploads.models import Image
from uploads.services import image_upload

pytestmark = pytest.mark.django_db

ADD = "/admin/catalog/product/add/"


def change(pk: int) -> str:
    return f"/admin/catalog/product/{pk}/change/"


def form(**overrides: Any) -> dict[str, Any]:
    data = {"name": "Mango", "weight": "300", "description": "Ripe.", "image_name": "010.jpeg", "image": ""}
    data.update(overrides)
    return data


@pytest.fixture
def photos(django_capture_on_commit_callbacks: Any) -> dict[str, Image]:
    made = {}
    for seed, name in enumerate(("010.tiff", "011.jpeg", "studio.png"), start=1):
        with django_capture_on_commit_callbacks(execute=True):
            image = image_upload(
                file=corpus.photo_jpeg(300, 200, seed=seed), original_name=name, preset="supplier"
            )
        made[name] = Image.objects.get(pk=image.pk)
    return made


def test_a_product_added_in_the_admin_links_the_photo_of_its_file_stem(
    admin_client: Client, photos: dict[str, Image]
) -> None:
    response = admin_client.post(ADD, form(name=" Mango "))
    product = Product.objects.get()
    assert response.status_code == 302
    assert response["Location"] == "/admin/catalog/product/"
    assert (product.name, product.image) == ("Mango", photos["010.tiff"])


def test_adding_a_product_under_a_known_file_stem_is_refused_naming_that_product(
    admin_client: Client, photos: dict[str, Image]
) -> None:
    admin_client.post(ADD, form())
    first = Product.objects.get()
    response = admin_client.post(ADD, form(name="Mango XL", weight="320", image_name="010.png"))
    assert response.status_code == 200
    assert (
        f"Product “Mango” (id {first.pk}) already has the image file stem “010”" in response.content.decode()
    )
    assert list(Product.objects.values_list("name", "weight", "image_name")) == [("Mango", 300, "010.jpeg")]


def test_adding_a_product_under_a_known_name_without_a_file_is_refused(admin_client: Client) -> None:
    admin_client.post(ADD, form(image_name=""))
    response = admin_client.post(ADD, form(image_name="", weight="999"))
    assert response.status_code == 200
    assert "already has this name and no image file name" in response.content.decode()
    assert list(Product.objects.values_list("weight", flat=True)) == [300]


def test_staff_who_may_only_add_products_cannot_overwrite_one(admin_client: Client) -> None:
    admin_client.post(ADD, form())
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename="add_product"))
    client = Client()
    client.force_login(clerk)
    response = client.post(ADD, form(name="Not a mango", description="Overwritten."))
    assert response.status_code == 200
    assert list(Product.objects.values_list("name", "description")) == [("Mango", "Ripe.")]


def test_a_product_added_meanwhile_under_the_same_file_stem_is_not_overwritten() -> None:
    """The form's check and the write are apart: the service refuses again."""
    first = services.product_create(name="Mango", weight=300, image_name="010.jpeg")
    with pytest.raises(ValidationError) as refused:
        services.product_create(name="Mango XL", weight=320, image_name="010.png")
    assert "already has the image file stem “010”" in str(refused.value.message_dict["image_name"])
    first.refresh_from_db()
    assert (first.name, first.weight, Product.objects.count()) == ("Mango", 300, 1)


def test_renaming_the_file_in_the_admin_relinks_the_photo(
    admin_client: Client, photos: dict[str, Image]
) -> None:
    admin_client.post(ADD, form())
    product = Product.objects.get()
    response = admin_client.post(
        change(product.pk), form(image_name="011.jpeg", image=str(photos["010.tiff"].pk))
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.image_name, product.image) == ("011.jpeg", photos["011.jpeg"])


def test_a_photo_chosen_in_the_admin_is_kept(admin_client: Client, photos: dict[str, Image]) -> None:
    admin_client.post(ADD, form())
    product = Product.objects.get()
    admin_client.post(change(product.pk), form(image=str(photos["studio.png"].pk), weight="310"))
    product.refresh_from_db()
    assert (product.weight, product.image) == (310, photos["studio.png"])


def test_a_description_typed_in_the_admin_is_the_one_a_supplier_delivers(admin_client: Client) -> None:
    # A textarea sends each line break as CRLF; a description file is read with LF.
    admin_client.post(ADD, form(description="Ripe.\r\nFrom Brazil."))
    product = Product.objects.get()
    assert product.description == "Ripe.\nFrom Brazil."
    admin_client.post(change(product.pk), form(description="Ripe.\r\nFrom Peru.", weight="310"))
    product.refresh_from_db()
    assert product.description == "Ripe.\nFrom Peru."

    delivered, outcome = services.product_upsert(
        name="Mango", weight=310, description="Ripe.\nFrom Peru.", image_name="010.jpeg"
    )
    assert (delivered.pk, outcome) == (product.pk, "unchanged")


def test_an_invalid_product_is_refused_with_the_form_errors(admin_client: Client) -> None:
    response = admin_client.post(ADD, form(weight="0"))
    assert response.status_code == 200
    # In the words of every other path that reads a weight.
    assert "The weight must be at least 1 lb." in response.content.decode()
    assert not Product.objects.exists()


def test_changing_a_product_to_the_file_stem_of_another_is_refused_naming_that_product(
    admin_client: Client,
) -> None:
    admin_client.post(ADD, form())
    admin_client.post(ADD, form(name="Apple", weight="500", image_name="011.jpeg"))
    mango, apple = Product.objects.order_by("pk")
    response = admin_client.post(change(apple.pk), form(name="Apple", weight="500", image_name="010.png"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {
        "image_name": [
            f"Product “Mango” (id {mango.pk}) already has the image file stem “010”: change that product instead."
        ]
    }
    assert list(Product.objects.order_by("pk").values_list("name", "image_name")) == [
        ("Mango", "010.jpeg"),
        ("Apple", "011.jpeg"),
    ]


def test_changing_a_product_without_a_file_to_the_name_of_another_without_one_is_refused(
    admin_client: Client,
) -> None:
    admin_client.post(ADD, form(image_name=""))
    admin_client.post(ADD, form(name="Papaya", image_name=""))
    mango, papaya = Product.objects.order_by("pk")
    response = admin_client.post(change(papaya.pk), form(image_name=""))
    assert response.status_code == 200
    assert f"Product “Mango” (id {mango.pk}) already has this name and no image file name" in str(
        response.context["adminform"].form.errors["name"]
    )
    assert list(Product.objects.order_by("pk").values_list("name", flat=True)) == ["Mango", "Papaya"]


def test_a_change_that_keeps_the_file_stem_is_saved(admin_client: Client) -> None:
    admin_client.post(ADD, form())
    product = Product.objects.get()
    response = admin_client.post(change(product.pk), form(image_name="010.png", weight="310"))
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.image_name, product.weight) == ("010.png", 310)


def test_a_demo_product_changed_in_the_admin_becomes_real(
    admin_client: Client, photos: dict[str, Image]
) -> None:
    demo_image = photos["studio.png"]
    Image.objects.filter(pk=demo_image.pk).update(is_demo=True)
    demo, _ = services.product_upsert(
        name="Demo mango", weight=3, image_name="studio.png", image=demo_image, is_demo=True
    )
    response = admin_client.post(
        change(demo.pk),
        form(name="Demo mango", weight="4", image_name="studio.png", image=str(demo_image.pk)),
    )
    assert response.status_code == 302
    demo.refresh_from_db()
    # Real now: it shows the real photos of its stem (there are none), not
    # the demo one that `seed_demo --remove` deletes.
    assert (demo.is_demo, demo.weight, demo.image) == (False, 4, None)


def test_a_demo_product_cannot_be_changed_to_the_file_stem_of_a_real_one(admin_client: Client) -> None:
    real = services.product_create(name="Mango", weight=300, image_name="010.jpeg")
    demo, _ = services.product_upsert(name="Demo mango", weight=3, image_name="demo-mango.jpg", is_demo=True)
    response = admin_client.post(change(demo.pk), form(name="Demo mango", weight="3", image_name="010.png"))
    assert response.status_code == 200
    assert f"(id {real.pk}) already has the image file stem “010”" in str(
        response.context["adminform"].form.errors["image_name"]
    )
    assert Product.objects.filter(pk=demo.pk, is_demo=True, image_name="demo-mango.jpg").exists()


def test_a_product_changed_to_a_file_stem_taken_meanwhile_is_refused_by_the_service() -> None:
    """The admin's check and the API's are the service's own, under the lock
    an import takes for that stem."""
    mango = services.product_create(name="Mango", weight=300, image_name="010.jpeg")
    apple = services.product_create(name="Apple", weight=500, image_name="011.jpeg")
    with pytest.raises(ValidationError) as refused:
        services.product_update(product_id=apple.pk, image_name="010.png", weight=1)
    assert f"(id {mango.pk}) already has the image file stem “010”" in str(
        refused.value.message_dict["image_name"]
    )
    apple.refresh_from_db()
    assert (apple.image_name, apple.weight) == ("011.jpeg", 500)


def test_a_product_paired_before_with_another_of_its_file_stem_stays_editable() -> None:
    """A change that keeps what the product is matched by makes no new pair:
    two products of one stem from before the check are each still changed."""
    services.product_create(name="Mango", weight=300, image_name="010.jpeg")
    apple = services.product_create(name="Apple", weight=500, image_name="011.jpeg")
    Product.objects.filter(pk=apple.pk).update(image_name="010.png", image_stem="010")
    services.product_update(product_id=apple.pk, image_name=" 010.png ", weight=510)
    apple.refresh_from_db()
    assert (apple.image_name, apple.weight) == ("010.png", 510)


@pytest.mark.parametrize(("weight", "expected"), [*WEIGHTS, (TOO_HEAVY, None)])
def test_a_weight_typed_in_the_admin_is_read_as_every_other_path_reads_it(
    admin_client: Client, weight: str, expected: int | None
) -> None:
    added = admin_client.post(ADD, form(weight=weight))
    product = ProductFactory(weight=1, image_name="020.jpeg")
    changed = admin_client.post(change(product.pk), form(name="Kiwi", weight=weight, image_name="020.jpeg"))
    product.refresh_from_db()
    if expected is None:
        assert (added.status_code, changed.status_code) == (200, 200)
        assert "weight" in added.context["adminform"].form.errors
        assert not Product.objects.filter(name="Mango").exists()
        assert product.weight == 1
    else:
        assert (added.status_code, changed.status_code) == (302, 302)
        assert Product.objects.get(name="Mango").weight == product.weight == expected


class Inputs(HTMLParser):
    """The attributes of a page's ``<input>`` elements, by name."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str | None]] = {}
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.found[str(dict(attrs).get("name"))] = dict(attrs)


def test_the_weight_is_typed_in_a_text_box_showing_the_stored_digits(admin_client: Client) -> None:
    """Not a number box, which a browser fills with digits alone, refusing
    ``500 lbs`` before the server reads it; the stored weight in plain
    digits, which saved again stay the weight."""
    product = ProductFactory(name="Melon", weight=1_234_567, image_name="020.jpeg")
    response = admin_client.get(change(product.pk))
    page = response.content.decode()
    box = Inputs(page).found["weight"]
    assert (box["type"], box["inputmode"], box["value"]) == ("text", "numeric", "1234567")
    assert not {"min", "max", "step"} & set(box)
    assert f"a whole number from 1 to {formats.WEIGHT_MAX:,}: 500 or 500 lbs" in page
    saved = admin_client.post(
        change(product.pk), form(name="Melon", weight=box["value"], image_name="020.jpeg")
    )
    product.refresh_from_db()
    assert (saved.status_code, product.weight) == (302, 1_234_567)


@pytest.mark.parametrize(("typed", "stored"), [("+5 lbs", 5), ("\u0665\u0660\u0660 lbs", 500)])
def test_a_weight_typed_as_text_in_the_admin_is_stored_as_its_number(
    admin_client: Client, typed: str, stored: int
) -> None:
    product = ProductFactory(name="Melon", weight=1, image_name="020.jpeg")
    response = admin_client.post(change(product.pk), form(name="Melon", weight=typed, image_name="020.jpeg"))
    product.refresh_from_db()
    assert (response.status_code, product.weight) == (302, stored)
    shown = Inputs(admin_client.get(change(product.pk)).content.decode()).found["weight"]
    assert shown["value"] == str(stored)


def test_deleting_thousands_of_products_takes_a_few_statements_not_some_for_each(
    admin_client: Client,
) -> None:
    """A product at a time was three statements each: 10,000 products
    selected across pages outlasted the web server's time limit for a
    request, cut off with some deleted and no word of it."""
    Product.objects.bulk_create(
        Product(name=f"Fruit {n}", weight=1, image_name=f"{n:04d}.jpeg", image_stem=f"{n:04d}")
        for n in range(3000)
    )
    reviewed = Product.objects.order_by("pk")[1500]
    review = FeedbackFactory(product=reviewed)
    selection = {
        "action": "delete_selected",
        "select_across": "1",
        "index": "0",
        "_selected_action": [str(reviewed.pk)],
        "post": "yes",
        "rows": "3000",
    }

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post("/admin/catalog/product/", selection)

    assert response.status_code == 302
    assert not Product.objects.exists()
    review.refresh_from_db()
    assert review.product is None  # the review stays, no longer tied to it
    assert len(queries) < 100


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a limit of SQLite's")
def test_deleting_products_selected_across_pages_stays_within_sqlite_s_limit_on_values(
    admin_client: Client, sqlite_limit: Callable[[int, int], None]
) -> None:
    """SQLite takes a bounded number of values in one statement: lowered
    here to the 999 Django counts on, 1,100 products stand for a selection
    past it. A batch of 1,000 ids was refused as "too many SQL variables"."""
    sqlite_limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    Product.objects.bulk_create(
        Product(name=f"Fruit {n}", weight=1, image_name=f"{n:04d}.jpeg", image_stem=f"{n:04d}")
        for n in range(1100)
    )
    selection = {
        "action": "delete_selected",
        "select_across": "1",
        "index": "0",
        "_selected_action": ["1"],
        "post": "yes",
        "rows": "1100",
    }

    response = admin_client.post("/admin/catalog/product/", selection)

    assert response.status_code == 302
    assert not Product.objects.exists()


def test_a_bulk_deletion_counts_the_products_of_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "DELETE_BATCH", 2)
    for n in range(5):
        ProductFactory(name=f"Fruit {n}")
    kept = ProductFactory(name="Kept")

    deleted = services.product_delete_many(products=Product.objects.exclude(pk=kept.pk))

    assert deleted == 5
    assert list(Product.objects.values_list("pk", flat=True)) == [kept.pk]
