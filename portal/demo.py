"""Demo content for `make run`: people, products with images drawn here (no
downloads), and reviews. Loaded by `manage.py seed_demo`, through the same
services as real data, and taken out by `seed_demo --remove`.

Every demo row is marked ``is_demo``. Demo file names start with ``demo-``, so
they can never share a stem with the course's numbered files (``001.jpeg`` …
``999.tiff``) or a supplier's; real products never match or link to demo rows
anyway.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFilter

from catalog import services
from catalog.models import Feedback, Person, Product
from uploads import services as upload_services
from uploads.models import Image as ImageRow

PEOPLE: list[dict[str, Any]] = [
    {"name": "Ada Fernández", "username": "afernandez", "email": "ada@example.com",
     "phone": {"office": "802-867-5309", "cell": "802-867-5310"}, "department": "Engineering",
     "role": "Platform Lead", "color": (70, 120, 180)},
    {"name": "Kofi Mensah", "username": "kmensah", "email": "kofi@example.com",
     "phone": {"office": "802-867-5311"}, "department": "Engineering", "role": "Developer",
     "color": (150, 90, 60)},
    {"name": "Mei Lin", "username": "mlin", "email": "mei@example.com",
     "phone": {"office": "802-867-5312"}, "department": "Sales", "role": "Account Manager",
     "color": (200, 110, 140)},
    {"name": "Jonas Berg", "username": "jberg", "email": "jonas@example.com",
     "phone": {"cell": "802-867-5313"}, "department": "Sales", "role": "Sales Associate",
     "color": (90, 150, 100)},
    {"name": "Priya Raman", "username": "praman", "email": "priya@example.com",
     "phone": {"office": "802-867-5314"}, "department": "Support", "role": "Support Engineer",
     "color": (120, 90, 170)},
    {"name": "Tomás Silva", "username": "tsilva", "email": "tomas@example.com",
     "phone": {"office": "802-867-5315"}, "department": "Warehouse", "role": "Supervisor",
     "color": (190, 140, 60)},
]  # fmt: skip

PRODUCTS: list[dict[str, Any]] = [
    {"name": "Apple", "weight": 500, "image_name": "demo-apple.jpg", "fruit": (200, 30, 40),
     "description": "Crisp red apples picked this week. Sweet, firm and good for baking or eating out of hand."},
    {"name": "Kiwifruit", "weight": 250, "image_name": "demo-kiwifruit.jpg", "fruit": (120, 90, 50),
     "description": "Fuzzy brown kiwifruit with bright green flesh, rich in vitamin C."},
    {"name": "Mango", "weight": 300, "image_name": "demo-mango.jpg", "fruit": (245, 170, 40),
     "description": "Ripe mangoes with golden flesh. Store at room temperature until slightly soft."},
    {"name": "Lemon", "weight": 200, "image_name": "demo-lemon.jpg", "fruit": (250, 220, 60),
     "description": "Bright, juicy lemons for cooking, baking and lemonade."},
    {"name": "Plum", "weight": 150, "image_name": "demo-plum.jpg", "fruit": (110, 40, 110),
     "description": "Dark, sweet plums with a tart skin."},
    {"name": "Lime", "weight": 180, "image_name": "demo-lime.jpg", "fruit": (110, 190, 60),
     "description": "Small green limes, full of juice and aroma."},
]  # fmt: skip

REVIEWS = [
    (
        "Great customer service",
        "John",
        "Friendly staff who helped me choose the best mangoes. Will come back!",
        5,
        "Mango",
    ),
    ("Fresh every time", "Katie", "The apples were crisp and sweet, just as described.", 5, "Apple"),
    ("Good value", "Tom", "Prices are fair and delivery was on time.", 4, None),
    (
        "Could be riper",
        "Anonymous",
        "The kiwifruit needed a few more days on the counter before they were ready.",
        3,
        "Kiwifruit",
    ),
    ("Lemons for days", "Sara", "Ordered a big box of lemons for a party. Every one was juicy.", 5, "Lemon"),
    (
        "Slow reply",
        "Anonymous",
        "It took two days to hear back about my order, but the fruit was good.",
        3,
        None,
    ),
]


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def fruit_image(color: tuple[int, int, int], seed: int, size: tuple[int, int] = (1800, 1200)) -> bytes:
    """A still life: a shaded fruit with a leaf on a soft table, drawn in code."""
    rng = random.Random(seed)  # noqa: S311 - a drawing, not a secret
    w, h = size
    img = Image.new("RGB", size, (238, 232, 222))
    draw = ImageDraw.Draw(img)
    for y in range(h):
        shade = int(25 * y / h)
        draw.line([(0, y), (w, y)], fill=(240 - shade, 234 - shade, 224 - shade))
    draw.rectangle([0, int(h * 0.68), w, h], fill=(196, 170, 138))
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).ellipse([w * 0.3, h * 0.70, w * 0.72, h * 0.80], fill=110)
    img.paste((90, 70, 50), (0, 0), shadow.filter(ImageFilter.GaussianBlur(30)))
    cx, cy, r = w * 0.5, h * 0.48, h * 0.28
    for i in range(int(r), 0, -2):
        t = i / r
        light = 1.0 - 0.55 * t
        fill = tuple(min(255, int(c * (0.55 + 0.6 * light))) for c in color)
        ox, oy = (1 - t) * r * -0.25, (1 - t) * r * -0.3
        draw.ellipse([cx - i + ox, cy - i * 0.95 + oy, cx + i + ox, cy + i * 0.95 + oy], fill=fill)
    draw.ellipse([cx - r * 0.45, cy - r * 0.62, cx - r * 0.2, cy - r * 0.42], fill=(255, 255, 255))
    angle = rng.uniform(-0.6, -0.2)
    stem_top = (cx + math.sin(angle) * r * 0.3, cy - r * 1.15)
    draw.line([(cx, cy - r * 0.85), stem_top], fill=(90, 60, 30), width=int(r * 0.07))
    draw.ellipse(
        [stem_top[0], stem_top[1] - r * 0.18, stem_top[0] + r * 0.55, stem_top[1] + r * 0.1],
        fill=(60, 140, 60),
    )
    noise = Image.effect_noise(size, 6).convert("RGB")
    img = Image.blend(img, noise, 0.04)
    return _jpeg(img.filter(ImageFilter.GaussianBlur(1.2)))


def portrait_image(color: tuple[int, int, int], size: tuple[int, int] = (900, 1100)) -> bytes:
    """A simple portrait silhouette on a coloured backdrop."""
    w, h = size
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        k = 1 - 0.35 * y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(c * k + 40) for c in color))
    skin = (238, 200, 170)
    draw.ellipse([w * 0.15, h * 0.62, w * 0.85, h * 1.25], fill=(60, 62, 70))
    draw.rectangle([w * 0.42, h * 0.5, w * 0.58, h * 0.68], fill=skin)
    draw.ellipse([w * 0.3, h * 0.18, w * 0.7, h * 0.6], fill=skin)
    draw.chord([w * 0.28, h * 0.13, w * 0.72, h * 0.5], 180, 360, fill=(50, 40, 35))
    return _jpeg(img.filter(ImageFilter.GaussianBlur(1)))


def review_dates(count: int) -> list[dt.date]:
    today = timezone.localdate()
    return [today - dt.timedelta(days=3 * i + 1) for i in range(count)]


def is_loaded() -> bool:
    return Product.objects.filter(is_demo=True).exists() or Person.objects.filter(is_demo=True).exists()


def has_real_content() -> bool:
    """Whether the portal holds people or products of its own: then `make run`
    does not bring back demo content that was removed."""
    return Product.objects.filter(is_demo=False).exists() or Person.objects.filter(is_demo=False).exists()


def process_photos_without_auto_point() -> int:
    """Process again, through the upload pipeline, the demo photos processed
    before images had an automatic focal point (a demo loaded by an older
    version): their crops were cut around the centre and staff saw no
    automatic point. Processing keeps a focal point staff set and cuts the
    crops around it; it only adds the estimate. Returns how many were queued;
    none once they have their point, so a repeated run changes nothing."""
    missing = ImageRow.objects.filter(
        Q(focal_auto_x__isnull=True) | Q(focal_auto_y__isnull=True),
        is_demo=True,
        status=ImageRow.Status.READY,
    ).order_by("pk")
    return upload_services.image_reprocess(images=missing)


def _demo_image(*, data: bytes, original_name: str, alt: str) -> ImageRow:
    """Upload through the images' own service, then mark the row as demo in
    the same transaction: the link and processing hooks run after commit and
    read the committed row."""
    image = upload_services.image_upload(file=data, original_name=original_name, alt=alt)
    ImageRow.objects.filter(pk=image.pk).update(is_demo=True)
    image.is_demo = True
    return image


@transaction.atomic
def load() -> dict[str, int]:
    """Load the demo people, products and reviews through the catalog's
    services; all or nothing. Returns how many of each were loaded."""
    for spec in PEOPLE:
        fields = {k: v for k, v in spec.items() if k != "color"}
        photo = _demo_image(
            data=portrait_image(spec["color"]),
            original_name=f"demo-portrait-{spec['username']}.jpg",
            alt=f"Portrait of {spec['name']}",
        )
        services.person_upsert(**fields, photo=photo, is_demo=True)
    products = {}
    for seed, spec in enumerate(PRODUCTS):
        image = _demo_image(
            data=fruit_image(spec["fruit"], seed), original_name=spec["image_name"], alt=spec["name"]
        )
        products[spec["name"]], _ = services.product_upsert(
            name=spec["name"],
            weight=spec["weight"],
            description=spec["description"],
            image_name=spec["image_name"],
            image=image,
            is_demo=True,
        )
    for (title, name, text, rating, product), date in zip(REVIEWS, review_dates(len(REVIEWS)), strict=True):
        services.feedback_submit(
            title=title,
            name=name,
            date=date,
            text=text,
            rating=rating,
            product=products.get(product) if product else None,
            source=Feedback.Source.IMPORT,
            is_demo=True,
        )
    return {"people": len(PEOPLE), "products": len(products), "reviews": len(REVIEWS)}
