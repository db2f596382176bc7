"""The portal as a fleet on real servers: gunicorn and Celery workers against
PostgreSQL, Redis, SeaweedFS's S3 and an SMTP server, all on loopback.

Each test drives the running processes over HTTP, as a client would, and reads
the bucket, the database (through the API) and the mailbox to check them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fleet import HEALTH_TOKEN, Fleet, Servers, fleet
from tests.servers import PostgresServer, RedisServer, S3Server, SMTPServer
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"
WEB_RENDITIONS = 10  # 4 widths x (webp, jpeg) + square thumb x (webp, jpeg)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    base = tmp_path_factory.mktemp("servers")
    with (
        PostgresServer() as postgres,
        RedisServer(persistent=True, base_dir=base) as redis,
        S3Server(base_dir=base) as s3,
        SMTPServer(base_dir=base) as smtp,
    ):
        yield Servers(postgres=postgres, redis=redis, s3=s3, smtp=smtp)


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


def test_a_worker_killed_mid_task_again_and_again_loses_no_image(portal: Fleet) -> None:
    worker = portal.start_worker(beat=True)
    ids = []
    for seed in range(6):
        response = portal.upload(corpus.photo_jpeg(3000, 2000, seed=seed), f"p{seed}.jpg")
        assert response.status_code == 201
        ids.append(response.json()["id"])
    rng = random.Random(7)  # timing jitter, not a secret
    for _ in range(4):
        time.sleep(rng.uniform(0.3, 1.2))
        worker.kill()
        worker.start()
    images = portal.wait_for_images(ids, timeout=180)
    assert [img["status"] for img in images] == ["ready"] * len(ids)
    for image in images:
        names = [(r["name"], r["format"]) for r in image["renditions"]]
        assert len(names) == len(set(names)) == WEB_RENDITIONS
    expected = {r["url"].split(f"/{portal.bucket}/", 1)[1] for img in images for r in img["renditions"]}
    assert expected <= portal.bucket_keys()


def test_the_s3_server_stopped_during_uploads_gives_clear_errors_and_no_half_records(portal: Fleet) -> None:
    portal.start_worker()
    ok = portal.upload(corpus.photo_jpeg(800, 600), "before.jpg")
    assert ok.status_code == 201
    portal.wait_for_images([ok.json()["id"]])
    portal.servers.s3.stop()
    try:
        refused = portal.upload(corpus.photo_jpeg(800, 600, seed=5), "during.jpg")
        assert refused.status_code == 503
        assert "nothing was saved" in refused.json()["detail"]
        listing = portal.api("GET", "/api/v1/images/")
        assert listing.status_code == 200  # reads need no storage
        assert listing.json()["count"] == 1
    finally:
        portal.servers.s3.start()
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
