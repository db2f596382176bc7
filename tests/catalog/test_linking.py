"""Products and their images: linked by file stem whichever arrives first, the
newest photo of a stem winning, demo and real content never mixing; the
lookups behind it are indexed."""

from __future__ import annotations

import datetime as dt
import importlib
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import selectors, services
from catalog.models import Person, Product
from tests.factories import ImageFactory
from tests.uploads import corpus
from uploads.models import Image, Rendition
from uploads.services import image_delete, image_mark_failed, image_process, image_reprocess, image_upload

pytestmark = pytest.mark.django_db

Upload = Callable[..., Image]


@pytest.fixture
def upload(django_capture_on_commit_callbacks: Any) -> Upload:
    """Upload a small supplier photo and let its commit hooks (processing,
    linking) run, as after a real commit."""
    seeds = iter(range(1, 1000))

    def make(name: str) -> Image:
        with django_capture_on_commit_callbacks(execute=True):
            image = image_upload(
                file=corpus.photo_jpeg(300, 200, seed=next(seeds)), original_name=name, preset="supplier"
            )
        return Image.objects.get(pk=image.pk)

    return make


def image_of(product: Product) -> Image | None:
    product.refresh_from_db()
    return product.image


# --- Either order ---------------------------------------------------------------


def test_an_image_arriving_after_its_description_is_linked(upload: Upload) -> None:
    product, _ = services.product_upsert(name="Apple", weight=500, image_name="001.jpeg")
    assert product.image is None
    image = upload("001.tiff")
    assert image_of(product) == image


def test_a_description_arriving_after_its_image_links_to_it(upload: Upload) -> None:
    image = upload("005.png")
    product, _ = services.product_upsert(name="Kiwi", weight=250, image_name="005.jpeg")
    assert product.image == image


def test_linking_after_an_upload_is_a_read_of_the_image_and_one_update(upload: Upload) -> None:
    # It runs after every upload commits, on the request's time. (The read
    # locks the image and, on PostgreSQL, takes the stem's key too.)
    product, _ = services.product_upsert(name="Plum", weight=80, image_name="007.jpeg")
    image = upload("007.jpg")
    product.image = None
    product.save()
    with CaptureQueriesContext(connection) as queries:
        assert services.product_link_image(image=image) == 1
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["SELECT", "UPDATE"]
    assert image_of(product) == image


def test_an_image_of_another_stem_is_not_linked(upload: Upload) -> None:
    product, _ = services.product_upsert(name="Apple", weight=500, image_name="001.jpeg")
    upload("0010.jpeg")
    upload("001-old.jpeg")
    assert image_of(product) is None


# --- The newest photo wins --------------------------------------------------------


def test_a_newer_image_with_the_same_stem_replaces_the_link_and_the_old_one_stays(upload: Upload) -> None:
    first = upload("007.jpeg")
    product, _ = services.product_upsert(name="Mango", weight=300, image_name="007.jpeg")
    assert product.image == first
    second = upload("007.tiff")
    assert image_of(product) == second
    assert Image.objects.filter(pk=first.pk).exists()


def test_posting_the_description_again_keeps_the_newest_image(upload: Upload) -> None:
    upload("010.jpeg")
    newest = upload("010.jpeg")
    product, outcome = services.product_upsert(name="Lemon", weight=200, image_name="010.jpeg")
    assert (product.image, outcome) == (newest, "created")
    again, outcome = services.product_upsert(name="Lemon", weight=200, image_name="010.jpeg")
    assert (again.pk, again.image, outcome) == (product.pk, newest, "unchanged")


def test_a_description_posted_again_keeps_the_photo_it_was_given_when_none_has_its_stem(
    upload: Upload,
) -> None:
    photo = upload("pear-on-white.jpeg")  # delivered with it, named otherwise
    product, _ = services.product_upsert(name="Pear", weight=180, image_name="014.jpeg", image=photo)
    assert product.image == photo
    again, outcome = services.product_upsert(name="Pear", weight=190, image_name="014.jpeg")
    assert (again.pk, image_of(again), outcome) == (product.pk, photo, "updated")


def test_linking_an_older_image_again_does_not_take_the_newer_one_away(upload: Upload) -> None:
    older = upload("012.jpeg")
    newer = upload("012.jpeg")
    product, _ = services.product_upsert(name="Plum", weight=150, image_name="012.jpeg")
    assert product.image == newer
    assert services.product_link_image(image=older) == 0
    assert image_of(product) == newer


def test_a_product_given_a_photo_by_its_upload_is_dated_as_changed(upload: Upload) -> None:
    # The day's report lists the products changed that day (updated_at).
    product, _ = services.product_upsert(name="Date", weight=20, image_name="034.jpeg")
    yesterday = timezone.now() - dt.timedelta(days=1)
    Product.objects.filter(pk=product.pk).update(updated_at=yesterday)

    image = upload("034.jpeg")

    linked = Product.objects.get(pk=product.pk)
    assert linked.image == image
    assert linked.updated_at > yesterday


def test_linking_the_image_a_product_shows_again_changes_nothing(upload: Upload) -> None:
    # The day's report lists the products changed that day (updated_at).
    product, _ = services.product_upsert(name="Fig", weight=60, image_name="013.jpeg")
    image = upload("013.jpeg")
    linked = Product.objects.get(pk=product.pk)
    assert linked.image == image
    assert services.product_link_image(image=image) == 0
    assert Product.objects.get(pk=product.pk).updated_at == linked.updated_at


def test_a_failed_image_is_not_linked(upload: Upload, django_capture_on_commit_callbacks: Any) -> None:
    good = upload("015.jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        broken = image_upload(file=corpus.truncated_jpeg(), original_name="015.jpeg", preset="supplier")
    assert Image.objects.get(pk=broken.pk).status == Image.Status.FAILED
    product, _ = services.product_upsert(name="Lime", weight=180, image_name="015.jpeg")
    assert product.image == good
    # Linked once it has failed (a worker's order), it is still not shown.
    assert services.product_link_image(image=broken) == 0
    assert image_of(product) == good


def test_a_later_photo_that_fails_gives_the_product_back_the_one_before(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    product, _ = services.product_upsert(name="Pear", weight=170, image_name="016.jpeg")
    good = upload("016.jpeg")
    with django_capture_on_commit_callbacks(execute=False):
        broken = image_upload(file=corpus.truncated_jpeg(), original_name="016.jpg", preset="supplier")
    # A worker's order: linked when the upload commits, failed when processed.
    assert services.product_link_image(image=broken) == 1
    assert image_of(product) == broken
    with django_capture_on_commit_callbacks(execute=True):
        image_process(image_id=broken.pk)
    assert Image.objects.get(pk=broken.pk).status == Image.Status.FAILED
    assert image_of(product) == good


def test_a_failed_only_photo_leaves_its_product_without_one(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    product, _ = services.product_upsert(name="Quince", weight=300, image_name="017.jpeg")
    with django_capture_on_commit_callbacks(execute=False):
        broken = image_upload(file=corpus.truncated_jpeg(), original_name="017.jpg", preset="supplier")
    services.product_link_image(image=broken)
    with django_capture_on_commit_callbacks(execute=True):
        image_process(image_id=broken.pk)
    assert image_of(product) is None


def test_a_photo_delivered_with_its_description_but_broken_hides_nothing(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    # A later delivery of the same folder: its photo fails before its
    # description is read, so its failure had no product to give back.
    good = upload("018.jpeg")
    product, _ = services.product_upsert(name="Fig", weight=60, image_name="018.jpeg", image=good)
    with django_capture_on_commit_callbacks(execute=True):
        broken = image_upload(file=corpus.truncated_jpeg(), original_name="018.jpeg", preset="supplier")
    assert Image.objects.get(pk=broken.pk).status == Image.Status.FAILED

    services.product_upsert(name="Fig", weight=60, image_name="018.jpeg", image=broken)

    assert image_of(product) == good


def two_photos(upload: Upload, stem: str) -> tuple[Product, Image, Image]:
    """A product of this stem, showing the newer of two photos."""
    older = upload(f"{stem}.jpeg")
    product, _ = services.product_upsert(name=f"Fruit {stem}", weight=40, image_name=f"{stem}.jpeg")
    newer = upload(f"{stem}.png")
    assert image_of(product) == newer
    return product, older, newer


def test_deleting_the_photo_a_product_shows_gives_it_the_one_before(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    product, older, newer = two_photos(upload, "019")

    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=newer)
    assert image_of(product) == older
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=older)
    assert image_of(product) is None


def test_a_product_kept_from_before_a_rule_of_its_text_still_gets_the_photo_before_when_one_goes(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    product, older, newer = two_photos(upload, "020")
    # Written before products refused direction controls: a relink changes
    # its image alone, and is no moment to refuse the rest of it.
    Product.objects.filter(pk=product.pk).update(name="Apple \u202eegnaro")

    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=newer)
    assert image_of(product) == older


def test_a_failed_photo_processed_again_is_shown_again(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    product, older, newer = two_photos(upload, "021")
    # Failed for a reason that passes (a memory limit since raised).
    with django_capture_on_commit_callbacks(execute=True):
        image_mark_failed(image_id=newer.pk, reason="Processing ran out of memory.")
    assert image_of(product) == older

    with django_capture_on_commit_callbacks(execute=True):
        image_reprocess(images=Image.objects.filter(pk=newer.pk))

    assert Image.objects.get(pk=newer.pk).status == Image.Status.READY
    assert image_of(product) == newer


def test_the_supplier_sees_their_latest_photo_through_the_course_endpoints(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:

    client.post("/fruits/", {"name": "Apple", "weight": 500, "image_name": "001.jpeg"})
    ids = []
    for seed in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/upload/", {"file": SimpleUploadedFile("001.jpeg", corpus.photo_jpeg(300, 200, seed=seed))}
            )
        ids.append(response.json()["id"])
    assert Product.objects.get().image_id == ids[1]
    assert Image.objects.filter(pk__in=ids).count() == 2


# --- Demo and real never mix ------------------------------------------------------


def test_demo_and_real_products_never_match_or_link_each_other(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    demo_image = upload("020.jpeg")
    Image.objects.filter(pk=demo_image.pk).update(is_demo=True)
    demo, _ = services.product_upsert(
        name="Demo fig", weight=10, image_name="020.jpeg", image=demo_image, is_demo=True
    )
    real, outcome = services.product_upsert(name="Fig", weight=12, image_name="020.jpeg")
    assert outcome == "created"
    assert real.pk != demo.pk
    assert real.image is None
    real_image = upload("020.jpeg")
    assert image_of(real) == real_image
    assert image_of(demo) == demo_image
    demo.refresh_from_db()
    assert (demo.name, demo.weight) == ("Demo fig", 10)
    # Its photo gone, the demo product is relinked among the demo images alone.
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=demo_image)
    assert image_of(demo) is None
    assert image_of(real) == real_image


# --- Edits by id ------------------------------------------------------------------


def test_changing_the_image_name_of_a_product_relinks_it(upload: Upload) -> None:
    apple_photo = upload("001.jpeg")
    pear_photo = upload("002.jpeg")
    product, _ = services.product_upsert(name="Apple", weight=500, image_name="001.jpeg")
    assert product.image == apple_photo
    services.product_update(product_id=product.pk, image_name="002.jpg")
    assert image_of(product) == pear_photo
    services.product_update(product_id=product.pk, weight=510)
    assert image_of(product) == pear_photo
    services.product_update(product_id=product.pk, image_name="003.jpeg")
    assert image_of(product) is None


def test_an_explicit_image_is_kept_whatever_the_name(upload: Upload) -> None:
    chosen = upload("studio-shot.png")
    upload("001.jpeg")
    product, _ = services.product_upsert(name="Apple", weight=500, image_name="001.jpeg")
    services.product_update(product_id=product.pk, image=chosen)
    assert image_of(product) == chosen


def test_relinking_counts_every_product_it_changes(upload: Upload) -> None:
    plum, _ = services.product_upsert(name="Plum", weight=10, image_name="031.jpeg")
    pear, _ = services.product_upsert(name="Pear", weight=20, image_name="032.jpeg")
    upload("031.jpeg")
    upload("032.jpeg")
    unchanged, _ = services.product_upsert(name="Fig", weight=30, image_name="033.jpeg")
    # Failed, its failure not yet handed on to the products showing it.
    Image.objects.update(status=Image.Status.FAILED)

    ids = [plum.pk, pear.pk, unchanged.pk]
    assert services.product_relink(product_ids=ids) == 2

    assert (image_of(plum), image_of(pear)) == (None, None)


@pytest.mark.parametrize("image_name", ["", ".jpeg"])
def test_relinking_leaves_a_product_without_a_stem_the_photo_chosen_for_it(
    upload: Upload, image_name: str
) -> None:
    # Attached in the admin or through the API: no stem to relink it by.
    chosen = upload("studio-shot.png")
    product, _ = services.product_upsert(name="Apple", weight=500, image_name=image_name)
    services.product_update(product_id=product.pk, image=chosen)

    assert services.product_relink(product_ids=Product.objects.values_list("pk", flat=True)) == 0

    assert image_of(product) == chosen


def test_a_chosen_photo_that_fails_and_is_processed_again_is_shown_again_without_a_stem(
    upload: Upload, django_capture_on_commit_callbacks: Any
) -> None:
    chosen = upload("studio-shot.png")
    product, _ = services.product_upsert(name="Apple", weight=500, image_name="")
    services.product_update(product_id=product.pk, image=chosen)

    with django_capture_on_commit_callbacks(execute=True):
        image_mark_failed(image_id=chosen.pk, reason="Processing ran out of memory.")
    # Shown as "No photo" while it has failed, and kept for when it is processed again.
    assert image_of(product) == chosen
    with django_capture_on_commit_callbacks(execute=True):
        image_reprocess(images=Image.objects.filter(pk=chosen.pk))

    assert Image.objects.get(pk=chosen.pk).status == Image.Status.READY
    assert image_of(product) == chosen


# --- Products that share a stem ----------------------------------------------------

CAFE = "café.jpeg"
CAFE_FROM_A_MAC = unicodedata.normalize("NFD", CAFE)


def products_sharing_a_stem() -> tuple[Product, Product]:
    """Two products added apart before their stems were kept in one Unicode
    form: since then both have the stem "café"."""
    typed = Product.objects.create(name="Coffee", weight=100, image_name=CAFE)
    from_a_mac = Product.objects.create(name="Mac coffee", weight=100, image_name=CAFE_FROM_A_MAC)
    assert typed.image_stem == from_a_mac.image_stem == "café"
    return typed, from_a_mac


def test_a_post_of_a_stem_two_products_share_updates_the_one_of_its_file_name() -> None:
    typed, from_a_mac = products_sharing_a_stem()

    mac, mac_outcome = services.product_upsert(name="Mac coffee", weight=7, image_name=CAFE_FROM_A_MAC)
    pc, pc_outcome = services.product_upsert(name="Coffee", weight=3, image_name=CAFE)

    assert (mac, mac_outcome, pc, pc_outcome) == (from_a_mac, "updated", typed, "updated")
    assert [(p.name, p.weight, p.image_name) for p in Product.objects.order_by("pk")] == [
        ("Coffee", 3, CAFE),
        ("Mac coffee", 7, CAFE_FROM_A_MAC),
    ]


def test_a_post_of_a_stem_two_products_share_under_a_third_name_updates_the_oldest() -> None:
    typed, from_a_mac = products_sharing_a_stem()

    product, _ = services.product_upsert(name="Coffee", weight=4, image_name="café.png")

    assert product == typed
    from_a_mac.refresh_from_db()
    assert (from_a_mac.weight, from_a_mac.image_name) == (100, CAFE_FROM_A_MAC)


def test_a_photo_of_a_stem_two_products_share_shows_on_both(upload: Upload) -> None:
    typed, from_a_mac = products_sharing_a_stem()
    image = upload(CAFE_FROM_A_MAC)
    assert image_of(typed) == image_of(from_a_mac) == image


# --- One stored stem, indexed -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("001.jpeg", "001"),
        ("001.tar.gz", "001.tar"),
        ("images/001.TIFF", "001"),
        ("README", "README"),
        (" 006.png ", "006"),
        ("\t006.png", "006"),
        ("\xa0006.png\xa0", "006"),
        ("images/ 006.png", "006"),
        ("006 ", "006"),
        ("006 .png", "006 "),  # inside the name: kept, as a posted image_name keeps it
        ("   ", ""),
        (" .png", ""),
    ],
)
def test_the_stem_is_stored_on_images_and_products_alike(upload: Upload, name: str, stem: str) -> None:
    product, _ = services.product_upsert(name="Thing", weight=1, image_name=name)
    assert product.image_stem == stem
    assert upload(name.rsplit("/", 1)[-1]).name_stem == stem


@pytest.mark.parametrize("name", [" 006.png ", "\t006.png", "\xa0006.png\xa0", "images/ 006.png"])
@pytest.mark.parametrize("image_first", [True, False], ids=["image-first", "description-first"])
def test_whitespace_around_a_name_does_not_keep_a_photo_from_its_product(
    upload: Upload, name: str, image_first: bool
) -> None:
    if image_first:
        image = upload(name.rsplit("/", 1)[-1])
        product, _ = services.product_upsert(name="Pear", weight=3, image_name="006.png")
    else:
        product, _ = services.product_upsert(name="Pear", weight=3, image_name="006.png")
        image = upload(name.rsplit("/", 1)[-1])
    assert image_of(product) == image
    # And a post of the description under that name is the same product.
    again, outcome = services.product_upsert(name="Pear", weight=4, image_name=name)
    assert (again.pk, outcome) == (product.pk, "updated")
    assert image_of(again) == image


def test_a_name_that_is_only_whitespace_or_an_extension_has_no_stem_and_links_nothing(upload: Upload) -> None:
    product, _ = services.product_upsert(name="Fig", weight=1, image_name="")
    for name in ("   ", " .png", "\xa0.png"):
        assert upload(name).name_stem == ""
    assert image_of(product) is None


def test_a_name_too_long_to_keep_loses_its_whitespace_before_its_stem(upload: Upload) -> None:
    # The description's name is trimmed before its column's 255 characters
    # are counted; the photo's, cut to fit, must lose the same whitespace
    # first and not the stem's last characters.
    name = "p" * 251 + ".png"
    product, _ = services.product_upsert(name="Plum", weight=2, image_name=f"  {name}\t")
    image = upload(f"\xa0 {name}  ")
    assert image.original_name == name
    assert image_of(product) == image


def test_a_stem_longer_in_one_unicode_form_fits_its_column_and_still_links(upload: Upload) -> None:
    # NFC writes Devanagari "क़" (U+0958) as two characters: a name of 255
    # would have a stem of 500, which PostgreSQL's column refuses.
    name = "\u0958" * 250 + ".jpeg"
    product, _ = services.product_upsert(name="Qila", weight=1, image_name=name)
    image = upload(name)
    assert len(product.image_stem) == len(image.name_stem) == 255
    assert image_of(product) == image


def test_names_that_differ_only_past_the_cut_of_their_stems_are_two_products(upload: Upload) -> None:
    # Cut to 255 characters, the stems of these two would be one.
    qila, qalam = ("\u0958" * 128 + end + ".jpeg" for end in ("a", "b"))
    first, _ = services.product_upsert(name="Qila", weight=1, image_name=qila)
    second, outcome = services.product_upsert(name="Qalam", weight=2, image_name=qalam)
    qila_photo, qalam_photo = upload(qila), upload(qalam)

    assert outcome == "created"
    assert len(first.image_stem) == len(second.image_stem) == 255
    assert (image_of(first), image_of(second)) == (qila_photo, qalam_photo)
    assert first.image_name == qila


def test_the_stems_follow_renames(upload: Upload) -> None:
    image = upload("001.jpeg")
    image.original_name = "002.jpeg"
    image.save(update_fields=["original_name"])
    assert Image.objects.get(pk=image.pk).name_stem == "002"
    product = Product.objects.create(name="Apple", weight=1, image_name="003.png")
    product.image_name = "004.png"
    product.save(update_fields=["image_name"])
    assert Product.objects.get(pk=product.pk).image_stem == "004"


def test_the_migrations_fill_the_stems_of_existing_rows(upload: Upload) -> None:
    image = upload("030.jpeg")
    product, _ = services.product_upsert(name="Date", weight=5, image_name="030.jpeg")
    Image.objects.filter(pk=image.pk).update(name_stem="")
    Product.objects.filter(pk=product.pk).update(image_stem="")
    uploads_0002 = importlib.import_module("uploads.migrations.0002_image_stem_demo_indexes")
    catalog_0003 = importlib.import_module("catalog.migrations.0003_demo_rows_and_image_stem")
    uploads_0002.fill_name_stems(apps, None)
    catalog_0003.fill_image_stems(apps, None)
    assert Image.objects.get(pk=image.pk).name_stem == "030"
    assert Product.objects.get(pk=product.pk).image_stem == "030"


def query_plan(run: Callable[[], Any]) -> str:
    """SQLite's plan for the last query ``run`` makes (savepoints aside)."""
    with CaptureQueriesContext(connection) as ctx:
        run()
    [*_, last] = (q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE")))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {last}")
        return " ".join(str(row) for row in cursor.fetchall())


def _link_an_image() -> None:
    image = ImageFactory(original_name="001.jpeg", processed=False)
    services.product_link_image(image=image)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
@pytest.mark.parametrize(
    ("lookup", "index"),
    [
        (lambda: selectors.image_latest_for("001.jpeg"), "uploads_image_stem_idx"),
        (lambda: list(Product.objects.filter(image_stem="001", is_demo=False)), "catalog_product_stem_idx"),
        (_link_an_image, "catalog_product_stem_idx"),
        (lambda: list(Image.objects.filter(file__in=["originals/ab/x.jpg"])), "uploads_image_file_idx"),
        (
            lambda: list(Rendition.objects.filter(storage_key__in=["renditions/ab/x.jpg"])),
            "uploads_rendition_key_idx",
        ),
    ],
    ids=["image-by-stem", "product-by-stem", "link-after-upload", "image-by-file", "rendition-by-key"],
)
def test_linking_and_sweep_lookups_use_an_index(lookup: Callable[[], Any], index: str) -> None:
    assert index in query_plan(lookup)


def test_an_image_deleted_since_it_was_chosen_is_refused_on_its_field_and_nothing_is_written() -> None:
    """A write that would point a person or a product at an image deleted
    meanwhile is refused in words on its field, not failed as it commits."""
    photo, image = ImageFactory(original_name="face.jpeg"), ImageFactory(original_name="plum.jpeg")
    image_delete(image=photo)
    image_delete(image=image)

    with pytest.raises(ValidationError) as person_refused:
        services.person_upsert(username="ada", name="Ada", photo=photo)
    with pytest.raises(ValidationError) as product_refused:
        services.product_upsert(name="Plum", weight=100, image_name="plum.jpeg", image=image)

    assert person_refused.value.message_dict == {"photo": [services.IMAGE_GONE_MESSAGE]}
    assert product_refused.value.message_dict == {"image": [services.IMAGE_GONE_MESSAGE]}
    assert not Person.objects.exists()
    assert not Product.objects.exists()
