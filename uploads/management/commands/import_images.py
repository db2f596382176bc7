from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from core import dropfolder, files
from core.commands import Command as PortalCommand
from uploads import dispatch, services
from uploads.management.commands import _unqueued
from uploads.models import Image, file_stem

logger = logging.getLogger(__name__)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _folder(value: str) -> Path:
    """A folder of ``--export``: an empty one (``"$OUT"`` with OUT unset in a
    script) was the current folder, which got the renditions."""
    if not value:
        raise argparse.ArgumentTypeError("is empty; give the folder to write the renditions to")
    return Path(value)


class Command(PortalCommand):
    help = (
        "Upload every file in DIR as an image with the given preset (files that are not "
        "images are reported and skipped; names without an extension are fine; a photo "
        "that is broken, over a limit or unreadable is rejected, exit 2). With "
        "--export, the web-ready files are also written to a folder. With no broker, the "
        "images are processed here, --jobs at a time, each in a child process of its own "
        "under the per-image memory ceiling and time limit; with a broker they are queued "
        "for the workers (those it does not take stay pending for the sweep, exit 2)."
    )
    # The checks on what this command writes; not those that load every URL,
    # view and admin (seconds of start-up that a batch pays before any image).
    requires_system_checks = [checks.Tags.models, checks.Tags.database]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--preset", default=settings.IMAGE_DEFAULT_PRESET, choices=sorted(settings.IMAGE_PRESETS)
        )
        parser.add_argument("--export", type=_folder, metavar="DIR", help="Also write the renditions here.")
        parser.add_argument(
            "--jobs",
            type=int,
            default=_cores(),
            metavar="N",
            help="Images processed at once with no broker (default: one per core, %(default)s here).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        if options["jobs"] < 1:
            raise CommandError("--jobs must be at least 1.")
        export: Path | None = options["export"]
        if export:
            with contextlib.suppress(OSError):  # no such folder: not this one
                if os.path.samefile(export, directory):
                    # A cron job that runs it again would import them as
                    # photos, and write theirs beside them, each run.
                    raise CommandError(
                        f"Cannot write the renditions to {export}: it is the folder imported, whose "
                        "next import would take them for photos. Nothing was imported."
                    )
            # Told before any image is stored, not as a traceback after.
            why = "it is a file" if export.exists() and not export.is_dir() else ""
            try:
                if not why:
                    export.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file on the way, no permission, a read-only disk
                why = exc.strerror or str(exc)
            if why:
                raise CommandError(f"Cannot make the --export folder {export}: {why}. Nothing was imported.")
        try:
            listing = dropfolder.listing(directory)
        except dropfolder.FolderUnreadable as exc:
            raise CommandError(f"{exc}. Nothing was imported.") from exc
        paths = listing.files
        images: list[tuple[str, Image]] = []
        created = existing = 0
        skipped: list[tuple[str, str]] = listing.skipped
        rejected: list[tuple[str, str]] = listing.rejected
        # With a broker the workers process the images (an import only stores
        # and queues); with none, this process does, on --jobs threads.
        here = not settings.BROKER_CONFIGURED
        batch = dispatch.Batch(options["jobs"]) if here else None
        try:
            with dispatch.concurrently(batch) if batch else contextlib.nullcontext():
                for path in tqdm(paths, unit="file", disable=not sys.stderr.isatty(), file=sys.stderr):
                    try:
                        data = services.image_file_read(path=path)
                    except dropfolder.ChangedWhileRead as exc:
                        skipped.append((path.name, str(exc)))
                        continue
                    except OSError as exc:
                        rejected.append((path.name, f"cannot be read: {exc.strerror or exc}"))
                        continue
                    except services.ImageTooLarge as exc:
                        rejected.append((path.name, str(exc)))
                        continue
                    try:
                        image, new = services.image_import(
                            data=data, original_name=path.name, preset=options["preset"]
                        )
                    except (services.ImageInvalid, services.ImageTooLarge) as exc:
                        refused = rejected if services.image_refusal_is_rejection(path.name, exc) else skipped
                        refused.append((path.name, str(exc)))
                        continue
                    except ValidationError as exc:
                        rejected.append((path.name, " ".join(exc.messages)))
                        continue
                    created += new
                    existing += not new
                    images.append((path.name, image))
        except KeyboardInterrupt:
            ids = batch.submitted if batch else [image.pk for _, image in images]
            statuses = list(Image.objects.filter(pk__in=ids).values_list("status", flat=True))
            raise CommandError(
                f"Interrupted: {len(statuses)} images stored of {len(paths)} files, "
                f"{statuses.count(Image.Status.READY)} ready, {statuses.count(Image.Status.FAILED)} failed; "
                "the others are processed by the next sweep.",
                returncode=130,
            ) from None
        failed = unexported = deleted = 0
        written: dict[str, str] = {}  # folded name (_folded): the name written
        exported: dict[int, str] = {}  # image id: the file it was exported for
        for name, image in images:
            processed: Image | None
            if export:
                # Export needs the files now, not when a worker gets to them.
                processed = services.image_process(image_id=image.pk)
            elif here:
                processed = Image.objects.filter(pk=image.pk).first()
            else:
                continue
            if processed is None:
                # Deleted (from the admin, say) since this run stored it.
                deleted += 1
                self.stderr.write(
                    f"deleted {name}: the image was deleted while the import ran; the next run imports it again"
                )
                continue
            if processed.status == Image.Status.FAILED:
                failed += 1
                self.stderr.write(f"failed {name}: {processed.error}")
            elif export and processed.status == Image.Status.READY:
                if processed.pk in exported:
                    self.stderr.write(f"not exported {name}: the same file as {exported[processed.pk]}")
                    continue
                exported[processed.pk] = name
                try:
                    renditions = services.image_export_files(processed, stem=_export_stem(name))
                except OSError as exc:  # lost by the store (a bucket restored from an older backup)
                    unexported += processed.renditions.count()
                    self.stderr.write(
                        f"not exported {name}: its renditions cannot be read from the file store "
                        f"({exc.strerror or exc}); reprocess_images {processed.pk} makes them again"
                    )
                    continue
                for target, data in renditions:
                    unique, taken = _unique_name(target, name, written)
                    if taken == target:
                        self.stderr.write(f"exported {name} as {unique}: {target} came from another file")
                    elif taken:
                        self.stderr.write(
                            f"exported {name} as {unique}: {taken} came from another file, "
                            f"and a folder that ignores case (macOS, Windows) takes {target} for it"
                        )
                    try:
                        files.write_whole(export / unique, data)
                    except OSError as exc:  # a name too long with its suffix, a full disk
                        unexported += 1
                        self.stderr.write(f"not exported {name} as {unique}: {exc.strerror or exc}")
        # Images the broker refused wait for the sweep (after --export, none:
        # this process made their renditions).
        unqueued = 0 if here else _unqueued.unqueued([image.pk for _, image in images])
        for name, reason in skipped:
            self.stderr.write(f"skipped {name}: {reason}")
        for name, reason in rejected:
            self.stderr.write(f"rejected {name}: {reason}")
        summary = (
            f"{created} images imported, {existing} already there, {len(skipped)} files skipped"
            + (f", {len(rejected)} rejected" if rejected else "")
            + (f", {deleted} deleted meanwhile" if deleted else "")
            + (f", {failed} failed" if failed else "")
            + (f", {unexported} renditions not exported" if unexported else "")
            + (f", {_unqueued.left_pending(unqueued)}" if unqueued else "")
            + (f"; renditions written to {export}" if export else "")
            + "."
        )
        # The log line of the import, as each image has its own.
        logger.info("image import %s: %s", directory, summary)
        self.stdout.write(summary)
        if rejected or failed or unexported or unqueued:  # the others landed; a cron job learns not all did
            raise CommandError(
                ", ".join(
                    part
                    for part in (
                        f"{len(rejected)} file(s) rejected" if rejected else "",
                        f"{failed} image(s) failed" if failed else "",
                        f"{unexported} rendition(s) not exported" if unexported else "",
                        _unqueued.reason(unqueued) if unqueued else "",
                    )
                    if part
                )
                + ".",
                returncode=2,
            )


def _export_stem(name: str) -> str:
    """What the renditions of the file ``name`` are named after: its stem,
    or, for a name that is only whitespace and an extension (``" .png"``,
    no stem once trimmed), its untrimmed stem: a rendition named ``.jpg``
    is hidden by folders and skipped by a later import of them."""
    return file_stem(name) or name.rsplit(".", 1)[0]


def _unique_name(target: str, source: str, written: dict[str, str]) -> tuple[str, str]:
    """``target``, or, when another file of this run already took it (one
    stem, several formats: photo.png and photo.tiff), the same name with the
    source's extension added: ``photo-tiff.jpg``; with the name it clashed
    with ("" if none). Names are compared as a folder that ignores case
    compares them (macOS, Windows): after ``A.jpg``, ``a.jpg`` is taken too.
    ``written`` holds the names taken, by their folded form (``_folded``).

    The fold is Python's full case folding between canonical decompositions,
    which is what APFS (a Mac's disk, case-insensitive by default) compares:
    canonical decomposition, then CaseFolding.txt's C and F mappings. So ``straße``
    is ``STRASSE`` there (ß folds to ss), the Greek final sigma (U+03C2)
    is the sigma and its capital, and the Turkish capital I with a dot
    (U+0130, folded to i and a combining dot) is neither ``i`` nor ``I``,
    nor is the dotless i (U+0131). NTFS upper-cases each UTF-16 unit by
    its volume's table instead, and takes fewer names for one: ``straße``
    and ``STRASSE`` are two there, so are the final sigma and the capital,
    and the dotless i is not ``I`` either. Every pair NTFS takes for one
    name the full fold takes for one too, so a name that clashes on
    neither keeps its own, and one that clashes on a Mac only is renamed:
    a simple fold (no ß to ss) would let ``straße.jpg`` overwrite
    ``STRASSE.jpg`` on a Mac."""
    unique, count = target, 1
    base, _, ext = target.rpartition(".")
    source_ext = Path(source).suffix.lstrip(".").lower() or "file"
    taken = written.get(_folded(target), "")
    while _folded(unique) in written:
        count += 1
        unique = f"{base}-{source_ext}.{ext}" if count == 2 else f"{base}-{source_ext}-{count}.{ext}"
    written[_folded(unique)] = unique
    return unique, taken


def _folded(name: str) -> str:
    """``name`` as a Mac's folder compares it: decomposed, case-folded and
    decomposed again (Unicode's canonical caseless match), for a fold may
    give one letter in another form ("ΐ" folds to iota, diaeresis, acute;
    "Ϊ́" to the small iota with a diaeresis, then an acute)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())
