"""Upgrading while the portal serves (docs/deploy.md, "Upgrading"): servers of
an older release go on writing while the new schema goes in."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddConstraint, AddField, AddIndex, CreateModel
from django.test.utils import CaptureQueriesContext

from catalog.checks import check_products_sharing_a_stem
from catalog.models import Feedback, Person, Product
from core import migration_operations
from core.migration_operations import (
    AddCheckConstraint,
    AddColumn,
    AddIndexConcurrently,
    AddTrigramIndexConcurrently,
    AddUniqueConstraintConcurrently,
    RestoreDatabaseDefaults,
)
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory
from tests.uploads import corpus
from uploads import services
from uploads.models import Image, file_stem

APPS = ("catalog", "uploads")
FIRST_RELEASE = [("catalog", "0001_initial"), ("uploads", "0001_initial")]


Migrated = list[tuple[str, str]]


@contextlib.contextmanager
def _migrated_back_to(before: Migrated) -> Iterator[None]:
    """The schema of the migrations ``before``, for the block; then the
    latest again."""
    try:
        MigrationExecutor(connection).migrate(before)
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _stored_by_the_release_of(
    before: Migrated, names: list[str], stem: Callable[[str], str] | None
) -> tuple[Any, Any]:
    """The Image and Product models of the schema ``before``, with an image
    and a product of each name stored as that release stores them: their
    stems as ``stem`` made them (None: a release that kept none)."""
    old = MigrationExecutor(connection).loader.project_state(before).apps
    OldImage, OldProduct = old.get_model("uploads", "Image"), old.get_model("catalog", "Product")
    for n, name in enumerate(names):
        image_stem = {} if stem is None else {"name_stem": stem(name)}
        product_stem = {} if stem is None else {"image_stem": stem(name)}
        OldImage.objects.create(
            file=f"originals/{n}.jpg", original_name=name, sha256="0" * 64, format="JPEG",
            width=1, height=1, bytes=1, **image_stem,
        )  # fmt: skip
        OldProduct.objects.create(name=f"Fruit {n}", weight=1, image_name=name, **product_stem)
    return OldImage, OldProduct


def _rows_of_the_release_of(after: Migrated) -> tuple[Any, Any]:
    """The images and the products, in the order stored, as the schema
    ``after`` has them."""
    new = MigrationExecutor(connection).loader.project_state(after).apps
    images = new.get_model("uploads", "Image").objects.order_by("pk")
    products = new.get_model("catalog", "Product").objects.order_by("pk")
    return images, products


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
    with CaptureQueriesContext(connection) as queries, connection.schema_editor() as editor:
        operation.database_forwards(model._meta.app_label, editor, state, state)
    assert not [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("ALTER", "CREATE", "DROP"))
    ]


def _ours() -> list[tuple[tuple[str, str], Any]]:
    return sorted((key, m) for key, m in _loader().disk_migrations.items() if key[0] in APPS)


def test_migrations_build_indexes_and_check_constraints_on_existing_tables_without_blocking() -> None:
    # On a table created in an earlier migration (a year of rows, servers
    # serving), an index, a check or a unique constraint is built without holding a lock for its
    # whole run, in a migration that is not atomic, and a column such a
    # migration adds can be added again after an interruption.
    offenders = []
    for key, migration in _ours():
        created = {op.name.lower() for op in migration.operations if isinstance(op, CreateModel)}
        for op in migration.operations:
            name = f"{key[0]}.{key[1]}: {op.describe()}"
            if getattr(op, "model_name", None) in created:
                continue
            if isinstance(op, AddIndex) and not isinstance(op, AddIndexConcurrently):
                offenders.append(f"{name}: use AddIndexConcurrently")
            elif (
                isinstance(op, AddConstraint)
                and isinstance(op.constraint, models.CheckConstraint)
                and not isinstance(op, AddCheckConstraint)
            ):
                offenders.append(f"{name}: use AddCheckConstraint")
            elif (
                isinstance(op, AddConstraint)
                and isinstance(op.constraint, models.UniqueConstraint)
                and not isinstance(op, AddUniqueConstraintConcurrently)
            ):
                offenders.append(f"{name}: use AddUniqueConstraintConcurrently")
            elif (
                isinstance(
                    op,
                    AddIndexConcurrently
                    | AddCheckConstraint
                    | AddUniqueConstraintConcurrently
                    | AddTrigramIndexConcurrently,
                )
                and migration.atomic
            ):
                offenders.append(f"{name}: the migration must say atomic = False")
            elif isinstance(op, AddField) and op.field.unique:
                offenders.append(f"{name}: add the column, then AddUniqueConstraintConcurrently")
            elif isinstance(op, AddField) and not isinstance(op, AddColumn) and not migration.atomic:
                offenders.append(f"{name}: use AddColumn in a migration that is not atomic")
    assert offenders == []


@pytest.mark.django_db(transaction=True)
def test_stems_cut_to_their_column_are_told_apart() -> None:
    # Kept cut to their 255 characters by the release before, the stems of
    # names that NFC makes longer ("क़", U+0958, is two characters in it).
    before = [
        ("catalog", "0010_product_stem_one_unicode_form"),
        ("uploads", "0011_image_stem_one_unicode_form"),
    ]
    after = [("catalog", "0011_product_long_stems_apart"), ("uploads", "0012_image_long_stems_apart")]
    names = [
        "\u0958" * 128 + "a.jpg",
        "\u0958" * 128 + "b.jpg",
        "crème.jpg",
        "x" * 255,
        "y" * 238 + "~0123456789abcdef",
        "a\n" + "\u0958" * 128 + ".jpg",  # the API takes a line break inside a name
    ]
    with _migrated_back_to(before):
        OldImage, OldProduct = _stored_by_the_release_of(before, names, migration_operations.nfc_stem)

        MigrationExecutor(connection).migrate(after)

        images, products = _rows_of_the_release_of(after)
        stems = [file_stem(name) for name in names]
        assert len(set(stems)) == 6
        assert list(images.values_list("name_stem", flat=True)) == stems
        assert list(products.values_list("image_stem", flat=True)) == stems

        # Reversed, the release before finds them by its own cut stems again.
        MigrationExecutor(connection).migrate(before)
        cut = [migration_operations.nfc_stem(name) for name in names]
        assert list(OldImage.objects.order_by("pk").values_list("name_stem", flat=True)) == cut
        assert list(OldProduct.objects.order_by("pk").values_list("image_stem", flat=True)) == cut


def test_the_stem_trim_s_whitespace_is_every_character_str_strip_trims() -> None:
    trimmed = "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace())
    assert trimmed == migration_operations.WHITESPACE


@pytest.mark.django_db(transaction=True)
def test_stems_kept_with_whitespace_around_their_names_are_trimmed_in_batches_and_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kept as the names came by the release before: an upload of " 006.png "
    # was the stem " 006", which no product's trimmed image_name matched.
    monkeypatch.setattr(migration_operations, "BATCH_SIZE", 2)
    before = [("catalog", "0011_product_long_stems_apart"), ("uploads", "0012_image_long_stems_apart")]
    after = [("catalog", "0012_product_stems_trimmed"), ("uploads", "0013_image_stems_trimmed")]
    changed = [" 006.png ", "images/ 007.png", "C:\\photos\\\u3000008.jpg", "\xa0009\xa0", "   ", " .png"]
    kept = ["010.png", "011 .png", "a\n b.png", "uploads/012.jpg"]
    names = changed + kept
    with _migrated_back_to(before):
        OldImage, OldProduct = _stored_by_the_release_of(before, names, migration_operations.nfc_stem_apart)
        untrimmed = [migration_operations.nfc_stem_apart(name) for name in names]
        assert untrimmed[: len(changed)] == [" 006", " 007", "\u3000008", "\xa0009\xa0", "   ", " "]

        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)

        images, products = _rows_of_the_release_of(after)
        stems = ["006", "007", "008", "009", "", "", "010", "011 ", "a\n b", "012"]
        assert [file_stem(name) for name in names] == stems
        assert list(images.values_list("name_stem", flat=True)) == stems
        assert list(products.values_list("image_stem", flat=True)) == stems
        # Only the six names with whitespace around them, two at a time.
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert sum('"uploads_image"' in sql for sql in updates) == 3
        assert sum('"catalog_product"' in sql for sql in updates) == 3

        # Reversed, the release before finds them by its own stems again.
        MigrationExecutor(connection).migrate(before)
        assert list(OldImage.objects.order_by("pk").values_list("name_stem", flat=True)) == untrimmed
        assert list(OldProduct.objects.order_by("pk").values_list("image_stem", flat=True)) == untrimmed


@pytest.mark.django_db(transaction=True)
def test_products_whose_stems_trimming_makes_one_are_named_as_a_pair() -> None:
    before = [("catalog", "0011_product_long_stems_apart"), ("uploads", "0012_image_long_stems_apart")]
    after = [("catalog", "0012_product_stems_trimmed"), ("uploads", "0013_image_stems_trimmed")]
    with _migrated_back_to(before):
        _stored_by_the_release_of(before, ["images/ 006.png", "006.png"], migration_operations.nfc_stem_apart)
        assert not check_products_sharing_a_stem(databases=["default"])

        MigrationExecutor(connection).migrate(after)

        [pair] = check_products_sharing_a_stem(databases=["default"])
        assert pair.msg.endswith("share the image file stem “006”.")


@pytest.mark.django_db(transaction=True)
def test_the_stem_fills_go_forwards_in_batches_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_operations, "BATCH_SIZE", 2)
    before = [("catalog", "0002_username_validator"), ("uploads", "0001_initial")]
    after = [("catalog", "0003_demo_rows_and_image_stem"), ("uploads", "0002_image_stem_demo_indexes")]
    names = ["uploads/042.jpg", "C:\\photos\\Kiwi.Gold.png", "noext", "", ".jpg"]
    with _migrated_back_to(before):
        _, OldProduct = _stored_by_the_release_of(before, names, None)

        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)

        images, products = _rows_of_the_release_of(after)
        stems = ["042", "Kiwi.Gold", "noext", "", ""]
        assert list(images.values_list("name_stem", flat=True)) == stems
        assert list(products.values_list("image_stem", flat=True)) == stems
        assert not images.filter(is_demo=True).exists()
        assert not products.filter(is_demo=True).exists()
        # Four named rows a table, two at a time: two batches, an UPDATE each.
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert sum('"uploads_image"' in sql for sql in updates) == 2
        assert sum('"catalog_product"' in sql for sql in updates) == 2

        MigrationExecutor(connection).migrate(before)

        with connection.cursor() as cursor:
            image_columns = {
                c.name for c in connection.introspection.get_table_description(cursor, "uploads_image")
            }
            product_columns = {
                c.name for c in connection.introspection.get_table_description(cursor, "catalog_product")
            }
        assert not {"name_stem", "is_demo"} & image_columns
        assert not {"image_stem", "is_demo"} & product_columns
        assert list(OldProduct.objects.order_by("pk").values_list("image_name", flat=True)) == names


@pytest.mark.django_db(transaction=True)
def test_stems_kept_in_another_unicode_form_are_brought_to_one() -> None:
    # Stems stored as the names came: "é" as one character (NFC) or, from a
    # Mac, as "e" and a combining accent (NFD), which no longer match.
    before = [
        ("catalog", "0009_feedback_search_and_sort_indexes"),
        ("uploads", "0010_image_search_and_sort_indexes"),
    ]
    after = [
        ("catalog", "0010_product_stem_one_unicode_form"),
        ("uploads", "0011_image_stem_one_unicode_form"),
    ]
    # And one NFC makes longer than its column ("क़", U+0958, is two characters in it).
    names = [unicodedata.normalize("NFD", "café.jpg"), "crème.jpg", "042.jpg", "\u0958" * 250 + ".jpg"]
    with _migrated_back_to(before):
        _stored_by_the_release_of(before, names, lambda name: name.rsplit(".", 1)[0])

        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)

        images, products = _rows_of_the_release_of(after)
        stems = ["café", "crème", "042", unicodedata.normalize("NFC", "\u0958" * 250)[:255]]
        assert list(images.values_list("name_stem", flat=True)) == stems
        assert list(products.values_list("image_stem", flat=True)) == stems
        # Of the three rows a table that can change, in one batch each.
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert sum('"uploads_image"' in sql for sql in updates) == 1
        assert sum('"catalog_product"' in sql for sql in updates) == 1


@pytest.mark.django_db(transaction=True)
def test_the_crops_point_is_filled_from_the_point_in_force_in_batches_and_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the release before cut the crops of a ready image around: staff's
    # point, else the estimate (it recut them whenever the point moved).
    monkeypatch.setattr(migration_operations, "BATCH_SIZE", 2)
    before = [("catalog", "0012_product_stems_trimmed"), ("uploads", "0013_image_stems_trimmed")]
    after = [("catalog", "0012_product_stems_trimmed"), ("uploads", "0014_image_crops_point")]
    points = {
        "staff.jpg": ("ready", (0.1, 0.8, None), (0.85, 0.2)),
        "estimate.jpg": ("ready", None, (0.85, 0.2)),
        "staff-radius.jpg": ("ready", (0.3, 0.4, 0.05), (0.5, 0.5)),
        "unestimated.jpg": ("ready", None, None),
        "pending.jpg": ("pending", (0.1, 0.8, None), None),
        "failed.jpg": ("failed", None, (0.5, 0.5)),
    }
    with _migrated_back_to(before):
        OldImage, _ = _stored_by_the_release_of(before, list(points), migration_operations.trimmed_stem)
        for name, (status, staff, estimate) in points.items():
            OldImage.objects.filter(original_name=name).update(
                status=status,
                **dict(zip(("focal_x", "focal_y", "focal_radius"), staff or (None,) * 3, strict=True)),
                **dict(zip(("focal_auto_x", "focal_auto_y"), estimate or (None,) * 2, strict=True)),
            )

        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)

        images, _ = _rows_of_the_release_of(after)
        crops = {
            row[0]: row[1:]
            for row in images.values_list("original_name", "crops_x", "crops_y", "crops_radius")
        }
        assert crops == {
            "staff.jpg": (0.1, 0.8, None),
            "estimate.jpg": (0.85, 0.2, None),
            "staff-radius.jpg": (0.3, 0.4, 0.05),
            "unestimated.jpg": (None, None, None),
            "pending.jpg": (None, None, None),  # its processing records them
            "failed.jpg": (None, None, None),
        }
        # None of them owes a recrop.
        assert not [image for image in Image.objects.all() if image.crops_outdated]
        # The three ready rows with a point in force, two at a time.
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert sum('"uploads_image"' in sql for sql in updates) == 2

        MigrationExecutor(connection).migrate(before)

        with connection.cursor() as cursor:
            columns = {
                c.name for c in connection.introspection.get_table_description(cursor, "uploads_image")
            }
        assert not {"crops_x", "crops_y", "crops_radius"} & columns
        assert OldImage.objects.count() == len(points)


@pytest.mark.django_db(transaction=True)
def test_usernames_are_stored_composed_and_two_that_become_one_are_left_apart_and_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = [("catalog", "0015_person_username_not_dots")]
    after = [("catalog", "0016_usernames_composed_text_controls")]
    usernames = [
        "ghopper",
        "jos\u00e9",  # composed already: keeps it
        "jose\u0301",  # reads as the one before
        "\u1100\u1161\u11ab",  # Hangul as its letters, which no one has composed
        "\u212bngstrom",  # the angstrom sign, which NFC writes as "Å"
        "A\u030angstrom",  # "Å" decomposed: the same once composed, after the one before
        "ne\u0301",  # decomposed, before the composed one
        "n\u00e9",
    ]
    with _migrated_back_to(before):
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldPerson = old.get_model("catalog", "Person")
        pks = [OldPerson.objects.create(name=f"Person {n}", username=u).pk for n, u in enumerate(usernames)]

        MigrationExecutor(connection).migrate(after)

        stored = dict(Person.objects.values_list("pk", "username"))
        assert [stored[pk] for pk in pks] == [
            "ghopper",
            "jos\u00e9",
            "jose\u0301",
            "\uac04",
            "\u00c5ngstrom",
            "A\u030angstrom",
            "ne\u0301",
            "n\u00e9",
        ]
        printed = capsys.readouterr().out
        assert f"Person {pks[2]}'s username 'jose\\u0301' reads as person {pks[1]}'s, 'jos\\xe9'" in printed
        assert f"Person {pks[5]}'s username 'A\\u030angstrom' reads as person {pks[4]}'s" in printed
        assert f"Person {pks[6]}'s username 'ne\\u0301' reads as person {pks[7]}'s" in printed
        assert printed.count("left as it is; change one of them.") == 3


@pytest.mark.django_db(transaction=True)
def test_a_username_longer_than_its_column_once_composed_is_left_as_it_is_and_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NFC writes U+0958 as two characters: 76 of them compose to 152, past
    the column's 150, which PostgreSQL refuses (SQLite stores any length)."""
    before = [("catalog", "0015_person_username_not_dots")]
    after = [("catalog", "0016_usernames_composed_text_controls")]
    too_long = "\u0958" * 76
    fits = "\u0958" * 75
    with _migrated_back_to(before):
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldPerson = old.get_model("catalog", "Person")
        long_pk = OldPerson.objects.create(name="Long", username=too_long).pk
        fits_pk = OldPerson.objects.create(name="Fits", username=fits).pk

        MigrationExecutor(connection).migrate(after)

        stored = dict(Person.objects.values_list("pk", "username"))
        assert stored[long_pk] == too_long
        assert stored[fits_pk] == unicodedata.normalize("NFC", fits)
        assert len(stored[fits_pk]) == 150
        printed = capsys.readouterr().out
        assert f"Person {long_pk}'s username {too_long!a} is 152 characters long composed" in printed
        assert printed.count("left as it is; change it.") == 1


@pytest.mark.django_db(transaction=True)
def test_text_is_stored_composed_in_batches_and_a_value_too_long_composed_is_left_and_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(migration_operations, "BATCH_SIZE", 2)
    before = [
        ("catalog", "0016_usernames_composed_text_controls"),
        ("uploads", "0016_image_text_direction_controls"),
    ]
    after = [("catalog", "0018_text_composed"), ("uploads", "0017_image_text_composed")]
    # NFC writes Devanagari "क़" (U+0958) as two characters.
    too_long = "\u0958" * 101
    with _migrated_back_to(before):
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldPerson, OldProduct = old.get_model("catalog", "Person"), old.get_model("catalog", "Product")
        OldFeedback, OldImage = old.get_model("catalog", "Feedback"), old.get_model("uploads", "Image")
        people = [
            OldPerson.objects.create(username=f"p{n}", name=name, department=department).pk
            for n, (name, department) in enumerate(
                [("Jose\u0301", "Cafe\u0301"), ("Ada", "Sales"), ("Zoe\u0308", "Caf\u00e9")]
            )
        ]
        products = [
            OldProduct.objects.create(name=name, weight=1, description=description).pk
            for name, description in [("Pin\u0303a", "Su\u0302re.\nRipe."), (too_long, "Ripe\u0301.")]
        ]
        review = OldFeedback.objects.create(
            title="Tre\u0300s bon",
            name="Jose\u0301",
            date="2024-05-01",
            text="De\u0301ja\u0300 vu.",
            fingerprint="x",
        )
        image = OldImage.objects.create(
            file="originals/0.jpg", original_name="pe\u0301che.jpg", sha256="0" * 64, format="JPEG",
            width=1, height=1, bytes=1, title="Pe\u0302che", alt="\u0958" * 151,
        )  # fmt: skip

        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)

        assert [Person.objects.values_list("name", "department").get(pk=pk) for pk in people] == [
            ("Jos\u00e9", "Caf\u00e9"),
            ("Ada", "Sales"),
            ("Zo\u00eb", "Caf\u00e9"),
        ]
        assert [Product.objects.values_list("name", "description").get(pk=pk) for pk in products] == [
            ("Pi\u00f1a", "S\u00fbre.\nRipe."),
            (too_long, "Rip\u00e9."),
        ]
        # The columns of the schema ``after``: those of later migrations are not there yet.
        stored = Feedback.objects.only("title", "name", "date", "text", "fingerprint").get(pk=review.pk)
        assert (stored.title, stored.name, stored.text) == (
            "Tr\u00e8s bon",
            "Jos\u00e9",
            "D\u00e9j\u00e0 vu.",
        )
        assert stored.fingerprint == stored.compute_fingerprint()
        kept = Image.objects.get(pk=image.pk)
        # The file's name is kept as it came.
        assert (kept.title, kept.alt, kept.original_name) == ("P\u00eache", "\u0958" * 151, "pe\u0301che.jpg")
        printed = capsys.readouterr().out
        assert f"Product {products[1]}'s name '\\u0958\\u0958" in printed
        assert "is 202 characters composed, over the 200 it takes: left as it is; shorten it." in printed
        assert f"Image {image.pk}'s alt '\\u0958" in printed
        assert printed.count("left as it is; shorten it.") == 2
        # The people with text past ASCII, two at a time, and only those changed written.
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert sum('"catalog_person"' in sql for sql in updates) == 2
        assert sum('"catalog_product"' in sql for sql in updates) == 2
        assert sum('"catalog_feedback"' in sql for sql in updates) == 1
        assert sum('"uploads_image"' in sql for sql in updates) == 1
