"""Pages (SPEC §9.5): home, catalog, reviews and people render with a constant,
small number of SQL queries and no storage calls, whatever the content.

Runs in this process with Django's test client on the embedded set-up (SQLite,
media on the local disk) in a temporary ``PORTAL_VAR_DIR``. Content is made
through the services, as ``seed_demo`` makes it: people with portraits and
products with pictures (uploaded, so every image is processed into its
renditions), and reviews. Each page is requested once to warm up, then once
measured on a cold cache (cleared just before): SQL queries, and calls on the
default storage; the render time is shown for information. ``url`` is counted
apart, as a URL is computed locally (``FileSystemStorage``, or S3 without
querystring auth); ``exists``, ``size``, ``open``, ``listdir``, ``save``,
``delete`` and the like would each be a round trip to S3 and must be 0.

    .venv/bin/python -m bench.bench_pages [--quick] [--report-only]
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Result, main

TARGET_QUERIES = 10
SERVICE_VARS = (
    "DATABASE_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "EMAIL_URL",
    "DJANGO_MEDIA_ROOT",
)
ROUND_TRIPS = (
    "exists", "size", "open", "listdir", "save", "delete", "get_modified_time",
    "get_accessed_time", "get_created_time", "path",
)  # fmt: skip
COLORS = [(70, 120, 180), (150, 90, 60), (200, 110, 140), (90, 150, 100), (120, 90, 170), (190, 140, 60)]
DEPARTMENTS = ("Engineering", "Sales", "Support", "Warehouse", "Finance")


def configure(var_dir: Path) -> None:
    """Django on the embedded set-up, in a fresh var dir, migrated."""
    for name in SERVICE_VARS:
        os.environ.pop(name, None)
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="bench-secret-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
        PORTAL_VAR_DIR=str(var_dir),
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class StorageCalls:
    """Counts the calls made on the default storage's instance, by method."""

    def __init__(self) -> None:
        from django.core.files.storage import storages

        self.calls: Counter[str] = Counter()
        self.storage = storages["default"]
        for name in (*ROUND_TRIPS, "url"):
            original = getattr(self.storage, name, None)
            if callable(original):
                setattr(self.storage, name, self._counting(name, original))

    def _counting(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return original(*args, **kwargs)

        return counted

    def reset(self) -> None:
        self.calls.clear()

    def round_trips(self) -> int:
        return sum(n for name, n in self.calls.items() if name != "url")


def add_content(people: range, products: range, reviews: range) -> float:
    """Content through the services; returns the seconds it took (image processing included)."""
    import datetime as dt

    from django.utils import timezone

    from catalog import services as catalog_services
    from catalog.models import Feedback, Product
    from portal import demo
    from uploads import services as upload_services

    started = time.perf_counter()
    for i in people:
        color = COLORS[i % len(COLORS)]
        person, _ = catalog_services.person_upsert(
            username=f"person{i:03}",
            name=f"Person {i:03}",
            email=f"person{i}@example.com",
            phone={"office": f"802-867-{5300 + i:04}"},
            department=DEPARTMENTS[i % len(DEPARTMENTS)],
            role="Staff",
        )
        person.photo = upload_services.image_upload(
            file=demo.portrait_image(color, size=(600 + i, 740)),
            original_name=f"person{i:03}.jpg",
            alt=f"Portrait of Person {i:03}",
        )
        person.save(update_fields=["photo"])
    made = []
    for i in products:
        image = upload_services.image_upload(
            file=demo.fruit_image(COLORS[i % len(COLORS)], i, size=(1700, 1100)),
            original_name=f"{i:03}.jpg",
            alt=f"Fruit {i:03}",
        )
        product, _ = catalog_services.product_upsert(
            name=f"Fruit {i:03}",
            weight=100 + i,
            description=f"Fruit number {i}, fresh this week.",
            image_name=f"{i:03}.jpg",
            image=image,
        )
        made.append(product)
    catalog = made or list(Product.objects.all())
    today = timezone.localdate()
    for i in reviews:
        catalog_services.feedback_submit(
            title=f"Review {i}",
            name=("John", "Katie", "Tom", "Sara")[i % 4],
            date=today - dt.timedelta(days=i),
            text=f"Review number {i}: the fruit was good and the delivery on time.",
            rating=1 + i % 5,
            product=catalog[i % len(catalog)] if i % 3 else None,
            source=Feedback.Source.IMPORT,
        )
    return time.perf_counter() - started


def measure(storage: StorageCalls) -> dict[str, tuple[int, int, int, float]]:
    """Per page: (queries, storage round trips, storage url calls, render ms)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Person, Product

    product = Product.objects.order_by("pk").first()
    person = Person.objects.order_by("pk").first()
    pages = ["/", "/catalog/", "/reviews/", "/people/"]
    if product is not None:
        pages.append(f"/catalog/{product.pk}/")
    if person is not None:
        pages.append(f"/people/{person.username}/")
    client = Client()
    figures = {}
    for page in pages:
        if client.get(page).status_code != 200:
            raise RuntimeError(f"{page} did not answer 200")
        # Counted on a cold cache: nothing a previous request left there helps.
        cache.clear()
        storage.reset()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{page} answered {response.status_code}")
        if storage.round_trips():
            print(f"  {page}: storage calls {dict(storage.calls)}")
        figures[page] = (len(queries), storage.round_trips(), storage.calls["url"], elapsed)
    return figures


def label(page: str) -> str:
    if page.startswith("/catalog/") and page != "/catalog/":
        return "/catalog/<id>/"
    if page.startswith("/people/") and page != "/people/":
        return "/people/<username>/"
    return page


def run(quick: bool) -> list[Result]:
    small = (2, 2, 5) if quick else (3, 3, 10)
    large = (10, 10, 60) if quick else (30, 30, 200)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        configure(Path(tmp) / "var")
        storage = StorageCalls()
        import logging

        from catalog.models import Feedback, Person, Product
        from uploads.models import Image, Rendition

        logging.getLogger("uploads").setLevel(logging.WARNING)
        sizes = []
        done = (0, 0, 0)
        for people, products, reviews in (small, large):
            storage.reset()
            spent = add_content(range(done[0], people), range(done[1], products), range(done[2], reviews))
            done = (people, products, reviews)
            print(
                f"Storage calls while adding it (the counter at work): {dict(sorted(storage.calls.items()))}"
            )
            ready = Image.objects.filter(status=Image.Status.READY).count()
            print(
                f"Content: {Person.objects.count()} people, {Product.objects.count()} products,"
                f" {Feedback.objects.count()} reviews; {ready}/{Image.objects.count()} images ready,"
                f" {Rendition.objects.count()} renditions (made in {spent:.1f} s)"
            )
            sizes.append((f"{people}/{products}/{reviews}", measure(storage)))

        (small_label, small_figures), (large_label, large_figures) = sizes
        print(f"\nPer page, measured request (people/products/reviews {small_label} -> {large_label}):")
        print(
            f"  {'page':22} {'queries':>13} {'storage round trips':>20} {'url() calls':>13} {'render ms':>13}"
        )
        for page, big in large_figures.items():
            key = next((p for p in small_figures if label(p) == label(page)), page)
            few = small_figures.get(key, (0, 0, 0, 0.0))
            print(
                f"  {label(page):22} {few[0]:>5} -> {big[0]:<5} {few[1]:>9} -> {big[1]:<8}"
                f" {few[2]:>5} -> {big[2]:<5} {few[3]:>5.1f} -> {big[3]:<5.1f}"
            )
            constant = few[0] == big[0]
            results.append(
                Result(
                    f"page {label(page)} SQL queries ({small_label} -> {large_label})",
                    big[0],
                    "queries",
                    f"<= {TARGET_QUERIES}, constant",
                    constant and big[0] <= TARGET_QUERIES,
                )
            )
            results.append(
                Result(
                    f"page {label(page)} storage round trips",
                    few[1] + big[1],
                    "calls",
                    "0",
                    few[1] + big[1] == 0,
                )
            )
    return results


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
