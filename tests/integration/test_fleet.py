"""The portal as a fleet on real servers: gunicorn and Celery workers against
PostgreSQL, Redis, SeaweedFS's S3 and an SMTP server, all on loopback.

Each test drives the running processes over HTTP, as a client would, and reads
the bucket, the database (through the API) and the mailbox to check them.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.fleet import HEALTH_TOKEN, Fleet, Servers, fleet, running_servers
from tests.servers import CeleryWorker
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"
WEB_RENDITIONS = 10  # 4 widths x (webp, jpeg) + square thumb x (webp, jpeg)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("servers"), persistent_redis=True) as servers:
        yield servers


@pytest.fixture
def portal(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    with fleet(
        servers,
        tmp_path,
        CELERY_VISIBILITY_TIMEOUT="8",
        PORTAL_IMAGE_STUCK_AFTER_SECONDS="4",
        PORTAL_SWEEP_INTERVAL_SECONDS="3",
    ) as deployment:
        deployment.start_web()
        yield deployment


def test_an_upload_is_processed_by_a_worker_into_the_bucket_and_deleted_with_it(portal: Fleet) -> None:
    portal.start_worker()
    response = portal.upload(corpus.photo_jpeg(2000, 1500), "summer.jpg", title="Summer")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    image_id = response.json()["id"]
    [image] = portal.wait_for_images([image_id])
    assert image["status"] == "ready", image["error"]
    assert len(image["renditions"]) == WEB_RENDITIONS

    s3 = portal.servers.s3.client()
    for rendition in image["renditions"]:
        key = rendition["url"].split(f"/{portal.bucket}/", 1)[1]
        assert rendition["url"].startswith(portal.servers.s3.endpoint_url)
        head = s3.head_object(Bucket=portal.bucket, Key=key)
        assert head["ContentType"] == f"image/{rendition['format']}"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        assert head["ContentLength"] == rendition["bytes"]
    original = f"originals/{image['sha256'][:2]}/{image['sha256']}.jpg"
    assert original in portal.bucket_keys(bucket=portal.private_bucket)
    assert not any(k.startswith("originals/") for k in portal.bucket_keys(bucket=portal.bucket))

    assert portal.api("DELETE", f"/api/v1/images/{image_id}/").status_code == 204
    assert portal.bucket_keys() == set()


def test_make_worker_processes_what_make_serve_accepted(portal: Fleet) -> None:
    portal.start_make_worker()
    response = portal.upload(corpus.photo_jpeg(2000, 1500), "made.jpg")
    assert response.status_code == 201
    [image] = portal.wait_for_images([response.json()["id"]], timeout=120)
    assert image["status"] == "ready"
    assert len(image["renditions"]) == WEB_RENDITIONS


def test_the_api_answers_before_processing_whatever_the_size(portal: Fleet) -> None:
    """No worker runs: the upload is acknowledged once stored, not processed."""
    small = portal.upload(corpus.photo_jpeg(400, 300), "small.jpg")
    large = portal.upload(corpus.photo_jpeg(4000, 3000), "large.jpg")
    assert (small.status_code, large.status_code) == (201, 201)
    assert {small.json()["status"], large.json()["status"]} == {"pending"}
    assert portal.api("GET", "/api/v1/images/?status=pending").json()["count"] == 2


def test_an_upload_shows_on_the_product_naming_its_stem_the_newest_winning(portal: Fleet) -> None:
    created = portal.api(
        "POST", "/api/v1/products/", json={"name": "Fig", "weight": 40, "image_name": "041.jpeg"}
    )
    assert created.status_code == 201, created.text
    older, newer = (
        portal.upload(corpus.photo_jpeg(300, 200, seed=seed), name).json()["id"]
        for seed, name in ((1, "041.jpg"), (2, "041.png"))
    )
    product = portal.api("GET", f"/api/v1/products/{created.json()['id']}/").json()
    assert product["image"]["id"] == newer
    # Linked again (as a late commit would), the older photo takes nothing away.
    script = (
        "from catalog.services import product_link_image; from uploads.models import Image;"
        f" print(product_link_image(image=Image.objects.get(pk={older})))"
    )
    assert portal.manage("shell", "-c", script).stdout.split()[-1] == "0"
    assert portal.api("GET", f"/api/v1/products/{created.json()['id']}/").json()["image"]["id"] == newer


# What beat does with a schedule's entry: send its task with its options.
SEND_AS_BEAT_DOES = (
    "from django.conf import settings; from portal.celery import app; "
    "entry = settings.CELERY_BEAT_SCHEDULE[{name!r}]; app.send_task(entry['task'], **entry['options'])"
)


def test_a_scheduled_run_waits_for_one_image_not_for_the_backlog(portal: Fleet) -> None:
    """Beat's runs have a queue of their own that every worker takes from in
    turn with the images' queue: sent behind a backlog of uploads, the health
    check runs next, not after the backlog."""
    backlog = [
        portal.upload(corpus.photo_jpeg(1600, 1200, seed=i), f"b{i}.jpg").json()["id"] for i in range(8)
    ]
    portal.manage("shell", "-c", SEND_AS_BEAT_DOES.format(name="health-check"))
    worker = portal.start_worker()
    portal.wait_for_images(backlog, timeout=300)
    done = re.findall(r"Task ([\w.]+)\[[0-9a-f-]+\] succeeded", worker.log_since_start())
    assert "portal.tasks.health_check" in done, done
    assert done.index("portal.tasks.health_check") <= 2, done


def _task_runs(log: str) -> tuple[set[str], set[str]]:
    """Ids of the processing tasks a worker's log says it received, and finished."""
    received = set(re.findall(r"process_image\[([0-9a-f-]+)\] received", log))
    finished = set(re.findall(r"process_image\[([0-9a-f-]+)\] (?:succeeded|raised|retry|ignored)", log))
    return received, finished


def test_a_worker_killed_mid_task_again_and_again_loses_no_image(portal: Fleet) -> None:
    def upload(seed: int) -> int:
        # 12 MP: big enough that processing one takes a couple of seconds.
        response = portal.upload(corpus.photo_jpeg(4000, 3000, seed=seed), f"p{seed}.jpg")
        assert response.status_code == 201
        return int(response.json()["id"])

    ids = [upload(seed) for seed in range(3)]
    worker = portal.start_worker(beat=True)
    killed: list[int] = []  # one kill per image: a few deaths in a row make a poison image
    deadline = time.monotonic() + 300
    while len(killed) < 3:
        assert time.monotonic() < deadline, f"caught only {killed} of {ids} while processing"
        images = portal.api("GET", "/api/v1/images/?page_size=100").json()["results"]
        running = [i["id"] for i in images if i["status"] == "processing" and i["id"] not in killed]
        if not running:
            if not any(i["status"] == "pending" for i in images) and len(ids) < 10:
                ids.append(upload(len(ids)))  # all done before a kill landed: one more
            time.sleep(0.05)
            continue
        worker.kill()  # SIGKILL to the worker and its pool; returns once they are gone
        log = worker.log_since_start()
        if portal.api("GET", f"/api/v1/images/{running[0]}/").json()["status"] == "processing":
            # The kill landed mid-task: the row is not finished, and the
            # worker's log shows a task it received and never finished.
            received, finished = _task_runs(log)
            assert received - finished, log[-2000:]
            killed.append(running[0])
        worker.start()
    images = portal.wait_for_images(ids, timeout=180)
    assert [img["status"] for img in images] == ["ready"] * len(ids), [img["error"] for img in images]
    for image in images:
        names = [(r["name"], r["format"]) for r in image["renditions"]]
        assert len(names) == len(set(names)) == WEB_RENDITIONS
    expected = {r["url"].split(f"/{portal.bucket}/", 1)[1] for img in images for r in img["renditions"]}
    assert expected <= portal.bucket_keys()


class StorageCut:
    """A TCP relay in front of the S3 server, transparent until ``arm()``: then
    the next PUT of an original is held once part of its body has gone
    through (``held`` is set) until ``release()``, so that the server can be
    stopped with the object half written. From the hold until ``restore()``
    the relay takes no new connection: storage is away, even in the moment
    the server takes to stop."""

    PART = 64 * 1024  # body bytes let through before the hold

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.armed = threading.Event()
        self.held = threading.Event()
        self.released = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self.released.clear()
        self.armed.set()

    def release(self) -> None:
        self.released.set()

    def restore(self) -> None:
        self.held.clear()

    def close(self) -> None:
        self.released.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                if self.held.is_set():
                    raise ConnectionRefusedError
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, outgoing: bool) -> None:
        cutting = False
        sent_body = 0
        try:
            while data := source.recv(65536):
                if outgoing and self.armed.is_set() and re.match(rb"PUT /[^ ]*/originals/", data):
                    self.armed.clear()
                    cutting = True
                    sent_body = -(data.find(b"\r\n\r\n") + 4)  # counted from the body on
                target.sendall(data)
                if cutting:
                    sent_body += len(data)
                    if sent_body >= self.PART:
                        cutting = False
                        self.held.set()
                        self.released.wait(120)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def test_the_s3_server_stopped_in_the_middle_of_an_upload_gives_a_clear_error_and_no_half_record(
    servers: Servers, tmp_path: Path
) -> None:
    cut = StorageCut(int(servers.s3.endpoint_url.rsplit(":", 1)[1]))
    try:
        with fleet(servers, tmp_path, AWS_S3_ENDPOINT_URL=cut.url) as portal:
            portal.start_web()
            portal.start_worker()
            ok = portal.upload(corpus.photo_jpeg(800, 600), "before.jpg")
            assert ok.status_code == 201
            portal.wait_for_images([ok.json()["id"]])

            data = corpus.photo_jpeg(3000, 2000, seed=5)
            assert len(data) > 4 * StorageCut.PART
            sha = hashlib.sha256(data).hexdigest()
            cut.arm()
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(portal.upload, data, "during.jpg")
                assert cut.held.wait(60), "the original's PUT never started"
                servers.s3.stop()  # with part of the object written
                cut.release()
                refused = pending.result()
            try:
                assert refused.status_code == 503, refused.text
                assert "nothing was saved" in refused.json()["detail"]
                listing = portal.api("GET", "/api/v1/images/")
                assert listing.status_code == 200  # reads need no storage
                assert [image["original_name"] for image in listing.json()["results"]] == ["before.jpg"]
            finally:
                servers.s3.start()
                cut.restore()

            swept = portal.manage(
                "shell", "-c", "from uploads import storage; print(storage.sweep_orphans(grace_seconds=0))"
            ).stdout
            keys = portal.bucket_keys()
            assert not {k for k in keys if sha in k}, swept  # no half-written original left
            after = portal.upload(corpus.photo_jpeg(800, 600, seed=6), "after.jpg")
            assert after.status_code == 201
            images = portal.wait_for_images([ok.json()["id"], after.json()["id"]])
            assert [img["status"] for img in images] == ["ready", "ready"]
            keys = portal.bucket_keys()
            for image in images:  # every row has its objects...
                assert {r["url"].split(f"/{portal.bucket}/", 1)[1] for r in image["renditions"]} <= keys
            originals = {k for k in keys if k.startswith("originals/")}
            assert originals == {
                f"originals/{i['sha256'][:2]}/{i['sha256']}.jpg" for i in images
            }  # ...and no object lacks a row
    finally:
        cut.close()
        if not servers.s3.running:
            servers.s3.start()


def test_redis_briefly_down_loses_no_upload(portal: Fleet) -> None:
    portal.start_worker(beat=True)
    portal.servers.redis.stop()
    try:
        accepted = portal.upload(corpus.photo_jpeg(900, 600), "while-down.jpg")
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["status"] == "pending"
    finally:
        portal.servers.redis.start()
    [image] = portal.wait_for_images([accepted.json()["id"]], timeout=120)
    assert image["status"] == "ready"


def test_a_rolled_back_upload_leaves_no_object_once_swept(portal: Fleet) -> None:
    script = (
        "from django.db import transaction;"
        "from uploads import services, storage;"
        "from tests.uploads import corpus\n"
        "try:\n"
        "    with transaction.atomic():\n"
        "        services.image_upload(file=corpus.jpeg(), original_name='x.jpg')\n"
        "        raise RuntimeError\n"
        "except RuntimeError:\n"
        "    pass\n"
        "print('left', len(list(storage.list_objects(storage.storage_for('originals/'), 'originals/'))))\n"
        "print('swept', len(storage.sweep_orphans(grace_seconds=0)))"
    )
    out = portal.manage("shell", "-c", script).stdout
    assert "left 1" in out
    assert "swept 1" in out
    assert portal.bucket_keys() == set()


def test_a_supplier_delivery_is_imported_and_its_report_mailed(portal: Fleet, tmp_path: Path) -> None:
    portal.start_worker()
    delivery = tmp_path / "supplier-data"
    (delivery / "descriptions").mkdir(parents=True)
    (delivery / "images").mkdir()
    for path in (LAB / "descriptions").glob("*.txt"):
        (delivery / "descriptions" / path.name).write_bytes(path.read_bytes())
        (delivery / "images" / f"{path.stem}.tiff").write_bytes(
            corpus.supplier_tiff((600 + int(path.stem) * 30, 400 + int(path.stem) * 20))
        )
    portal.servers.smtp.clear()
    out = portal.manage("import_supplier", str(delivery), "--email", "supplier@example.com").stdout
    assert out.startswith("3 products created")
    [message] = portal.servers.smtp.wait_for(1, timeout=30)
    assert message["Subject"] == "Upload Completed - Online Fruit Store"
    assert message.envelope_from == "automation@example.com"
    assert message.envelope_to == ["supplier@example.com"]
    attachments = [
        part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"
    ]
    assert attachments
    assert attachments[0].get_content().startswith(b"%PDF")
    products = portal.api("GET", "/api/v1/products/").json()["results"]
    assert {p["name"] for p in products} == {"Apple", "Kiwifruit", "Mango"}
    assert all(p["image"]["status"] == "ready" and p["image"]["src"] for p in products)


def test_health_reports_every_dependency(portal: Fleet) -> None:
    response = requests.get(
        f"{portal.web_url}/health/", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}, timeout=30
    )
    checks = {c["name"]: c for c in response.json()["checks"]}
    for name in ("database", "storage", "broker"):
        assert checks[name]["ok"], checks[name]
    assert checks["database"]["detail"] == "postgresql"
    assert checks["storage"]["detail"] == "default: MediaS3Storage, originals: MediaS3Storage"
    ready = requests.get(f"{portal.web_url}/health/ready", timeout=30)
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_the_web_hosts_report_what_the_workers_processed(servers: Servers, tmp_path: Path) -> None:
    """gunicorn in multiprocess mode, as deployed: its /metrics, the only
    address Prometheus scrapes, reports the images a Celery worker made and
    the queue, read from the database."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    with fleet(servers, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as deployment:
        deployment.start_web()
        deployment.start_worker()
        responses = [deployment.upload(corpus.photo_jpeg(400, 300, seed=n), f"m{n}.jpg") for n in range(3)]
        images = deployment.wait_for_images([r.json()["id"] for r in responses])
        assert {image["status"] for image in images} == {"ready"}
        text = requests.get(f"{deployment.web_url}/metrics", timeout=30).text
    assert 'portal_images_processed{outcome="ready",preset="web"} 3.0' in text
    assert 'portal_images_waiting{status="pending"} 0.0' in text
    assert text.count("# TYPE portal_images_oldest_waiting_timestamp_seconds gauge") == 1
    assert "django_http_requests_total_by_method_total" in text  # the processes' own files


def _wait_for_task(workers: list[CeleryWorker], task: str, *, timeout: float = 60) -> list[int]:
    """How many runs of ``task`` each worker's log says succeeded, once one has."""
    pattern = re.compile(rf"Task {re.escape(task)}\[[0-9a-f-]+\] succeeded")
    deadline = time.monotonic() + timeout
    while True:
        runs = [len(pattern.findall(worker.log_since_start())) for worker in workers]
        if any(runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def test_beat_has_every_worker_host_check_itself_and_one_check_what_they_share(
    servers: Servers, tmp_path: Path
) -> None:
    """Two worker hosts, each short of disk, whose file store is away: each
    host mails its own disk alert, and the store's alert is mailed once."""
    recipient = f"ops-{time.monotonic_ns()}@example.com"
    with fleet(
        servers,
        tmp_path,
        PORTAL_HEALTH_RECIPIENTS=recipient,
        PORTAL_HEALTH_CPU_MAX_PERCENT="100",
        PORTAL_HEALTH_MEMORY_MIN_MB="0",
        PORTAL_HEALTH_DISK_MIN_PERCENT="100",
    ) as deployment:
        absent = {"AWS_STORAGE_BUCKET_NAME": f"absent-{time.monotonic_ns()}"}
        workers = [
            deployment.start_worker(env={**absent, "PORTAL_HEALTH_HOST": host})
            for host in ("worker-a", "worker-b")
        ]
        for entry in ("health-check-hosts", "health-check"):
            deployment.manage("shell", "-c", SEND_AS_BEAT_DOES.format(name=entry))
        host_runs = [_wait_for_task([worker], "portal.tasks.health_check_host")[0] for worker in workers]
        shared_runs = _wait_for_task(workers, "portal.tasks.health_check")
    assert host_runs == [1, 1]  # each worker, once
    assert sum(shared_runs) == 1
    alerts = sorted(
        (message["Subject"], message["X-Portal-Host"])
        for message in servers.smtp.messages
        if message.envelope_to == [recipient]
    )
    disk = "Error - Available disk space is less than 100%"
    assert [(subject, host) for subject, host in alerts if subject == disk] == [
        (disk, "worker-a"),
        (disk, "worker-b"),
    ]
    assert [subject for subject, _ in alerts if subject != disk] == ["Error - The file store is unavailable"]
