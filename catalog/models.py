"""People (the staff directory), customer feedback and the store's products."""

from __future__ import annotations

import hashlib

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse


class Person(models.Model):
    name = models.CharField(max_length=200)
    # Letters, digits and @.+-_ only: it is part of the person's page URL.
    username = models.CharField(max_length=150, unique=True, validators=[UnicodeUsernameValidator()])
    email = models.EmailField(blank=True)
    # Phone numbers by label, the course's shape: {"office": "802-867-5309"}.
    phone = models.JSONField(default=dict, blank=True)
    department = models.CharField(max_length=100, blank=True, db_index=True)
    role = models.CharField(max_length=100, blank=True, db_index=True)
    photo = models.ForeignKey(
        "uploads.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department", "name"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:person-detail", kwargs={"username": self.username})


class Product(models.Model):
    name = models.CharField(max_length=200)
    weight = models.PositiveIntegerField(help_text="Weight in lbs.", validators=[MinValueValidator(1)])
    description = models.TextField(blank=True)
    # The file name the supplier used; links the product to its image.
    image_name = models.CharField(max_length=255, blank=True, db_index=True)
    image = models.ForeignKey(
        "uploads.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:product-detail", kwargs={"pk": self.pk})


class Feedback(models.Model):
    class Status(models.TextChoices):
        PUBLISHED = "published", "Published"
        PENDING = "pending", "Pending moderation"
        HIDDEN = "hidden", "Hidden"

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        API = "api", "API"
        IMPORT = "import", "Import"

    title = models.CharField(max_length=100, blank=True)
    name = models.CharField("reviewer name", max_length=100, blank=True)
    date = models.DateField()
    text = models.TextField(blank=True, validators=[MaxLengthValidator(5000)])
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PUBLISHED, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEB)
    # Hash of title, name, date and text: how imports recognise a review they already hold.
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "feedback"
        indexes = [models.Index(fields=["status", "-date", "-id"])]

    def __str__(self) -> str:
        return self.title or f"Review {self.pk}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.fingerprint = self.make_fingerprint(
            title=self.title, name=self.name, date=self.date, text=self.text
        )
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def make_fingerprint(*, title: str, name: str, date: object, text: str) -> str:
        payload = "\x1f".join([title, name, str(date), text])
        return hashlib.sha256(payload.encode()).hexdigest()
