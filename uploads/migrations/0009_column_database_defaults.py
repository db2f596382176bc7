from django.db import migrations

from core.migration_operations import RestoreDatabaseDefaults


class Migration(migrations.Migration):
    # 0002, 0004 and 0007 added these columns without a database default until
    # they declared one; a database they migrated before that gets the default
    # now, so that servers of an older release can insert images while a later
    # upgrade runs.
    dependencies = [
        ("uploads", "0008_replaced_objects"),
    ]

    operations = [
        RestoreDatabaseDefaults("image", ["name_stem", "is_demo", "interruptions", "holder"]),
    ]
