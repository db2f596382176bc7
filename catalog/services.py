"""Writes to people, feedback and products. Every path (pages, API, admin,
lab endpoints, commands) goes through these functions."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.text import normalize_newlines

from catalog import formats, reports, selectors
from catalog.models import Feedback, Person, Product, normal_username
from core import dropfolder, locks, mail, validation
from core.quoting import printed, quoted
from uploads import selectors as upload_selectors
from uploads import services as upload_services
from uploads.models import Image, file_stem

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What an import did, for the command's last line and for tests."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # Files written to while they were read: taken by the next run.
    left: list[tuple[str, str]] = field(default_factory=list)

    def line(self, noun: str) -> str:
        return (
            f"{self.created} {noun} created, {self.updated} updated, "
            f"{self.skipped} skipped as duplicates, {len(self.rejected)} rejected."
        )


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


IMAGE_GONE_MESSAGE = "The image was deleted meanwhile; choose another."


def image_chosen_check(*, image: Image, field: str = "image") -> None:
    """Refuse an image deleted since it was chosen (a ValidationError on
    ``field``); else keep it until the transaction commits the product or
    person that points at it (``image_keep``): a deletion of it waits, then
    detaches them, instead of failing their commit with a server error."""
    if not upload_services.image_keep(image_id=image.pk):
        raise ValidationError({field: IMAGE_GONE_MESSAGE}, code="image_gone")


# --- People -------------------------------------------------------------------

# What person_upsert did.
PersonWrite = Literal["created", "updated", "unchanged"]


@transaction.atomic
def person_upsert(
    *,
    username: str,
    name: str,
    email: str | None = None,
    phone: Mapping[str, str] | None = None,
    department: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
    photo: Image | None = None,
    is_demo: bool = False,
) -> tuple[Person, PersonWrite]:
    """Create the person with this username, or update them. Returns the
    person and what was done: created, updated, or nothing (``unchanged``:
    the person is as given, and keeps their ``updated_at``).

    A field left out (None) keeps what the person has, or gets its default
    for a new person: a file that lacks a column does not erase it. A real
    write to a demo username makes the person real, so removing the demo
    content never deletes them.
    """
    validation.check_storable(username=username)
    # Looked up as stored: a file's "José" finds the person whichever form it is typed in.
    username = normal_username(username)
    # A row not there yet is not locked by select_for_update: two imports
    # at once (a cron run that overlaps the last) would each insert it.
    locks.hold(f"catalog.person:{username}")
    person = Person.objects.select_for_update().filter(username=username).first()
    created = person is None
    if person is None:
        person = Person(username=username)
    stored = _person_state(person)
    person.name = name
    if email is not None:
        person.email = email
    if phone is not None:
        person.phone = dict(phone)
    if department is not None:
        person.department = department
    if role is not None:
        person.role = role
    person.is_demo = is_demo
    if is_active is not None:
        person.is_active = is_active
    if photo is not None:
        if photo.pk != person.photo_id:
            image_chosen_check(image=photo, field="photo")
        person.photo = photo
    person.full_clean()
    if not created and _person_state(person) == stored:
        return person, "unchanged"
    person.save()
    return person, "created" if created else "updated"


@transaction.atomic
def person_create(*, values: Mapping[str, Any]) -> Person:
    """A new person (the API's POST), checked as the model checks them: their
    text is stored as every other path stores it (composed)."""
    person = Person(**values)
    person.full_clean()
    person.save()
    return person


@transaction.atomic
def person_update(*, person: Person, values: Mapping[str, Any] | None = None) -> Person:
    """Save a change to ``person`` (the admin's form, the API's PUT and
    PATCH): ``values`` set on them and checked as the model checks them, the
    other fields as they are (a form sets and checks its values itself).

    A change is a real write, as a real import of their username is
    (``person_upsert``): a demo person becomes real, so ``seed_demo --remove``
    keeps the person staff edited, with the edits.
    """
    values = dict(values or {})
    for key, value in values.items():
        setattr(person, key, value)
    person.is_demo = False
    # The fields written, not the others: a person stored before a rule of
    # their text would make every change of another field fail.
    person.full_clean(exclude=[f.name for f in Person._meta.fields if f.name not in values])
    person.save()
    return person


def _person_state(person: Person) -> list[Any]:
    """What a write may change of ``person``; phones in their order, which
    the pages show them in."""
    state = []
    for f in Person._meta.concrete_fields:
        if f.attname in ("created_at", "updated_at"):
            continue
        value = getattr(person, f.attname)
        state.append(list(value.items()) if isinstance(value, dict) else value)
    return state


def people_import(rows: Iterable[Mapping[str, Any]]) -> ImportSummary:
    """An export imported again changes nobody: a person as the file gives
    them is counted with the duplicates skipped, and keeps their
    ``updated_at`` (the home page lists the people changed last). A
    username the file gives again is refused on that row, as the admin's
    import refuses it: taken, it would replace the first row's person
    unseen."""
    summary = ImportSummary()
    rows_by_username: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        # Printed, as the command prints it: a username the row is refused
        # for may hold a terminal's escape or a line break.
        label = printed(str(row.get("username") or f"row {index}"))
        username = row.get("username")
        if username:
            # Composed, as person_upsert looks it up: "José" twice, typed
            # two ways, is one person given twice.
            username = normal_username(username)
            first = rows_by_username.setdefault(username, index)
            if first != index:
                message = f"username: {printed(username)} is on row {first} already: a file gives each once."
                summary.rejected.append((label, message))
                continue
        try:
            _, done = person_upsert(**row)
        except ValidationError as exc:
            summary.rejected.append((label, _validation_message(exc)))
            continue
        if done == "created":
            summary.created += 1
        elif done == "updated":
            summary.updated += 1
        else:
            summary.skipped += 1
    logger.info("people import: %s", summary.line("people"))
    return summary


# --- Feedback -----------------------------------------------------------------


PRODUCT_GONE_MESSAGE = "The product you were reviewing is no longer in the catalog."


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
    is_demo: bool = False,
    form_digest: str | None = None,
) -> Feedback:
    """A new review, published at once or pending, as the moderation setting says.

    The product is locked until the review commits: a deletion of it waits,
    then finds the review to detach. One deleted before is a ValidationError
    on ``product``. A ``form_digest`` another review holds is an
    IntegrityError (``feedback_submit_from_form``).
    """
    if (
        product is not None
        and not Product.objects.select_for_update(no_key=True).filter(pk=product.pk).exists()
    ):
        raise ValidationError({"product": PRODUCT_GONE_MESSAGE}, code="product_gone")
    feedback = Feedback(
        is_demo=is_demo,
        title=title.strip(),
        name=name.strip(),
        date=date or timezone.localdate(),
        text=text.strip(),
        rating=rating,
        product=product,
        source=source,
        status=_initial_status(),
        form_digest=form_digest,
    )
    # The digest's uniqueness is the database's to hold, at the insert.
    feedback.full_clean(exclude=["fingerprint", "form_digest"])
    feedback.save()
    return feedback


@transaction.atomic
def feedback_update(*, review: Feedback, values: Mapping[str, Any]) -> Feedback:
    """Save a moderator's change to ``review`` (the API's PUT and PATCH):
    ``values`` set on it and checked as the model checks them (its text
    composed, as every path stores it), the other fields as they are."""
    for key, value in values.items():
        setattr(review, key, value)
    # The fields written, not the others: a review stored before a rule of
    # its text would make every change of its status fail.
    review.full_clean(exclude=[f.name for f in Feedback._meta.fields if f.name not in values])
    review.save()
    return review


# A review the public form sends again within this many seconds (a second
# click on "Send" while the first is on its way) is the one it sent first.
FORM_RESENT_SECONDS = 600


def _form_fingerprint(*, title: str, name: str, date: dt.date, text: str) -> str:
    wanted = Feedback(
        title=title.strip(), name=name.strip(), date=date, text=normalize_newlines(text.strip())
    )
    return wanted.compute_fingerprint()


def feedback_form_key(
    *,
    title: str,
    name: str,
    date: dt.date | None = None,
    text: str,
    rating: int | None = None,
    product: Product | None = None,
) -> str:
    """What tells a review sent by the public form from another, as
    ``feedback_submit_from_form`` matches it: its fingerprint, product and
    rating. Computed without a query."""
    fingerprint = _form_fingerprint(title=title, name=name, date=date or timezone.localdate(), text=text)
    return ":".join(_form_match(fingerprint, product, rating))


def _form_match(fingerprint: str, product: Product | None, rating: int | None) -> tuple[str, str, str]:
    """The parts of a review sent by the public form that tell it from
    another (``_form_sent`` filters by them), as the keys of it write them:
    ``feedback_form_key`` and ``_form_digest``."""
    return fingerprint, str(product.pk if product else ""), str(rating or "")


def _form_digest(sender: str, fingerprint: str, product: Product | None, rating: int | None) -> str:
    """``Feedback.form_digest`` of a review sent by the public form: a hash,
    so that no cookie's secret is written anywhere."""
    payload = "\x1f".join([sender, *_form_match(fingerprint, product, rating)])
    return hashlib.sha256(payload.encode()).hexdigest()


def _form_sent(fingerprint: str, product: Product | None, rating: int | None) -> QuerySet[Feedback]:
    """The reviews of these parts the public form sent in the last
    ``FORM_RESENT_SECONDS`` that stand (one a moderator hid is no match)."""
    return Feedback.objects.filter(
        fingerprint=fingerprint,
        product=product,
        rating=rating,
        source=Feedback.Source.WEB,
        is_demo=False,
        created_at__gte=timezone.now() - dt.timedelta(seconds=FORM_RESENT_SECONDS),
    ).exclude(status=Feedback.Status.HIDDEN)


@transaction.atomic
def feedback_sent_from_form(
    *,
    title: str,
    name: str,
    date: dt.date | None = None,
    text: str,
    rating: int | None = None,
    product: Product | None = None,
    sender: str = "",
) -> Feedback | None:
    """The same review (as ``feedback_submit_from_form`` matches it) sent by
    the public form in the last ``FORM_RESENT_SECONDS`` from the browser
    ``sender`` names, if any; one being posted meanwhile is waited for.
    Without a sender, the first of the same words from any browser."""
    fingerprint = _form_fingerprint(title=title, name=name, date=date or timezone.localdate(), text=text)
    # Both clicks at once: the second waits here, then finds the first.
    locks.hold(f"catalog.feedback:{fingerprint}")
    sent = _form_sent(fingerprint, product, rating)
    if not sender:
        return sent.order_by("pk").first()
    return sent.filter(form_digest=_form_digest(sender, fingerprint, product, rating)).first()


@transaction.atomic
def feedback_submit_from_form(
    *,
    title: str,
    name: str,
    date: dt.date | None = None,
    text: str,
    rating: int | None = None,
    product: Product | None = None,
    sender: str = "",
) -> tuple[Feedback, bool]:
    """``feedback_submit`` from the public form, unless the form sent the same
    review (as imports match it, of the same product and rating) in the last
    ``FORM_RESENT_SECONDS``: then that one, unchanged (one a moderator hid
    is no match). Returns (review, created). A double click on "Send" posts
    one review, whether the shared cache is there or not.

    ``sender`` tells the browser that sends it (its security cookie's
    secret, which both clicks carry): the same words sent from another
    browser, two visitors' "Great!", are a review of their own. The review
    keeps a digest of it with its words (``Feedback.form_digest``), which
    the database holds to one review: a second post that did not wait for
    the first (``locks``) finds it all the same."""
    date = date or timezone.localdate()
    held = feedback_sent_from_form(
        title=title, name=name, date=date, text=text, rating=rating, product=product, sender=sender
    )
    if held is not None:
        return held, False
    fingerprint = _form_fingerprint(title=title, name=name, date=date, text=text)
    digest = _form_digest(sender, fingerprint, product, rating) if sender else None
    submit = functools.partial(
        feedback_submit,
        title=title,
        name=name,
        date=date,
        text=text,
        rating=rating,
        product=product,
        source=Feedback.Source.WEB,
        form_digest=digest,
    )
    try:
        with transaction.atomic():
            return submit(), True
    except IntegrityError:
        if digest is None or not Feedback.objects.filter(form_digest=digest).exists():
            raise
    # The digest is held: by the first click's review, committed meanwhile, or
    # by one that is no match any more (hidden since, older than the window,
    # changed by a moderator), which gives it up to this one.
    held = _form_sent(fingerprint, product, rating).filter(form_digest=digest).first()
    if held is not None:
        return held, False
    Feedback.objects.filter(form_digest=digest).update(form_digest=None)
    return submit(), True


# Held by a batch of a review import, shared by each post of a review.
FEEDBACK_IMPORT_LOCK = "catalog.feedback-import"


@transaction.atomic
def feedback_submit_once(
    *,
    title: str,
    name: str,
    date: dt.date,
    text: str,
    source: str = Feedback.Source.API,
) -> tuple[Feedback, bool]:
    """``feedback_submit``, unless a review of the same title, name, date and
    text is held already (its fingerprint, as imports match): then that one,
    unchanged. Returns (review, created). A course script run again over its
    folder, after one of its posts failed, adds each review once. A demo
    review is never the one held: ``seed_demo --remove`` would take the
    post's review away with it."""
    wanted = Feedback(
        title=title.strip(), name=name.strip(), date=date, text=normalize_newlines(text.strip())
    )
    fingerprint = wanted.compute_fingerprint()
    # An import's batch checks its fingerprints once, then inserts: a post
    # between the two, or one that could not see the batch's rows yet, would
    # add the review again. Posts share the import's lock, so each waits for
    # the batch under way (not for each other), and a batch for them.
    locks.hold_shared(FEEDBACK_IMPORT_LOCK)
    # Two posts of one review at once: the second waits, then finds the first.
    locks.hold(f"catalog.feedback:{fingerprint}")
    held = Feedback.objects.filter(fingerprint=fingerprint, is_demo=False).order_by("pk").first()
    if held is not None:
        return held, False
    return feedback_submit(title=title, name=name, date=date, text=text, source=source), True


# Reviews published or hidden per statement: their ids are values of the
# UPDATE, well within the 999 that Django counts on SQLite taking.
STATUS_BATCH = 500


@transaction.atomic
def feedback_set_status(
    *, reviews: QuerySet[Feedback], status: str, user_id: int | None = None, change_message: str = ""
) -> int:
    """Publish or hide reviews in bulk; returns how many changed. With
    ``user_id``, each review changed gets an entry in its admin history
    saying ``change_message``; one already so is left alone, without one.

    The reviews are taken a batch at a time, in the order of their ids, each
    batch locked, updated by its ids and logged: an UPDATE of the selection
    as one subquery could not tell which rows it changed, and a selection of
    every review as one list of ids was more values than SQLite takes in one
    statement ("too many SQL variables"), answered as an outage. An UPDATE
    leaves ``auto_now`` alone: each review changed is dated here, as a save
    would date it."""
    if status not in Feedback.Status.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    to_change = (
        Feedback.objects.filter(pk__in=reviews.values("pk"))
        .exclude(status=status)
        .select_for_update()
        .only("pk", "title")  # what the history names a review by
        .order_by("pk")
    )
    now = timezone.now()
    changed = 0
    after = 0
    while batch := list(to_change.filter(pk__gt=after)[:STATUS_BATCH]):
        after = batch[-1].pk
        changed += Feedback.objects.filter(pk__in=[review.pk for review in batch]).update(
            status=status, updated_at=now
        )
        if user_id is not None:
            LogEntry.objects.log_actions(user_id, batch, CHANGE, change_message)
    return changed


# Review files imported per transaction: their fingerprints are values of
# the statement that finds those held, well within the 999 that Django counts
# on SQLite taking (a thousand were "too many SQL variables").
IMPORT_BATCH = 500
# What a review file does not supply: status, source and the rest are set
# here, so only the others need checking against the model's rules.
_NOT_IMPORTED = tuple(
    f.name for f in Feedback._meta.concrete_fields if f.name not in ("title", "name", "date", "text")
)


def _review_from_file(raw: bytes, *, status: str) -> Feedback:
    """A review read from a lab-format file, checked, and its text composed,
    as full_clean() would do of what the file supplies (the import inserts
    in bulk, which saves nothing through full_clean()); raises FormatError
    or ValidationError."""
    record = formats.parse_review(raw)
    review = Feedback(
        title=record.title,
        name=record.name,
        date=record.date,
        text=record.text,
        status=status,
        source=Feedback.Source.IMPORT,
    )
    review.clean_fields(exclude=_NOT_IMPORTED)
    review.fingerprint = review.compute_fingerprint()
    return review


def feedback_import_files(
    paths: Sequence[Path],
    *,
    progress: Callable[[int], None] | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Import lab-format review files; exact duplicates (in the files or already
    held) are skipped, unreadable files rejected with the reason. ``summary``
    is filled as the batches commit: a caller whose run is stopped midway
    tells from it what was kept.

    A transaction a batch, once its files are read: each asks once which of
    its fingerprints are already held, and holds ``FEEDBACK_IMPORT_LOCK``
    alone until it commits, so a review posted meanwhile (which shares the
    lock) waits for one batch at most, then finds it; a batch waits for the
    posts under way, then sees them. An interrupted import keeps the batches
    it committed: run again, it skips them. Two imports at once take turns a
    batch at a time; each skips what the other added.
    """
    summary = ImportSummary() if summary is None else summary
    status = _initial_status()
    seen: set[str] = set()
    for start in range(0, len(paths), IMPORT_BATCH):
        batch: list[Feedback] = []
        for path in paths[start : start + IMPORT_BATCH]:
            try:
                raw = formats.read_file(path, formats.REVIEW_MAX_BYTES, "a review file")
                review = _review_from_file(raw, status=status)
            except dropfolder.ChangedWhileRead as exc:
                summary.left.append((path.name, str(exc)))
                continue
            except OSError as exc:
                summary.rejected.append((path.name, f"cannot be read: {exc.strerror or exc}"))
                continue
            except formats.FormatError as exc:
                summary.rejected.append((path.name, str(exc)))
                continue
            except ValidationError as exc:
                summary.rejected.append((path.name, _validation_message(exc)))
                continue
            if review.fingerprint in seen:
                summary.skipped += 1
                continue
            seen.add(review.fingerprint)
            batch.append(review)
        with transaction.atomic():
            locks.hold(FEEDBACK_IMPORT_LOCK)
            # A demo review is not one held: seed_demo --remove would take it away.
            held = set(
                Feedback.objects.filter(
                    fingerprint__in=[r.fingerprint for r in batch], is_demo=False
                ).values_list("fingerprint", flat=True)
            )
            new = [r for r in batch if r.fingerprint not in held]
            Feedback.objects.bulk_create(new)
        summary.skipped += len(batch) - len(new)
        summary.created += len(new)
        if progress:
            progress(min(IMPORT_BATCH, len(paths) - start))
    logger.info("feedback import: %s", summary.line("reviews"))
    return summary


# --- Products -----------------------------------------------------------------


class _Unset:
    """Marks an argument not given (``None`` for an image means "no image")."""


UNSET = _Unset()


def _image_latest_kept(image_name: str, *, is_demo: bool = False) -> Image | None:
    """``selectors.image_latest_for``, kept as ``image_chosen_check`` keeps
    an image: one deleted meanwhile gives way to the newest left."""
    while True:
        image = selectors.image_latest_for(image_name, is_demo=is_demo)
        # Not kept: its deletion has committed, and the next read skips it.
        if image is None or upload_services.image_keep(image_id=image.pk):
            return image


def _product_save(product: Product, values: Mapping[str, Any]) -> bool:
    """Apply the values, validate and save; False (and no write) if nothing changed.
    A new image is checked and kept (``image_chosen_check``)."""
    if product.pk is not None and all(getattr(product, k) == v for k, v in values.items()):
        return False
    image = values.get("image")
    if image is not None and image.pk != product.image_id:
        image_chosen_check(image=image)
    for key, value in values.items():
        setattr(product, key, value)
    # The fields written, not the others: a relink sets the image alone, and
    # a product kept from before a rule of its text (direction controls)
    # would make it fail after an image's deletion or failure has committed.
    product.full_clean(exclude=[f.name for f in Product._meta.fields if f.name not in values])
    product.save()
    return True


def _description_text(description: str) -> str:
    """A description trimmed, with LF line breaks as ``import_supplier``
    reads a file, and composed as it is stored (``Product.composed_fields``):
    a browser sends each line break of the admin's textarea as CRLF, a Mac's
    file an accent apart from its letter, and the same text delivered again
    would count as a change."""
    return validation.composed(normalize_newlines(description.strip()))


def _product_name(name: str) -> str:
    """A name trimmed and composed as it is stored and matched: the same
    name sent again, its accents decomposed, is the same product, unchanged."""
    return validation.composed(name.strip())


def _product_key(*, name: str, image_name: str, is_demo: bool) -> str:
    """What a write of this product is matched by, as ``selectors.products_same_as``
    matches it: the image file stem, else the name. Writers of one key take turns
    on it (``core.locks``)."""
    stem = file_stem(image_name)
    return (
        _stem_key(stem, is_demo=is_demo) if stem else f"catalog.product:{is_demo}:name:{_product_name(name)}"
    )


def _stem_key(stem: str, *, is_demo: bool) -> str:
    return f"catalog.product:{is_demo}:stem:{stem}"


@transaction.atomic
def product_upsert(
    *,
    name: str,
    weight: int,
    description: str = "",
    image_name: str = "",
    image: Image | None = None,
    is_demo: bool = False,
) -> tuple[Product, str]:
    """Create or update the product with this image file stem (else this name).

    Returns (product, outcome) with outcome "created", "updated" or "unchanged".
    Without an explicit image the product shows the newest image uploaded
    under its file stem, so a later photo replaces an earlier one. Demo and
    real products never match each other.
    """
    name, description, image_name = _product_name(name), _description_text(description), image_name.strip()
    validation.check_storable(name=name, image_name=image_name)
    # A row not there yet cannot be locked: two writers of the same new
    # product would each create it. They take turns on its key instead.
    locks.hold(_product_key(name=name, image_name=image_name, is_demo=is_demo))
    same = selectors.products_same_as(name=name, image_name=image_name, is_demo=is_demo)
    product = same.select_for_update().first()
    created = product is None
    if product is None:
        product = Product(is_demo=is_demo)
    if image is not None and Image.objects.filter(pk=image.pk, status=Image.Status.FAILED).exists():
        # Delivered with the description but broken: it would hide the
        # photo before it, which its failure already gave back.
        image = None
    if image is None:
        image = _image_latest_kept(image_name, is_demo=is_demo) or product.image
    values = {
        "name": name,
        "weight": weight,
        "description": description,
        "image_name": image_name,
        "image": image,
    }
    changed = _product_save(product, values)
    return product, "created" if created else "updated" if changed else "unchanged"


def product_taken_message(product: Product, *, image_name: str) -> str:
    """Why a new product cannot be added beside this one."""
    stem = file_stem(image_name)
    what = f"the image file stem “{stem}”" if stem else "this name and no image file name"
    return f"Product “{product.name}” (id {product.pk}) already has {what}: change that product instead."


@transaction.atomic
def product_check_free(*, name: str, image_name: str, product: Product | None = None) -> None:
    """Refuse a real product of this name and image file name beside another
    that a POST of them would update: a ValidationError on the field, naming
    that product. ``product`` is the one being changed (None for a new one).

    Holds the lock ``product_upsert`` takes for them, so inside the caller's
    transaction no import adds that product between this check and the write.
    A change that keeps what a real product is matched by makes no new pair
    and is not checked (two products paired before stay editable).
    """
    key = _product_key(name=name, image_name=image_name, is_demo=False)
    locks.hold(key)
    if product is not None and key == _product_key(
        name=product.name, image_name=product.image_name, is_demo=product.is_demo
    ):
        return
    others = selectors.products_same_as(name=name, image_name=image_name)
    if product is not None:
        others = others.exclude(pk=product.pk)
    other = others.first()
    if other is not None:
        field = "image_name" if file_stem(image_name) else "name"
        raise ValidationError({field: product_taken_message(other, image_name=image_name)})


@transaction.atomic
def product_create(
    *,
    name: str,
    weight: int,
    description: str = "",
    image_name: str = "",
    image: Image | None = None,
) -> Product:
    """Add a product, never update one: a product with this image file stem
    (else this name) already there is a ValidationError naming it, and
    nothing is written. Linking is that of ``product_upsert``."""
    product, outcome = product_upsert(
        name=name, weight=weight, description=description, image_name=image_name, image=image
    )
    if outcome != "created":
        # Added meanwhile by someone else: undo the update.
        field = "image_name" if file_stem(image_name) else "name"
        raise ValidationError({field: product_taken_message(product, image_name=image_name)})
    return product


@transaction.atomic
def product_update(
    *,
    product_id: int,
    name: str | None = None,
    weight: int | None = None,
    description: str | None = None,
    image_name: str | None = None,
    image: Image | _Unset | None = UNSET,
    precondition: Callable[[Product], None] | None = None,
) -> Product:
    """Change the product with this id; arguments left out stay as they are.
    ``precondition`` is called with the product once its row is locked, before
    any change: it raises to refuse the change (the API's ``If-Match``).

    A new image file stem without an explicit image re-links the product to
    the newest image of that stem (none until it is uploaded). A write here
    is a real one (the API's, the admin's): a demo product becomes real, so
    removing the demo content never deletes it, and shows the real images of
    its stem. A change that would give the product the image file stem (else,
    without one, the name) of another real product is refused as
    ``product_check_free`` says: a POST of it could update only one of them.
    """

    def final(product: Product) -> tuple[str, str]:
        return (
            product.name if name is None else _product_name(name),
            product.image_name if image_name is None else image_name.strip(),
        )

    # In product_upsert's order, the key before the row (else the two could
    # wait on each other); the key depends on the row, so it is read twice.
    new_name, new_image_name = final(Product.objects.get(pk=product_id))
    locks.hold(_product_key(name=new_name, image_name=new_image_name, is_demo=False))
    product = Product.objects.select_for_update().get(pk=product_id)
    if precondition is not None:
        precondition(product)
    new_name, new_image_name = final(product)
    product_check_free(name=new_name, image_name=new_image_name, product=product)
    values: dict[str, Any] = {"is_demo": False}
    if name is not None:
        values["name"] = new_name
    if weight is not None:
        values["weight"] = weight
    if description is not None:
        values["description"] = _description_text(description)
    if image_name is not None:
        values["image_name"] = new_image_name
    if not isinstance(image, _Unset):
        values["image"] = image
    elif product.is_demo or file_stem(new_image_name) != product.image_stem:
        values["image"] = _image_latest_kept(new_image_name)
    _product_save(product, values)
    return product


@transaction.atomic
def product_link_image(*, image: Image) -> int:
    """Show this image on the products that name its file stem, unless they
    already show a newer one (the description came first, or this is a later
    photo of the same product). Returns how many products changed.

    Writers of the stem's products take turns with this on the stem's key
    (``product_upsert``, ``product_update``): a product added for the stem at
    this moment is committed, then linked here, rather than missed by the
    UPDATE while its writer found no image yet. The image row is locked
    meanwhile: a deletion of it waits, then detaches the products.

    It runs after every upload commits, on the uploader's time: two
    statements. The first locks the image row and takes the stem's key (the
    stem is the image's own, so the key is known before the row is read); the
    link is one UPDATE, the image read in subqueries. Written as SQL because
    building the same statements through the ORM (a join turned into ``pk
    IN``, four subqueries) costs several times what running them does.
    """
    stem, is_demo = image.name_stem, image.is_demo
    if not stem:
        return 0
    with connection.cursor() as cursor:
        # No row (deleted meanwhile, or its stem is no longer this one): nothing to link.
        cursor.execute(
            _lock_image_sql(locks.hold_expression(_stem_key(stem, is_demo=is_demo))),
            {"image": image.pk, "stem": stem, "is_demo": is_demo},
        )
        if cursor.fetchone() is None:
            return 0
        cursor.execute(
            _link_image_sql(),
            {
                "image": image.pk,
                "failed": Image.Status.FAILED,
                "now": connection.ops.adapt_datetimefield_value(timezone.now()),
            },
        )
        return int(cursor.rowcount)


# Newer means (created_at, id) greater, the order of selectors.image_latest_for.
_LINK_IMAGE_SQL = """
UPDATE {products} SET image_id = %(image)s, updated_at = %(now)s
WHERE image_stem = (
    SELECT name_stem FROM {images} WHERE id = %(image)s AND name_stem <> '' AND status <> %(failed)s
  )
  AND is_demo = (SELECT is_demo FROM {images} WHERE id = %(image)s)
  AND (
    {products}.image_id IS NULL
    OR EXISTS (
      SELECT 1 FROM {images} AS shown
      WHERE shown.id = {products}.image_id
        AND (shown.created_at, shown.id) < (SELECT created_at, id FROM {images} WHERE id = %(image)s)
    )
  )
"""


def _lock_image_sql(hold: str) -> str:
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    return (
        f"SELECT {hold} FROM {Image._meta.db_table}"  # noqa: S608 - a table name and a lock of core.locks
        f" WHERE id = %(image)s AND name_stem = %(stem)s AND is_demo = %(is_demo)s{lock}"
    )


@functools.cache
def _link_image_sql() -> str:
    return _LINK_IMAGE_SQL.format(products=Product._meta.db_table, images=Image._meta.db_table)


@transaction.atomic
def product_relink(*, product_ids: Iterable[int]) -> int:
    """These products show the newest usable image of their stem (none if
    there is none). Returns how many changed.

    For products whose image has failed (a broken later upload never hides
    the photo before it) or has been deleted (the one before it shows again).
    A product without a stem is left as it is: it has nothing to relink by,
    and the image it shows was chosen for it (in the admin, through the API).
    """
    changed = 0
    products = Product.objects.select_for_update().filter(pk__in=list(product_ids)).exclude(image_stem="")
    for product in products:
        newest = _image_latest_kept(product.image_name, is_demo=product.is_demo)
        changed += _product_save(product, {"image": newest})
    return changed


def product_relink_from_failed(*, image_id: int) -> int:
    """The products showing this image, which has failed, show the newest
    usable image of their stem instead."""
    return product_relink(product_ids=Product.objects.filter(image_id=image_id).values_list("pk", flat=True))


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete the product; its reviews stay, no longer tied to it, and its
    images stay in the images list.

    The row is locked before the deletion gathers the reviews to detach: one
    being written meanwhile (``feedback_submit``) commits first and is
    detached too, instead of breaking the deletion."""
    locked = Product.objects.select_for_update().filter(pk=product.pk).first()
    if locked is not None:  # else deleted meanwhile: nothing left to do
        locked.delete()


# Products one bulk deletion locks and deletes by one statement each: their
# ids are values of the statement, well within the 999 that Django counts on
# SQLite taking (a thousand were "too many SQL variables").
DELETE_BATCH = 500


@transaction.atomic
def product_delete_many(*, products: QuerySet[Product]) -> int:
    """Delete these products as ``product_delete`` deletes one, a batch at a
    time, all in one transaction; returns how many were deleted.

    Each batch's rows are locked, in the order of their keys, before the
    deletion gathers the reviews to detach: a review written meanwhile is
    detached too, and two bulk deletions of the same rows take their turns
    instead of deadlocking. One
    product at a time took three statements each: 10,000 products outlasted
    the web server's time limit for a request, cut off with some deleted."""
    ids = list(products.order_by("pk").values_list("pk", flat=True))
    deleted = 0
    for start in range(0, len(ids), DELETE_BATCH):
        batch = Product.objects.select_for_update().filter(pk__in=ids[start : start + DELETE_BATCH])
        locked = list(batch.order_by("pk").values_list("pk", flat=True))
        if locked:  # else deleted meanwhile: nothing left to do
            _, by_model = Product.objects.filter(pk__in=locked).delete()
            deleted += by_model.get(Product._meta.label, 0)
    return deleted


# --- Demo content ---------------------------------------------------------------


@transaction.atomic
def demo_remove() -> dict[str, int]:
    """Delete every demo row: reviews, products, people and their images (with
    their files, through the images' own delete path). Real rows stay, and
    so does a demo image one of them shows."""
    removed = {
        "reviews": Feedback.objects.filter(is_demo=True).delete()[0],
        "products": Product.objects.filter(is_demo=True).delete()[0],
        "people": Person.objects.filter(is_demo=True).delete()[0],
        "images": 0,
    }
    # A demo image a real row shows (the photo of a demo person staff made
    # real in the admin or by an import) is that row's now: kept, as real,
    # rather than taken from the person the removal keeps.
    Image.objects.filter(is_demo=True).filter(
        Q(pk__in=Person.objects.filter(is_demo=False).values("photo"))
        | Q(pk__in=Product.objects.filter(is_demo=False).values("image"))
    ).update(is_demo=False)
    for image in Image.objects.filter(is_demo=True):
        upload_services.image_delete(image=image)
        removed["images"] += 1
    return removed


# --- Supplier deliveries --------------------------------------------------------

SUPPLIER_PRESET = "supplier"
# How long an import waits for its images to be processed before reporting.
SUPPLIER_WAIT_SECONDS = 600
REPORT_SUBJECT = "Upload Completed - Online Fruit Store"
REPORT_BODY = (
    "All fruits are uploaded to our website successfully. A detailed list is attached to this email."
)
# When the PDF is larger than the mail server takes.
REPORT_TOO_LARGE_BODY = (
    "All fruits are uploaded to our website successfully. The detailed list is not attached: "
    "with the report ({size:,} bytes) this email would be larger than the mail server takes{limit}.\n\n"
    "Staff can download the day's report from the admin{where}\n"
)
REPORT_LINK = ": {url}"
# The most products a report holds. Each costs a read of its thumbnail from
# the image store and some 15 ms of drawing: a day of bulk changes, or a
# delivery, of thousands would keep staff waiting past the server's timeout
# (and the import for minutes) for a PDF nobody reads through, too large to
# mail. The rest are counted, and listed in the admin.
REPORT_MAX_PRODUCTS = 200
# Without PORTAL_BASE_URL the portal's host is not known: the path alone, said to be one.
REPORT_PATH_ONLY = ", at this path on the portal's web address: {path}"


@dataclass
class SupplierSummary:
    products: ImportSummary = field(default_factory=ImportSummary)
    images_created: int = 0
    images_existing: int = 0
    images_failed: list[tuple[str, str]] = field(default_factory=list)
    # Refused before storing: broken, over a limit, unreadable.
    images_rejected: list[tuple[str, str]] = field(default_factory=list)
    images_unsettled: list[str] = field(default_factory=list)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    processed: list[Product] = field(default_factory=list)

    def line(self) -> str:
        p = self.products
        unsettled = f", {len(self.images_unsettled)} still processing" if self.images_unsettled else ""
        rejected = f", {len(self.images_rejected)} rejected" if self.images_rejected else ""
        return (
            f"{p.created} products created, {p.updated} updated, {p.skipped} unchanged, "
            f"{len(p.rejected)} rejected; {self.images_created} images imported, "
            f"{self.images_existing} already there{rejected}, {len(self.images_failed)} failed{unsettled}, "
            f"{len(self.skipped_files)} files skipped."
        )


def supplier_import(
    directory: Path,
    *,
    wait_seconds: float = SUPPLIER_WAIT_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> SupplierSummary:
    """Import a supplier's folder: ``descriptions/*.txt`` and ``images/*``.

    Images get the supplier preset; their processing is started by the upload
    itself once it commits (a worker, or in-process), never here. Each product
    shows the image delivered with it (the same bytes delivered before under
    any name count as that image); a description without one links by its
    file stem, and later uploads of the stem replace it. The import then waits, up to
    ``wait_seconds``, for its images to be ready or failed, so the report has
    their thumbnails. Running it again on the same folder changes nothing.
    Call it outside a transaction: processing starts only after commits.
    A folder that cannot be listed raises dropfolder.FolderUnreadable before
    anything is written.
    """

    summary = SupplierSummary()
    # Every photo imported, by file name; and by stem the one its description
    # takes (of two photos of one stem, the later upload, as linking has it).
    imported: list[tuple[str, Image]] = []
    images: dict[str, tuple[str, Image]] = {}
    # By stem, the name of each photo delivered, imported or not: a product
    # whose photo was refused is still named by it, as when it was taken.
    photo_names: dict[str, str] = {}
    listed = dropfolder.listing(directory / "descriptions", suffix=".txt", what="description")
    descriptions = listed.files
    summary.skipped_files += [(f"descriptions/{name}", reason) for name, reason in listed.skipped]
    summary.products.rejected += [(f"descriptions/{name}", reason) for name, reason in listed.rejected]
    # A file a description names by its stem was meant as that product's photo.
    described = {file_stem(p.name) for p in descriptions}
    listed = dropfolder.listing(directory / "images")
    summary.skipped_files += [(f"images/{name}", reason) for name, reason in listed.skipped]
    summary.images_rejected += [(f"images/{name}", reason) for name, reason in listed.rejected]
    for name, _ in listed.rejected:  # left out as found (a link to nothing): delivered all the same
        photo_names[file_stem(name)] = name
    for path in listed.files:
        label = f"images/{path.name}"
        photo_names[file_stem(path.name)] = path.name
        try:
            image, created = upload_services.image_import(
                data=upload_services.image_file_read(path=path),
                original_name=path.name,
                preset=SUPPLIER_PRESET,
            )
        except dropfolder.ChangedWhileRead as exc:
            summary.skipped_files.append((label, str(exc)))
        except OSError as exc:
            summary.images_rejected.append((label, f"cannot be read: {exc.strerror or exc}"))
        except (upload_services.ImageInvalid, upload_services.ImageTooLarge) as exc:
            if file_stem(path.name) in described or upload_services.image_refusal_is_rejection(
                path.name, exc
            ):
                summary.images_rejected.append((label, str(exc)))
            else:
                summary.skipped_files.append((label, str(exc)))
        else:
            imported.append((path.name, image))
            images[file_stem(path.name)] = (path.name, image)
            summary.images_created += created
            summary.images_existing += not created
        if progress:
            progress(1)
    # By stem, the description that gives its product: ``001.txt`` and
    # ``001.TXT`` (or ``café.txt`` in both Unicode forms) are two files but
    # one product, which the second replaced unseen, each run again.
    described_by: dict[str, str] = {}
    for path in descriptions:
        stem = file_stem(path.name)
        first = described_by.setdefault(stem, path.name)
        if first != path.name:
            summary.products.rejected.append(
                (
                    f"descriptions/{path.name}",
                    f"its product (stem {quoted(stem)}) is described by descriptions/{first} already: "
                    "a delivery describes each product once",
                )
            )
            if progress:
                progress(1)
            continue
        # Without a photo, the name the course's scripts give it (``001.jpeg``).
        file_name, photo = images.get(stem, (photo_names.get(stem, f"{path.stem}.jpeg"), None))
        try:
            raw = formats.read_file(path, formats.DESCRIPTION_MAX_BYTES, "a description file")
            record = formats.parse_description(raw)
            product, outcome = product_upsert(
                name=record.name,
                weight=record.weight,
                description=record.description,
                image_name=file_name,
                image=photo,
            )
        except dropfolder.ChangedWhileRead as exc:
            summary.skipped_files.append((f"descriptions/{path.name}", str(exc)))
        except OSError as exc:
            summary.products.rejected.append(
                (f"descriptions/{path.name}", f"cannot be read: {exc.strerror or exc}")
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
    # Each photo is waited for and told apart, a second of one stem too: its
    # failure is the delivery's even where the product shows the other.
    settled = upload_selectors.images_wait_settled([img.pk for _, img in imported], wait_seconds)
    for file_name, delivered in imported:
        current = settled.get(delivered.pk)
        if current is None:
            continue
        if current.status == Image.Status.FAILED:
            summary.images_failed.append((f"images/{file_name}", current.error))
        elif current.status != Image.Status.READY:
            summary.images_unsettled.append(f"images/{file_name}")
    logger.info("supplier import %s: %s", directory, summary.line())
    return summary


def report_items(products: Iterable[Product]) -> list[reports.ReportItem]:
    """Name, weight and the supplier-sized thumbnail of each product."""
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
                try:
                    with default_storage.open(rendition.storage_key, "rb") as fh:
                        thumbnail = fh.read()
                except OSError as exc:  # S3's missing key included
                    # Lost from the store: the report shows "(no image)" for
                    # it rather than no report at all.
                    logger.warning("report: rendition %s unreadable: %s", rendition.storage_key, exc)
        items.append(reports.ReportItem(name=product.name, weight=product.weight, thumbnail=thumbnail))
    return items


def report_build(
    *,
    products: QuerySet[Product],
    date: dt.date | None = None,
    more_were: str = "changed that day",
    more_url: str = "",
) -> bytes:
    """The report of ``products``, in their order, the first
    REPORT_MAX_PRODUCTS of them: how many more there were is said, as
    ``more_were`` (what was done to them), with ``more_url``, where the admin
    lists them all (see ``reports.supplier_report_pdf``)."""
    listed = list(products[: REPORT_MAX_PRODUCTS + 1])
    more = 0
    if len(listed) > REPORT_MAX_PRODUCTS:
        listed = listed[:REPORT_MAX_PRODUCTS]
        # Counted apart, and only when cut: at least one more was read.
        more = max(products.count() - REPORT_MAX_PRODUCTS, 1)
    return reports.supplier_report_pdf(
        report_items(listed),
        date=date or timezone.localdate(),
        more=more,
        more_url=more_url if more else "",
        more_were=more_were,
    )


def report_changed_on(day: dt.date) -> str:
    """The path of the admin's list of the products changed on ``day``, by
    the day report's own lookup (the list takes a lookup on any field of the
    model's own)."""
    return f"{reverse('admin:catalog_product_changelist')}?{urlencode({'updated_at__date': day.isoformat()})}"


@dataclass(frozen=True)
class ReportMail:
    """What report_send mailed: the report attached, or why it is not; and
    the recipients the server refused, if any (``refused.accepted`` took it)."""

    not_attached: str = ""
    refused: mail.RecipientsRefused | None = None


def report_send(*, pdf: bytes, recipients: Sequence[str], date: dt.date | None = None) -> ReportMail:
    """Mail the report with the course's subject and body.

    A report larger than the mail server takes is left out: the recipients
    still learn that the import ran, and where to download the report. Both
    tries together get twice EMAIL_TIMEOUT, however slowly the server keeps
    answering (a read at a time never runs into EMAIL_TIMEOUT), as a health
    check run's alerts do: past it the import ends saying so. Recipients
    the server refuses are in the outcome, with whether the report was
    attached for the others; any other failure to mail raises.
    """
    day = date or timezone.localdate()
    message = EmailMessage(
        subject=REPORT_SUBJECT,
        body=REPORT_BODY,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(recipients),
        connection=get_connection(deadline=mail.Deadline.for_a_run()),
    )
    message.attach(f"processed-{day.isoformat()}.pdf", pdf, "application/pdf")
    try:
        message.send()
    except mail.RecipientsRefused as exc:
        return ReportMail(refused=exc)
    except mail.MessageTooLarge as exc:
        limit = f" ({exc.limit:,} bytes)" if exc.limit else ""
        path = f"{reverse('admin:catalog_product_report')}?date={day.isoformat()}"
        where = (
            REPORT_LINK.format(url=settings.BASE_URL + path)
            if settings.BASE_URL
            else REPORT_PATH_ONLY.format(path=path)
        )
        message.body = REPORT_TOO_LARGE_BODY.format(size=len(pdf), limit=limit, where=where)
        message.attachments = []
        try:
            message.send()
        except mail.RecipientsRefused as refused:
            # Refused now that the message is small enough to get that far.
            return ReportMail(not_attached=str(exc), refused=refused)
        return ReportMail(not_attached=str(exc))
    return ReportMail()
