"""import_feedback beyond the lab samples (tests/catalog/test_commands.py):
what it checks, what an interrupted run keeps, and what starting it costs."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from catalog import services
from catalog.models import Feedback
from core import locks

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def write_reviews(folder: Path, count: int) -> list[Path]:
    for i in range(count):
        (folder / f"{i:05d}.txt").write_text(f"Title {i}\nName\n2021-02-03\nText {i}\n")
    return sorted(folder.glob("*.txt"))


def test_a_text_over_5000_characters_is_rejected_with_the_limit(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("Title\nName\n2021-02-03\n" + "x" * 5001)
    (tmp_path / "ok.txt").write_text("Title\nName\n2021-02-03\n" + "x" * 5000)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as rejected:
        call_command("import_feedback", str(tmp_path), stdout=out, stderr=err)
    assert rejected.value.returncode == 2  # what landed stays; a cron job learns not all did
    assert out.getvalue().strip() == "1 reviews created, 0 updated, 0 skipped as duplicates, 1 rejected."
    assert (
        "rejected long.txt: text: Ensure this value has at most 5000 characters (it has 5001)."
        in err.getvalue()
    )


def test_a_huge_file_is_rejected_with_the_limit_without_being_read_whole(tmp_path: Path) -> None:
    # The longest valid review, in 4-byte characters, is taken.
    (tmp_path / "longest.txt").write_text(
        f"{'😀' * 100}\n{'😀' * 100}\n2021-02-03\n{'😀' * 5000}\n", encoding="utf-8"
    )
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as fh:  # a review, then a gigabyte of nothing (sparse: no disk used)
        fh.write(b"Title\nName\n2021-02-03\nText\n")
        fh.truncate(1024**3)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_feedback", str(tmp_path), stdout=io.StringIO(), stderr=err)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert "rejected huge.txt: larger than 65,536 bytes, the most a review file may take" in err.getvalue()
    assert grown_mb < 100
    assert Feedback.objects.get().name == "😀" * 100


def test_a_review_held_only_as_a_demo_one_is_imported_as_a_real_review(tmp_path: Path) -> None:
    """``seed_demo --remove`` deletes the demo reviews: a review skipped as
    one of them would be lost with them."""
    [path] = write_reviews(tmp_path, 1)
    demo = services.feedback_submit(
        title="Title 0", name="Name", date=dt.date(2021, 2, 3), text="Text 0", is_demo=True
    )
    assert services.feedback_import_files([path]).created == 1
    assert services.feedback_import_files([path]).skipped == 1
    real = Feedback.objects.get(is_demo=False)
    assert real.fingerprint == demo.fingerprint


def test_an_import_stopped_halfway_keeps_the_batches_it_finished_and_run_again_adds_the_rest(
    tmp_path: Path,
) -> None:
    """A batch a transaction, so that a review posted meanwhile waits for one
    batch, not the whole import: the batch under way goes, those before
    stay, and the next run skips them."""
    paths = write_reviews(tmp_path, 2 * services.IMPORT_BATCH + 10)
    batches: list[int] = []

    def interrupted(done: int) -> None:
        batches.append(done)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.feedback_import_files(paths, progress=interrupted)
    assert batches == [services.IMPORT_BATCH, services.IMPORT_BATCH]
    assert Feedback.objects.count() == 2 * services.IMPORT_BATCH

    summary = services.feedback_import_files(paths)
    assert (summary.created, summary.skipped) == (10, 2 * services.IMPORT_BATCH)
    assert Feedback.objects.values("fingerprint").distinct().count() == 2 * services.IMPORT_BATCH + 10


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a limit of SQLite's")
def test_an_import_of_reviews_past_sqlite_s_limit_on_values_adds_them_all(
    tmp_path: Path, sqlite_limit: Callable[[int, int], None]
) -> None:
    """SQLite takes a bounded number of values in one statement: lowered
    here to the 999 Django counts on, 1,100 files stand for a folder past
    it. A batch of 1,000 fingerprints was refused as "too many SQL variables"."""
    sqlite_limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    paths = write_reviews(tmp_path, 1100)

    summary = services.feedback_import_files(paths)

    assert (summary.created, summary.skipped, summary.rejected) == (1100, 0, [])
    assert Feedback.objects.count() == 1100


def _in_a_fresh_process(code: str) -> object:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django, json, sys\ndjango.setup()\n" + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_starting_a_command_imports_no_admin_or_api_module() -> None:
    """Django's start-up (every management command's) does not discover the
    admin: the admin modules import the API, the S3 client and much else."""
    loaded = _in_a_fresh_process(
        "print(json.dumps(sorted(m for m in ('catalog.admin', 'uploads.admin', 'uploads.api', 'catalog.api',"
        " 'rest_framework.serializers') if m in sys.modules)))"
    )
    assert loaded == []


def test_the_admin_checks_still_see_every_model_admin() -> None:
    registered = _in_a_fresh_process(
        "from django.contrib import admin\n"
        "from django.core import checks\n"
        "before = len(admin.site._registry)\n"
        "errors = checks.run_checks(tags=[checks.Tags.admin])\n"
        "print(json.dumps([before, sorted(m._meta.label for m in admin.site._registry), len(errors)]))"
    )
    assert registered[0] == 0  # type: ignore[index]
    assert {"catalog.Feedback", "catalog.Person", "catalog.Product", "uploads.Image"} <= set(
        registered[1]  # type: ignore[index]
    )
    assert registered[2] == 0  # type: ignore[index]


def test_an_interrupted_run_says_what_it_kept_and_exits_130_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the third batch: the two batches before it are kept, which
    the operator is told along with the rejected file of the first batch,
    as import_images tells its interruption."""
    monkeypatch.setattr(services, "IMPORT_BATCH", 3)
    write_reviews(tmp_path, 8)
    (tmp_path / "00001.txt").write_text("Title\nName\nnot a date\nText\n")
    read = services._review_from_file

    def read_then_stop(raw: bytes, *, status: str) -> Feedback:
        if b"Title 7" in raw:
            raise KeyboardInterrupt
        return read(raw, status=status)

    monkeypatch.setattr(services, "_review_from_file", read_then_stop)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as stopped:
        call_command("import_feedback", str(tmp_path), stdout=out, stderr=err)
    assert stopped.value.returncode == 130
    assert str(stopped.value) == (
        "Interrupted after 6 of 8 files: 5 reviews created, 0 updated, 0 skipped as duplicates, "
        "1 rejected. The files after them were not imported; run it again to add them (it skips "
        "those created)."
    )
    assert "rejected 00001.txt: " in err.getvalue()
    assert Feedback.objects.count() == 5


def test_a_run_the_database_fails_midway_says_what_its_finished_batches_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "IMPORT_BATCH", 2)
    write_reviews(tmp_path, 5)
    hold, taken = locks.hold, []

    def hold_then_lost(key: str, **kwargs: Any) -> None:
        taken.append(key)
        if len(taken) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        hold(key, **kwargs)

    monkeypatch.setattr(locks, "hold", hold_then_lost)
    err = io.StringIO()
    with pytest.raises(CommandError) as stopped:
        call_command("import_feedback", str(tmp_path), stdout=io.StringIO(), stderr=err)
    assert stopped.value.returncode == 1
    assert str(stopped.value).startswith("The database is unavailable: server closed the connection")
    assert (
        "Stopped after 2 of 5 files: 2 reviews created, 0 updated, 0 skipped as duplicates, "
        "0 rejected. Those are kept; the next run skips them."
    ) in err.getvalue()
    assert Feedback.objects.count() == 2
