"""API reads (SPEC §9.3): a page of 50 from ``/api/v1/{feedback,people,products,images}/``
against a hand-written ``values()`` + ``JsonResponse`` view on the same data and server.

The portal runs as a fleet on loopback, with the production settings: ``make serve``
(gunicorn, 4 sync workers, access log on, workers recycled every ~2,000 requests),
PostgreSQL, Redis as the cache, S3 for media; ``DJANGO_SETTINGS_MODULE=bench.settings``
only adds the baseline views of ``bench/urls.py`` to the portal's URLs. Rows are
written with COPY (``bench/api_data.py``): 100,000 reviews (5% hidden or pending),
20,000 people and 20,000 products, each with a processed image of ten renditions
(60,000 images, 600,000 renditions with the loose ones); then vacuumed and analysed
as autovacuum would.

Figures:

* SQL queries per request, counted on a COLD cache (cleared before each request:
  the count of a large list is not there yet) and again warm, for page sizes 10,
  50 and 100, on a small and on the full data set; the target is at most 3 and
  the same number everywhere.
* Requests per second, ``wrk -t2 -c16``, anonymous: each API URL and its baseline
  in turn, the order swapped every round, for ``ROUNDS`` interleaved rounds. A
  ratio is computed per round (API / the baseline measured beside it); the table
  shows the median ratio and its spread (min-max). A round in which a side
  completed no request within wrk's 2 s is void and another round is run (at
  most ``EXTRA_ROUNDS``); a figure with fewer than ``ROUNDS`` valid rounds, or
  with an API error, is missed. Targets: >= 0.7 for feedback, people and
  products, >= 0.6 for images.
* Conditional GET on the live server: list and detail answer ``304`` with no body
  to their own ``ETag``; 304s per second against full answers to the same URL, over
  interleaved rounds, are shown for information.

    .venv/bin/python -m bench.bench_api_reads [--quick] [--report-only]
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import Result, api_data, fleet_servers, load_average, main, spread
from tests.fleet import Fleet, fleet

TARGET_QUERIES = 3
WEB_WORKERS = 4  # make serve's WEB_CONCURRENCY
PAGE_SIZES = (10, 50, 100)
ROUNDS = 5
# Rounds run beyond ROUNDS when some were void (a side answered nothing in time).
EXTRA_ROUNDS = 3


@dataclass(frozen=True)
class Endpoint:
    name: str
    api: str
    baseline: str
    target: float

    def api_url(self, size: int = 50) -> str:
        return f"{self.api}?page_size={size}"


ENDPOINTS = (
    Endpoint("feedback", "/api/v1/feedback/", "/bench/baseline/feedback/", 0.7),
    Endpoint("people", "/api/v1/people/", "/bench/baseline/people/", 0.7),
    Endpoint("products", "/api/v1/products/", "/bench/baseline/products/", 0.7),
    Endpoint("images", "/api/v1/images/", "/bench/baseline/images/", 0.6),
)

COUNT_SCRIPT = """
import json
from django.core.cache import cache
from django.db import connection
from core.api import forget_counts
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
out = {}
for label, url in URLS:
    counted = []
    for cold in (True, False):
        if cold:  # the shared cache and the counts this process keeps
            cache.clear()
            forget_counts()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        counted.append([q["sql"] for q in queries.captured_queries])
    out[label] = counted
print("QUERIES " + json.dumps(out))
"""


def count_queries(portal: Fleet) -> dict[str, list[list[str]]]:
    """Per URL: the SQL of a request on a cold cache, then of the next one (warm)."""
    urls = [(f"{e.name}:{size}", e.api_url(size)) for e in ENDPOINTS for size in PAGE_SIZES]
    urls += [(f"{e.name}:baseline", e.baseline) for e in ENDPOINTS]
    script = f"URLS = {urls!r}\n{COUNT_SCRIPT}"
    out = portal.manage("shell", "-c", script).stdout
    line = next(x for x in out.splitlines() if x.startswith("QUERIES "))
    counted: dict[str, list[list[str]]] = json.loads(line.removeprefix("QUERIES "))
    return counted


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


@dataclass
class WrkRun:
    url: str
    requests_per_s: float
    requests: int
    non_2xx: int
    errors: str
    latency_avg: str


def wrk(url: str, seconds: int, headers: dict[str, str] | None = None) -> WrkRun:
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", *extra, url],
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


def timeouts(run: WrkRun) -> int:
    found = re.search(r"timeout (\d+)", run.errors)
    return int(found.group(1)) if found else 0


def report(run: WrkRun, label: str) -> None:
    extra = f", {run.non_2xx} non-2xx" if run.non_2xx else ""
    extra += f", {run.errors}" if run.errors else ""
    print(
        f"    {label:44} {run.requests_per_s:8.1f} req/s  ({run.requests} requests, mean latency {run.latency_avg}{extra})"
    )


def void(pair: tuple[WrkRun, WrkRun]) -> bool:
    """A round where a side completed nothing (every answer over wrk's 2 s): no ratio."""
    return min(run.requests for run in pair) == 0


def load(portal: Fleet, seconds: int, rounds: int) -> dict[str, list[tuple[WrkRun, WrkRun]]]:
    """Per endpoint and round: (API run, baseline run), measured one after the other.
    Rounds go on (up to ``EXTRA_ROUNDS`` more) until every endpoint has ``rounds``
    that are not void."""
    runs: dict[str, list[tuple[WrkRun, WrkRun]]] = {e.name: [] for e in ENDPOINTS}
    round_no = 0
    while round_no < rounds + EXTRA_ROUNDS and any(
        sum(not void(pair) for pair in pairs) < rounds for pairs in runs.values()
    ):
        print(f"  round {round_no + 1} ({rounds} wanted); {load_average()}")
        for endpoint in ENDPOINTS:
            # Swapped every round: neither side always runs on a warmer (or hotter) machine.
            order = ("api", "baseline") if round_no % 2 == 0 else ("baseline", "api")
            measured = {}
            for side in order:
                path = endpoint.api_url() if side == "api" else endpoint.baseline
                measured[side] = wrk(portal.web_url + path, seconds)
                report(measured[side], path)
            runs[endpoint.name].append((measured["api"], measured["baseline"]))
        round_no += 1
    return runs


def check_responses(portal: Fleet) -> None:
    """The API and its baseline show the same rows, in the same order."""
    for endpoint in ENDPOINTS:
        api = requests.get(portal.web_url + endpoint.api_url(), timeout=30)
        base = requests.get(portal.web_url + endpoint.baseline, timeout=30)
        api.raise_for_status()
        base.raise_for_status()
        a, b = api.json()["results"], base.json()["results"]
        if not a or [r["id"] for r in a] != [r["id"] for r in b]:
            raise RuntimeError(f"{endpoint.name}: the API and the baseline do not return the same rows")
        print(
            f"  {endpoint.name}: both return the same {len(a)} rows; bodies {len(api.content):,} B (API)"
            f" and {len(base.content):,} B (baseline)"
        )


def conditional_get(portal: Fleet, seconds: int, rounds: int) -> list[Result]:
    """304 to a matching ETag, list and detail, and how many 304s the server answers per
    second against full answers to the same URL (the median of ``rounds`` interleaved rounds)."""
    results = []
    for endpoint in ENDPOINTS:
        listing = requests.get(portal.web_url + endpoint.api_url(), timeout=30)
        pk = listing.json()["results"][0]["id"]
        detail = requests.get(f"{portal.web_url}{endpoint.api}{pk}/", timeout=30)
        ok = True
        for response in (listing, detail):
            tag = response.headers.get("ETag", "")
            again = requests.get(response.url, headers={"If-None-Match": tag}, timeout=30)
            ok = ok and bool(tag) and again.status_code == 304 and again.content == b""
        results.append(
            Result(f"{endpoint.name}: list and detail answer 304 to their ETag", int(ok), "yes/no", "1", ok)
        )
    feedback = ENDPOINTS[0]
    url = portal.web_url + feedback.api_url()
    tag = requests.get(url, timeout=30).headers["ETag"]
    ratios = []
    for round_no in range(rounds):
        # Interleaved and swapped every round, as the reads above.
        order = (True, False) if round_no % 2 == 0 else (False, True)
        measured = {}
        for conditional in order:
            measured[conditional] = wrk(url, seconds, {"If-None-Match": tag} if conditional else None)
            label = "If-None-Match: its ETag" if conditional else "no If-None-Match"
            report(measured[conditional], f"{feedback.api_url()} ({label})")
        if not void((measured[True], measured[False])):
            ratios.append(measured[True].requests_per_s / measured[False].requests_per_s)
    results.append(
        Result(
            "feedback 304 answers / full answers, requests/s",
            round(statistics.median(ratios or [0.0]), 2),
            "x",
            "",
            True,
            spread(ratios or [0.0]),
        )
    )
    return results


def queries_results(small: dict[str, list[list[str]]], large: dict[str, list[list[str]]]) -> list[Result]:
    print("  SQL queries per request, cold cache / warm cache:")
    print(f"    {'URL':34} {'small data':>12} {'full data':>12}")
    for label, few in small.items():
        cells = [f"{len(c[0])} / {len(c[1])}" for c in (few, large[label])]
        print(f"    {label:34} {cells[0]:>12} {cells[1]:>12}")
    results = []
    for endpoint in ENDPOINTS:
        measured = [data[f"{endpoint.name}:{size}"] for data in (small, large) for size in PAGE_SIZES]
        # Constant on a cold cache (the target); warm, a large list's count comes from the cache.
        cold = {len(cold_and_warm[0]) for cold_and_warm in measured}
        worst = max(len(sqls) for cold_and_warm in measured for sqls in cold_and_warm)
        results.append(
            Result(
                f"{endpoint.name}: SQL queries/request, cold cache (3 sizes x 2 data sets)",
                worst,
                "queries",
                f"<= {TARGET_QUERIES}, constant",
                worst <= TARGET_QUERIES and len(cold) == 1,
            )
        )
    return results


def run(quick: bool) -> list[Result]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/install-system-deps.sh")
    seconds, rounds = (3, 2) if quick else (10, ROUNDS)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        base = Path(tmp)
        with (
            fleet_servers(base) as servers,
            fleet(servers, base, DJANGO_SETTINGS_MODULE="bench.settings") as portal,
        ):
            postgres, dbname = portal.servers.postgres, portal.database_url.rsplit("/", 1)[1]
            api_data.seed_feedback(postgres, dbname, 0, 1_000)
            api_data.seed_catalog(postgres, dbname, people=60, products=60, loose_images=60)
            small = count_queries(portal)
            spent = api_data.seed_feedback(postgres, dbname, 1_000, 100_000)
            spent += api_data.seed_catalog(
                postgres, dbname, people=19_940, products=19_940, loose_images=19_940
            )
            print(
                f"Data: 100,000 reviews, 20,000 people, 20,000 products, 60,000 images (COPY: {spent:.0f} s)"
            )
            large = count_queries(portal)
            results += queries_results(small, large)
            print(
                "  the API's queries at page_size 50, full data, cold cache, PostgreSQL's own execution time:"
            )
            for endpoint in ENDPOINTS:
                for sql in large[f"{endpoint.name}:50"][0]:
                    ms, plan = explain_ms(portal, sql)
                    print(f"    {ms:7.2f} ms  {plan:18} {sql[:100]}{'...' if len(sql) > 100 else ''}")

            portal.start_web(workers=WEB_WORKERS)
            print(
                f"\nLoad: wrk -t2 -c16 -d{seconds}s per run, {rounds} interleaved rounds, make serve"
                f" (gunicorn, {WEB_WORKERS} sync workers), cache {portal.env.get('CACHE_URL')};"
                " anonymous (reads are not throttled)"
            )
            check_responses(portal)
            for endpoint in ENDPOINTS:  # every worker's connection and caches warm
                for path in (endpoint.api_url(), endpoint.baseline):
                    for _ in range(WEB_WORKERS * 3):
                        requests.get(portal.web_url + path, timeout=30).raise_for_status()
            runs = load(portal, seconds, rounds)
            print()
            for endpoint in ENDPOINTS:
                every = runs[endpoint.name]
                pairs = [pair for pair in every if not void(pair)]
                voided = len(every) - len(pairs)
                ratios = [api.requests_per_s / baseline.requests_per_s for api, baseline in pairs] or [0.0]
                api_rps = [api.requests_per_s for api, _ in pairs] or [0.0]
                base_rps = [baseline.requests_per_s for _, baseline in pairs] or [0.0]
                # Errors fail the figure; answers slower than wrk's 2 s are left out
                # of its requests/s (so count against the ratio) and shown.
                failed = sum(api.non_2xx for api, _ in every)
                late = sum(timeouts(api) + timeouts(baseline) for api, baseline in every)
                ratio = statistics.median(ratios)
                print(
                    f"  {endpoint.name}: API {statistics.median(api_rps):.1f} req/s, baseline"
                    f" {statistics.median(base_rps):.1f} req/s (medians); API / baseline {ratio:.2f}"
                    f" ({spread(ratios)}) over {len(pairs)} rounds ({voided} void), target >= {endpoint.target};"
                    f" {failed} non-2xx, {late} over 2 s (both sides)"
                )
                results += [
                    Result(
                        f"{endpoint.name}: API page_size=50 requests/s",
                        round(statistics.median(api_rps), 1),
                        "req/s",
                        "",
                        True,
                        spread(api_rps, 0),
                    ),
                    Result(
                        f"{endpoint.name}: baseline requests/s",
                        round(statistics.median(base_rps), 1),
                        "req/s",
                        "",
                        True,
                        spread(base_rps, 0),
                    ),
                    Result(
                        f"{endpoint.name}: API / baseline requests/s",
                        round(ratio, 2),
                        "x",
                        f">= {endpoint.target}x",
                        ratio >= endpoint.target and failed == 0 and len(pairs) >= rounds,
                        spread(ratios),
                    ),
                ]
            print("\nConditional GET:")
            results += conditional_get(portal, seconds, rounds)
    return results


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
