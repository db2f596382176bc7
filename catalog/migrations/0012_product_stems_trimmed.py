from django.db import migrations

from core.migration_operations import StemsTrimmed


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the products
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('catalog', '0011_product_long_stems_apart'),
    ]

    operations = [
        StemsTrimmed("catalog.Product", source="image_name", target="image_stem"),
    ]
