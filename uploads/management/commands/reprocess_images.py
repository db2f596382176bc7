from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from uploads import services
from uploads.models import Image


class Command(BaseCommand):
    help = "Queue images for processing again: all, those with a status, or given ids; optionally with another preset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int)
        parser.add_argument("--status", choices=Image.Status.values)
        parser.add_argument("--preset", choices=sorted(settings.IMAGE_PRESETS), help="Switch to this preset.")

    def handle(self, *args: Any, **options: Any) -> None:
        images = Image.objects.order_by("pk")
        if options["ids"]:
            images = images.filter(pk__in=options["ids"])
        if options["status"]:
            images = images.filter(status=options["status"])
        count = services.image_reprocess(images=images.iterator(), preset=options["preset"])
        self.stdout.write(f"{count} images queued for processing.")
