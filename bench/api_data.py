"""Rows for the API reads benchmark, written straight into PostgreSQL with COPY:
reviews, and people and products whose pictures are processed images with the
renditions of the ``web`` preset (four widths in WebP and JPEG, and the square
thumbnail in both). Nothing is stored in S3: the API builds every URL from the
rows, without asking the storage anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from typing import Any

FEEDBACK_COLUMNS = (
    "title", "name", "date", "text", "rating", "product_id", "status", "source",
    "fingerprint", "is_demo", "created_at", "updated_at",
)  # fmt: skip
IMAGE_COLUMNS = (
    "id", "file", "original_name", "name_stem", "title", "alt", "preset", "sha256", "format",
    "width", "height", "frames", "bytes", "status", "error", "processing_ms", "placeholder",
    "dominant_color", "attempts", "interruptions", "created_at", "updated_at", "processed_at",
    "is_demo", "focal_auto_x", "focal_auto_y",
)  # fmt: skip
RENDITION_COLUMNS = ("image_id", "name", "format", "width", "height", "bytes", "storage_key")
PERSON_COLUMNS = (
    "name", "username", "email", "phone", "department", "role", "photo_id", "is_active", "is_demo",
    "created_at", "updated_at",
)  # fmt: skip
PRODUCT_COLUMNS = (
    "name", "weight", "description", "image_name", "image_stem", "image_id", "is_demo",
    "created_at", "updated_at",
)  # fmt: skip
WIDTHS = (320, 640, 1024, 1600)
WORDS = [
    "fresh",
    "crisp",
    "sweet",
    "juicy",
    "ripe",
    "delivery",
    "order",
    "fruit",
    "apples",
    "mangoes",
    "kiwifruit",
    "lemons",
    "service",
    "friendly",
    "staff",
    "price",
    "value",
    "box",
    "week",
    "store",
    "quality",
    "taste",
    "soft",
    "firm",
    "arrived",
    "late",
    "early",
    "great",
]
DEPARTMENTS = ("Engineering", "Sales", "Support", "Warehouse", "Finance", "Marketing")
NAMES = ("Ada", "Grace", "Alan", "Katie", "Tom", "Sara", "Mei", "Kofi", "Priya", "Jonas")


def _connect(postgres: Any, dbname: str) -> Any:
    return postgres.connect(dbname)


def _analyze(postgres: Any, dbname: str, *tables: str) -> None:
    with _connect(postgres, dbname) as conn:
        # What autovacuum does to a table in service: statistics and the visibility map.
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")


def seed_feedback(postgres: Any, dbname: str, start: int, stop: int) -> float:
    """Reviews start..stop-1 (5% hidden or pending); returns the seconds it took."""
    rng = random.Random(start)
    day0 = dt.date(2015, 1, 1)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    columns = ", ".join(FEEDBACK_COLUMNS)
    with (
        _connect(postgres, dbname) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY catalog_feedback ({columns}) FROM STDIN") as copy,
    ):
        for i in range(start, stop):
            title = f"Review {i}"
            name = rng.choice(NAMES)
            date = day0 + dt.timedelta(days=rng.randrange(3650))
            text = " ".join(rng.choices(WORDS, k=rng.randint(10, 60))).capitalize() + "."
            status = "published" if i % 20 else rng.choice(("hidden", "pending"))
            fingerprint = hashlib.sha256("\x1f".join([title, name, str(date), text]).encode()).hexdigest()
            rating = rng.randint(1, 5) if i % 3 else None
            copy.write_row(
                (title, name, date, text, rating, None, status, "import", fingerprint, False, now, now)
            )
    _analyze(postgres, dbname, "catalog_feedback")
    return time.perf_counter() - started


def _image_rows(
    first_id: int, count: int, now: dt.datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    images, renditions = [], []
    for image_id in range(first_id, first_id + count):
        sha = hashlib.sha256(f"image {image_id}".encode()).hexdigest()
        images.append(
            (
                image_id, f"originals/{sha[:2]}/{sha}.jpg", f"{image_id:06}.jpg", f"{image_id:06}",
                f"Picture {image_id}", f"Picture number {image_id}", "web", sha, "JPEG", 2000, 1500, 1,
                812_345, "ready", "", 240, "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "#a0522d", 1, 0, now, now, now,
                False, 0.5, 0.45,
            )
        )  # fmt: skip
        for width in (*WIDTHS, 256):
            name = "thumb" if width == 256 else f"w{width}"
            height = width if width == 256 else width * 3 // 4
            for fmt, ext in (("webp", "webp"), ("jpeg", "jpg")):
                key_hash = hashlib.sha256(f"{image_id} {name} {fmt}".encode()).hexdigest()
                key = f"renditions/{key_hash[:2]}/{key_hash}.{ext}"
                renditions.append((image_id, name, fmt, width, height, width * 40, key))
    return images, renditions


def seed_catalog(postgres: Any, dbname: str, *, people: int, products: int, loose_images: int) -> float:
    """People with photos, products with pictures, and images of nobody's;
    every image ready with its renditions. Returns the seconds it took."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(7)
    total = people + products + loose_images
    with _connect(postgres, dbname) as conn, conn.cursor() as cur:
        first = int(cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM uploads_image").fetchone()[0])
        images, renditions = _image_rows(first, total, now)
        with cur.copy(f"COPY uploads_image ({', '.join(IMAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in images:
                copy.write_row(row)
        cur.execute("SELECT setval(pg_get_serial_sequence('uploads_image', 'id'), %s)", (first + total,))
        with cur.copy(f"COPY uploads_rendition ({', '.join(RENDITION_COLUMNS)}) FROM STDIN") as copy:
            for row in renditions:
                copy.write_row(row)
        with cur.copy(f"COPY catalog_person ({', '.join(PERSON_COLUMNS)}) FROM STDIN") as copy:
            for i in range(people):
                # Numbered by their image, so that a second call adds new names.
                number = first + i
                phone = json.dumps({"office": f"802-{number % 1000:03}-{number % 10000:04}"})
                copy.write_row(
                    (
                        f"{rng.choice(NAMES)} {number:07}", f"person{number:07}", f"person{number}@example.com",
                        phone, rng.choice(DEPARTMENTS), "Staff", number, number % 50 != 0, False, now, now,
                    )
                )  # fmt: skip
        with cur.copy(f"COPY catalog_product ({', '.join(PRODUCT_COLUMNS)}) FROM STDIN") as copy:
            for i in range(products):
                image_id = first + people + i
                description = " ".join(rng.choices(WORDS, k=20)).capitalize() + "."
                copy.write_row(
                    (
                        f"Fruit {image_id:07}", 100 + i % 900, description, f"{image_id:06}.jpg", f"{image_id:06}",
                        image_id, False, now, now,
                    )
                )  # fmt: skip
    _analyze(postgres, dbname, "uploads_image", "uploads_rendition", "catalog_person", "catalog_product")
    return time.perf_counter() - started
