from django.db import migrations

from core.migration_operations import LongStemsApart


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the products
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('catalog', '0010_product_stem_one_unicode_form'),
    ]

    operations = [
        LongStemsApart("catalog.Product", source="image_name", target="image_stem"),
    ]
