"""Course-style client scripts, run unchanged as separate processes against a
real HTTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog.models import Feedback, Product
from tests.uploads import corpus
from uploads.models import Image

CLIENTS = Path(__file__).resolve().parent / "lab_clients"
LAB = Path(__file__).resolve().parent.parent / "data" / "lab"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def run_client(script: str, url: str, folder: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(CLIENTS / script), url, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def test_the_feedback_uploader_posts_every_lab_review(live_server: Any) -> None:
    ids = run_client("feedback_client.py", f"{live_server.url}/feedback/", LAB / "feedback")
    assert len(ids) == 5
    assert Feedback.objects.filter(pk__in=[int(i) for i in ids], status="published").count() == 5
    assert Feedback.objects.get(name="Katie").date.isoformat() == "2019-12-09"


def test_the_supplier_uploaders_create_products_and_link_their_images(
    live_server: Any, tmp_path: Path
) -> None:
    out = run_client("description_client.py", f"{live_server.url}/fruits/", LAB / "descriptions")
    assert out.count("201") == 3
    images = tmp_path / "images"
    images.mkdir()
    for stem in ("001", "005", "007"):
        (images / f"{stem}.jpeg").write_bytes(corpus.photo_jpeg(900, 600, seed=int(stem)))
    assert run_client("image_client.py", f"{live_server.url}/upload/", images) == ["201"] * 3
    products = {p.name: p for p in Product.objects.select_related("image")}
    assert set(products) == {"Apple", "Kiwifruit", "Mango"}
    assert products["Apple"].weight == 500
    for product in products.values():
        assert product.image is not None
        assert product.image.status == Image.Status.READY
        assert product.image.preset == "supplier"


def test_a_readlines_feedback_uploader_posting_unstripped_lines_is_accepted(live_server: Any) -> None:
    ids = run_client("feedback_readlines_client.py", f"{live_server.url}/feedback/", LAB / "feedback")
    assert len(ids) == 5
    katie = Feedback.objects.get(pk__in=[int(i) for i in ids], name="Katie")
    assert katie.date.isoformat() == "2019-12-09"
    assert katie.title == "Best experience so far"
    john = Feedback.objects.get(name="John")
    assert (john.title, john.date.isoformat()) == ("Great Customer Service", "2017-12-21")
    assert john.text.startswith("The customer service here is very good.")
    for review in Feedback.objects.all():
        for value in (review.title, review.name, review.text):
            assert value == value.strip(), value


def test_a_readlines_description_uploader_posting_unstripped_lines_is_accepted(live_server: Any) -> None:
    ids = run_client("description_readlines_client.py", f"{live_server.url}/fruits/", LAB / "descriptions")
    assert len(ids) == 3
    apple = Product.objects.get(name="Apple")
    assert (apple.weight, apple.image_name) == (500, "001.jpeg")
    assert apple.description.startswith("Crisp red apples")
    assert not apple.description.endswith("\n")
