"""A supplier import on the fleet: PostgreSQL, Redis, S3 and a Celery worker.
The import only uploads; the worker processes; the import waits for the
worker before it builds the report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.fleet import ROOT, Fleet, Servers, running_servers
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("servers"), persistent_redis=True) as servers:
        yield servers


@pytest.fixture
def portal(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    # Files on this machine's disk (the worker and the import share it): what
    # is tested here is who processes and who waits, not where files live.
    deployment = Fleet(
        servers=servers,
        workdir=tmp_path,
        extra_env={"AWS_STORAGE_BUCKET_NAME": "", "AWS_PRIVATE_BUCKET_NAME": ""},
    )
    deployment.manage("migrate", "--no-input")
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    for i, path in enumerate(sorted((LAB / "descriptions").glob("*.txt"))):
        (folder / "descriptions" / path.name).write_bytes(path.read_bytes())
        (folder / "images" / f"{path.stem}.tiff").write_bytes(corpus.supplier_tiff((1500 + 30 * i, 1000)))
    return folder


def statuses(portal: Fleet) -> list[str]:
    script = (
        "import json; from uploads.models import Image;"
        "print(json.dumps(sorted(Image.objects.values_list('status', flat=True))))"
    )
    return json.loads(portal.manage("shell", "-c", script).stdout.strip().splitlines()[-1])


def import_supplier(portal: Fleet, delivery: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_supplier", str(delivery), "--no-email", *args],
        cwd=ROOT,
        env=portal.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_without_a_worker_the_import_processes_nothing_itself(portal: Fleet, delivery: Path) -> None:
    out, err = import_supplier(portal, delivery, "--wait", "3").communicate(timeout=180)
    assert "3 products created" in out, out + err
    assert "3 images imported, 0 already there, 0 failed, 3 still processing" in out
    assert statuses(portal) == ["pending"] * 3


def test_the_import_waits_for_the_worker_and_reports_every_thumbnail(
    portal: Fleet, delivery: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    running = import_supplier(portal, delivery, "--report", str(report))
    # The import has stored its images and is waiting when the worker starts.
    deadline = time.monotonic() + 120
    while statuses(portal) != ["pending"] * 3:
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the import did not store its images"
        time.sleep(1)
    assert running.poll() is None, "the import did not wait for the worker"
    portal.start_worker()

    out, err = running.communicate(timeout=240)

    assert running.returncode == 0, out + err
    assert "3 images imported, 0 already there, 0 failed, 0 files skipped." in out, out + err
    assert "still processing" not in err
    assert statuses(portal) == ["ready"] * 3
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(report.read_bytes())).pages)
    assert "name: Apple" in text
    assert "(no image)" not in text
