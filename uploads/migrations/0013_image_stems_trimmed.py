from django.db import migrations

from core.migration_operations import StemsTrimmed


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the images
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0012_image_long_stems_apart'),
    ]

    operations = [
        StemsTrimmed("uploads.Image", source="original_name", target="name_stem"),
    ]
