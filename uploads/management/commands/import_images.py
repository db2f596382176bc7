from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from uploads import services
from uploads.models import Image


class Command(BaseCommand):
    help = (
        "Upload every file in DIR as an image with the given preset (files that are not "
        "images are reported and skipped; names without an extension are fine). With "
        "--export, the web-ready files are also written to a folder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--preset", default=settings.IMAGE_DEFAULT_PRESET, choices=sorted(settings.IMAGE_PRESETS)
        )
        parser.add_argument("--export", type=Path, metavar="DIR", help="Also write the renditions here.")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        export: Path | None = options["export"]
        if export:
            export.mkdir(parents=True, exist_ok=True)
        paths = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
        created = existing = failed = 0
        skipped: list[tuple[str, str]] = []
        for path in tqdm(paths, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr):
            try:
                image, new = services.image_import(
                    data=path.read_bytes(), original_name=path.name, preset=options["preset"]
                )
            except (services.ImageInvalid, services.ImageTooLarge, ValidationError) as exc:
                skipped.append((path.name, str(exc)))
                continue
            created += new
            existing += not new
            if export:
                # Export needs the files now, not when a worker gets to them.
                processed = services.image_process(image_id=image.pk) or image
                if processed.status != Image.Status.READY:
                    failed += 1
                    self.stderr.write(f"failed {path.name}: {processed.error}")
                    continue
                for target, data in services.image_export_files(processed):
                    (export / target).write_bytes(data)
        for name, reason in skipped:
            self.stderr.write(f"skipped {name}: {reason}")
        self.stdout.write(
            f"{created} images imported, {existing} already there, {len(skipped)} files skipped"
            + (f", {failed} failed" if failed else "")
            + (f"; renditions written to {export}" if export else "")
            + "."
        )
