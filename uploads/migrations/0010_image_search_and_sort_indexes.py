from django.db import migrations, models

from core.migration_operations import AddIndexConcurrently, AddTrigramIndexConcurrently


class Migration(migrations.Migration):
    # Not one transaction: each index is built concurrently, without blocking
    # writes to a table a year of use has filled (core.migration_operations).
    #
    # On PostgreSQL the search indexes need the extension pg_trgm, which this
    # migration creates if it is missing. PostgreSQL 13 and later let the
    # database's owner create it; if the role that migrates may not, it stops
    # before building them and says so: have a superuser run
    # "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in the database (or make the
    # role its owner), then run migrate again (docs/deploy.md, "Upgrading").
    atomic = False

    dependencies = [
        ('uploads', '0009_column_database_defaults'),
    ]

    operations = [
        # The admin's search of images, a word anywhere in these.
        AddTrigramIndexConcurrently(model_name='image', name='uploads_image_title_trgm', field='title'),
        AddTrigramIndexConcurrently(model_name='image', name='uploads_image_alt_trgm', field='alt'),
        AddTrigramIndexConcurrently(
            model_name='image', name='uploads_image_original_name_trgm', field='original_name'
        ),
        AddTrigramIndexConcurrently(model_name='image', name='uploads_image_sha256_trgm', field='sha256'),
        # The admin's list: failed first, then newest first within a status.
        AddIndexConcurrently(
            model_name='image',
            index=models.Index(
                models.Case(
                    models.When(status='failed', then=models.Value(0)),
                    models.When(status='pending', then=models.Value(1)),
                    models.When(status='processing', then=models.Value(2)),
                    models.When(status='ready', then=models.Value(3)),
                    output_field=models.IntegerField(),
                ),
                models.OrderBy(models.F('created_at'), descending=True),
                models.OrderBy(models.F('id'), descending=True),
                name='uploads_image_attention_idx',
            ),
        ),
        # The admin's list sorted by a column, either way.
        AddIndexConcurrently(
            model_name='image',
            index=models.Index(fields=['bytes', 'id'], name='uploads_image_bytes_idx'),
        ),
        AddIndexConcurrently(
            model_name='image',
            index=models.Index(fields=['preset', 'id'], name='uploads_image_preset_idx'),
        ),
        AddIndexConcurrently(
            model_name='image',
            index=models.Index(fields=['status', 'id'], name='uploads_image_status_id_idx'),
        ),
    ]
