from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from core.commands import Command as PortalCommand
from uploads import services
from uploads.management.commands import _unqueued
from uploads.models import Image

# The keys of a signed 64-bit column.
ID_BOUND = 2**63


class Command(PortalCommand):
    help = (
        "Queue images for processing again: all, those with a status, or given ids; optionally "
        "with another preset. Exits 2 when the broker did not take some (the sweep queues them "
        "once it is back)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int)
        parser.add_argument("--status", choices=Image.Status.values)
        parser.add_argument("--preset", choices=sorted(settings.IMAGE_PRESETS), help="Switch to this preset.")

    def handle(self, *args: Any, **options: Any) -> None:
        images = Image.objects.order_by("pk")
        if options["ids"]:
            # A number past any key's is no image's id: it is not sent (the
            # database's driver cannot send it), only named below.
            images = images.filter(pk__in=[pk for pk in options["ids"] if -ID_BOUND <= pk < ID_BOUND])
            # A mistyped id was passed over: "0 images queued", exit 0.
            found = set(images.values_list("pk", flat=True))
            if missing := sorted(set(options["ids"]) - found):
                named = ", ".join(map(str, missing[:-1])) + " or " if len(missing) > 1 else ""
                raise CommandError(f"No image has the id {named}{missing[-1]}. Nothing was queued.")
        if options["status"]:
            images = images.filter(status=options["status"])
        ids: list[int] = []

        def noted() -> Iterator[Image]:
            for image in images.iterator():
                ids.append(image.pk)
                yield image

        count = services.image_reprocess(images=noted(), preset=options["preset"])
        # The ones the broker refused are marked so (uploads.dispatch): say
        # so, rather than count them as queued.
        unqueued = _unqueued.unqueued(ids)
        if not unqueued:
            self.stdout.write(f"{count} images queued for processing.")
            return
        self.stdout.write(
            f"{count - unqueued} images queued for processing, {_unqueued.left_pending(unqueued)}."
        )
        raise CommandError(f"{_unqueued.reason(unqueued)}.", returncode=2)
