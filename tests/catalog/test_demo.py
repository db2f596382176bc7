"""Demo content: marked, named apart from real data, untouched by a supplier's
run on top of it, hidden from the catalog once real products exist, and
removed with its files by ``seed_demo --remove``."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog import services
from catalog.models import Feedback, Person, Product
from portal import demo
from tests.factories import FeedbackFactory, PersonFactory
from tests.uploads import corpus
from uploads import processing, storage
from uploads import services as upload_services
from uploads.models import Image, Rendition

pytestmark = pytest.mark.django_db

NUMBERED = re.compile(r"^\d{1,3}$")


@pytest.fixture
def seeded(django_capture_on_commit_callbacks: Any) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
    return out.getvalue()


def demo_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every demo row as it is stored, to compare before and after."""
    return {
        "people": list(Person.objects.filter(is_demo=True).order_by("pk").values_list()),
        "products": list(Product.objects.filter(is_demo=True).order_by("pk").values_list()),
        "reviews": list(Feedback.objects.filter(is_demo=True).order_by("pk").values_list()),
        "images": list(Image.objects.filter(is_demo=True).order_by("pk").values_list()),
        "renditions": list(
            Rendition.objects.filter(image__is_demo=True).order_by("pk").values_list("storage_key")
        ),
    }


def catalog_cards(client: Client, path: str = "/catalog/") -> list[str]:
    """The product names on the catalog's grid (or the home page's)."""
    html = client.get(path).content.decode()
    grid = html[html.index('<ul class="grid products">') :]
    grid = grid[: grid.index("</ul>")]
    return re.findall(r'<span class="card-title"[^>]*>([^<]*)</span>', grid)


def supplier_posts(client: Client, capture: Any) -> dict[str, Image]:
    """What the course's supplier scripts send: descriptions to /fruits/,
    then the photos to /upload/."""
    for name, weight, image_name in (("Watermelon", "500 lbs\n", "010.jpeg"), ("Apple", "300", "001.jpeg")):
        response = client.post("/fruits/", {"name": name, "weight": weight, "image_name": image_name})
        assert response.status_code == 201, response.content
    photos = {}
    for seed, file_name in enumerate(("010.jpeg", "001.jpeg"), start=1):
        with capture(execute=True):
            response = client.post(
                "/upload/",
                {"file": SimpleUploadedFile(file_name, corpus.photo_jpeg(900, 600, seed=seed))},
            )
        assert response.status_code == 201, response.content
        photos[file_name] = Image.objects.get(pk=response.json()["id"])
    return photos


def test_demo_rows_are_marked_and_named_apart_from_the_numbered_files(seeded: str) -> None:
    assert seeded.startswith("Demo content loaded: 6 people, 6 products, 6 reviews.")
    assert Person.objects.filter(is_demo=True).count() == len(demo.PEOPLE)
    assert Product.objects.filter(is_demo=True).count() == len(demo.PRODUCTS)
    assert Feedback.objects.filter(is_demo=True).count() == len(demo.REVIEWS)
    assert Image.objects.filter(is_demo=True).count() == len(demo.PEOPLE) + len(demo.PRODUCTS)
    for model in (Person, Product, Feedback, Image):
        assert not model.objects.filter(is_demo=False).exists(), model
    stems = [*Image.objects.values_list("name_stem", flat=True)]
    stems += [*Product.objects.values_list("image_stem", flat=True)]
    assert all(stem.startswith("demo-") and not NUMBERED.match(stem) for stem in stems), stems
    # Each demo product shows its own drawn photo, processed.
    for product in Product.objects.select_related("image"):
        assert product.image is not None
        assert product.image.status == Image.Status.READY
        assert product.image.name_stem == product.image_stem
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert out.getvalue().startswith("Demo content is already loaded.")
    assert Product.objects.count() == len(demo.PRODUCTS)


def test_a_supplier_run_on_top_of_the_demo_leaves_it_untouched_and_fills_the_catalog(
    seeded: str, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    assert sorted(catalog_cards(client)) == sorted(p["name"] for p in demo.PRODUCTS)
    assert sorted(catalog_cards(client, "/")) == sorted(p["name"] for p in demo.PRODUCTS)
    before = demo_snapshot()

    photos = supplier_posts(client, django_capture_on_commit_callbacks)

    assert demo_snapshot() == before
    # The catalog shows exactly the supplier's products, with the supplier's photos.
    assert catalog_cards(client) == ["Apple", "Watermelon"]
    assert sorted(catalog_cards(client, "/")) == ["Apple", "Watermelon"]
    assert [f["name"] for f in client.get("/fruits/").json()] == ["Watermelon", "Apple"]
    watermelon = Product.objects.get(name="Watermelon", is_demo=False)
    assert (watermelon.is_demo, watermelon.weight, watermelon.image) == (False, 500, photos["010.jpeg"])
    assert Product.objects.get(name="Apple", is_demo=False).image == photos["001.jpeg"]
    html = client.get("/catalog/").content.decode()
    for photo in photos.values():
        assert photo.renditions.get().storage_key in html
    for key in Rendition.objects.filter(image__is_demo=True).values_list("storage_key", flat=True):
        assert key not in html


def test_seed_demo_remove_takes_out_every_demo_row_and_file_and_keeps_real_data(
    seeded: str, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    photos = supplier_posts(client, django_capture_on_commit_callbacks)
    review = client.post(
        "/feedback/", {"title": "Sweet", "name": "Ann", "date": "2024-06-01", "feedback": "Yes."}
    ).json()
    demo_files = [(image.file.storage, image.file.name) for image in Image.objects.filter(is_demo=True)]
    demo_keys = list(Rendition.objects.filter(image__is_demo=True).values_list("storage_key", flat=True))
    assert demo_files
    assert demo_keys
    assert all(store.exists(name) for store, name in demo_files)

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--remove", stdout=out)

    assert out.getvalue().strip() == ("Demo content removed: 6 people, 6 products, 6 reviews, 12 images.")
    for model in (Person, Product, Feedback, Image):
        assert not model.objects.filter(is_demo=True).exists(), model
    assert not any(store.exists(name) for store, name in demo_files)
    assert not any(default_storage.exists(key) for key in demo_keys)
    # The supplier's products, photos and files and the visitor's review stay.
    assert sorted(Product.objects.values_list("name", flat=True)) == ["Apple", "Watermelon"]
    for photo in photos.values():
        photo.refresh_from_db()
        assert photo.file.storage.exists(photo.file.name)
        assert default_storage.exists(photo.renditions.get().storage_key)
    assert Feedback.objects.filter(pk=review["id"]).exists()
    assert catalog_cards(client) == ["Apple", "Watermelon"]


def test_removed_demo_content_stays_away_once_the_portal_has_its_own(
    seeded: str, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    supplier_posts(client, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--remove", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert out.getvalue().startswith("The portal holds people or products of its own")
    assert not Product.objects.filter(is_demo=True).exists()
    assert not Person.objects.exists()


def test_a_real_import_of_a_demo_username_makes_that_person_real(seeded: str) -> None:

    username = demo.PEOPLE[0]["username"]
    services.person_upsert(username=username, name="Ada Real", department="Engineering")
    call_command("seed_demo", "--remove", stdout=io.StringIO())
    person = Person.objects.get(username=username)
    assert (person.name, person.is_demo) == ("Ada Real", False)


def test_seed_demo_remove_keeps_the_photo_of_a_demo_person_made_real(
    seeded: str, django_capture_on_commit_callbacks: Any
) -> None:
    """The person is kept with what staff saw of them: their photo, which
    no demo row shows any more, is theirs now."""
    username = demo.PEOPLE[0]["username"]
    services.person_upsert(username=username, name="Ada Real", department="Engineering")
    photo = Person.objects.get(username=username).photo
    assert photo is not None
    assert photo.is_demo

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--remove", stdout=out)

    assert out.getvalue().strip() == "Demo content removed: 5 people, 6 products, 6 reviews, 11 images."
    person = Person.objects.get(username=username)
    assert person.photo == photo
    photo.refresh_from_db()
    assert not photo.is_demo
    assert photo.file.storage.exists(photo.file.name)
    assert all(default_storage.exists(r.storage_key) for r in photo.renditions.all())
    assert not Image.objects.filter(is_demo=True).exists()


def test_seed_demo_remove_keeps_the_image_of_a_demo_product_staff_changed_keeping_it(
    seeded: str, django_capture_on_commit_callbacks: Any
) -> None:
    """A demo product changed in the admin, its image left as chosen, is real
    with the image it showed, which is its own now."""
    product = Product.objects.filter(is_demo=True, image__isnull=False).order_by("pk").first()
    assert product is not None
    image = product.image
    assert image is not None
    assert image.is_demo
    services.product_update(product_id=product.pk, weight=product.weight + 1, image=image)

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--remove", stdout=out)

    assert out.getvalue().strip() == "Demo content removed: 6 people, 5 products, 6 reviews, 11 images."
    product.refresh_from_db()
    assert (product.is_demo, product.image) == (False, image)
    image.refresh_from_db()
    assert not image.is_demo
    assert image.file.storage.exists(image.file.name)
    assert all(default_storage.exists(r.storage_key) for r in image.renditions.all())
    assert not Image.objects.filter(is_demo=True).exists()


def test_a_demo_photo_imported_as_a_real_one_is_a_real_image_that_the_removal_keeps(
    seeded: str, django_capture_on_commit_callbacks: Any
) -> None:
    """A photo of the demo dropped into a folder (downloaded from the admin,
    say) was counted "already there": the import took the demo image for
    it, which ``seed_demo --remove`` then deleted."""
    demo_photo = Image.objects.filter(is_demo=True).order_by("pk").first()
    assert demo_photo is not None
    with demo_photo.file.open("rb") as fh:
        data = fh.read()

    with django_capture_on_commit_callbacks(execute=True):
        image, created = upload_services.image_import(
            data=data, original_name="mine.jpg", preset=demo_photo.preset
        )
    assert created
    assert (image.pk != demo_photo.pk, image.is_demo) == (True, False)
    # Run again, it finds its own image, not the demo's.
    assert upload_services.image_import(data=data, original_name="mine.jpg", preset=demo_photo.preset) == (
        image,
        False,
    )

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--remove", stdout=io.StringIO())

    image.refresh_from_db()
    assert image.file.storage.exists(image.file.name)
    assert not Image.objects.filter(pk=demo_photo.pk).exists()


def thumb_key(image: Image) -> str:
    return image.renditions.get(name="thumb", format="jpeg").storage_key


def as_an_upload(image: Image) -> tuple[processing.FocalPoint, str]:
    """The automatic point and the square thumbnail's key that processing the
    image's original as an upload gives, its crops cut around staff's point
    when set."""
    with image.file.open("rb") as fh:
        result = processing.process(
            fh.read(), upload_services.preset_get(image.preset), focal_point=image.focal_point
        )
    thumb = next(o for o in result.outputs if (o.name, o.format) == ("thumb", "jpeg"))
    return result.focal_point, storage.rendition_key(thumb.data, thumb.extension)


def test_a_demo_loaded_before_automatic_focal_points_gets_them_as_an_upload_does(
    seeded: str, django_capture_on_commit_callbacks: Any
) -> None:
    images = list(Image.objects.filter(is_demo=True).order_by("pk"))
    centre = processing.FocalPoint(0.5, 0.5)
    staff_point = processing.FocalPoint(0.3, 0.2, 0.1)
    # As an older version left them: crops cut around the centre, no
    # automatic point; one photo with a point staff set since.
    with django_capture_on_commit_callbacks(execute=True):
        for image in images:
            upload_services.image_set_focal_point(image=image, focal_point=centre)
    Image.objects.filter(is_demo=True).update(
        focal_x=None, focal_y=None, focal_radius=None, focal_auto_x=None, focal_auto_y=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload_services.image_set_focal_point(image=images[0], focal_point=staff_point)
    portrait = images[1]
    centred_thumb = thumb_key(portrait)

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)

    assert out.getvalue().splitlines() == [
        "Demo content is already loaded.",
        f"{len(images)} demo photos without an automatic focal point sent for processing again.",
    ]
    for image in images:
        image.refresh_from_db()
        assert image.status == Image.Status.READY
        point, thumb = as_an_upload(image)
        assert image.focal_point_auto == point, image.original_name
        assert thumb_key(image) == thumb, image.original_name
    assert images[0].focal_point == staff_point
    # The portrait's square is no longer the one cut around the centre.
    assert portrait.focal_point_auto != centre
    assert thumb_key(portrait) != centred_thumb

    before = demo_snapshot()
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    assert out.getvalue() == "Demo content is already loaded.\n"
    assert demo_snapshot() == before


# --- One rule for every public page ---------------------------------------------


@pytest.fixture
def hidden_demo(db: None) -> Product:
    """A demo product, hidden since the store has a product of its own."""
    kiwi = Product.objects.create(name="Demo kiwi", weight=1, image_name="demo-kiwi.jpeg", is_demo=True)
    Product.objects.create(name="Apple", weight=300, image_name="001.jpeg")
    return kiwi


def test_a_demo_product_has_a_page_while_the_catalog_shows_it(client: Client) -> None:
    kiwi = Product.objects.create(name="Demo kiwi", weight=1, image_name="demo-kiwi.jpeg", is_demo=True)
    assert client.get(kiwi.get_absolute_url()).status_code == 200
    assert client.get("/reviews/", {"product": kiwi.pk}).status_code == 200


def test_a_demo_product_the_catalog_hides_has_no_page_nor_list_of_reviews(
    client: Client, hidden_demo: Product
) -> None:
    assert catalog_cards(client) == ["Apple"]
    assert client.get(hidden_demo.get_absolute_url()).status_code == 404
    assert client.get("/reviews/", {"product": hidden_demo.pk}).status_code == 404


def test_a_demo_product_the_catalog_hides_cannot_be_reviewed(client: Client, hidden_demo: Product) -> None:
    form = client.get("/reviews/new/", {"product": hidden_demo.pk}).content.decode()
    assert "Demo kiwi" not in form
    assert "<h1>Write a review</h1>" in form

    response = client.post(
        "/reviews/new/",
        {"title": "Odd", "name": "Ann", "text": "Tart.", "website": "", "product": hidden_demo.pk},
    )

    assert response.status_code == 400
    assert "no longer in the catalog" in response.content.decode()
    assert not Feedback.objects.exists()


def test_reviews_link_only_to_products_the_catalog_shows(client: Client, hidden_demo: Product) -> None:
    apple = Product.objects.get(is_demo=False)
    FeedbackFactory(title="Tart kiwi", product=hidden_demo, is_demo=True)
    FeedbackFactory(title="Crisp apple", product=apple)

    html = client.get("/reviews/").content.decode()

    assert "Tart kiwi" in html
    assert "Crisp apple" in html
    assert f'href="{apple.get_absolute_url()}"' in html
    assert hidden_demo.get_absolute_url() not in html


def test_counting_the_reviews_reads_their_table_alone(client: Client, hidden_demo: Product) -> None:
    """Whether a review's product is shown is asked of the rows a page
    shows, not of every review its count goes through: joined to the
    products, the count of 100,000 reviews took five times as long (on
    SQLite, a row lookup per review instead of a covering index)."""
    FeedbackFactory.create_batch(11, product=hidden_demo)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/reviews/").content.decode()
    [count] = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]

    assert "catalog_product" not in count, count
    assert "Older" in html  # a second page: the count was used
    assert hidden_demo.get_absolute_url() not in html


def test_staff_still_find_a_hidden_demo_product_in_the_admin(staff: Client, hidden_demo: Product) -> None:
    html = staff.get("/admin/catalog/product/").content.decode()
    assert "Demo kiwi" in html
    assert staff.get(f"/admin/catalog/product/{hidden_demo.pk}/change/").status_code == 200


def test_the_admin_links_to_a_public_page_only_where_there_is_one(
    staff: Client, hidden_demo: Product
) -> None:
    apple = Product.objects.get(is_demo=False)
    gone = PersonFactory(is_active=False)
    here = PersonFactory()

    def view_on_site(path: str) -> bool:
        return "View on site" in staff.get(path).content.decode()

    assert view_on_site(f"/admin/catalog/product/{apple.pk}/change/")
    assert not view_on_site(f"/admin/catalog/product/{hidden_demo.pk}/change/")
    assert view_on_site(f"/admin/catalog/person/{here.pk}/change/")
    assert not view_on_site(f"/admin/catalog/person/{gone.pk}/change/")


def test_the_api_gives_a_page_url_only_for_a_product_the_catalog_shows(
    visitor: Any, staff: Client, hidden_demo: Product
) -> None:
    """The API still lists a hidden demo product (``?on_display=false``
    finds it), but its ``url`` is null, not the path of a 404."""
    apple = Product.objects.get(is_demo=False)

    listed = {item["name"]: item["url"] for item in visitor.get("/api/v1/products/").json()["results"]}
    detail = visitor.get(f"/api/v1/products/{hidden_demo.pk}/").json()
    changed = staff.patch(f"/api/v1/products/{apple.pk}/", {"weight": 301}, format="json").json()

    assert listed == {"Apple": apple.get_absolute_url(), "Demo kiwi": None}
    assert detail["url"] is None
    assert changed["url"] == apple.get_absolute_url()
    assert client_get_ok(visitor, listed["Apple"])


def test_a_demo_products_api_url_is_its_page_while_the_catalog_shows_it(visitor: Any) -> None:
    kiwi = Product.objects.create(name="Demo kiwi", weight=1, image_name="demo-kiwi.jpeg", is_demo=True)
    body = visitor.get(f"/api/v1/products/{kiwi.pk}/").json()
    assert body["url"] == kiwi.get_absolute_url()
    assert client_get_ok(visitor, body["url"])


def client_get_ok(client: Any, path: str) -> bool:
    return bool(client.get(path, HTTP_ACCEPT="text/html").status_code == 200)
