from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from catalog import services as catalog_services
from catalog.models import Feedback, Person, Product
from portal import demo
from uploads import services as upload_services


class Command(BaseCommand):
    help = "Load demo people, products (with images drawn in code) and reviews; does nothing twice."

    def handle(self, *args: Any, **options: Any) -> None:
        if Person.objects.filter(username=demo.PEOPLE[0]["username"]).exists():
            self.stdout.write("Demo content is already loaded.")
            return
        for spec in demo.PEOPLE:
            fields = {k: v for k, v in spec.items() if k != "color"}
            person, _ = catalog_services.person_upsert(**fields)
            photo = upload_services.image_upload(
                file=demo.portrait_image(spec["color"]),
                original_name=f"{spec['username']}.jpg",
                alt=f"Portrait of {spec['name']}",
            )
            person.photo = photo
            person.save(update_fields=["photo"])
        products = {}
        for seed, spec in enumerate(demo.PRODUCTS):
            image = upload_services.image_upload(
                file=demo.fruit_image(spec["fruit"], seed),
                original_name=spec["image_name"],
                alt=spec["name"],
            )
            products[spec["name"]] = Product.objects.create(
                name=spec["name"],
                weight=spec["weight"],
                description=spec["description"],
                image_name=spec["image_name"],
                image=image,
            )
        with transaction.atomic():
            for (title, name, text, rating, product), date in zip(
                demo.REVIEWS, demo.review_dates(len(demo.REVIEWS)), strict=True
            ):
                catalog_services.feedback_submit(
                    title=title,
                    name=name,
                    date=date,
                    text=text,
                    rating=rating,
                    product=products.get(product) if product else None,
                    source=Feedback.Source.IMPORT,
                )
        self.stdout.write(
            f"Demo content loaded: {len(demo.PEOPLE)} people, {len(products)} products, {len(demo.REVIEWS)} reviews."
        )
