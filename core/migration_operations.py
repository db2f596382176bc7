"""Migration operations for a portal upgraded while it serves (docs/deploy.md,
"Upgrading"): servers of an older release keep reading and writing the tables,
which a year of use has filled, until the migration is done.

On PostgreSQL a migration runs in one transaction, and every lock a statement
takes is held until it commits: a column added (ACCESS EXCLUSIVE on the table)
followed by a fill of a large table or an index build stops every reader for
all of it. So a migration that does more than instant changes to a large table
is not atomic (``atomic = False``) and is made of these operations, each of
which is short or takes no lock that stops the others, and each of which can
run again after an interrupted run (which records nothing):

- ``AddColumn``: ``AddField`` in a short transaction of its own, skipped when
  the column is there;
- ``fill_in_batches``: a data migration in batches of a transaction each;
- ``update_in_batches``: rows set to values computed from their own columns,
  in batches of a transaction each;
- ``StemsInOneForm``: file-name stems brought to Unicode's composed form,
  in batches;
- ``LongStemsApart``: stems cut to their column told apart by a digest of
  the whole, in batches;
- ``StemsTrimmed``: stems of names with whitespace around them trimmed, in
  batches;
- ``TextInOneForm``: text stored in Unicode's composed form, in batches, a
  value too long for its field composed left and named;
- ``AddIndexConcurrently``: the index built without blocking writes;
- ``AddCheckConstraint``: the constraint checked against existing rows
  without blocking reads or writes;
- ``AddUniqueConstraintConcurrently``: a unique constraint whose index is
  built without blocking writes;
- ``AddTrigramIndexConcurrently``: on PostgreSQL only, a trigram index for
  searches of a word inside a text, built without blocking writes.

Elsewhere than PostgreSQL (the embedded SQLite) they do what the plain
operation does.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from django.core.validators import MaxLengthValidator
from django.db import DatabaseError, NotSupportedError, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations import AddConstraint, AddField, AddIndex, RunPython
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

BATCH_SIZE = 1000


def _postgresql(connection: BaseDatabaseWrapper) -> bool:
    return connection.vendor == "postgresql"


def _columns(schema_editor: BaseDatabaseSchemaEditor, table: str) -> set[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def _constraints(schema_editor: BaseDatabaseSchemaEditor, table: str) -> set[str]:
    """The names of the table's constraints and indexes."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def _present(
    schema_editor: BaseDatabaseSchemaEditor,
    name: str,
    names: Callable[[BaseDatabaseSchemaEditor, str], set[str]],
    model: type[models.Model],
    *,
    collected: bool = False,
) -> bool:
    """Whether the table of ``model`` has ``name`` among ``names``; when the
    SQL is only collected (``sqlmigrate``), ``collected``, so that it shows
    what a first run does."""
    if schema_editor.collect_sql:
        return collected
    return name in names(schema_editor, model._meta.db_table)


def _outside_a_transaction(schema_editor: BaseDatabaseSchemaEditor, operation: Operation) -> None:
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(f"{operation.describe()}: the migration must say atomic = False.")


def _pg_index_valid(schema_editor: BaseDatabaseSchemaEditor, name: str) -> bool | None:
    """Whether the index ``name`` is valid; None when there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)",
            [name],
        )
        found = cursor.fetchone()
    return None if found is None else bool(found[0])


def _pg_index_wanted(schema_editor: BaseDatabaseSchemaEditor, name: str) -> bool:
    """Whether the index ``name`` is still to be built: it is not there, or a
    build cut short left it behind marked invalid (dropped here, concurrently)."""
    valid = _pg_index_valid(schema_editor, name)
    if valid is False:
        schema_editor.execute(
            f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}", params=None
        )
    return not valid


def column_defaults(schema_editor: BaseDatabaseSchemaEditor, table: str) -> dict[str, Any]:
    """Each column of ``table`` and its default in the database (None: none)."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return {c.name: c.default for c in connection.introspection.get_table_description(cursor, table)}


def _allowed_model(
    operation: Any, app_label: str, schema_editor: BaseDatabaseSchemaEditor, state: ProjectState
) -> Any:
    """The operation's model as ``state`` has it (a historical model), or
    None where the database router keeps the model off this database."""
    model = state.apps.get_model(app_label, operation.model_name)
    return model if operation.allow_migrate_model(schema_editor.connection.alias, model) else None


class _DatabaseOnly(Operation):
    """An operation on the database alone: the migration state stays as it is."""

    reversible = True
    reduces_to_sql = False
    model_name: str

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass


class RestoreDatabaseDefaults(_DatabaseOnly):
    """Give each of ``fields`` the database default (``db_default``) that the
    migration state declares, where the database lacks it: a database migrated
    by an earlier copy of the migration that added the column, before it
    declared one. Elsewhere it does nothing; it changes no state, and going
    back leaves the default in place."""

    def __init__(self, model_name: str, fields: Sequence[str]) -> None:
        self.model_name = model_name
        self.fields = list(fields)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None:
            return
        for name in self.fields:
            field = model._meta.get_field(name)
            # Asked afresh for each: on SQLite, altering one column rebuilds
            # the table, which gives every column its declared default.
            if not schema_editor.collect_sql and (
                column_defaults(schema_editor, model._meta.db_table)[field.column] is not None
            ):
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


class AddColumn(AddField):
    """``AddField`` for a migration that is not atomic: the column is added
    (and on SQLite the table rebuilt) in a transaction of its own, and a run
    after an interrupted one finds it there and goes on. Give the field a
    ``db_default``: on PostgreSQL 11 and later the column is then added without
    rewriting the table, and older servers can insert rows without it."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.name).column
        if _present(schema_editor, column, _columns, model):
            return
        with transaction.atomic(using=schema_editor.connection.alias):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.name).column
        if not _present(schema_editor, column, _columns, model, collected=True):
            return
        with transaction.atomic(using=schema_editor.connection.alias):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def fill_in_batches(
    model: type[models.Model],
    *,
    source: str,
    target: str,
    value: Callable[[Any], Any],
    rows: models.Q | None = None,
    batch_size: int | None = None,
) -> int:
    """Set ``target`` to ``value(source)`` on every row (of those ``rows``
    selects), ``batch_size`` rows at a time in primary-key order, each batch in
    a transaction of its own: a writer waits at most for one batch, never for
    the whole table. For a ``RunPython(..., atomic=False)`` of a migration that
    is not atomic. Returns the number of rows set (``batch_size`` defaults to
    ``BATCH_SIZE``)."""

    size = batch_size or BATCH_SIZE
    manager = model._default_manager
    connection = transaction.get_connection(manager.db)
    meta = model._meta
    quote = connection.ops.quote_name
    pk_column = meta.pk.column
    target_field = cast(models.Field, meta.get_field(target))
    update = "UPDATE {table} SET {target} = CASE {pk} {cases} END WHERE {pk} IN ({keys})"
    queryset = manager.filter(rows) if rows is not None else manager.all()
    done, last = 0, None
    while True:
        with transaction.atomic(using=manager.db):
            page = queryset.filter(pk__gt=last) if last is not None else queryset
            batch = list(page.order_by("pk").values_list("pk", source)[:size])
            if not batch:
                return done
            params: list[Any] = []
            for pk, current in batch:
                params += [pk, target_field.get_db_prep_save(value(current), connection)]
            params += [pk for pk, _ in batch]
            sql = update.format(
                table=quote(meta.db_table),
                target=quote(target_field.column),
                pk=quote(pk_column),
                cases=" ".join(["WHEN %s THEN %s"] * len(batch)),
                keys=", ".join(["%s"] * len(batch)),
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        done += len(batch)
        last = batch[-1][0]


def update_in_batches(
    model: type[models.Model],
    *,
    rows: models.Q,
    values: dict[str, Any],
    batch_size: int | None = None,
) -> int:
    """Set ``values`` (expressions of each row's own columns, such as ``F``)
    on the rows ``rows`` selects, ``batch_size`` rows at a time in
    primary-key order, each batch in a transaction of its own: a writer
    waits at most for one batch. ``rows`` should no longer select a row once
    it is set, so that a run after an interrupted one goes on where it
    stopped. For a ``RunPython(..., atomic=False)`` of a migration that is
    not atomic. Returns the number of rows set (``batch_size`` defaults to
    ``BATCH_SIZE``)."""
    size = batch_size or BATCH_SIZE
    manager = model._default_manager
    done, last = 0, None
    while True:
        with transaction.atomic(using=manager.db):
            page = manager.filter(rows)
            if last is not None:
                page = page.filter(pk__gt=last)
            keys = list(page.order_by("pk").values_list("pk", flat=True)[:size])
            if not keys:
                return done
            # Selected again as it is updated: a row changed meanwhile by a
            # server that set it already is left as that server set it.
            done += manager.filter(rows, pk__in=keys).update(**values)
        last = keys[-1]


def nfc_stem(name: str) -> str:
    """A file name's stem (no folder, no extension) in Unicode's composed
    form (NFC), cut to the 255 characters of the stems' columns (NFC writes
    a few characters as two or three): uploads.models.file_stem when the
    stored stems were brought to one form, kept here as it was then for the
    migrations that did it."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return unicodedata.normalize("NFC", base.rsplit(".", 1)[0] if "." in base else base)[:255]


class StemsInOneForm(RunPython):
    """Set each ``target`` stem to ``nfc_stem(source)`` where it may change,
    in batches (``fill_in_batches``): only stems with a character past
    printable ASCII are written; the others are read, not written. For a
    migration that is not atomic."""

    def __init__(self, model: str, *, source: str, target: str) -> None:
        app_label, model_name = model.split(".")

        def stems_in_one_form(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
            fill_in_batches(
                apps.get_model(app_label, model_name),
                source=source,
                target=target,
                value=nfc_stem,
                rows=models.Q(**{f"{target}__regex": r"[^ -~]"}),
            )

        super().__init__(stems_in_one_form, RunPython.noop, atomic=False, elidable=True)


def nfc_stem_apart(name: str) -> str:
    """``nfc_stem``, but a stem that NFC makes longer than its column is cut
    to its first 238 characters, a "~" and 16 hex digits of the SHA-256 of the
    whole stem: names that differ only past the cut are two stems.
    uploads.models.file_stem when catalog 0011 / uploads 0012 kept the stems
    so cut apart, kept here as it was then."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = unicodedata.normalize("NFC", base.rsplit(".", 1)[0] if "." in base else base)
    if len(stem) <= 255:
        return stem
    return f"{stem[:238]}~{hashlib.sha256(stem.encode()).hexdigest()[:16]}"


class LongStemsApart(RunPython):
    """Set each ``target`` stem of the column's full length (the only ones
    that may have been cut) to ``nfc_stem_apart(source)``, in batches
    (``fill_in_batches``). For a migration that is not atomic.

    Reversed, such a stem that ends in a digest is cut again (``nfc_stem``),
    as the release before keeps it: left with its digest, that release
    would look up a post of its name by the cut stem, miss the product and
    add a second one. A name whose stem is of the column's length and ends
    so by itself is its own stem either way."""

    def __init__(self, model: str, *, source: str, target: str) -> None:
        app_label, model_name = model.split(".")

        def long_stems_apart(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
            fill_in_batches(
                apps.get_model(app_label, model_name),
                source=source,
                target=target,
                value=nfc_stem_apart,
                # (?s): a line break is a character of the stem too (SQLite
                # matches with Python's re, whose "." skips it otherwise).
                rows=models.Q(**{f"{target}__regex": r"(?s)^.{255}$"}),
            )

        def long_stems_cut(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
            fill_in_batches(
                apps.get_model(app_label, model_name),
                source=source,
                target=target,
                value=nfc_stem,
                rows=models.Q(**{f"{target}__regex": r"(?s)^.{238}~[0-9a-f]{16}$"}),
            )

        super().__init__(long_stems_apart, long_stems_cut, atomic=False, elidable=True)


# Every character str.strip() trims, for a regex that finds the names it
# trims: spelled out, as a walk of all of Unicode costs a quarter of a second
# wherever the migrations are loaded.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trimmed_stem(name: str) -> str:
    """``nfc_stem_apart`` of the name trimmed of whitespace once its folder
    is gone (``" 006.png "`` → ``006``): uploads.models.file_stem when
    catalog 0012 / uploads 0013 trimmed the stored stems, kept here as it
    was then."""
    return nfc_stem_apart(name.replace("\\", "/").rsplit("/", 1)[-1].strip())


class StemsTrimmed(RunPython):
    """Set each ``target`` stem whose ``source`` name has whitespace at the
    start or end of its file name (after its folder) to ``trimmed_stem``,
    in batches (``fill_in_batches``): the only stems trimming may change.
    For a migration that is not atomic.

    Reversed, those stems are as the release before keeps them
    (``nfc_stem_apart``): left trimmed, that release would look up a post of
    ``images/ 006.png`` by `` 006``, miss the product and add a second one."""

    def __init__(self, model: str, *, source: str, target: str) -> None:
        app_label, model_name = model.split(".")
        # Spelled out, not \s: PostgreSQL's \s follows the database's locale,
        # and in C.UTF-8 misses a no-break space.
        space = f"[{WHITESPACE}]"
        rows = models.Q(**{f"{source}__regex": f"(^|[/\\\\]){space}|{space}$"})

        def fill(value: Callable[[str], str]) -> Callable[[Any, BaseDatabaseSchemaEditor], None]:
            def stems_filled(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
                model = apps.get_model(app_label, model_name)
                fill_in_batches(model, source=source, target=target, value=value, rows=rows)

            return stems_filled

        super().__init__(fill(trimmed_stem), fill(nfc_stem_apart), atomic=False, elidable=True)


# A character past printable ASCII, tabs and line breaks: only text holding
# one may have another Unicode form. Spelled with the characters themselves,
# which PostgreSQL's and Python's patterns read alike.
_PAST_ASCII: Final = "[^\t\n\r -~]"


def _length_limit(field: models.Field[Any, Any]) -> int | None:
    """The most characters a field takes: its column's, or its check's (a
    review's text)."""
    limits = [v.limit_value for v in field.validators if isinstance(v, MaxLengthValidator)]
    return min(limits) if limits else None


def _start(value: str) -> str:
    return f"{value[:40]!a}{'…' if len(value) > 40 else ''}"


def compose_in_batches(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    derived: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    batch_size: int | None = None,
) -> int:
    """Store the text of ``fields`` composed (NFC) on every row,
    ``batch_size`` rows at a time in primary-key order, each batch in a
    transaction of its own. A value that composed is longer than its field
    takes (NFC writes a few characters as two: U+0958 is U+0915 U+093C) is
    left as it is and named on the standard output, for staff to shorten.
    ``derived`` gives the values that follow from a row's text (a review's
    fingerprint), set where they differ. Returns the number of rows
    changed (``batch_size`` defaults to ``BATCH_SIZE``)."""
    size = batch_size or BATCH_SIZE
    manager = model._default_manager
    meta = model._meta
    pk = meta.pk.attname
    limits = {name: _length_limit(cast(models.Field, meta.get_field(name))) for name in fields}
    rows = functools.reduce(operator.or_, [models.Q(**{f"{name}__regex": _PAST_ASCII}) for name in fields])
    done, last = 0, None
    while True:
        with transaction.atomic(using=manager.db):
            page = manager.filter(rows)
            if last is not None:
                page = page.filter(pk__gt=last)
            batch = list(page.order_by("pk").values()[:size])
            if not batch:
                return done
            for row in batch:
                changes: dict[str, Any] = {}
                for name in fields:
                    value = row[name]
                    composed = unicodedata.normalize("NFC", value)
                    if composed == value:
                        continue
                    limit = limits[name]
                    if limit is not None and len(composed) > limit:
                        sys.stdout.write(
                            f"\n  {meta.object_name} {row[pk]}'s {name} {_start(value)} is "
                            f"{len(composed)} characters composed, over the {limit} it takes: "
                            "left as it is; shorten it."
                        )
                        continue
                    changes[name] = composed
                if derived is not None:
                    after = derived({**row, **changes})
                    changes.update({key: value for key, value in after.items() if row[key] != value})
                if changes:
                    done += manager.filter(pk=row[pk]).update(**changes)
        last = batch[-1][pk]


class TextInOneForm(RunPython):
    """Store the text of ``fields`` composed, as the models now store it
    (``core.validation.TextComposed``), in batches (``compose_in_batches``).
    Reversed, nothing changes: the release before reads composed text as
    it reads any. For a migration that is not atomic."""

    def __init__(
        self,
        model: str,
        *,
        fields: Sequence[str],
        derived: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        app_label, model_name = model.split(".")

        def text_in_one_form(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
            compose_in_batches(apps.get_model(app_label, model_name), fields=fields, derived=derived)

        super().__init__(text_in_one_form, RunPython.noop, atomic=False, elidable=True)


class AddIndexConcurrently(AddIndex):
    """``AddIndex`` that on PostgreSQL builds the index concurrently: writes go
    on while it is built, where a plain build blocks them for all of it. The
    migration must not be atomic. A run after an interrupted one keeps an index
    that was finished and builds again one that was not (PostgreSQL leaves it
    behind, marked invalid)."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None:
            return
        if not _postgresql(schema_editor.connection):
            if not _present(schema_editor, self.index.name, _constraints, model):
                super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        _outside_a_transaction(schema_editor, self)
        if schema_editor.collect_sql:
            schema_editor.add_index(model, self.index, concurrently=True)  # type: ignore[call-arg]
            return
        if _pg_index_wanted(schema_editor, self.index.name):
            schema_editor.add_index(model, self.index, concurrently=True)  # type: ignore[call-arg]

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, from_state)
        if model is None:
            return
        if not _postgresql(schema_editor.connection):
            if _present(schema_editor, self.index.name, _constraints, model, collected=True):
                super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        _outside_a_transaction(schema_editor, self)
        # DROP INDEX CONCURRENTLY IF EXISTS: nothing when it is gone already.
        schema_editor.remove_index(model, self.index, concurrently=True)  # type: ignore[call-arg]

    def describe(self) -> str:
        return f"{super().describe()} concurrently"


class _ConstraintDroppedIfThere(AddConstraint):
    """``AddConstraint`` whose going back drops the constraint, in a
    transaction of its own, only where it is there (an interrupted run may
    have added none)."""

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None:
            return
        if _present(schema_editor, self.constraint.name, _constraints, model, collected=True):
            with transaction.atomic(using=schema_editor.connection.alias):
                super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddCheckConstraint(_ConstraintDroppedIfThere):
    """``AddConstraint`` of a check that on PostgreSQL is added ``NOT VALID``
    (new rows are checked at once; the table is locked only for that instant)
    and then validated against the existing rows in a step that blocks neither
    reads nor writes. The migration must not be atomic; a run after an
    interrupted one validates the constraint it finds."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None:
            return
        present = _present(schema_editor, self.constraint.name, _constraints, model)
        if not _postgresql(schema_editor.connection):
            if not present:
                with transaction.atomic(using=schema_editor.connection.alias):
                    super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        _outside_a_transaction(schema_editor, self)
        quote = schema_editor.quote_name
        table, name = quote(model._meta.db_table), quote(self.constraint.name)
        if not present:
            schema_editor.execute(
                f"{self.constraint.create_sql(model, schema_editor)} NOT VALID", params=None
            )
        schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}", params=None)


class AddUniqueConstraintConcurrently(_ConstraintDroppedIfThere):
    """``AddConstraint`` of a unique constraint of columns whose index, on
    PostgreSQL, is built concurrently (writes go on meanwhile, where a plain
    build blocks them for all of it), then made the constraint, which locks
    the table only for that instant. The migration must not be atomic. A run
    after an interrupted one builds again an index a build cut short left
    invalid, and makes the constraint of one it finds built."""

    def __init__(self, model_name: str, constraint: models.UniqueConstraint) -> None:
        self.fields: tuple[str, ...] = tuple(constraint.fields)
        if not self.fields or constraint != models.UniqueConstraint(fields=self.fields, name=constraint.name):
            raise ValueError(
                f"{constraint.name}: only a unique constraint of plain columns is built concurrently."
            )
        super().__init__(model_name, constraint)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None:
            return
        if not _postgresql(schema_editor.connection):
            if not _present(schema_editor, self.constraint.name, _constraints, model):
                with transaction.atomic(using=schema_editor.connection.alias):
                    super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        _outside_a_transaction(schema_editor, self)
        quote = schema_editor.quote_name
        table, name = quote(model._meta.db_table), quote(self.constraint.name)
        if not schema_editor.collect_sql and _pg_constraint_present(
            schema_editor, model._meta.db_table, self.constraint.name
        ):
            return
        if schema_editor.collect_sql or _pg_index_wanted(schema_editor, self.constraint.name):
            columns = ", ".join(quote(model._meta.get_field(field).column) for field in self.fields)
            schema_editor.execute(
                f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({columns})", params=None
            )
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}", params=None
        )

    def describe(self) -> str:
        return f"{super().describe()} concurrently"


def _pg_constraint_present(schema_editor: BaseDatabaseSchemaEditor, table: str, name: str) -> bool:
    """Whether ``table`` has a constraint (not an index alone) named ``name``."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = to_regclass(%s)",
            [name, schema_editor.quote_name(table)],
        )
        return cursor.fetchone() is not None


# Django's ``icontains`` on PostgreSQL compares UPPER(column::text): the index
# is of that expression, so that the admin's search uses it as it is.
TRIGRAM_INDEX = "CREATE INDEX CONCURRENTLY {name} ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
TRIGRAM_REFUSED = (
    "{role} may not create the extension pg_trgm in database {database}, which the search index "
    "{name} needs. PostgreSQL 13 and later let the database's owner create it: make {role} the owner "
    '(ALTER DATABASE "{database}" OWNER TO "{role}"), or have a superuser run '
    '"CREATE EXTENSION IF NOT EXISTS pg_trgm;" in that database; then run migrate again.'
)


class AddTrigramIndexConcurrently(_DatabaseOnly):
    """On PostgreSQL, a trigram index (pg_trgm, GIN) of ``field`` built
    concurrently, which serves the admin's search of a word inside the text
    (``icontains``) where a plain index serves none. The extension is created
    first if it is missing (``CREATE EXTENSION IF NOT EXISTS pg_trgm``: trusted
    since PostgreSQL 13, so the database's owner may). The migration must not
    be atomic; a run after an interrupted one builds again an index left
    invalid. Elsewhere (SQLite) it does nothing; it changes no state, and
    going back drops the index and leaves the extension."""

    def __init__(self, model_name: str, name: str, field: str) -> None:
        self.model_name = model_name
        self.name = name
        self.field = field

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            self.__class__.__name__,
            [],
            {"model_name": self.model_name, "name": self.name, "field": self.field},
        )

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, to_state)
        if model is None or not _postgresql(schema_editor.connection):
            return
        _outside_a_transaction(schema_editor, self)
        self._create_extension(schema_editor)
        quote = schema_editor.quote_name
        if not schema_editor.collect_sql and not _pg_index_wanted(schema_editor, self.name):
            return
        column = model._meta.get_field(self.field).column
        schema_editor.execute(
            TRIGRAM_INDEX.format(
                name=quote(self.name), table=quote(model._meta.db_table), column=quote(column)
            ),
            params=None,
        )

    def _create_extension(self, schema_editor: BaseDatabaseSchemaEditor) -> None:
        connection = schema_editor.connection
        try:
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "42501":  # insufficient_privilege
                raise
            settings = connection.settings_dict
            raise DatabaseError(
                TRIGRAM_REFUSED.format(role=settings["USER"], database=settings["NAME"], name=self.name)
            ) from exc

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _allowed_model(self, app_label, schema_editor, from_state)
        if model is None or not _postgresql(schema_editor.connection):
            return
        _outside_a_transaction(schema_editor, self)
        schema_editor.execute(
            f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.name)}", params=None
        )

    def describe(self) -> str:
        return f"Create trigram index {self.name} on {self.model_name}.{self.field} concurrently (PostgreSQL)"

    @property
    def migration_name_fragment(self) -> str:
        return self.name.lower()
