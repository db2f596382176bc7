import django.core.validators
from django.db import migrations, models
from django.db.models.functions import Coalesce

from core.migration_operations import AddColumn, update_in_batches


def crops_from_the_point_in_force(apps, schema_editor):
    # Ready images had their crops cut around the point in force (staff's
    # point, else the estimate): the release before recut them whenever it
    # moved. Filled only where unset, so a row a new server has set is kept.
    update_in_batches(
        apps.get_model("uploads", "Image"),
        rows=models.Q(status="ready", crops_x__isnull=True)
        & (models.Q(focal_x__isnull=False) | models.Q(focal_auto_x__isnull=False)),
        values={
            "crops_x": Coalesce("focal_x", "focal_auto_x"),
            "crops_y": Coalesce("focal_y", "focal_auto_y"),
            # A radius goes with staff's point only (uploads_image_focal_point_valid).
            "crops_radius": models.F("focal_radius"),
        },
    )


class Migration(migrations.Migration):
    # Not one transaction: the columns are added in a short one each, and the
    # images filled a batch at a time, so that their writers wait for one
    # batch at most (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0013_image_stems_trimmed'),
    ]

    operations = [
        AddColumn(
            model_name='image',
            name='crops_radius',
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        AddColumn(
            model_name='image',
            name='crops_x',
            field=models.FloatField(blank=True, editable=False, null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        AddColumn(
            model_name='image',
            name='crops_y',
            field=models.FloatField(blank=True, editable=False, null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        # Gone back, the columns go with what they held.
        migrations.RunPython(crops_from_the_point_in_force, migrations.RunPython.noop, atomic=False, elidable=True),
    ]
