from django.db import migrations, models

import uploads.originals
import uploads.storage


def make_originals_private(apps, schema_editor):
    # Originals that an older release kept beside the renditions move to the
    # private store; running it again finds nothing to move.
    moved, kept = uploads.storage.originals_make_private()
    if moved:
        print(f"\n  Moved {moved} original(s) to the private store; {kept} were there already.")


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0002_image_stem_demo_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="image",
            name="file",
            field=models.FileField(max_length=255, storage=uploads.originals.get_originals_storage, upload_to=""),
        ),
        migrations.RunPython(make_originals_private, migrations.RunPython.noop, elidable=True),
    ]
