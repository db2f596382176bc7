"""API reads (SPEC §9.3): ``GET /api/v1/feedback/?page_size=50`` on 100,000
reviews against a hand-written ``JsonResponse`` view, on the same data and server;
SQL queries per request constant whatever the table and page size.

The portal runs as a fleet on loopback: ``make serve`` (gunicorn sync workers,
access log on, workers recycled every ~2,000 requests), PostgreSQL, Redis as the
cache, S3; with ``DJANGO_SETTINGS_MODULE=bench.settings``, which adds the baseline view
of ``bench/urls.py`` to the portal's URLs. Reviews are seeded with PostgreSQL's
COPY (5% of them hidden or pending), then vacuumed and analysed as autovacuum
would. ``wrk`` loads each URL in turn (API, baseline, API, baseline), anonymously; the
queries are counted in a ``manage.py shell`` on the same database with Django's
test client and ``CaptureQueriesContext``, on a second request (steady state).

    .venv/bin/python -m bench.bench_api_reads [--quick]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import Result, fleet_servers, main
from tests.fleet import Fleet, fleet

TARGET_RATIO = 0.7
TARGET_QUERIES = 3
WEB_WORKERS = 4  # make serve's WEB_CONCURRENCY
API_URL = "/api/v1/feedback/?page_size=50"
BASELINE_URL = "/bench/baseline/feedback/"
PAGE_SIZES = (10, 50, 100)

COLUMNS = (
    "title", "name", "date", "text", "rating", "product_id", "status", "source",
    "fingerprint", "created_at", "updated_at",
)  # fmt: skip
WORDS = [
    "fresh",
    "crisp",
    "sweet",
    "juicy",
    "ripe",
    "delivery",
    "order",
    "fruit",
    "apples",
    "mangoes",
    "kiwifruit",
    "lemons",
    "service",
    "friendly",
    "staff",
    "price",
    "value",
    "box",
    "week",
    "store",
    "quality",
    "taste",
    "soft",
    "firm",
    "arrived",
    "late",
    "early",
    "great",
]

COUNT_SCRIPT = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
out = {}
for label, url in URLS:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    out[label] = [q["sql"] for q in queries.captured_queries]
print("QUERIES " + json.dumps(out))
"""


def seed(portal: Fleet, start: int, stop: int) -> float:
    """Reviews start..stop-1 by COPY; returns the seconds it took (ANALYZE included)."""
    rng = random.Random(start)
    day0 = dt.date(2015, 1, 1)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    dbname = portal.database_url.rsplit("/", 1)[1]
    with portal.servers.postgres.connect(dbname) as conn, conn.cursor() as cur:
        columns = ", ".join(COLUMNS)
        with cur.copy(f"COPY catalog_feedback ({columns}) FROM STDIN") as copy:
            for i in range(start, stop):
                title = f"Review {i}"
                name = rng.choice(("John", "Katie", "Tom", "Sara", "Anonymous", "Mei"))
                date = day0 + dt.timedelta(days=rng.randrange(3650))
                text = " ".join(rng.choices(WORDS, k=rng.randint(10, 60))).capitalize() + "."
                status = "published" if i % 20 else rng.choice(("hidden", "pending"))
                fingerprint = hashlib.sha256("\x1f".join([title, name, str(date), text]).encode()).hexdigest()
                rating = rng.randint(1, 5) if i % 3 else None
                copy.write_row(
                    (title, name, date, text, rating, None, status, "import", fingerprint, now, now)
                )
    with portal.servers.postgres.connect(dbname) as conn:
        # What autovacuum does to a table in service: statistics and the visibility map.
        conn.execute("VACUUM (ANALYZE) catalog_feedback")
    return time.perf_counter() - started


def explain_ms(portal: Fleet, sql: str) -> tuple[float, str]:
    """Execution time PostgreSQL reports for a query (median of 5) and its plan's first node."""
    dbname = portal.database_url.rsplit("/", 1)[1]
    times = []
    plan = ""
    with portal.servers.postgres.connect(dbname) as conn:
        for _ in range(5):
            rows = [r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchall()]
            doc = rows[0][0]
            times.append(float(doc["Execution Time"]))
            node = doc["Plan"]
            while node.get("Plans") and node["Node Type"] in {"Aggregate", "Limit", "Gather"}:
                node = node["Plans"][0]
            plan = node["Node Type"]
    return statistics.median(times), plan


def count_queries(portal: Fleet) -> dict[str, list[str]]:
    urls = [(f"api:{size}", f"/api/v1/feedback/?page_size={size}") for size in PAGE_SIZES]
    urls.append(("baseline", BASELINE_URL))
    script = f"URLS = {urls!r}\n{COUNT_SCRIPT}"
    out = portal.manage("shell", "-c", script).stdout
    line = next(x for x in out.splitlines() if x.startswith("QUERIES "))
    counted: dict[str, list[str]] = json.loads(line.removeprefix("QUERIES "))
    return counted


@dataclass
class WrkRun:
    url: str
    requests_per_s: float
    requests: int
    non_2xx: int
    errors: str
    latency_avg: str


def wrk(url: str, seconds: int) -> WrkRun:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    if not rps or not total:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return WrkRun(
        url=url,
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(0) if errors else "",
        latency_avg=latency.group(1) if latency else "?",
    )


def load(portal: Fleet, seconds: int, rounds: int) -> dict[str, list[WrkRun]]:
    runs: dict[str, list[WrkRun]] = {"api": [], "baseline": []}
    for _ in range(rounds):
        for key, path in (("api", API_URL), ("baseline", BASELINE_URL)):
            run = wrk(portal.web_url + path, seconds)
            runs[key].append(run)
            extra = f", {run.non_2xx} non-2xx" if run.non_2xx else ""
            extra += f", {run.errors}" if run.errors else ""
            print(
                f"  {path:34} {run.requests_per_s:8.1f} req/s  ({run.requests} requests,"
                f" mean latency {run.latency_avg}{extra})"
            )
    return runs


def check_responses(portal: Fleet) -> None:
    api = requests.get(portal.web_url + API_URL, timeout=30)
    base = requests.get(portal.web_url + BASELINE_URL, timeout=30)
    api.raise_for_status()
    base.raise_for_status()
    a, b = api.json()["results"], base.json()["results"]
    if [r["id"] for r in a] != [r["id"] for r in b]:
        raise RuntimeError("the API and the baseline do not return the same reviews")
    print(
        f"  both return the same {len(a)} reviews; bodies {len(api.content):,} B (API, with count and links)"
        f" and {len(base.content):,} B (baseline)"
    )


def restart_web(portal: Fleet, **env: str) -> None:
    portal.stop()
    portal.workers.clear()
    portal.web = None
    portal.extra_env = {**portal.extra_env, **env}
    portal.start_web(workers=WEB_WORKERS)


def queries_table(label: str, counted: dict[str, list[str]]) -> None:
    cells = "  ".join(f"{key} {len(sqls)}" for key, sqls in counted.items())
    print(f"  {label:16} {cells}")


def run(quick: bool) -> list[Result]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/install-system-deps.sh")
    seconds, rounds = (3, 2) if quick else (10, 2)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        base = Path(tmp)
        with (
            fleet_servers(base) as servers,
            fleet(servers, base, DJANGO_SETTINGS_MODULE="bench.settings") as portal,
        ):
            print("SQL queries per request (second request of each URL, anonymous):")
            seed(portal, 0, 1_000)
            small = count_queries(portal)
            queries_table("1,000 rows:", small)
            spent = seed(portal, 1_000, 100_000)
            print(f"  (99,000 more reviews seeded by COPY in {spent:.1f} s)")
            large = count_queries(portal)
            queries_table("100,000 rows:", large)
            print("  the API's queries at page_size 50, 100,000 rows, with PostgreSQL's own execution time:")
            for sql in large["api:50"]:
                ms, plan = explain_ms(portal, sql)
                print(f"    {ms:6.2f} ms  {plan:18} {sql[:110]}{'...' if len(sql) > 110 else ''}")
            ms, plan = explain_ms(portal, large["baseline"][0])
            print(f"  the baseline's query: {ms:.2f} ms, {plan}")
            api_counts = {len(v) for k, v in {**small, **large}.items() if k.startswith("api:")}
            worst = max(api_counts)
            constant = len(api_counts) == 1
            results.append(
                Result(
                    "API feedback SQL queries/request (3 sizes x 2 tables)",
                    worst,
                    "queries",
                    f"<= {TARGET_QUERIES}, constant",
                    worst <= TARGET_QUERIES and constant,
                )
            )

            portal.start_web(workers=WEB_WORKERS)
            env = portal.env
            cache = env.get("CACHE_URL", "locmem (per process)")
            print(
                f"\nLoad: wrk -t2 -c16 -d{seconds}s, make serve (gunicorn, {WEB_WORKERS} sync workers), 100,000 reviews;"
                f" cache {cache} (reads are not throttled; the cache holds the count of large lists)"
            )
            check_responses(portal)
            for path in (API_URL, BASELINE_URL):  # warm every worker's connection and caches
                for _ in range(WEB_WORKERS * 3):
                    requests.get(portal.web_url + path, timeout=30).raise_for_status()
            runs = load(portal, seconds, rounds)
            api_rps = statistics.median(r.requests_per_s for r in runs["api"])
            base_rps = statistics.median(r.requests_per_s for r in runs["baseline"])
            failed = sum(r.non_2xx for r in runs["api"])
            print(f"  {failed} non-2xx answers")
            ratio = api_rps / base_rps
            print(
                f"  API {api_rps:.1f} req/s, baseline {base_rps:.1f} req/s (medians):"
                f" API / baseline = {ratio:.2f}   target >= {TARGET_RATIO}"
            )
            results += [
                Result("API feedback page_size=50 requests/s", round(api_rps, 1), "req/s", "", True),
                Result("baseline JsonResponse view requests/s", round(base_rps, 1), "req/s", "", True),
                Result(
                    "API / baseline requests/s (Redis cache, as configured)",
                    round(ratio, 2),
                    "x",
                    f">= {TARGET_RATIO}x",
                    ratio >= TARGET_RATIO and failed == 0,
                ),
            ]

            if not quick:
                restart_web(portal, CACHE_URL="locmemcache://bench")
                print("\nThe same with a per-process local-memory cache instead of Redis (information):")
                for path in (API_URL, BASELINE_URL):
                    for _ in range(WEB_WORKERS * 3):
                        requests.get(portal.web_url + path, timeout=30).raise_for_status()
                local = load(portal, seconds, 1)
                local_ratio = local["api"][0].requests_per_s / local["baseline"][0].requests_per_s
                print(f"  API / baseline = {local_ratio:.2f}")
                results.append(
                    Result(
                        "API / baseline requests/s (local-memory cache)", round(local_ratio, 2), "x", "", True
                    )
                )
    return results


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
