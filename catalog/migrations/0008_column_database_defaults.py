from django.db import migrations

from core.migration_operations import RestoreDatabaseDefaults


class Migration(migrations.Migration):
    # 0003 added these columns without a database default until it declared
    # one; a database it migrated before that gets the default now, so that
    # servers of an older release can insert rows while a later upgrade runs.
    dependencies = [
        ("catalog", "0007_feedback_date_index"),
    ]

    operations = [
        RestoreDatabaseDefaults("feedback", ["is_demo"]),
        RestoreDatabaseDefaults("person", ["is_demo"]),
        RestoreDatabaseDefaults("product", ["image_stem", "is_demo"]),
    ]
