"""Uploaded images and the web-ready renditions made from them.

Pages and the API read everything they show (sizes, formats, URLs) from these
rows; nothing at render time asks the storage what it holds.

A column added after the first release is nullable or has a database default
(``db_default``): servers of an older release, which know nothing of it, go on
inserting rows while a rolling upgrade migrates (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, router, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Coalesce

from core.expressions import IsDistinctFrom
from core.validation import NullCharactersRefused, TextComposed, validate_text
from uploads import holders, processing
from uploads.originals import get_originals_storage

_UNIT = [MinValueValidator(0.0), MaxValueValidator(1.0)]


# The statuses in the order the admin lists them: the ones that need a look first.
ATTENTION_ORDER: Final = ("failed", "pending", "processing", "ready")
# The most characters of a file-name stem: the columns of Image.name_stem and
# Product.image_stem.
STEM_MAX_LENGTH: Final = 255
# The hex digits of the digest that ends a stem cut to STEM_MAX_LENGTH.
STEM_DIGEST_LENGTH: Final = 16


def attention_order() -> Case:
    """An image's place in ATTENTION_ORDER; an index holds it, with the
    admin's order within a status."""
    return Case(
        *[When(status=status, then=Value(i)) for i, status in enumerate(ATTENTION_ORDER)],
        output_field=models.IntegerField(),
    )


def crops_owed() -> Q:
    """Ready images whose crops were cut around another point than the one
    in force (Image.crops_outdated): the condition of the index the crops
    sweep reads, which serves a query only when it repeats the condition."""
    return Q(status="ready") & (
        Q(IsDistinctFrom(Coalesce("focal_x", "focal_auto_x"), "crops_x"))
        | Q(IsDistinctFrom(Coalesce("focal_y", "focal_auto_y"), "crops_y"))
        | Q(IsDistinctFrom("focal_radius", "crops_radius"))
    )


class OriginalFile(FieldFile):
    """An image's original. Given content (``image.file.save(name, content)``,
    or ``image.file = File(...)`` and a save of the row), it is checked and
    stored as an upload is: under the key of its bytes, whatever name it was
    given, and the image's columns that describe its file are set from it
    (uploads.services.image_file_storing)."""

    instance: Image
    # How content is checked and stored (a context manager yielding its key):
    # uploads.services.image_file_storing, which uses this module, set by
    # uploads.signal_handlers.register() as the app is ready.
    store: ClassVar[Callable[..., contextlib.AbstractContextManager[str]] | None] = None

    @contextlib.contextmanager
    def storing(self, content: File) -> Iterator[None]:
        """Store ``content`` as this file, for the row saved inside the block."""
        store = type(self).store
        if store is None:
            raise ImproperlyConfigured("an image's original is stored once the uploads app is ready")
        with store(image=self.instance, content=content) as key:
            self.name = key
            self._committed = True
            yield

    def save(self, name: str | None, content: File, save: bool = True) -> None:
        with self.storing(content):
            if save:
                self.instance.save()


class OriginalFileField(models.FileField):
    attr_class = OriginalFile

    def deconstruct(self) -> Any:
        # A FileField to migrations: only its files' Python behaves otherwise,
        # of which the table and the migrations' models know nothing.
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.FileField", args, kwargs


class Image(TextComposed, NullCharactersRefused, models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    # Server-made, content-addressed key of the original; the user's file name
    # is data (original_name), never part of a path. Originals live in the
    # private store: no public URL ever reaches them.
    file = OriginalFileField(max_length=255, storage=get_originals_storage)
    original_name = models.CharField(max_length=255, blank=True)
    # file_stem(original_name), kept on save: products link to images by an
    # indexed equality on it instead of matching names in Python.
    name_stem = models.CharField(
        max_length=STEM_MAX_LENGTH, blank=True, default="", db_default="", editable=False
    )
    # Stored composed (NFC), as the text of a person, a product or a review
    # is; the file's name is kept as it came, and its stem composed.
    composed_fields = ("title", "alt")

    # Shown in the admin and, as alt text, on every page that shows the
    # image: checked as the text of a person, a product or a review is.
    title = models.CharField(max_length=200, blank=True, validators=[validate_text])
    alt = models.CharField(max_length=300, blank=True, validators=[validate_text])
    preset = models.CharField(max_length=32, default="web")
    sha256 = models.CharField(max_length=64, db_index=True)
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    bytes = models.PositiveBigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)
    placeholder = models.CharField(max_length=100, blank=True)
    dominant_color = models.CharField(max_length=7, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Tries in a row that never reached an outcome because the worker died or
    # was killed; at IMAGE_MAX_ATTEMPTS the image ends failed. Reset when a run
    # starts afresh (upload, reprocess).
    interruptions = models.PositiveIntegerField(default=0, db_default=0)
    # Without a broker: the process whose memory holds the pending work
    # (host:pid:start), so that its work is taken over as soon as it is gone
    # (uploads.holders). Empty with a broker, whose queue outlives processes.
    holder = models.CharField(max_length=200, blank=True, default="", db_default="", editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Loaded by `seed_demo`, taken out again by `seed_demo --remove`.
    is_demo = models.BooleanField(default=False, db_default=False)
    # Where the subject is, as fractions of the displayed image (EXIF
    # orientation applied): set by staff, or null for the automatic estimate
    # that processing stores beside it. Cropped renditions keep it in frame.
    focal_x = models.FloatField(null=True, blank=True, validators=_UNIT)
    focal_y = models.FloatField(null=True, blank=True, validators=_UNIT)
    # A fraction of the shorter side: how much around the point to keep.
    focal_radius = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001), MaxValueValidator(1.0)]
    )
    focal_auto_x = models.FloatField(null=True, blank=True, editable=False, validators=_UNIT)
    focal_auto_y = models.FloatField(null=True, blank=True, editable=False, validators=_UNIT)
    # The point the cropped renditions were last cut around (the point in
    # force then), recorded as they commit. One that differs from the point
    # in force now owes a recrop: a store that was away when staff moved the
    # point left it, and the sweep (services.image_sweep_moved_crops) cuts it.
    # A point decoding refused to cut around is recorded too: refused once,
    # it would be refused every round (the old crops stay until a reprocess).
    crops_x = models.FloatField(null=True, blank=True, editable=False, validators=_UNIT)
    crops_y = models.FloatField(null=True, blank=True, editable=False, validators=_UNIT)
    crops_radius = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The API's and the admin's list, newest first: a page without a sort of the table.
            models.Index(fields=["-created_at", "-id"], name="uploads_image_newest_idx"),
            models.Index(fields=["status", "updated_at"]),
            # The newest image of a stem: how products find their photo.
            models.Index(fields=["name_stem", "created_at"], name="uploads_image_stem_idx"),
            # Sweeps and deletions ask which rows still hold a key.
            models.Index(fields=["file"], name="uploads_image_file_idx"),
            # The admin's list: failed first, then newest first within a status.
            models.Index(
                attention_order(), F("created_at").desc(), F("id").desc(), name="uploads_image_attention_idx"
            ),
            # The admin's list sorted by a column, either way (core.admin_limits.IndexOrderedChangeList).
            models.Index(fields=["bytes", "id"], name="uploads_image_bytes_idx"),
            models.Index(fields=["preset", "id"], name="uploads_image_preset_idx"),
            models.Index(fields=["status", "id"], name="uploads_image_status_id_idx"),
            # The few images whose crops are owed, which the crops sweep looks
            # for every minute among all of them. On status, though it is one
            # value here: SQLite prefers another index on status over a scan
            # of this one, and this one when it too is searched by the status.
            models.Index(fields=["status"], condition=crops_owed(), name="uploads_image_crops_owed_idx"),
        ]
        constraints = [
            # A point has both coordinates, inside the picture; a radius needs a point.
            models.CheckConstraint(
                condition=(
                    Q(focal_x__isnull=True, focal_y__isnull=True, focal_radius__isnull=True)
                    | (
                        Q(focal_x__isnull=False, focal_y__isnull=False)
                        & Q(focal_x__gte=0, focal_x__lte=1, focal_y__gte=0, focal_y__lte=1)
                        & (Q(focal_radius__isnull=True) | Q(focal_radius__gt=0, focal_radius__lte=1))
                    )
                ),
                name="uploads_image_focal_point_valid",
            ),
        ]

    # The key of the original the last save replaced, or None: the post_save
    # handler processes the new one and deletes the old (uploads.signal_handlers).
    replaced_file: str | None = None
    # What is read from the original when it is stored (OriginalFile): a
    # save that gives the image another file writes them with it.
    DESCRIBED_BY_FILE: Final = ("sha256", "bytes", "format", "width", "height", "frames")

    def __str__(self) -> str:
        return self.title or self.original_name or f"Image {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_stem = file_stem(self.original_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "original_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_stem"}
        self.replaced_file = None
        if (
            self.pk is None
            or kwargs.get("force_insert")
            or (update_fields is not None and "file" not in update_fields)
        ):
            super().save(*args, **kwargs)
            return
        if isinstance(self.file, OriginalFile) and not self.file._committed:
            # Checked and stored now as an upload is, under the key of its
            # bytes, for the row saved inside the block; before the row is
            # locked, so a slow store holds no lock.
            with self.file.storing(self.file.file):
                self._save_file(*args, **kwargs)
            return
        self._save_file(*args, **kwargs)

    def _save_file(self, *args: Any, **kwargs: Any) -> None:
        """Save the row, which may hold another file than the one stored:
        then the image is pending again, nothing of the old file kept."""
        update_fields = kwargs.get("update_fields")
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        # As the row's own save would, without a savepoint of its own.
        with transaction.atomic(using=using, savepoint=False):
            stored = (
                type(self)
                ._base_manager.using(using)
                .select_for_update()
                .filter(pk=self.pk)
                .values_list("file", flat=True)
                .first()
            )
            if stored is not None and stored != self.file.name:
                self.replaced_file = stored
                # Its renditions, placeholder, colour and estimated focal
                # point are of the old picture: none is served from now on.
                # The renditions' objects are kept a while, as a run keeps
                # those it replaces (uploads.storage.released).
                self.renditions.all().delete()
                self.placeholder = self.dominant_color = ""
                self.focal_auto_x = self.focal_auto_y = None
                changed = [
                    *self.requeue(),
                    *self.DESCRIBED_BY_FILE,
                    *("placeholder", "dominant_color", "focal_auto_x", "focal_auto_y"),
                ]
                if update_fields is not None:
                    kwargs["update_fields"] = {*kwargs["update_fields"], *changed}
            super().save(*args, **kwargs)

    def requeue(self) -> list[str]:
        """Put the image back to wait for a run of its own, with a fresh
        count of tries, as this process's work; returns the fields set."""
        self.status = self.Status.PENDING
        self.error = ""
        self.interruptions = 0
        self.holder = holders.mine()
        return ["status", "error", "interruptions", "holder", "updated_at"]

    @property
    def stem(self) -> str:
        """The original file name without its extension (how suppliers link files)."""
        return file_stem(self.original_name)

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def focal_point(self) -> processing.FocalPoint | None:
        """The focal point staff set, if any."""
        if self.focal_x is None or self.focal_y is None:
            return None
        return processing.FocalPoint(self.focal_x, self.focal_y, self.focal_radius)

    @property
    def focal_point_auto(self) -> processing.FocalPoint | None:
        """The estimate made when the image was last processed."""
        if self.focal_auto_x is None or self.focal_auto_y is None:
            return None
        return processing.FocalPoint(self.focal_auto_x, self.focal_auto_y)

    @property
    def focal_point_in_force(self) -> processing.FocalPoint | None:
        """What crops are cut around: staff's point, else the estimate."""
        return self.focal_point or self.focal_point_auto

    @property
    def crops_point(self) -> processing.FocalPoint | None:
        """The point the cropped renditions were last cut around."""
        if self.crops_x is None or self.crops_y is None:
            return None
        return processing.FocalPoint(self.crops_x, self.crops_y, self.crops_radius)

    @property
    def crops_outdated(self) -> bool:
        """Whether the image is ready but its crops were cut around another
        point than the one in force: they are still to be cut again."""
        return self.status == self.Status.READY and self.crops_point != self.focal_point_in_force


# An image some process is to take up, or has: what the sweep looks after.
WAITING: Final = (Image.Status.PENDING, Image.Status.PROCESSING)


class Rendition(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="renditions")
    name = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    storage_key = models.CharField(max_length=255)

    class Meta:
        ordering = ["image_id", "width", "name", "format"]
        # Sweeps and deletions ask which rows still hold a key.
        indexes = [models.Index(fields=["storage_key"], name="uploads_rendition_key_idx")]
        constraints = [
            models.UniqueConstraint(fields=["image", "name", "format"], name="unique_rendition_per_image"),
        ]

    def __str__(self) -> str:
        return f"{self.name}.{self.format} ({self.width}x{self.height})"

    @property
    def url(self) -> str:
        # A URL is computed locally by the storage (no request to S3).
        return default_storage.url(self.storage_key)

    @property
    def content_type(self) -> str:
        return processing.content_type(self.format)


class ReplacedObject(models.Model):
    """A rendition's object that its image no longer uses (processed again, or
    cut around a new focal point), kept a while after: a browser or proxy may
    hold a redirect to it (see uploads.storage.REPLACED_KEEP_SECONDS). The
    orphan sweep deletes it after that; deleting its image deletes it at once."""

    key = models.CharField(max_length=255, unique=True)
    # A plain number, not a foreign key: the row outlives nothing, it only
    # lets the image's deletion find its replaced objects.
    image_id = models.PositiveBigIntegerField(db_index=True)
    replaced_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key


def file_stem(name: str) -> str:
    """``images/001.tiff`` → ``001``; a name with no extension is its own stem,
    of at most ``STEM_MAX_LENGTH`` characters.

    In one Unicode form (NFC): a Mac writes the "é" of a file name as an
    "e" and a combining accent, most other systems and typed text as one
    character, and a photo and its description are one product either way.

    Trimmed of whitespace as a posted ``image_name`` is (``str.strip``): an
    upload keeps its name as sent, so ``" 006.png "`` is the stem ``006``
    whichever of the photo and its description arrives first."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem = unicodedata.normalize("NFC", base.rsplit(".", 1)[0] if "." in base else base)
    if len(stem) <= STEM_MAX_LENGTH:
        return stem
    # NFC lengthens a few characters (Devanagari "क़", U+0958, is two in it):
    # the stem of a name of 255 characters is cut to the columns that hold it,
    # its end a digest of the whole, so names that differ only past the cut
    # stay two stems, two products.
    digest = hashlib.sha256(stem.encode()).hexdigest()[:STEM_DIGEST_LENGTH]
    return f"{stem[: STEM_MAX_LENGTH - STEM_DIGEST_LENGTH - 1]}~{digest}"
