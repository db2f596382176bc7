from django.db import migrations

from core.migration_operations import TextInOneForm


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers wait for one
    # batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0016_image_text_direction_controls'),
    ]

    operations = [
        TextInOneForm("uploads.Image", fields=["title", "alt"]),
    ]
