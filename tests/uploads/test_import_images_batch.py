"""import_images with no broker processes several images at once, each in
a sandboxed child of its own, and keeps every guarantee of one at a time.

The command runs as a user runs it (its own process, the embedded SQLite in
WAL mode, media on disk), through tests/uploads/batch_probe.py, which counts
the decodes under way at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image as PILImage

from tests.processes import portal_env
from tests.uploads import corpus

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "batch_probe.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var = tmp_path_factory.mktemp("template-var")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=portal_env(var),
        check=True,
        timeout=300,
    )
    return var / "db.sqlite3"


@pytest.fixture
def var_dir(tmp_path: Path, migrated: Path) -> Path:
    var = tmp_path / "var"
    var.mkdir()
    shutil.copy(migrated, var / "db.sqlite3")
    return var


def photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        (folder / f"photo-{i}.jpg").write_bytes(corpus.jpeg(quality=80 + i))
    return folder


def rows(var_dir: Path) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(var_dir / "db.sqlite3") as db:
        return db.execute(
            "SELECT original_name, status, error,"
            " (SELECT COUNT(*) FROM uploads_rendition r WHERE r.image_id = i.id)"
            " FROM uploads_image i ORDER BY original_name"
        ).fetchall()


def probed(report: Path, *args: str) -> list[str]:
    return [sys.executable, str(PROBE), str(report), "import_images", *args]


def run_probed(var_dir: Path, report: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        probed(report, *args),
        cwd=ROOT,
        env=portal_env(var_dir, **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_with_two_jobs_two_images_are_decoded_at_once(tmp_path: Path, var_dir: Path) -> None:
    folder = photos(tmp_path / "in", 4)
    report = tmp_path / "probe.json"
    done = run_probed(var_dir, report, str(folder), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4 images imported, 0 already there, 0 files skipped."
    assert json.loads(report.read_text()) == {"peak": 2, "calls": 4}
    assert [(name, status) for name, status, _, _ in rows(var_dir)] == [
        (f"photo-{i}.jpg", "ready") for i in range(4)
    ]


def test_with_one_job_images_are_decoded_one_at_a_time(tmp_path: Path, var_dir: Path) -> None:
    folder = photos(tmp_path / "in", 2)
    report = tmp_path / "probe.json"
    done = run_probed(var_dir, report, str(folder), "--jobs", "1", BATCH_PROBE_WAIT_SECONDS="1")
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["peak"] == 1


def test_a_poison_image_among_good_ones_fails_alone(tmp_path: Path, var_dir: Path) -> None:
    folder = photos(tmp_path / "in", 3)
    # 64 MB of pixels from a 56 kB file, over a 48 MB ceiling.
    (folder / "bomb.png").write_bytes(corpus.png(PILImage.new("RGB", (4000, 4000), (200, 100, 50))))
    report = tmp_path / "probe.json"
    done = run_probed(var_dir, report, str(folder), "--jobs", "2", PORTAL_IMAGE_MEMORY_LIMIT_MB="48")
    assert done.returncode == 2, done.stderr  # the others landed; the exit code says one did not
    assert done.stdout.strip() == "4 images imported, 0 already there, 0 files skipped, 1 failed."
    assert "failed bomb.png: Processing ran out of memory (limit 48 MB)." in done.stderr
    assert json.loads(report.read_text())["peak"] == 2
    found = rows(var_dir)
    assert found[0] == ("bomb.png", "failed", "Processing ran out of memory (limit 48 MB).", 0)
    assert [(name, status) for name, status, _, renditions in found[1:] if renditions] == [
        (f"photo-{i}.jpg", "ready") for i in range(3)
    ]
    originals = [p for p in (var_dir / "private").rglob("*") if p.is_file()]
    assert len(originals) == 4  # the poison's original is kept for staff to see


def test_ctrl_c_leaves_every_image_whole_and_the_sweep_finishes_them(tmp_path: Path, var_dir: Path) -> None:
    # Enough photos that the Ctrl-C lands with many still to go, however
    # late a loaded machine delivers it.
    folder = photos(tmp_path / "in", 60)
    report = tmp_path / "probe.json"
    command = subprocess.Popen(
        probed(report, str(folder), "--jobs", "2"),
        cwd=ROOT,
        env=portal_env(var_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    both = Path(f"{report}.both")
    deadline = time.monotonic() + 300
    while not both.exists() and command.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert both.exists(), "two decodes never ran at once"
    family = psutil.Process(command.pid).children(recursive=True)
    os.killpg(command.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
    _, err = command.communicate(timeout=120)
    assert command.returncode == 130, err
    assert "Interrupted:" in err
    assert "the others are processed by the next sweep." in err
    psutil.wait_procs(family, timeout=10)
    assert [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    found = rows(var_dir)
    assert found  # at least the two under way were stored
    for name, status, error, renditions in found:
        # Renditions exist only for a finished image; nothing is half-made.
        assert (status == "ready") == (renditions > 0), (name, status, renditions)
        assert status in ("pending", "processing", "ready"), (name, status, error)
    swept = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", "from uploads import embedded; print(embedded.sweep())"],
        cwd=ROOT,
        env=portal_env(var_dir, PORTAL_IMAGE_STUCK_AFTER_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert swept.stdout.strip()
    assert {status for _, status, _, _ in rows(var_dir)} == {"ready"}
