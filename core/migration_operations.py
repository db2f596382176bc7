"""Migration operations for a portal upgraded while it serves (docs/deploy.md,
"Upgrading"): servers of the release before keep running until the migration
is done, on tables a year of use has filled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState


def column_defaults(schema_editor: BaseDatabaseSchemaEditor, table: str) -> dict[str, Any]:
    """Each column of ``table`` and its default in the database (None: none)."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return {c.name: c.default for c in connection.introspection.get_table_description(cursor, table)}


class RestoreDatabaseDefaults(Operation):
    """Give each of ``fields`` the database default (``db_default``) that the
    migration state declares, where the database lacks it: a database migrated
    by an earlier copy of the migration that added the column, before it
    declared one. Elsewhere it does nothing; it changes no state, and going
    back leaves the default in place."""

    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, fields: Sequence[str]) -> None:
        self.model_name = model_name
        self.fields = list(fields)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        for name in self.fields:
            field = model._meta.get_field(name)
            # Asked afresh for each: on SQLite, altering one column rebuilds
            # the table, which gives every column its declared default.
            if column_defaults(schema_editor, model._meta.db_table)[field.column] is not None:
                continue
            without = field.clone()
            without.db_default = models.NOT_PROVIDED
            without.set_attributes_from_name(name)
            without.model = model
            schema_editor.alter_field(model, without, field)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass

    def describe(self) -> str:
        return f"Restore the database defaults of {self.model_name}.{', '.join(self.fields)}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name}_database_defaults"
