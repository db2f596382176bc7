"""People (the staff directory), customer feedback and the store's products.

A column added after the first release is nullable or has a database default
(``db_default``): servers of an older release, which know nothing of it, go on
inserting rows while a rolling upgrade migrates (docs/deploy.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import normalize_newlines

from core.quoting import quoted
from core.validation import (
    NullCharactersRefused,
    TextComposed,
    composed,
    unstorable,
    validate_text,
    validate_text_lines,
)
from uploads.models import STEM_MAX_LENGTH, file_stem


def validate_not_future(value: dt.date) -> None:
    """A review's day has come: today where its writer is, which may be a
    day past the server's today."""
    if value > timezone.localdate() + dt.timedelta(days=1):
        raise ValidationError("The date cannot be in the future.", code="future")


# The longest phone number a person has, on every path that writes one.
PHONE_NUMBER_MAX_LENGTH = 40
# The most phone numbers a person has, on every path that writes them: the
# person's page lists each, and nobody has use for more.
PHONE_NUMBERS_MAX = 20
# The longest label of a phone number, as long as a role: without it, each
# of the twenty could be as long as a request or a file allows.
PHONE_LABEL_MAX_LENGTH = 100


def validate_phone(phones: Mapping[Any, Any]) -> None:
    """What every path that writes a person's phones refuses of them: more
    than PHONE_NUMBERS_MAX numbers, a label longer than
    PHONE_LABEL_MAX_LENGTH, a number longer than PHONE_NUMBER_MAX_LENGTH, a
    direction control in a label or a number (the person's page shows both)."""
    if len(phones) > PHONE_NUMBERS_MAX:
        raise ValidationError(
            f"A person has at most {PHONE_NUMBERS_MAX} phone numbers, not {len(phones)}.",
            code="max_phone_numbers",
        )
    for label, number in phones.items():
        if isinstance(label, str):
            if len(label) > PHONE_LABEL_MAX_LENGTH:
                # Its start alone: the whole would fill the page that refuses it.
                raise ValidationError(
                    f"The phone label {quoted(label)} is longer than {PHONE_LABEL_MAX_LENGTH} characters.",
                    code="max_length",
                )
            validate_text(label, what=f"The phone label {label!r}")
        if isinstance(number, str):
            if len(number) > PHONE_NUMBER_MAX_LENGTH:
                raise ValidationError(phone_too_long_message(label), code="max_length")
            validate_text(number, what=f"The {label!r} number")


def validate_username_not_dots(value: str) -> None:
    """Refuse the usernames ``.`` and ``..``, which the username rule allows:
    a browser resolves the person's page, ``/people/./`` or ``/people/../``,
    to the directory or the home page, so the person would have none."""
    if value in {".", ".."}:
        raise ValidationError(
            f"A username cannot be {value!r}: a browser takes the address of the person's page "
            f"(/people/{value}/) for another page.",
            code="dot_username",
        )


def normal_username(value: str) -> str:
    """A username in the one form it is stored and looked up in: Unicode's
    composed form (NFC). "José" typed as "e" and a combining accent and as
    "é" looks the same on every page, so it is one username."""
    return unicodedata.normalize("NFC", value)


def username_clash_check(username: str, *, person_pk: int | None = None) -> None:
    """Refuse ``username`` if a person other than ``person_pk`` has it, in
    its composed form (NFC) or decomposed (NFD): a username kept from before
    they were stored composed is found too, which would read as this one.
    A username no column stores is left to the checks that refuse it: the
    query itself would fail."""
    if unstorable(username):
        return
    composed = normal_username(username)
    forms = {composed, unicodedata.normalize("NFD", composed)}
    others = Person.objects.filter(username__in=forms)
    if person_pk is not None:
        others = others.exclude(pk=person_pk)
    other = others.order_by("pk").first()
    if other is not None:
        raise username_taken(composed, other)


def username_taken(username: str, other: Person) -> ValidationError:
    """The refusal of ``username`` (composed) because ``other`` has it, in
    that form or another."""
    stored = "" if other.username == username else f", stored as {other.username!a}"
    return ValidationError(
        f"The username {username!r} is taken by {other.name} (person {other.pk}{stored}): "
        "usernames that read the same are one, whichever Unicode form they are written in.",
        code="unique",
    )


class Person(TextComposed, NullCharactersRefused, models.Model):
    # What the directory calls the group of people without a department.
    NO_DEPARTMENT = "Other"
    # Stored composed (NFC), as the username is: a search, the directory's
    # groups by department and its order by name read them so. The phones
    # are kept as given: digits and a few words of label, searched by no one.
    composed_fields = ("name", "email", "department", "role")

    # The text of a person the public pages show is checked as a review's is.
    name = models.CharField(max_length=200, validators=[validate_text])
    # Letters, digits and @.+-_ only, and not "." or "..": it is part of the person's page URL.
    # Stored composed (NFC), and refused if another reads the same (``clean_fields``, ``validate_unique``).
    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[validate_text, UnicodeUsernameValidator(), validate_username_not_dots],
    )
    # Django's check of an address lets a direction control through in its domain.
    email = models.EmailField(blank=True, validators=[validate_text])
    # Phone numbers by label, the course's shape: {"office": "802-867-5309"}.
    phone = models.JSONField(default=dict, blank=True)
    department = models.CharField(max_length=100, blank=True, db_index=True, validators=[validate_text])
    role = models.CharField(max_length=100, blank=True, db_index=True, validators=[validate_text])
    photo = models.ForeignKey(
        "uploads.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_active = models.BooleanField(default=True)
    # Loaded by `seed_demo`, taken out again by `seed_demo --remove`.
    is_demo = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department", "name"]
        verbose_name_plural = "people"
        # The directory's and the API's order: a page without a sort of the table.
        indexes = [models.Index(fields=["department", "name"], name="catalog_person_directory_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:person-detail", kwargs={"username": self.username})

    @property
    def department_shown(self) -> str:
        return self.department or self.NO_DEPARTMENT

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """The username is checked, and kept, composed (``normal_username``)
        on every path that writes it (each cleans the person first; the API's
        field composes it before its own checks): decomposed, "José" holds a
        combining accent, which is no letter to the username's rule, and
        Hangul decomposed is other letters that read the same."""
        if isinstance(self.username, str) and not (exclude and "username" in exclude):
            self.username = normal_username(self.username)
        super().clean_fields(exclude)

    def validate_unique(self, exclude: Collection[str] | None = None) -> None:
        """A username another person has is refused naming them
        (``username_clash_check``), not in Django's words, which name no one."""
        errors: dict[str, Any] = {}
        if not (exclude and "username" in exclude) and isinstance(self.username, str):
            try:
                username_clash_check(self.username, person_pk=self.pk)
            except ValidationError as exc:
                errors["username"] = exc.error_list
                exclude = {*(exclude or ()), "username"}
        try:
            super().validate_unique(exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """Phones the API and the admin's form refuse are refused on the
        imports' roads too: stored, they would make the person's form
        unsavable and a PUT of what the API gave back a 400."""
        super().clean()
        if not isinstance(self.phone, dict):
            return
        try:
            validate_phone(self.phone)
        except ValidationError as exc:
            raise ValidationError({"phone": exc}) from None


def phone_too_long_message(label: str) -> str:
    return f"The {label!r} number is longer than {PHONE_NUMBER_MAX_LENGTH} characters."


class Product(TextComposed, NullCharactersRefused, models.Model):
    # Stored composed (NFC); the file name is kept as the supplier wrote it,
    # and its stem composed (``file_stem``).
    composed_fields = ("name", "description")

    # Shown in the catalog, on the product's page and in the supplier report.
    name = models.CharField(max_length=200, validators=[validate_text])
    weight = models.PositiveIntegerField(help_text="Weight in lbs.", validators=[MinValueValidator(1)])
    description = models.TextField(blank=True, validators=[validate_text_lines])
    # The file name the supplier used; links the product to its image. An
    # upload's name loses its control characters (Django's parser takes out
    # what does not print), so a name holding one would never link.
    image_name = models.CharField(max_length=255, blank=True, db_index=True, validators=[validate_text])
    # file_stem(image_name), kept on save: ``001.jpeg`` and ``001.tiff`` are
    # the same product, and linking is an indexed equality with Image.name_stem.
    image_stem = models.CharField(
        max_length=STEM_MAX_LENGTH, blank=True, default="", db_default="", editable=False
    )
    image = models.ForeignKey(
        "uploads.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    # Loaded by `seed_demo`; real products never match or link to demo rows.
    is_demo = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["image_stem", "is_demo"], name="catalog_product_stem_idx"),
            # The catalog's and the API's order: a page without a sort of the table.
            models.Index(fields=["name", "id"], name="catalog_product_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.image_stem = file_stem(self.image_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "image_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "image_stem"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("catalog:product-detail", kwargs={"pk": self.pk})


class Feedback(TextComposed, NullCharactersRefused, models.Model):
    class Status(models.TextChoices):
        PUBLISHED = "published", "Published"
        PENDING = "pending", "Pending moderation"
        HIDDEN = "hidden", "Hidden"

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        API = "api", "API"
        IMPORT = "import", "Import"

    composed_fields = ("title", "name", "text")

    title = models.CharField(max_length=100, blank=True, validators=[validate_text])
    name = models.CharField("reviewer name", max_length=100, blank=True, validators=[validate_text])
    date = models.DateField(validators=[validate_not_future])
    text = models.TextField(blank=True, validators=[MaxLengthValidator(5000), validate_text_lines])
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PUBLISHED, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEB)
    # Loaded by `seed_demo`, taken out again by `seed_demo --remove`. A
    # moderator's change leaves a demo review one, unlike a person's or a
    # product's: its words stay an invented customer's, which kept would
    # stand among the real reviews as real.
    is_demo = models.BooleanField(default=False, db_default=False)
    # Hash of title, name, date and text: how imports recognise a review they already hold.
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    # Of a review the public form sent: hash of its browser's security cookie
    # secret with its fingerprint, product and rating, one review's at most, so
    # that the form sent twice (a double click on "Send") holds one review.
    form_digest = models.CharField(max_length=64, null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["form_digest"], name="catalog_feedback_form_digest_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "-date", "-id"]),
            # The list of every status (moderators, token clients), walked by date and id.
            models.Index(fields=["-date", "-id"], name="catalog_feedback_date_idx"),
            # The admin's list sorted by a column, either way (core.admin_limits.IndexOrderedChangeList).
            models.Index(fields=["title", "id"], name="catalog_feedback_title_idx"),
            models.Index(fields=["name", "id"], name="catalog_feedback_name_idx"),
            models.Index(fields=["rating", "id"], name="catalog_feedback_rating_idx"),
            models.Index(fields=["status", "id"], name="catalog_feedback_status_id_idx"),
            models.Index(fields=["source", "id"], name="catalog_feedback_source_idx"),
        ]

    def __str__(self) -> str:
        return self.title or f"Review {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fingerprint = self.compute_fingerprint()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "fingerprint"}
        super().save(*args, **kwargs)

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """The text is kept with LF line breaks, as imports read files: a
        browser sends each line break of a textarea as CRLF, though its
        ``maxlength`` counted it as one character, and so does the length
        check here."""
        if isinstance(self.text, str) and not (exclude and "text" in exclude):
            self.text = normalize_newlines(self.text)
        super().clean_fields(exclude)

    def compute_fingerprint(self) -> str:
        """The one definition of "the same review"; bulk imports, which skip
        save(), call it too. Of the text composed, as it is stored: a review
        sent again from a Mac, its accents decomposed, is the one held."""
        payload = "\x1f".join(
            [composed(self.title), composed(self.name), str(self.date), composed(self.text)]
        )
        return hashlib.sha256(payload.encode()).hexdigest()
