import hashlib
import unicodedata

from django.db import migrations

from core.migration_operations import TextInOneForm


def review_fingerprint(row):
    """Feedback.compute_fingerprint when its text was stored composed, kept
    here as it was then: the text composed, so that a review imported again
    from a Mac's file is the one held."""
    parts = [unicodedata.normalize("NFC", row[name]) for name in ("title", "name")]
    payload = "\x1f".join([*parts, str(row["date"]), unicodedata.normalize("NFC", row["text"])])
    return {"fingerprint": hashlib.sha256(payload.encode()).hexdigest()}


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers wait for one
    # batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('catalog', '0017_product_image_name_text_controls'),
    ]

    operations = [
        TextInOneForm("catalog.Person", fields=["name", "email", "department", "role"]),
        TextInOneForm("catalog.Product", fields=["name", "description"]),
        TextInOneForm("catalog.Feedback", fields=["title", "name", "text"], derived=review_fingerprint),
    ]
