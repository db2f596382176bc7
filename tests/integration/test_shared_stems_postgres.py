"""On PostgreSQL, products whose image file stems are one (added apart before
stems were kept in one Unicode form) are written one at a time, never a 500:
a post updates the one of its file name, an upload shows on both, and the
database check names them."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from django.apps import apps
from django.core import checks
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from core import migration_operations
from core.migration_operations import StemsTrimmed
from tests.factories import ProductFactory
from tests.servers import PostgresServer
from tests.uploads import corpus
from uploads.models import Image

pytestmark = [pytest.mark.integration]

CAFE = "café.jpeg"
CAFE_FROM_A_MAC = unicodedata.normalize("NFD", CAFE)


def test_a_post_and_an_upload_of_a_stem_two_products_share(
    postgres_database: PostgresServer, django_capture_on_commit_callbacks: Any
) -> None:
    typed = ProductFactory(name="Coffee", image_name=CAFE)
    from_a_mac = ProductFactory(name="Mac coffee", image_name=CAFE_FROM_A_MAC)
    client = Client(raise_request_exception=False)

    fruit = client.post(
        "/fruits/",
        {"name": "Mac coffee", "weight": 7, "image_name": CAFE_FROM_A_MAC},
        content_type="application/json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload = client.post("/upload/", {"file": SimpleUploadedFile(CAFE, corpus.photo_jpeg(120, 80))})

    assert (fruit.status_code, fruit.json()["id"], upload.status_code) == (201, from_a_mac.pk, 201)
    image = Image.objects.get()
    assert list(Product.objects.order_by("pk").values_list("pk", "weight", "image_id")) == [
        (typed.pk, 100, image.pk),
        (from_a_mac.pk, 7, image.pk),
    ]
    [shared] = [m.msg for m in checks.run_checks(databases=["default"]) if m.id == "catalog.W001"]
    assert (
        shared
        == f"Products {typed.pk} “Coffee”, {from_a_mac.pk} “Mac coffee” share the image file stem “café”."
    )


def test_two_names_that_differ_only_past_the_cut_of_their_stems_are_two_products(
    postgres_database: PostgresServer, django_capture_on_commit_callbacks: Any
) -> None:
    # NFC writes Devanagari "क़" (U+0958) as two characters: cut to its
    # column, the stem of each name would be the same 255 characters.
    names = ["\u0958" * 128 + "a.jpeg", "\u0958" * 128 + "b.jpeg"]
    client = Client(raise_request_exception=False)

    fruits = [
        client.post(
            "/fruits/",
            {"name": f"Qila {n}", "weight": 3, "image_name": name},
            content_type="application/json",
        )
        for n, name in enumerate(names)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        uploads = [
            client.post("/upload/", {"file": SimpleUploadedFile(name, corpus.photo_jpeg(120, 80, seed=n))})
            for n, name in enumerate(names)
        ]

    assert [r.status_code for r in fruits + uploads] == [201] * 4
    linked = Product.objects.order_by("pk").values_list("image_name", "image__original_name")
    assert list(linked) == [(name, name) for name in names]


def test_the_stems_of_names_with_whitespace_around_them_are_found_and_trimmed(
    postgres_database: PostgresServer,
) -> None:
    # The migration's search of such names is PostgreSQL's regex, not
    # Python's, and finds a no-break or ideographic space too in C.UTF-8.
    names = [" 006.png ", "images/\u3000007.png", "C:\\photos\\\xa0008.jpg", "009\t", "010.png", "011 .png"]
    for n, name in enumerate(names):
        product = ProductFactory(name=f"Fruit {n}", image_name=name)
        Product.objects.filter(pk=product.pk).update(image_stem=migration_operations.nfc_stem_apart(name))
    trim = StemsTrimmed("catalog.Product", source="image_name", target="image_stem")

    with CaptureQueriesContext(connection) as queries:
        trim.code(apps, None)

    stems = list(Product.objects.order_by("pk").values_list("image_stem", flat=True))
    assert stems == ["006", "007", "008", "009", "010", "011 "]
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    assert updates[0].count(" WHEN ") == 4
