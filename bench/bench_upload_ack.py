"""Upload acknowledgement (SPEC §9.2): the API answers an image upload in a time
independent of the image's size, a Celery worker doing the processing.

The portal runs as a fleet on loopback (gunicorn, a Celery worker, PostgreSQL,
Redis, SeaweedFS S3), configured as in production. ``POST /api/v1/images/`` of
a 0.1 MP and a 12 MP photo-like JPEG are interleaved; each upload carries a
different JPEG comment so its bytes (and storage key) are new. The time is the
client's: from sending the request to the whole answer, over a kept-alive
connection. The same bytes are also posted, interleaved, to a view that only
parses the multipart body (``bench/urls.py``): the cost of carrying them to
the web process, which no design can avoid. Before each upload the previous image is left to finish processing,
so the figure is the API's own path, not two cores shared with the worker; a
back-to-back series, the worker busy meanwhile, is shown for information.

    .venv/bin/python -m bench.bench_upload_ack [--quick]
"""

from __future__ import annotations

import statistics
import struct
import tempfile
import time
from pathlib import Path

import requests

from bench import Result, fleet_servers, main, percentile
from tests.fleet import Fleet, fleet
from tests.uploads import corpus

TARGET_RATIO = 2.0
SIZES = {"0.1 MP": (400, 250), "12 MP": (4000, 3000)}


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same image with a JPEG comment segment (COM) right after the SOI marker."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def post(client: requests.Session, url: str, data: bytes, name: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = client.post(url, files={"file": (name, data)}, timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def wait_processed(portal: Fleet, image_id: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = str(portal.api("GET", f"/api/v1/images/{image_id}/").json()["status"])
        if status in {"ready", "failed"} or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def series(
    portal: Fleet, client: requests.Session, images: dict[str, bytes], rounds: int, *, settle: bool, tag: str
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Times of the API's answers, and of the same bytes posted to the sink, by image."""
    api: dict[str, list[float]] = {label: [] for label in images}
    sink: dict[str, list[float]] = {label: [] for label in images}
    for i in range(rounds):
        order = list(images) if i % 2 == 0 else list(reversed(images))
        for label in order:
            data = with_comment(images[label], f"{tag}-{i}-{label}")
            elapsed, _ = post(client, f"{portal.web_url}/bench/sink/", data, f"{tag}-{i}.jpg")
            sink[label].append(elapsed)
            elapsed, body = post(client, f"{portal.web_url}/api/v1/images/", data, f"{tag}-{i}.jpg")
            api[label].append(elapsed)
            if settle:
                status = wait_processed(portal, int(str(body["id"])))
                if status != "ready":
                    print(f"  warning: image {body['id']} ended {status}")
    return api, sink


def report(times: dict[str, list[float]], images: dict[str, bytes]) -> None:
    print(f"  {'image':8} {'bytes':>10} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8} {'max ms':>8}")
    for label, values in times.items():
        print(
            f"  {label:8} {len(images[label]):>10,} {len(values):>3} {statistics.median(values) * 1000:8.1f}"
            f" {percentile(values, 95) * 1000:8.1f} {min(values) * 1000:8.1f} {max(values) * 1000:8.1f}"
        )


def s3_put_ms(portal: Fleet, data: bytes, repeats: int = 5) -> float:
    """What storing the original alone costs: a PUT of the same bytes to the bucket."""
    client = portal.servers.s3.client()
    spent = []
    for i in range(repeats):
        started = time.perf_counter()
        client.put_object(Bucket=portal.bucket, Key=f"bench/put-{i}", Body=data)
        spent.append(time.perf_counter() - started)
        client.delete_object(Bucket=portal.bucket, Key=f"bench/put-{i}")
    return statistics.median(spent) * 1000


def run(quick: bool) -> list[Result]:
    rounds = 5 if quick else 20
    images = {label: corpus.photo_jpeg(w, h, seed=3) for label, (w, h) in SIZES.items()}
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        base = Path(tmp)
        with (
            fleet_servers(base) as servers,
            fleet(servers, base, DJANGO_SETTINGS_MODULE="bench.settings") as portal,
        ):
            portal.start_web(workers=2)
            portal.start_worker()
            print(
                "Fleet: make serve (gunicorn, 2 sync workers), 1 Celery worker (concurrency 1), PostgreSQL, Redis, S3"
            )
            client = requests.Session()
            client.headers["Authorization"] = f"Token {portal.token}"
            series(portal, client, images, 2, settle=True, tag="warm")  # first-request costs

            times, sink = series(portal, client, images, rounds, settle=True, tag="run")
            print(f"\nEach upload after the previous one is processed ({rounds} interleaved rounds):")
            print(" POST /api/v1/images/")
            report(times, images)
            p50 = {label: statistics.median(values) for label, values in times.items()}
            ratio = p50["12 MP"] / p50["0.1 MP"]
            print(f"  p50(12 MP) / p50(0.1 MP) = {ratio:.2f}   target <= {TARGET_RATIO:g}")
            print(" The same bytes to a sink view that parses the multipart body and keeps nothing:")
            report(sink, images)
            sink50 = {label: statistics.median(values) for label, values in sink.items()}
            put = s3_put_ms(portal, images["12 MP"])
            print(
                f" A bare S3 PUT of the {len(images['12 MP']) / 1e6:.1f} MB original, from this process:"
                f" {put:.1f} ms (p50)"
            )
            for label in images:
                print(
                    f" {label}: API answer - sink = {(p50[label] - sink50[label]) * 1000:.1f} ms"
                    " (storing the original, the row, the task, the answer)"
                )
            results = [
                Result(
                    "upload ack p50 12 MP / 0.1 MP (worker idle)",
                    round(ratio, 2),
                    "x",
                    f"<= {TARGET_RATIO:g}x",
                    ratio <= TARGET_RATIO,
                ),
            ]
            for label in images:
                results.append(Result(f"upload ack p50 {label}", round(p50[label] * 1000, 1), "ms", "", True))
                results.append(
                    Result(
                        f"upload p50 {label} to a do-nothing sink view",
                        round(sink50[label] * 1000, 1),
                        "ms",
                        "",
                        True,
                    )
                )
                results.append(
                    Result(
                        f"upload ack p95 {label}",
                        round(percentile(times[label], 95) * 1000, 1),
                        "ms",
                        "",
                        True,
                    )
                )

            if not quick:
                busy, _ = series(portal, client, images, 8, settle=False, tag="busy")
                print("\nBack to back, the worker processing the earlier uploads meanwhile (information):")
                report(busy, images)
                busy_ratio = statistics.median(busy["12 MP"]) / statistics.median(busy["0.1 MP"])
                print(f"  p50(12 MP) / p50(0.1 MP) = {busy_ratio:.2f}")
                results.append(
                    Result(
                        "upload ack p50 12 MP / 0.1 MP (worker busy)",
                        round(busy_ratio, 2),
                        "x",
                        "",
                        True,
                    )
                )
            client.close()
    return results


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
