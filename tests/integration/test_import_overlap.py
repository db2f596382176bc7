"""Two runs of the same import at once (a cron job that overlaps the last
one) on PostgreSQL: both succeed, and together they add what one run adds.

Each run is a real ``manage.py`` process. Both start Django and connect,
then wait at a barrier, so that they read the folder at the same moment:
without the locks of core.locks both found the rows missing and both added
them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.processes import portal_env
from tests.servers import PostgresServer
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = "portal_migrated"

# Set up and connected, each run says it is ready and waits for the word.
# OVERLAP_SLOW_INSERT delays each new image's, product's or person's INSERT by that many
# seconds, as a busy database would: the step between the check and the
# insert is otherwise too short for two runs to meet in it every time.
AT_THE_BARRIER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import django
    django.setup()
    from django.db import connection
    connection.ensure_connection()
    if os.environ.get("OVERLAP_SLOW_INSERT"):
        from catalog.models import Person, Product
        from uploads.models import Image
        def slowed(save):
            def slow_save(self, *args, **kwargs):
                if self._state.adding:
                    time.sleep(float(os.environ["OVERLAP_SLOW_INSERT"]))
                return save(self, *args, **kwargs)
            return slow_save
        Image.save = slowed(Image.save)
        Product.save = slowed(Product.save)
        Person.save = slowed(Person.save)
    Path(os.environ["OVERLAP_READY"]).touch()
    while not Path(os.environ["OVERLAP_GO"]).exists():
        time.sleep(0.002)
    from django.core.management import execute_from_command_line
    execute_from_command_line(["manage.py", *sys.argv[1:]])
    """
)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        _create(server, TEMPLATE)
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=_env(server.url_for(TEMPLATE), tmp_path_factory.mktemp("migrate")),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr
        yield server


def _create(server: PostgresServer, dbname: str, template: str | None = None) -> None:
    with server.connect(dbname="postgres") as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)


def _env(database_url: str, var: Path) -> dict[str, str]:
    return portal_env(var, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")


class Overlap:
    """A fresh migrated database and var folder; runs commands on them two at once."""

    def __init__(self, server: PostgresServer, dbname: str, var: Path) -> None:
        _create(server, dbname, TEMPLATE)
        self.server = server
        self.dbname = dbname
        self.var = var
        self.env = _env(server.url_for(dbname), var)

    def twice_at_once(self, *args: str, **env: str) -> list[subprocess.CompletedProcess[str]]:
        go = self.var / "go"
        go.unlink(missing_ok=True)
        runs = []
        for n in range(2):
            ready = self.var / f"ready-{n}"
            ready.unlink(missing_ok=True)
            env = {**self.env, **env, "OVERLAP_READY": str(ready), "OVERLAP_GO": str(go)}
            runs.append(
                (
                    ready,
                    subprocess.Popen(
                        [sys.executable, "-c", AT_THE_BARRIER, *args],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in runs):
            assert time.monotonic() < deadline, "the runs never reached the barrier"
            assert all(proc.poll() is None for _, proc in runs), [proc.communicate() for _, proc in runs]
            time.sleep(0.01)
        go.touch()
        results = []
        for _, proc in runs:
            stdout, stderr = proc.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
        for result in results:
            assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        return results

    def count(self, query: str) -> int:
        with self.server.connect(dbname=self.dbname) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def _numbers(pattern: str, results: list[subprocess.CompletedProcess[str]]) -> list[tuple[int, ...]]:
    found = []
    for result in results:
        match = re.search(pattern, result.stdout)
        assert match, result.stdout
        found.append(tuple(int(n) for n in match.groups()))
    return found


def test_two_feedback_imports_at_once_add_each_review_once(postgres: PostgresServer, tmp_path: Path) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir()
    for i in range(3000):
        (folder / f"{i:05d}.txt").write_text(f"Title {i}\nName {i}\n2021-02-03\nText {i}\n")
    overlap = Overlap(postgres, "feedback", tmp_path)

    results = overlap.twice_at_once("import_feedback", str(folder))

    assert overlap.count("SELECT count(*) FROM catalog_feedback") == 3000
    assert overlap.count("SELECT count(DISTINCT fingerprint) FROM catalog_feedback") == 3000
    reports = _numbers(
        r"(\d+) reviews created, (\d+) updated, (\d+) skipped as duplicates, (\d+) rejected", results
    )
    # The runs take turns a batch at a time: each skips what the other added.
    assert [sum(column) for column in zip(*reports, strict=True)] == [3000, 0, 3000, 0]


def test_two_image_imports_at_once_add_each_image_once(postgres: PostgresServer, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:03d}.png").write_bytes(corpus.png(corpus.solid(color=(i * 6, 100, 200 - i * 4))))
    overlap = Overlap(postgres, "images", tmp_path)

    results = overlap.twice_at_once("import_images", str(folder), "--jobs", "2", OVERLAP_SLOW_INSERT="0.05")

    assert overlap.count("SELECT count(*) FROM uploads_image") == 40
    assert overlap.count("SELECT count(DISTINCT sha256) FROM uploads_image") == 40
    reports = _numbers(r"(\d+) images imported, (\d+) already there", results)
    assert sum(imported for imported, _ in reports) == 40
    assert all(imported + there == 40 for imported, there in reports)


def test_two_supplier_imports_at_once_add_each_product_once(postgres: PostgresServer, tmp_path: Path) -> None:
    """Descriptions only: a run that processes a photo the other found there
    falls behind it, and the two would no longer meet."""
    delivery = tmp_path / "delivery"
    (delivery / "descriptions").mkdir(parents=True)
    for i in range(50):
        (delivery / "descriptions" / f"{i:03d}.txt").write_text(f"Fruit {i}\n{100 + i} lbs\nFresh.\n")
    overlap = Overlap(postgres, "supplier", tmp_path)

    results = overlap.twice_at_once("import_supplier", str(delivery), "--no-email", OVERLAP_SLOW_INSERT="0.1")

    assert overlap.count("SELECT count(*) FROM catalog_product") == 50
    assert overlap.count("SELECT count(DISTINCT image_stem) FROM catalog_product") == 50
    reports = _numbers(r"(\d+) products created, (\d+) updated, (\d+) unchanged", results)
    # Each description created its product in one run and found it unchanged in the other.
    assert sum(created for created, _, _ in reports) == 50
    assert all(updated == 0 and created + unchanged == 50 for created, updated, unchanged in reports)


def test_two_people_imports_at_once_add_each_person_once(postgres: PostgresServer, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    rows = [f"Person {i},user{i:03d},802-867-{i:04d},Sales,Clerk" for i in range(30)]
    people.write_text("name,username,phone,department,role\n" + "\n".join(rows) + "\n")
    overlap = Overlap(postgres, "people", tmp_path)

    results = overlap.twice_at_once("import_people", str(people), OVERLAP_SLOW_INSERT="0.1")

    assert overlap.count("SELECT count(*) FROM catalog_person") == 30
    reports = _numbers(r"(\d+) people created, (\d+) updated, (\d+) skipped as duplicates", results)
    # Each row created its person in one run and found it as the row gives it in the other.
    assert sum(created for created, _, _ in reports) == 30
    assert all(updated == 0 and created + skipped == 30 for created, updated, skipped in reports)
