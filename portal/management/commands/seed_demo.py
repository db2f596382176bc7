from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from catalog import services
from core.commands import Command as PortalCommand
from portal import demo


class Command(PortalCommand):
    help = (
        "Load demo people, products (with images drawn in code) and reviews, marked as demo, into a "
        "portal with no people or products of its own; does nothing twice, but processes again the "
        "demo photos an older version left without an automatic focal point. With --remove, "
        "delete every demo row and its images instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--remove", action="store_true", help="Delete the demo content (real data stays)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["remove"]:
            removed = services.demo_remove()
            self.stdout.write(
                f"Demo content removed: {removed['people']} people, {removed['products']} products, "
                f"{removed['reviews']} reviews, {removed['images']} images."
            )
            return
        if demo.is_loaded():
            self.stdout.write("Demo content is already loaded.")
            if processed := demo.process_photos_without_auto_point():
                self.stdout.write(
                    f"{processed} demo photos without an automatic focal point sent for processing again."
                )
            return
        if demo.has_real_content():
            self.stdout.write("The portal holds people or products of its own: demo content not loaded.")
            return
        loaded = demo.load()
        self.stdout.write(
            f"Demo content loaded: {loaded['people']} people, {loaded['products']} products, "
            f"{loaded['reviews']} reviews."
        )
