"""The embedded set-up heals itself: ``make run``'s server (runserver, no
broker, SQLite and files under a var folder) killed while it processes an
upload finishes the job on its next start, with no one doing anything, and
sweeps orphaned files on the same schedule."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from PIL import Image as PILImage

from tests.processes import portal_env
from tests.servers import free_port
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent
# Everything that would point the portal at servers: embedded means none.


class Embedded:
    """``manage.py runserver --noreload`` (what ``make run`` serves with) on a var folder."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = portal_env(
            var,
            # Far beyond the test: work the killed server held is taken over
            # because its holder is gone, not because it waited long enough.
            PORTAL_IMAGE_STUCK_AFTER_SECONDS="3600",
            PORTAL_SWEEP_INTERVAL_SECONDS="1",
            PORTAL_IMAGE_ORPHAN_GRACE_SECONDS="60",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.server: subprocess.Popen[bytes] | None = None
        self.token = ""

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def setup(self) -> None:
        self.manage("migrate", "--no-input")
        script = (
            "from django.contrib.auth.models import User;"
            "from portal.tokens import token_create;"
            "u = User.objects.create_superuser('admin', 'admin@example.com', 'embedded-pass-123');"
            "print(token_create(user=u).key)"
        )
        self.token = self.manage("shell", "-c", script).strip().splitlines()[-1]

    def start(self) -> None:
        log = (self.var / "runserver.log").open("ab")
        self.server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._answers, "the server to answer", timeout=60, log=self.log)

    def _answers(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.url}/api/v1/", timeout=2).status_code == 200
        assert self.server is not None
        assert self.server.poll() is None, self.log()
        return False

    def kill(self) -> None:
        """SIGKILL the server's whole process group, as a power cut would."""
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(10)

    def log(self) -> str:
        path = self.var / "runserver.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def row(self, image_id: int) -> tuple[str, int, int]:
        """(status, attempts, interruptions) straight from the SQLite file."""
        with contextlib.closing(sqlite3.connect(self.var / "db.sqlite3", timeout=20)) as db:
            row = db.execute(
                "SELECT status, attempts, interruptions FROM uploads_image WHERE id = ?", [image_id]
            ).fetchone()
        assert row is not None
        return row[0], row[1], row[2]


def wait_until(probe: Callable[[], bool], what: str, *, timeout: float, log: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{log()}")
        time.sleep(0.05)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Embedded]:
    embedded = Embedded(tmp_path / "var")
    embedded.setup()
    try:
        yield embedded
    finally:
        embedded.kill()


def test_an_upload_interrupted_by_a_killed_server_is_finished_on_the_next_start(portal: Embedded) -> None:
    portal.start()
    data = corpus.png(PILImage.new("RGB", (7000, 7000), (30, 90, 160)))  # seconds of work
    response = portal.api("POST", "/api/v1/images/", files={"file": ("big.png", data)})
    assert response.status_code == 201, response.text
    image_id = response.json()["id"]
    # Answered once stored: processing goes on behind the response.
    assert response.json()["status"] in {"pending", "processing"}
    assert response.json()["renditions"] == []

    wait_until(lambda: portal.row(image_id)[0] == "processing", "processing to start", timeout=30)
    portal.kill()
    assert portal.row(image_id) == ("processing", 1, 0)

    orphan = portal.var / "media" / "renditions" / "ff" / "orphan.webp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind by a killed run")
    an_hour_ago = time.time() - 3600
    os.utime(orphan, (an_hour_ago, an_hour_ago))

    portal.start()  # no operator action from here on
    wait_until(
        lambda: portal.row(image_id)[0] == "ready", "the image to be ready", timeout=90, log=portal.log
    )
    # Tried again, but not counted against the image: the server, not the
    # image, was what died.
    assert portal.row(image_id) == ("ready", 2, 0)
    image = portal.api("GET", f"/api/v1/images/{image_id}/").json()
    assert len(image["renditions"]) == 10
    for rendition in image["renditions"]:
        assert requests.get(urljoin(portal.url, rendition["url"]), timeout=10).status_code == 200
    wait_until(lambda: not orphan.exists(), "the orphan to be swept", timeout=30, log=portal.log)


# An upload of bytes already stored, held (by a pipe from the test) after
# storing its original and before committing its row; processing is left out.
HELD_UPLOAD = """
import sys
from tests.uploads import corpus
from uploads import dispatch, services
dispatch.start = lambda **kwargs: True
store = services._image_store
def store_and_wait(image, data, key):
    store(image, data, key)
    print("stored", flush=True)
    sys.stdin.readline()
services._image_store = store_and_wait
image = services.image_upload(file=corpus.png(), original_name="again.png")
print(image.pk, image.file.name, flush=True)
"""


def _waits_for_a_file_lock(pid: int) -> bool:
    """Whether the process waits in the kernel for an ``flock`` (a line of
    /proc/locks that begins with "->")."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="the kernel's lock table is read from /proc")
def test_a_deletion_waits_for_an_upload_of_the_same_bytes_in_another_process(portal: Embedded) -> None:
    """The last image of some bytes is deleted (its original with it) while
    another process uploads the same bytes: stored (found there) and about
    to commit its row. The deletion waits for that row, then keeps the
    original it points at."""
    first_id, key = portal.manage(
        "shell",
        "-c",
        "from tests.uploads import corpus; from uploads import services;"
        "image = services.image_upload(file=corpus.png(), original_name='first.png');"
        "print(image.pk, image.file.name)",
    ).split()[-2:]
    original = portal.var / "private" / key
    assert original.exists()

    upload = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", HELD_UPLOAD],
        cwd=ROOT,
        env=portal.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert upload.stdout is not None
        assert upload.stdin is not None
        assert upload.stdout.readline() == "stored\n"
        deletion = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                f"from uploads.models import Image; Image.objects.get(pk={first_id}).delete()",
            ],
            cwd=ROOT,
            env=portal.env,
        )
        # Done, or waiting for the upload's lock: either way past its check.
        wait_until(
            lambda: deletion.poll() is not None or _waits_for_a_file_lock(deletion.pid),
            "the deletion to end or wait",
            timeout=60,
        )
        upload.stdin.write("go\n")
        upload.stdin.flush()
        second_id, second_key = upload.stdout.readline().split()
        assert upload.wait(60) == 0
        assert deletion.wait(60) == 0
    finally:
        upload.kill()

    assert second_key == key
    with contextlib.closing(sqlite3.connect(portal.var / "db.sqlite3")) as db:
        assert db.execute("SELECT id FROM uploads_image WHERE file = ?", [key]).fetchall() == [
            (int(second_id),)
        ]
    assert original.exists(), "the committed row points at an original that was deleted"
