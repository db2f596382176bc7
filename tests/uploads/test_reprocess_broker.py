"""import_images and reprocess_images run as a user runs them, against a broker that is away."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.processes import manage_py, portal_env
from tests.servers import free_port
from tests.uploads import corpus
from tests.uploads.test_import_images_batch import migrated, rows, var_dir

__all__ = ["migrated", "var_dir"]  # fixtures

pytestmark = pytest.mark.slow


def manage(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return manage_py(*args, env=portal_env(var_dir, **env), timeout=300)


def test_images_the_broker_did_not_take_are_not_counted_as_queued(tmp_path: Path, var_dir: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(corpus.jpeg())
    (folder / "b.png").write_bytes(corpus.png())
    assert manage(var_dir, "import_images", str(folder)).returncode == 0

    # A broker address nobody listens on: connections are refused.
    done = manage(var_dir, "reprocess_images", CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert done.returncode == 2, done.stderr
    assert (
        done.stdout.strip() == "0 images queued for processing, 2 left pending: the broker did not take them."
    )
    assert "2 image(s) not queued, the broker is unavailable; the sweep queues them" in done.stderr
    assert [status for _, status, _, _ in rows(var_dir)] == ["pending", "pending"]


def test_images_imported_while_the_broker_is_away_are_not_counted_as_queued(
    tmp_path: Path, var_dir: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(corpus.jpeg())
    (folder / "b.png").write_bytes(corpus.png())

    done = manage(
        var_dir, "import_images", str(folder), CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"
    )

    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == (
        "2 images imported, 0 already there, 0 files skipped, 2 left pending: the broker did not take them."
    )
    assert "2 image(s) not queued, the broker is unavailable; the sweep queues them" in done.stderr
    assert [status for _, status, _, _ in rows(var_dir)] == ["pending", "pending"]
