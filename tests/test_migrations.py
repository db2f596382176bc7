"""Upgrading while the portal serves (docs/deploy.md, "Upgrading"): servers of
an older release go on writing while the new schema goes in."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField

from catalog.models import Feedback, Person, Product
from core.migration_operations import RestoreDatabaseDefaults
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory
from tests.uploads import corpus
from uploads import services
from uploads.models import Image

APPS = ("catalog", "uploads")
FIRST_RELEASE = [("catalog", "0001_initial"), ("uploads", "0001_initial")]


def _loader() -> MigrationLoader:
    return MigrationLoader(None, ignore_no_migrations=True)


def _added_columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The model's columns that its first release's table did not have."""
    first = _loader().project_state(FIRST_RELEASE).apps.get_model(model._meta.label)
    had = {f.column for f in first._meta.concrete_fields}
    return [f for f in model._meta.concrete_fields if f.column not in had]


def _insert_as_the_first_release(row: models.Model, **changes: Any) -> Any:
    """Insert a copy of ``row`` naming only the columns the first release knew,
    as its servers do; returns the new row's primary key."""
    model = type(row)
    first = _loader().project_state(FIRST_RELEASE).apps.get_model(model._meta.label)
    fields = [f for f in first._meta.concrete_fields if not f.primary_key]
    values = model.objects.filter(pk=row.pk).values(*[f.attname for f in fields]).get()
    values.update(changes)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = connection.ops.quote_name(model._meta.db_table)
    current = {f.name: f for f in model._meta.concrete_fields}
    params = [current[f.name].get_db_prep_save(values[f.attname], connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", params)  # noqa: S608 - the model's own names
    return model.objects.exclude(pk=row.pk).order_by("-pk").values_list("pk", flat=True).first()


def test_every_column_a_migration_adds_is_nullable_or_has_a_database_default() -> None:
    # An older server names only the columns it knows: one NOT NULL without a
    # database default would make every insert of it fail while the upgrade runs.
    offenders = [
        f"{key[0]}.{key[1]}: {op.model_name}.{op.name}"
        for key, migration in _loader().disk_migrations.items()
        if key[0] in APPS
        for op in migration.operations
        if isinstance(op, AddField) and not op.field.null and op.field.db_default is models.NOT_PROVIDED
    ]
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make", "changes"),
    [
        (FeedbackFactory, {}),
        (PersonFactory, {"username": "from-the-first-release"}),
        (lambda: ProductFactory(image_name="042.jpg"), {}),
        (lambda: services.image_upload(file=corpus.jpeg(), original_name="042.jpg"), {}),
    ],
    ids=["feedback", "person", "product", "image"],
)
def test_servers_of_the_first_release_still_insert_rows(make: Any, changes: dict[str, Any]) -> None:
    row = make()
    added = _added_columns(type(row))
    assert added, "nothing added since the first release: the test would prove nothing"

    pk = _insert_as_the_first_release(row, **changes)

    stored = type(row).objects.filter(pk=pk).values(*[f.attname for f in added]).get()
    assert stored == {f.attname: f.get_default() for f in added}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("model", "fields"),
    # One column a table: on SQLite, altering one rebuilds the table with the
    # others as the model declares them.
    [(Feedback, ["is_demo"]), (Person, ["is_demo"]), (Product, ["image_stem"]), (Image, ["interruptions"])],
    ids=["feedback", "person", "product", "image"],
)
def test_a_column_an_earlier_copy_of_a_migration_left_without_its_default_gets_it(
    model: type[models.Model], fields: list[str]
) -> None:
    def defaults() -> dict[str, Any]:
        with connection.cursor() as cursor:
            description = connection.introspection.get_table_description(cursor, model._meta.db_table)
        return {c.name: c.default for c in description if c.name in fields}

    with connection.schema_editor() as editor:
        for field in [f for f in model._meta.concrete_fields if f.name in fields]:
            without = field.clone()
            without.db_default = models.NOT_PROVIDED
            without.set_attributes_from_name(field.name)
            without.model = model
            editor.alter_field(model, field, without)
    assert set(defaults().values()) == {None}

    state = _loader().project_state()
    operation = RestoreDatabaseDefaults(model._meta.model_name, fields)
    with connection.schema_editor() as editor:
        operation.database_forwards(model._meta.app_label, editor, state, state)

    assert None not in defaults().values()
    assert sorted(defaults()) == sorted(fields)
    # Run again, it finds nothing to do (and changes nothing).
    with connection.schema_editor(collect_sql=True) as editor:
        operation.database_forwards(model._meta.app_label, editor, state, state)
    assert editor.collected_sql == []
