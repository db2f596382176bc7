"""Writes to people, feedback and products. Every path (pages, API, admin,
lab endpoints, commands) goes through these functions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog import formats, reports
from catalog.models import Feedback, Person, Product
from uploads.models import Image, file_stem

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What an import did, for the command's last line and for tests."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def line(self, noun: str) -> str:
        return (
            f"{self.created} {noun} created, {self.updated} updated, "
            f"{self.skipped} skipped as duplicates, {len(self.rejected)} rejected."
        )


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


# --- People -------------------------------------------------------------------


@transaction.atomic
def person_upsert(
    *,
    username: str,
    name: str,
    email: str = "",
    phone: Mapping[str, str] | None = None,
    department: str = "",
    role: str = "",
    is_active: bool | None = None,
) -> tuple[Person, bool]:
    """Create the person with this username, or update them. Returns (person, created)."""
    person = Person.objects.select_for_update().filter(username=username).first()
    created = person is None
    if person is None:
        person = Person(username=username)
    person.name = name
    person.email = email
    person.phone = dict(phone or {})
    person.department = department
    person.role = role
    if is_active is not None:
        person.is_active = is_active
    person.full_clean()
    person.save()
    return person, created


def people_import(rows: Iterable[Mapping[str, Any]]) -> ImportSummary:
    summary = ImportSummary()
    for index, row in enumerate(rows, start=1):
        label = row.get("username") or f"row {index}"
        try:
            _, created = person_upsert(**row)
        except ValidationError as exc:
            summary.rejected.append((str(label), _validation_message(exc)))
            continue
        if created:
            summary.created += 1
        else:
            summary.updated += 1
    logger.info("people import: %s", summary.line("people"))
    return summary


# --- Feedback -----------------------------------------------------------------


def _initial_status() -> str:
    return Feedback.Status.PENDING if settings.FEEDBACK_MODERATION else Feedback.Status.PUBLISHED


@transaction.atomic
def feedback_submit(
    *,
    title: str,
    name: str,
    date: dt.date | None = None,
    text: str,
    rating: int | None = None,
    product: Product | None = None,
    source: str = Feedback.Source.WEB,
) -> Feedback:
    """A new review, published at once or pending, as the moderation setting says."""
    feedback = Feedback(
        title=title.strip(),
        name=name.strip(),
        date=date or dt.date.today(),
        text=text.strip(),
        rating=rating,
        product=product,
        source=source,
        status=_initial_status(),
    )
    feedback.full_clean(exclude=["fingerprint"])
    feedback.save()
    return feedback


def feedback_set_status(*, ids: Sequence[int], status: str) -> int:
    """Publish or hide reviews in bulk; returns how many changed."""
    if status not in Feedback.Status.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    return Feedback.objects.filter(pk__in=ids).exclude(status=status).update(status=status)


IMPORT_BATCH = 1000


def feedback_import_files(
    paths: Sequence[Path],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import lab-format review files; exact duplicates (in the files or already
    held) are skipped, unreadable files rejected with the reason."""
    summary = ImportSummary()
    status = _initial_status()
    seen: set[str] = set()
    for start in range(0, len(paths), IMPORT_BATCH):
        batch: list[Feedback] = []
        for path in paths[start : start + IMPORT_BATCH]:
            try:
                record = formats.parse_review(path.read_bytes())
                review = Feedback(
                    title=record.title,
                    name=record.name,
                    date=record.date,
                    text=record.text,
                    status=status,
                    source=Feedback.Source.IMPORT,
                )
                review.full_clean(exclude=["fingerprint"])
            except (OSError, formats.FormatError) as exc:
                summary.rejected.append((path.name, str(exc)))
                continue
            except ValidationError as exc:
                summary.rejected.append((path.name, _validation_message(exc)))
                continue
            review.fingerprint = Feedback.make_fingerprint(
                title=review.title, name=review.name, date=review.date, text=review.text
            )
            if review.fingerprint in seen:
                summary.skipped += 1
                continue
            seen.add(review.fingerprint)
            batch.append(review)
        held = set(
            Feedback.objects.filter(fingerprint__in=[r.fingerprint for r in batch]).values_list(
                "fingerprint", flat=True
            )
        )
        new = [r for r in batch if r.fingerprint not in held]
        summary.skipped += len(batch) - len(new)
        with transaction.atomic():
            Feedback.objects.bulk_create(new, batch_size=500)
        summary.created += len(new)
        if progress:
            progress(min(IMPORT_BATCH, len(paths) - start))
    logger.info("feedback import: %s", summary.line("reviews"))
    return summary


# --- Products -----------------------------------------------------------------


def image_for_name(image_name: str) -> Image | None:
    """The newest image uploaded under this file name, or under its stem."""
    if not image_name:
        return None
    stem = file_stem(image_name)
    candidates = Image.objects.filter(
        Q(original_name=image_name) | Q(original_name=stem) | Q(original_name__startswith=f"{stem}.")
    ).order_by("-created_at", "-pk")
    return next((img for img in candidates if img.stem == stem), None)


def products_for_image(image: Image) -> QuerySet[Product]:
    """Products waiting for this image: no image yet, same file name or stem."""
    stem = image.stem
    return Product.objects.filter(image__isnull=True).filter(
        Q(image_name=image.original_name) | Q(image_name=stem) | Q(image_name__startswith=f"{stem}.")
    )


def product_link_image(*, image: Image) -> int:
    """Link the products that name this image's file (the description came first)."""
    linked = [p.pk for p in products_for_image(image) if file_stem(p.image_name) == image.stem]
    return Product.objects.filter(pk__in=linked).update(image=image, updated_at=timezone.now())


@transaction.atomic
def product_upsert(
    *,
    name: str,
    weight: int,
    description: str = "",
    image_name: str = "",
    image: Image | None = None,
) -> tuple[Product, str]:
    """Create or update the product with this image name (else this name).

    Returns (product, outcome) with outcome "created", "updated" or "unchanged";
    an image is linked by file name or stem when none is given.
    """
    name, description, image_name = name.strip(), description.strip(), image_name.strip()
    existing = Product.objects.select_for_update()
    if image_name:
        stem = file_stem(image_name)
        matches = existing.filter(
            Q(image_name=image_name) | Q(image_name__startswith=f"{stem}.") | Q(image_name=stem)
        )
        product = next((p for p in matches.order_by("pk") if file_stem(p.image_name) == stem), None)
    else:
        product = existing.filter(name=name, image_name="").order_by("pk").first()
    created = product is None
    if product is None:
        product = Product()
    image = image or product.image or image_for_name(image_name)
    new_values = {
        "name": name,
        "weight": weight,
        "description": description,
        "image_name": image_name,
        "image": image,
    }
    if not created and all(getattr(product, k) == v for k, v in new_values.items()):
        return product, "unchanged"
    for key, value in new_values.items():
        setattr(product, key, value)
    product.full_clean()
    product.save()
    return product, "created" if created else "updated"


# --- Supplier deliveries --------------------------------------------------------

SUPPLIER_PRESET = "supplier"
REPORT_SUBJECT = "Upload Completed - Online Fruit Store"
REPORT_BODY = (
    "All fruits are uploaded to our website successfully. A detailed list is attached to this email."
)


@dataclass
class SupplierSummary:
    products: ImportSummary = field(default_factory=ImportSummary)
    images_created: int = 0
    images_existing: int = 0
    images_failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    processed: list[Product] = field(default_factory=list)

    def line(self) -> str:
        p = self.products
        return (
            f"{p.created} products created, {p.updated} updated, {p.skipped} unchanged, "
            f"{len(p.rejected)} rejected; {self.images_created} images imported, "
            f"{self.images_existing} already there, {len(self.images_failed)} failed, "
            f"{len(self.skipped_files)} files skipped."
        )


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def supplier_import(directory: Path, *, progress: Callable[[int], None] | None = None) -> SupplierSummary:
    """Import a supplier's folder: ``descriptions/*.txt`` and ``images/*``.

    Images get the supplier preset and are processed here (the report needs
    their thumbnails); products are matched to images by file stem. Running it
    again on the same folder changes nothing.
    """
    from uploads import services as uploads

    summary = SupplierSummary()
    images: dict[str, tuple[str, Image | None]] = {}
    for path in _visible_files(directory / "images"):
        try:
            image, created = uploads.image_import(
                data=path.read_bytes(), original_name=path.name, preset=SUPPLIER_PRESET
            )
        except (uploads.ImageInvalid, uploads.ImageTooLarge) as exc:
            summary.skipped_files.append((f"images/{path.name}", str(exc)))
        else:
            if image.status != Image.Status.READY:
                image = uploads.image_process(image_id=image.pk) or image
            if image.status == Image.Status.FAILED:
                summary.images_failed.append((f"images/{path.name}", image.error))
            images[path.stem] = (path.name, image)
            summary.images_created += created
            summary.images_existing += not created
        if progress:
            progress(1)
    for path in _visible_files(directory / "descriptions"):
        if path.suffix.lower() != ".txt":
            summary.skipped_files.append((f"descriptions/{path.name}", "not a .txt description"))
            continue
        try:
            record = formats.parse_description(path.read_bytes())
            image_name, linked = images.get(path.stem, (f"{path.stem}.jpeg", None))
            product, outcome = product_upsert(
                name=record.name,
                weight=record.weight,
                description=record.description,
                image_name=image_name,
                image=linked,
            )
        except formats.FormatError as exc:
            summary.products.rejected.append((f"descriptions/{path.name}", str(exc)))
        except ValidationError as exc:
            summary.products.rejected.append((f"descriptions/{path.name}", _validation_message(exc)))
        else:
            summary.processed.append(product)
            if outcome == "created":
                summary.products.created += 1
            elif outcome == "updated":
                summary.products.updated += 1
            else:
                summary.products.skipped += 1
        if progress:
            progress(1)
    logger.info("supplier import %s: %s", directory, summary.line())
    return summary


def report_items(products: Iterable[Product]) -> list[reports.ReportItem]:
    """Name, weight and the supplier-sized thumbnail of each product."""
    from django.core.files.storage import default_storage

    items = []
    for product in products:
        thumbnail = None
        image = product.image
        if image is not None and image.is_ready:
            rendition = min(
                (r for r in image.renditions.all() if r.format in {"jpeg", "png", "webp"}),
                key=lambda r: abs(r.width - 600),
                default=None,
            )
            if rendition is not None:
                with default_storage.open(rendition.storage_key, "rb") as fh:
                    thumbnail = fh.read()
        items.append(reports.ReportItem(name=product.name, weight=product.weight, thumbnail=thumbnail))
    return items


def report_build(*, products: Iterable[Product], date: dt.date | None = None) -> bytes:
    return reports.supplier_report_pdf(report_items(products), date=date or timezone.localdate())


def report_send(*, pdf: bytes, recipients: Sequence[str], date: dt.date | None = None) -> int:
    """Mail the report with the course's subject and body; returns messages sent."""
    from django.core.mail import EmailMessage

    day = date or timezone.localdate()
    message = EmailMessage(
        subject=REPORT_SUBJECT,
        body=REPORT_BODY,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(recipients),
    )
    message.attach(f"processed-{day.isoformat()}.pdf", pdf, "application/pdf")
    return message.send()
