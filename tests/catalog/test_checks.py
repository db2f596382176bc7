"""``manage.py check --database default`` names the products that share an
image file stem, left from before stems were kept in one Unicode form."""

from __future__ import annotations

import io
import unicodedata

import pytest
from django.core import checks
from django.core.management import call_command

from catalog.models import Product

pytestmark = pytest.mark.django_db

CAFE = "café.jpeg"


def test_products_that_share_a_stem_are_named_by_the_database_check() -> None:
    typed = Product.objects.create(name="Coffee", weight=1, image_name=CAFE)
    from_a_mac = Product.objects.create(
        name="Mac coffee", weight=1, image_name=unicodedata.normalize("NFD", CAFE)
    )
    Product.objects.create(name="Tea", weight=1, image_name="tea.jpeg")
    err = io.StringIO()

    call_command("check", "--database", "default", stderr=err)

    assert "catalog.W001" in err.getvalue()
    assert (
        f"Products {typed.pk} “Coffee”, {from_a_mac.pk} “Mac coffee” share the image file stem “café”."
        in err.getvalue()
    )
    assert "Tea" not in err.getvalue()


def test_the_check_is_silent_while_no_stem_is_shared() -> None:
    Product.objects.create(name="Coffee", weight=1, image_name=CAFE)
    Product.objects.create(name="Tea", weight=1, image_name="tea.jpeg")
    Product.objects.create(name="Bread", weight=1)
    Product.objects.create(name="Butter", weight=1)

    assert [m for m in checks.run_checks(databases=["default"]) if m.id == "catalog.W001"] == []


def test_past_the_stems_it_names_the_check_counts_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("catalog.checks.SHARED_STEMS_NAMED", 1)
    for stem in ("café", "crème"):
        Product.objects.create(name=stem, weight=1, image_name=f"{stem}.jpg")
        Product.objects.create(name=stem, weight=1, image_name=unicodedata.normalize("NFD", f"{stem}.png"))

    found = [m.msg for m in checks.run_checks(databases=["default"]) if m.id == "catalog.W001"]

    assert len(found) == 2
    assert "“café”" in found[0]
    assert found[1] == "1 more image file stem(s) shared by several products."
