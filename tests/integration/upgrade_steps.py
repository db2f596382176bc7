"""Steps of tests/integration/test_upgrade.py, each run in a process of its own
whose settings point at the test's PostgreSQL (``DATABASE_URL``):

    python -m tests.integration.upgrade_steps walk|restore-defaults

Each prints one line of JSON for the test to read.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import django

django.setup()

from django.apps.registry import Apps  # noqa: E402 - models load after django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.loader import MigrationLoader  # noqa: E402

from catalog.models import Feedback, Person, Product  # noqa: E402
from uploads.models import Image, file_stem  # noqa: E402

APPS = ("catalog", "uploads")
# Every index and constraint a migration names (the others' names Django makes up).
NAMED = {
    *(i.name for m in (Feedback, Person, Product, Image) for i in m._meta.indexes),
    *(c.name for m in (Feedback, Person, Product, Image) for c in m._meta.constraints),
}
FIRST_RELEASE = [("catalog", "0001_initial"), ("uploads", "0001_initial")]
# The NOT NULL columns added after the first release.
ADDED = {
    Feedback: ["is_demo"],
    Person: ["is_demo"],
    Product: ["image_stem", "is_demo"],
    Image: ["name_stem", "is_demo", "interruptions", "holder"],
}


def _loader() -> MigrationLoader:
    return MigrationLoader(connection)


def _plan() -> list[tuple[str, str]]:
    """Every migration of the portal's apps, in the order ``migrate`` applies them."""
    graph = _loader().graph
    plan: list[tuple[str, str]] = []
    for leaf in sorted(key for key in graph.leaf_nodes() if key[0] in APPS):
        plan += [key for key in graph.forwards_plan(leaf) if key[0] in APPS and key not in plan]
    return plan


def _applied() -> set[tuple[str, str]]:
    return {key for key in _loader().applied_migrations if key[0] in APPS}


def _state() -> Apps:
    loader = _loader()
    return loader.project_state(list(loader.applied_migrations)).apps


def _write_rows(apps: Apps, tag: str) -> None:
    """A row in each table the schema has, through the models of that state
    (what a server of that release writes). The file names say whether that
    schema had the stem columns, which the migrations fill."""
    models = {m._meta.label: m for m in apps.get_models() if m._meta.app_label in APPS}
    image_model, product_model = models.get("uploads.Image"), models.get("catalog.Product")
    image = None
    if image_model is not None:
        known = "stem" if any(f.name == "name_stem" for f in image_model._meta.fields) else "nostem"
        image = image_model.objects.create(
            file=f"originals/{tag}.jpg", original_name=f"{known}/photo-{tag}.jpg", sha256="0" * 64,
            format="JPEG", width=4, height=3, bytes=10,
        )  # fmt: skip
    if "uploads.Rendition" in models and image is not None:
        models["uploads.Rendition"].objects.create(
            image=image,
            name="w320",
            format="webp",
            width=4,
            height=3,
            bytes=5,
            storage_key=f"renditions/{tag}.webp",
        )
    if "uploads.ReplacedObject" in models:
        models["uploads.ReplacedObject"].objects.create(
            key=f"renditions/{tag}-old.webp", image_id=1, replaced_at=dt.datetime.now(dt.UTC)
        )
    if product_model is not None:
        known = "stem" if any(f.name == "image_stem" for f in product_model._meta.fields) else "nostem"
        product_model.objects.create(name=f"Fruit {tag}", weight=3, image_name=f"{known}/fruit-{tag}.png")
    if "catalog.Person" in models:
        models["catalog.Person"].objects.create(name=f"Person {tag}", username=f"person-{tag}")
    if "catalog.Feedback" in models:
        models["catalog.Feedback"].objects.create(
            title=f"Review {tag}", name="Ada", date=dt.date(2024, 1, 2), text="Fine.", fingerprint=tag
        )


def _schema_differences(apps: Apps) -> list[str]:
    """How the tables differ from the models of the state: a column or a table
    too many or missing, an index or a check that should (not) be there."""
    models = [m for m in apps.get_models() if m._meta.app_label in APPS]
    expected = {m._meta.db_table: m for m in models}
    differences = []
    with connection.cursor() as cursor:
        tables = {t for t in connection.introspection.table_names(cursor) if t.split("_")[0] in APPS}
        differences += [f"table {t}" for t in tables ^ set(expected)]
        for table in tables & set(expected):
            meta = expected[table]._meta
            columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
            differences += [f"{table}.{c}" for c in columns ^ {f.column for f in meta.concrete_fields}]
            named = {i.name for i in meta.indexes} | {c.name for c in meta.constraints}
            found = set(connection.introspection.get_constraints(cursor, table))
            differences += [f"{table}: {n}" for n in named - found]
            differences += [f"{table}: {n}" for n in found - named if n in NAMED]
    return differences


def defaults() -> dict[str, Any]:
    """The database default of each column in ADDED (None: none)."""
    found = {}
    with connection.cursor() as cursor:
        for model, fields in ADDED.items():
            table = model._meta.db_table
            columns = {
                c.name: c.default for c in connection.introspection.get_table_description(cursor, table)
            }
            for name in fields:
                found[f"{table}.{name}"] = columns[name]
    return found


def walk() -> dict[str, Any]:
    """From the latest schema back one migration at a time to none, writing
    rows at every step, then forwards one at a time to the latest, again
    writing at every step: each migration reverses, and applies, on a database
    with rows in it, written by servers of every release."""
    plan = _plan()
    call_command("migrate", verbosity=0)
    steps, mismatches = [], []
    for n, (app, name) in enumerate(reversed(plan)):
        earlier = [key[1] for key in plan[: plan.index((app, name))] if key[0] == app]
        call_command("migrate", app, earlier[-1] if earlier else "zero", verbosity=0)
        steps.append(f"back from {app}.{name}")
        mismatches += [f"back from {app}.{name}: {d}" for d in _schema_differences(_state())]
        _write_rows(_state(), f"b{n:02d}")
    left = sorted(_applied())
    for n, (app, name) in enumerate(plan):
        call_command("migrate", app, name, verbosity=0)
        steps.append(f"forward to {app}.{name}")
        mismatches += [f"forward to {app}.{name}: {d}" for d in _schema_differences(_state())]
        _write_rows(_state(), f"f{n:02d}")
    stems = [
        *Image.objects.values_list("original_name", "name_stem"),
        *Product.objects.values_list("image_name", "image_stem"),
    ]
    # Rows written before the stem columns existed got their stems from the
    # migrations' fills; rows written through a later state's models (which
    # have no save() of their own) keep the empty stem they were written with.
    wrong = [
        (name, stem)
        for name, stem in stems
        if stem != (file_stem(name) if name.startswith("nostem/") else "")
    ]
    return {
        "steps": steps,
        "left_after_going_back": left,
        "schema_unlike_state": mismatches,
        "applied": sorted(_applied()) == sorted(plan),
        "filled": {
            "images": Image.objects.filter(original_name__startswith="nostem/").count(),
            "products": Product.objects.filter(image_name__startswith="nostem/").count(),
        },
        "wrong_stems": wrong,
        "defaults": defaults(),
        "first_release_wrote": first_release_writes(),
    }


def first_release_writes(tag: str = "old") -> dict[str, Any]:
    """A row in each table through the first release's models, as its servers
    write while an upgrade runs: what happened to each."""
    apps = MigrationLoader(connection).project_state(FIRST_RELEASE).apps
    made = {
        "image": lambda: apps.get_model("uploads", "Image").objects.create(
            file="originals/old.jpg",
            original_name="old.jpg",
            sha256="1" * 64,
            format="JPEG",
            width=1,
            height=1,
            bytes=1,
        ),
        "product": lambda: apps.get_model("catalog", "Product").objects.create(name="Old", weight=1),
        "person": lambda: apps.get_model("catalog", "Person").objects.create(
            name="Old", username=f"person-{tag}"
        ),
        "feedback": lambda: apps.get_model("catalog", "Feedback").objects.create(
            title="Old", date=dt.date(2024, 1, 1), fingerprint="old"
        ),
    }
    outcome = {}
    for name, make in made.items():
        try:
            make()
            outcome[name] = "written"
        except Exception as exc:  # noqa: BLE001 - reported to the test, which names it
            outcome[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return outcome


def restore_defaults() -> dict[str, Any]:
    """A database that earlier copies of the migrations left without the
    database defaults: the restoring migrations give them back."""
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        for model, fields in ADDED.items():
            for name in fields:
                cursor.execute(f"ALTER TABLE {model._meta.db_table} ALTER COLUMN {name} DROP DEFAULT")
    dropped = defaults()
    broken = first_release_writes("before")
    call_command("migrate", "catalog", "0007", verbosity=0)
    call_command("migrate", "uploads", "0008", verbosity=0)
    call_command("migrate", verbosity=0)
    return {
        "dropped": dropped,
        "before": broken,
        "restored": defaults(),
        "after": first_release_writes("after"),
    }


if __name__ == "__main__":
    step = {"walk": walk, "restore-defaults": restore_defaults}[sys.argv[1]]
    print(json.dumps(step(), default=str))
