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

from catalog import formats
from catalog.models import Feedback, Person, Product

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
