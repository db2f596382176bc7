"""Staff adding and editing products in the admin: the same services as every
other path, so a product links to its photo by file stem and is not doubled."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from catalog.models import Product
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


def test_adding_a_product_under_a_known_file_stem_updates_that_product(
    admin_client: Client, photos: dict[str, Image]
) -> None:
    admin_client.post(ADD, form())
    response = admin_client.post(ADD, form(name="Mango XL", weight="320", image_name="010.png"))
    assert response.status_code == 302
    assert list(Product.objects.values_list("name", "weight", "image_name")) == [("Mango XL", 320, "010.png")]


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


def test_an_invalid_product_is_refused_with_the_form_errors(admin_client: Client) -> None:
    response = admin_client.post(ADD, form(weight="0"))
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not Product.objects.exists()
