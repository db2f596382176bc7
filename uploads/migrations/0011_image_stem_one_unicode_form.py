from django.db import migrations

from core.migration_operations import StemsInOneForm


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the images
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0010_image_search_and_sort_indexes'),
    ]

    operations = [
        StemsInOneForm("uploads.Image", source="original_name", target="name_stem"),
    ]
