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
        ('catalog', '0008_column_database_defaults'),
    ]

    operations = [
        # The admin's search of reviews, a word anywhere in the title, name or text.
        AddTrigramIndexConcurrently(model_name='feedback', name='catalog_feedback_title_trgm', field='title'),
        AddTrigramIndexConcurrently(model_name='feedback', name='catalog_feedback_name_trgm', field='name'),
        AddTrigramIndexConcurrently(model_name='feedback', name='catalog_feedback_text_trgm', field='text'),
        # The admin's list sorted by a column, either way.
        AddIndexConcurrently(
            model_name='feedback',
            index=models.Index(fields=['title', 'id'], name='catalog_feedback_title_idx'),
        ),
        AddIndexConcurrently(
            model_name='feedback',
            index=models.Index(fields=['name', 'id'], name='catalog_feedback_name_idx'),
        ),
        AddIndexConcurrently(
            model_name='feedback',
            index=models.Index(fields=['rating', 'id'], name='catalog_feedback_rating_idx'),
        ),
        AddIndexConcurrently(
            model_name='feedback',
            index=models.Index(fields=['status', 'id'], name='catalog_feedback_status_id_idx'),
        ),
        AddIndexConcurrently(
            model_name='feedback',
            index=models.Index(fields=['source', 'id'], name='catalog_feedback_source_idx'),
        ),
    ]
