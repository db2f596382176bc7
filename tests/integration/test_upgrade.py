"""Upgrading on PostgreSQL while the portal serves (docs/deploy.md, "Upgrading"):
every migration goes forwards and back on a database with rows in it, servers
of an older release go on reading and writing while a migration fills or
indexes a table, and a migration cut short finishes when run again.

Each step is a real process (``manage.py`` or tests/integration/upgrade_steps.py)
whose settings point at a database of its own on a throwaway PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.processes import portal_env
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent
# The unique constraint catalog.0019 makes of an index built concurrently.
UNIQUE_DIGEST = "catalog_feedback_form_digest_unique"
PAUSE = 4242  # the advisory lock a fill's UPDATE waits on, while the test holds it
# The columns of uploads_image in the first release, as its servers insert them.
FIRST_RELEASE_IMAGE = (
    "file", "original_name", "title", "alt", "preset", "sha256", "format", "width", "height", "frames",
    "bytes", "status", "error", "placeholder", "dominant_color", "attempts", "created_at", "updated_at",
)  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


class Portal:
    """A database of its own and the processes that migrate it."""

    def __init__(self, server: PostgresServer, name: str, var: Path) -> None:
        self.server = server
        self.name = name
        with server.connect(dbname="postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.env = portal_env(var, DATABASE_URL=server.url_for(name), PYTHONUNBUFFERED="1")

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return result

    def step(self, name: str) -> dict[str, Any]:
        out = self.run("-m", "tests.integration.upgrade_steps", name).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    def connect(self) -> psycopg.Connection[Any]:
        return self.server.connect(dbname=self.name)


def test_every_migration_goes_back_and_forwards_on_rows_written_by_every_release(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    walked = Portal(postgres, "walk", tmp_path).step("walk")

    assert walked["left_after_going_back"] == []
    assert walked["schema_unlike_state"] == []
    assert walked["applied"]
    assert walked["wrong_stems"] == []
    # Rows of both tables were written before their stem column existed.
    assert min(walked["filled"].values()) >= 1, walked["filled"]
    assert None not in walked["defaults"].values(), walked["defaults"]
    assert walked["first_release_wrote"] == dict.fromkeys(
        ("image", "product", "person", "feedback"), "written"
    )


def test_a_database_migrated_before_the_defaults_were_declared_gets_them(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    result = Portal(postgres, "restore", tmp_path).step("restore-defaults")

    # As earlier copies of the migrations left them: a server of the first
    # release could insert nothing.
    assert set(result["dropped"].values()) == {None}
    assert all(outcome.startswith("IntegrityError") for outcome in result["before"].values()), result[
        "before"
    ]
    assert None not in result["restored"].values(), result["restored"]
    assert set(result["after"].values()) == {"written"}, result["after"]


def _insert_as_the_first_release(conn: psycopg.Connection[Any], n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    values = (
        f"originals/{n}.jpg", f"supplier/{n:03d}.jpeg", "", "", "web", "0" * 64, "JPEG", 4, 3, 1, 10, "ready", "",
        "", "", 1, now, now,
    )  # fmt: skip
    conn.execute(
        sql.SQL("INSERT INTO uploads_image ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, FIRST_RELEASE_IMAGE)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        values,
    )


def _waiting_on_the_pause(conn: psycopg.Connection[Any], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the migration never reached the fill")


def test_older_servers_read_and_write_while_a_fill_runs_and_a_run_cut_short_finishes_when_run_again(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    portal = Portal(postgres, "fill", tmp_path)
    portal.run("manage.py", "migrate", "uploads", "0001", "--no-input")
    with portal.connect() as conn:
        for n in range(30):
            _insert_as_the_first_release(conn, n)
        # Every row the fill updates waits for the advisory lock the test holds.
        conn.execute(
            f"""
            CREATE FUNCTION pause_fill() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_lock({PAUSE}); PERFORM pg_advisory_unlock({PAUSE}); RETURN NEW; END $$;
            CREATE TRIGGER pause_fill BEFORE UPDATE ON uploads_image FOR EACH ROW EXECUTE FUNCTION pause_fill();
            """
        )
    with portal.connect() as holder, portal.connect() as old_server:
        holder.execute("SELECT pg_advisory_lock(%s)", (PAUSE,))
        migrate = portal.start("manage.py", "migrate", "uploads", "0002", "--no-input")
        try:
            filling = _waiting_on_the_pause(holder)

            # The new columns are in, the fill is under way: a server of the
            # release before reads and inserts without waiting for it.
            old_server.execute("SET lock_timeout = '3s'")
            assert old_server.execute("SELECT count(*) FROM uploads_image").fetchone() == (30,)
            _insert_as_the_first_release(old_server, 30)
            assert old_server.execute("SELECT count(*) FROM uploads_rendition").fetchone() == (0,)

            # The run is cut short: its connection is gone in the middle of the fill.
            holder.execute("SELECT pg_terminate_backend(%s)", (filling,))
            _, stderr = migrate.communicate(timeout=120)
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.communicate()
        assert migrate.returncode != 0, stderr
        holder.execute("SELECT pg_advisory_unlock(%s)", (PAUSE,))
        holder.execute("DROP TRIGGER pause_fill ON uploads_image")

    portal.run("manage.py", "migrate", "--no-input")

    with portal.connect() as conn:
        stems = dict(conn.execute("SELECT original_name, name_stem FROM uploads_image").fetchall())
        indexes = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname IN ('uploads_image_stem_idx', 'uploads_image_file_idx', 'uploads_rendition_key_idx')"
        ).fetchall()
    assert stems == {f"supplier/{n:03d}.jpeg": f"{n:03d}" for n in range(31)}
    assert sorted(indexes) == [
        ("uploads_image_file_idx", True),
        ("uploads_image_stem_idx", True),
        ("uploads_rendition_key_idx", True),
    ]


def test_an_index_build_cut_short_is_built_again_and_indexes_and_checks_go_in_without_blocking(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    portal = Portal(postgres, "indexes", tmp_path)
    shown = {
        name: portal.run("manage.py", "sqlmigrate", *name.split(".")).stdout
        for name in ("catalog.0007", "catalog.0019", "uploads.0005", "uploads.0002")
    }
    assert "CREATE INDEX CONCURRENTLY" in shown["catalog.0007"]
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in shown["catalog.0019"]
    assert "UNIQUE USING INDEX" in shown["catalog.0019"]
    assert shown["uploads.0002"].count("CREATE INDEX CONCURRENTLY") == 3
    assert "NOT VALID" in shown["uploads.0005"]
    assert "VALIDATE CONSTRAINT" in shown["uploads.0005"]

    portal.run("manage.py", "migrate", "--no-input")
    with portal.connect() as conn:
        # As a build killed half way leaves it: there, marked invalid, and the
        # migration that builds it not recorded.
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'catalog_feedback_date_idx'::regclass"
        )
        # A unique index so left, not yet made the constraint.
        conn.execute(f"ALTER TABLE catalog_feedback DROP CONSTRAINT {UNIQUE_DIGEST}")
        conn.execute(f"CREATE UNIQUE INDEX {UNIQUE_DIGEST} ON catalog_feedback (form_digest)")
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [UNIQUE_DIGEST]
        )
        conn.execute("DELETE FROM django_migrations WHERE app = 'catalog' AND name >= '0007'")

    portal.run("manage.py", "migrate", "--no-input")

    with portal.connect() as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'catalog_feedback_date_idx'::regclass"
        ).fetchone()
    assert valid == (True,)
    with portal.connect() as conn:
        made = conn.execute(
            "SELECT c.contype, i.indisvalid FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid"
            " WHERE c.conname = %s",
            [UNIQUE_DIGEST],
        ).fetchall()
    assert made == [("u", True)]
