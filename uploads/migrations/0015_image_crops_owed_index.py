from django.db import migrations, models
from django.db.models.functions import Coalesce

from core.expressions import IsDistinctFrom
from core.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    # Not one transaction: the index is built concurrently, without blocking
    # writes to a table a year of use has filled (core.migration_operations).
    atomic = False

    dependencies = [
        ('uploads', '0014_image_crops_point'),
    ]

    operations = [
        # The images whose crops are owed, which the crops sweep looks for.
        AddIndexConcurrently(
            model_name='image',
            index=models.Index(
                fields=['status'],
                condition=models.Q(status='ready')
                & (
                    models.Q(IsDistinctFrom(Coalesce('focal_x', 'focal_auto_x'), 'crops_x'))
                    | models.Q(IsDistinctFrom(Coalesce('focal_y', 'focal_auto_y'), 'crops_y'))
                    | models.Q(IsDistinctFrom('focal_radius', 'crops_radius'))
                ),
                name='uploads_image_crops_owed_idx',
            ),
        ),
    ]
