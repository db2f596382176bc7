"""On PostgreSQL, a product (or person) saved with an image while that image
is deleted: every path answers cleanly (a form error, a line of the import, a
product linked to the photo before it, or detached by the deletion after the
save) and no product keeps the id of a deleted image.

Django sets a deleted image's products to null itself, in one UPDATE before
the DELETE; the database checks the products' references only when each
transaction commits. A product written with the image after that UPDATE
had read the products committed a reference to a row gone meanwhile: a
foreign key violation at commit, a server error.

Each test runs the portal's code on threads of their own, each with its own
connection, and holds one writer after a chosen statement (``Paused``, of
tests/integration/paused.py) while the image is deleted: the interleaving
is forced, not hoped for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Person, Product
from tests.factories import ImageFactory, UserFactory, jpeg_bytes
from tests.integration.paused import PATIENCE, Paused, Writer, lock_waiters
from tests.servers import PostgresServer
from uploads import services as upload_services
from uploads.models import Image

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent


def photo(name: str) -> Image:
    image: Image = ImageFactory.create(original_name=name)
    return image


def deleted_meanwhile(
    server: PostgresServer, paused: Paused, writer: Writer, which: Image | Callable[[], Image]
) -> bool:
    """Once ``writer`` is held by ``paused``, the image (``which``, or the
    one it finds then) is deleted on a connection of its own; ``writer`` goes
    on once the deletion is done, or waits for a lock the writer holds (then
    it ends after the writer). Returns whether the deletion waited."""
    writer.start()
    paused.wait()
    image = which if isinstance(which, Image) else which()
    deletion = Writer(server, Paused("never run"), lambda: upload_services.image_delete(image=image))
    deletion.start()
    deadline = time.monotonic() + PATIENCE
    while deletion.is_alive() and not lock_waiters(server):
        assert time.monotonic() < deadline, "the deletion neither ended nor waited"
        time.sleep(0.01)
    waited = deletion.is_alive()
    paused.go()
    writer.join(PATIENCE)
    deletion.outcome()
    assert not Image.objects.filter(pk=image.pk).exists()
    return waited


def no_dangling_image() -> None:
    gone = Product.objects.exclude(image=None).exclude(image_id__in=Image.objects.values("pk"))
    assert not gone.exists(), list(gone.values("pk", "image_id"))


# Where the writer is held while the image is deleted: once it has found the
# image (the deletion ends first), or as it writes the product with it.
FOUND_BY_ID = ('FROM "uploads_image" WHERE "uploads_image"."id" =',)
FOUND_BY_STEM = ('"uploads_image"."name_stem" =',)
# (A save writes every column; a deletion's own UPDATE sets the image alone.)
WRITING = ('UPDATE "catalog_product" SET "name" =',)


# --- The admin ------------------------------------------------------------------


def admin_change(product: Product, image: Image) -> Callable[[], Any]:
    def post() -> Any:
        client = Client(raise_request_exception=False)
        client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
        return client.post(
            f"/admin/catalog/product/{product.pk}/change/",
            {
                "name": product.name,
                "weight": product.weight,
                "description": "",
                "image_name": product.image_name,
                "image": image.pk,
            },
        )

    return post


def test_an_image_chosen_in_the_admin_and_deleted_before_the_save_is_a_form_error(
    postgres_database: PostgresServer,
) -> None:
    chosen = photo("chosen.jpeg")
    product = Product.objects.create(name="Pear", weight=2, image_name="pear.jpeg")
    paused = Paused(*FOUND_BY_ID)
    writer = Writer(postgres_database, paused, admin_change(product, chosen))

    assert not deleted_meanwhile(postgres_database, paused, writer, chosen)

    response = writer.outcome()
    assert response.status_code == 200, response.status_code
    assert services.IMAGE_GONE_MESSAGE in response.content.decode()
    product.refresh_from_db()
    assert product.image_id is None
    no_dangling_image()


def test_an_image_deleted_while_the_admin_saves_it_is_detached_after_the_save(
    postgres_database: PostgresServer,
) -> None:
    chosen = photo("chosen.jpeg")
    product = Product.objects.create(name="Pear", weight=2, image_name="pear.jpeg")
    paused = Paused(*WRITING)
    writer = Writer(postgres_database, paused, admin_change(product, chosen))

    waited = deleted_meanwhile(postgres_database, paused, writer, chosen)

    assert writer.outcome().status_code == 302
    assert waited, "the deletion did not wait for the save"
    product.refresh_from_db()
    assert product.image_id is None
    no_dangling_image()


@pytest.mark.parametrize(
    "held", [FOUND_BY_ID, ('UPDATE "catalog_person" SET "name" =',)], ids=["found", "writing"]
)
def test_a_photo_chosen_for_a_person_in_the_admin_and_deleted_meanwhile_is_an_error_or_detached(
    postgres_database: PostgresServer, held: tuple[str, ...]
) -> None:
    chosen = photo("face.jpeg")
    person = Person.objects.create(name="Ada", username="ada")

    def post() -> Any:
        client = Client(raise_request_exception=False)
        client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
        return client.post(
            f"/admin/catalog/person/{person.pk}/change/",
            {"name": "Ada", "username": "ada", "phone": "", "photo": chosen.pk, "is_active": "on"},
        )

    paused = Paused(*held)
    writer = Writer(postgres_database, paused, post)

    waited = deleted_meanwhile(postgres_database, paused, writer, chosen)

    response = writer.outcome()
    if held is FOUND_BY_ID:
        assert response.status_code == 200, response.status_code
        assert services.IMAGE_GONE_MESSAGE in response.content.decode()
    else:
        assert response.status_code == 302, response.status_code
    assert waited == (held is not FOUND_BY_ID)
    person.refresh_from_db()
    assert person.photo_id is None


# --- The API --------------------------------------------------------------------


@pytest.mark.parametrize("held", [FOUND_BY_STEM, WRITING], ids=["found", "writing"])
def test_a_product_given_a_file_name_through_the_api_while_its_image_is_deleted_shows_the_one_before(
    postgres_database: PostgresServer, held: tuple[str, ...]
) -> None:
    older, newer = photo("plum.jpeg"), photo("plum.png")
    product = Product.objects.create(name="Plum", weight=3, image_name="other.jpeg")
    robot = UserFactory(username="robot", is_staff=True, is_superuser=True)

    def patch() -> Any:
        client = APIClient(raise_request_exception=False)
        client.force_authenticate(robot)
        return client.patch(f"/api/v1/products/{product.pk}/", {"image_name": "plum.png"}, format="json")

    paused = Paused(*held)
    writer = Writer(postgres_database, paused, patch)

    waited = deleted_meanwhile(postgres_database, paused, writer, newer)

    response = writer.outcome()
    assert response.status_code == 200, response.content
    assert waited == (held is WRITING)
    product.refresh_from_db()
    assert product.image_id == older.pk
    no_dangling_image()


# --- The supplier import ----------------------------------------------------------


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A fig and a kiwi, each described and with its photo."""
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "descriptions" / "fig.txt").write_text("Fig\n3 lbs\nPurple.\n")
    (tmp_path / "descriptions" / "kiwi.txt").write_text("Kiwi\n1 lbs\nGreen.\n")
    (tmp_path / "images" / "fig.jpeg").write_bytes(jpeg_bytes(color=(90, 20, 90)))
    (tmp_path / "images" / "kiwi.jpeg").write_bytes(jpeg_bytes(color=(20, 120, 20)))
    return tmp_path


def import_supplier(directory: Path, err: StringIO) -> Callable[[], Any]:
    return lambda: call_command(
        "import_supplier", str(directory), "--no-email", "--wait", "0", stdout=StringIO(), stderr=err
    )


def fig_photo() -> Image:
    return Image.objects.get(original_name__endswith="fig.jpeg")


def kiwi_imported_whole() -> None:
    kiwi = Product.objects.get(name="Kiwi")
    assert kiwi.image is not None
    assert kiwi.image.original_name.endswith("kiwi.jpeg")
    no_dangling_image()


def test_a_supplier_photo_deleted_before_its_product_is_saved_is_one_line_of_the_import(
    postgres_database: PostgresServer, delivery: Path
) -> None:
    err = StringIO()
    # Held as it checks the fig's photo, about to save the fig.
    paused = Paused('FROM "uploads_image" WHERE', '"uploads_image"."status" =')
    writer = Writer(postgres_database, paused, import_supplier(delivery, err))

    assert not deleted_meanwhile(postgres_database, paused, writer, fig_photo)

    with pytest.raises(CommandError, match="1 description"):
        writer.outcome()
    assert f"rejected descriptions/fig.txt: image: {services.IMAGE_GONE_MESSAGE}" in err.getvalue()
    assert not Product.objects.filter(name="Fig").exists()
    kiwi_imported_whole()


def test_a_supplier_photo_deleted_while_its_product_is_saved_is_detached_after_the_save(
    postgres_database: PostgresServer, delivery: Path
) -> None:
    err = StringIO()
    # Held as it adds the fig, its photo in hand.
    paused = Paused('INSERT INTO "catalog_product"')
    writer = Writer(postgres_database, paused, import_supplier(delivery, err))

    waited = deleted_meanwhile(postgres_database, paused, writer, fig_photo)

    writer.outcome()
    assert waited, "the deletion did not wait for the save"
    assert "rejected" not in err.getvalue(), err.getvalue()
    assert Product.objects.get(name="Fig").image_id is None
    kiwi_imported_whole()


# --- The automatic link -------------------------------------------------------------


@pytest.mark.parametrize("held", [FOUND_BY_STEM, WRITING], ids=["found", "writing"])
def test_products_relinked_after_a_deletion_skip_an_image_deleted_meanwhile(
    postgres_database: PostgresServer, held: tuple[str, ...]
) -> None:
    first, second, third = photo("quince.jpeg"), photo("quince.png"), photo("quince.webp")
    product = Product.objects.create(name="Quince", weight=1, image_name="quince.jpeg")
    services.product_relink(product_ids=[product.pk])
    product.refresh_from_db()
    assert product.image_id == third.pk
    # Deleting the photo shown relinks the product to the newest one left
    # once the deletion commits: held as it does, the second is deleted.
    paused = Paused(*held)
    writer = Writer(postgres_database, paused, lambda: upload_services.image_delete(image=third))

    waited = deleted_meanwhile(postgres_database, paused, writer, second)

    writer.outcome()
    assert waited == (held is WRITING)
    product.refresh_from_db()
    assert product.image_id == first.pk
    no_dangling_image()


def test_an_upload_deleted_while_it_is_linked_to_its_products_is_detached_after_the_link(
    postgres_database: PostgresServer,
) -> None:
    product = Product.objects.create(name="Lime", weight=1, image_name="lime.jpeg")
    # The link after the upload commits locks the image first, then writes.
    paused = Paused("UPDATE catalog_product SET image_id")
    # (Processed as it commits: the factory's own processing would find it gone.)
    writer = Writer(
        postgres_database, paused, lambda: ImageFactory.create(original_name="lime.png", processed=False)
    )

    waited = deleted_meanwhile(postgres_database, paused, writer, lambda: Image.objects.get(name_stem="lime"))

    writer.outcome()
    assert waited, "the deletion did not wait for the link"
    product.refresh_from_db()
    assert product.image_id is None
    no_dangling_image()
