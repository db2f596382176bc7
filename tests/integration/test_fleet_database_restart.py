"""The fleet across a restart of PostgreSQL, the system of record: gunicorn
and a Celery worker (with beat) keep running while the database stops, fast
(``pg_ctl stop -m fast``) or at once as in a crash, and starts again on the
same port and data.

Images being processed when it stops are retried, not lost; a request that
arrives while it is down is a 503 saying so; every web process answers the
first requests after it is back; the worker and beat go on; nothing is left
half written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.fleet import Fleet, Servers, fleet, running_servers
from tests.servers import CeleryWorker
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEB_WORKERS = 2
# Pages read from the database: the API (its token is looked up too) and a
# page for browsers.
PAGES = ("/api/v1/images/", "/catalog/")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    # A commit is on disk before it is acknowledged, as by default: the test
    # cluster's own setting (off, for speed) loses the last commits in a crash.
    with running_servers(
        tmp_path_factory.mktemp("servers"), postgres_settings={"synchronous_commit": "on"}
    ) as servers:
        yield servers


@pytest.fixture
def portal(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    # Lost work is not taken over within the test (the stuck-image sweep
    # waits its default ten minutes, a task unacknowledged its visibility
    # timeout): an image that ends ready was retried by its own task.
    with fleet(servers, tmp_path, PORTAL_SWEEP_INTERVAL_SECONDS="2") as deployment:
        deployment.start_web(workers=WEB_WORKERS)
        yield deployment


def _upload(portal: Fleet, seed: int) -> int:
    # 12 MP: processing one takes a couple of seconds, long enough to stop
    # the database under it.
    response = portal.upload(corpus.photo_jpeg(4000, 3000, seed=seed), f"r{seed}.jpg")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _wait_until_processing(portal: Fleet, ids: list[int]) -> None:
    deadline = time.monotonic() + 60
    while True:
        statuses = [portal.api("GET", f"/api/v1/images/{i}/").json()["status"] for i in ids]
        if "processing" in statuses:
            return
        assert time.monotonic() < deadline, f"none of {ids} started processing: {statuses}"
        time.sleep(0.05)


def _get_at_once(portal: Fleet, paths: list[str]) -> list[requests.Response]:
    """The pages asked for all at once, so that every web process takes some."""
    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(lambda path: portal.api("GET", path), paths))


def _restart(stop: Callable[[], None], portal: Fleet, *, while_down: Callable[[], None]) -> None:
    postgres = portal.servers.postgres
    stop()
    try:
        while_down()
    finally:
        postgres.start()


def _runs(worker: CeleryWorker, task: str, outcome: str, since: int = 0, until: int | None = None) -> int:
    log = worker.log_since_start()[since:until]
    return len(re.findall(rf"{re.escape(task)}\[[0-9a-f-]+\] {outcome}", log))


def test_postgresql_restarted_under_the_fleet_loses_no_upload_and_leaves_nothing_half_written(
    portal: Fleet,
) -> None:
    worker = portal.start_worker(beat=True, concurrency=2)
    postgres = portal.servers.postgres
    everyone = [*PAGES] * 2 * WEB_WORKERS
    assert {r.status_code for r in _get_at_once(portal, everyone)} == {200}  # each holds a connection

    # A fast stop and start under images being processed, nobody asking the
    # web processes meanwhile: each finds its connection dead on its next request.
    ids = [_upload(portal, seed) for seed in range(3)]
    _wait_until_processing(portal, ids)
    fast_stop = len(worker.log_since_start())
    _restart(postgres.stop, portal, while_down=lambda: None)
    after = _get_at_once(portal, everyone)
    assert [r.status_code for r in after] == [200] * len(everyone), [r.text[:300] for r in after]
    ids += [_upload(portal, seed) for seed in range(3, 5)]

    # A crash under images being processed, with requests while it is down:
    # the new ones (one of the first may show "processing" still, its retry
    # not begun yet).
    _wait_until_processing(portal, ids[3:])
    crash = len(worker.log_since_start())
    down: list[requests.Response] = []

    def ask_while_down() -> None:
        down.extend(_get_at_once(portal, everyone))
        down.append(portal.upload(corpus.photo_jpeg(800, 600, seed=99), "while-down.jpg"))

    _restart(postgres.crash, portal, while_down=ask_while_down)
    mark = len(worker.log_since_start())
    for response in down:
        assert response.status_code == 503, response.text[:500]
        assert response.headers["Retry-After"]
        assert "The database is unavailable; please try again shortly." in response.text
        assert "Traceback" not in response.text
    after = _get_at_once(portal, everyone)
    assert [r.status_code for r in after] == [200] * len(everyone), [r.text[:300] for r in after]
    ids += [_upload(portal, seed) for seed in range(5, 7)]

    images = portal.wait_for_images(ids, timeout=150)
    assert [img["status"] for img in images] == ["ready"] * len(ids), [img["error"] for img in images]
    listed = portal.api("GET", "/api/v1/images/?page_size=100").json()["results"]
    assert sorted(img["id"] for img in listed) == sorted(ids)  # none from the upload while down

    # The worker lived through both: its tasks cut off by each restart were
    # retried, and beat's sweep has run again since the crash.
    log = worker.log_since_start()
    assert worker.running, log[-3000:]
    assert "Unrecoverable error" not in log
    assert _runs(worker, "uploads.tasks.process_image", "retry", since=fast_stop, until=crash), log[-3000:]
    assert _runs(worker, "uploads.tasks.process_image", "retry", since=crash), log[crash:][-3000:]
    deadline = time.monotonic() + 30
    while not _runs(worker, "uploads.tasks.sweep_stuck_images", "succeeded", since=mark):
        assert time.monotonic() < deadline, worker.log_since_start()[mark:][-3000:]
        time.sleep(0.2)

    # Every row has its objects, and every object its row.
    keys = portal.bucket_keys()
    originals = {f"originals/{img['sha256'][:2]}/{img['sha256']}.jpg" for img in images}
    renditions = {r["url"].split(f"/{portal.bucket}/", 1)[1] for img in images for r in img["renditions"]}
    assert {k for k in keys if k.startswith("originals/")} == originals
    assert {k for k in keys if not k.startswith("originals/")} == renditions
    swept = portal.manage(
        "shell", "-c", "from uploads import storage; print(len(storage.sweep_orphans(grace_seconds=0)))"
    ).stdout.split()[-1]
    assert swept == "0"
