from django.db import migrations

from core.migration_operations import StemsInOneForm


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the products
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('catalog', '0009_feedback_search_and_sort_indexes'),
    ]

    operations = [
        StemsInOneForm("catalog.Product", source="image_name", target="image_stem"),
    ]
