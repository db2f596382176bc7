import unicodedata

from django.db import migrations, models

from core.migration_operations import fill_in_batches


def _stem(name):
    # As uploads.models.file_stem at the time of writing (a migration keeps its own copy).
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return unicodedata.normalize("NFC", base.rsplit(".", 1)[0] if "." in base else base)


def stems_in_one_form(apps, schema_editor):
    # Only stems with a character past printable ASCII can change: the others
    # are read, not written.
    Image = apps.get_model("uploads", "Image")
    fill_in_batches(Image, source="original_name", target="name_stem", value=_stem, rows=models.Q(name_stem__regex=r"[^ -~]"))


class Migration(migrations.Migration):
    # Not one transaction: a batch at a time, so that writers of the images
    # wait for one batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0010_image_search_and_sort_indexes'),
    ]

    operations = [
        migrations.RunPython(stems_in_one_form, migrations.RunPython.noop, atomic=False, elidable=True),
    ]
