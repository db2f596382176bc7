"""Health probes under load (SPEC §6): 200 load-balancer probers hitting
``/health/ready`` must leave page latency within 1.5x of no probes.

The portal runs as a fleet on loopback: ``make serve`` (gunicorn, 4 sync
workers) against PostgreSQL, Redis and S3, with demo content. One client
reads ``/reviews/`` one request after another and records each latency; in
the *with probes* rounds, 200 probers each ask ``/health/ready`` once a second
(a load balancer pool checking every node every second), which is 200
probes/s, sent by wrk. Rounds alternate without/with probes; the figure is the median over
rounds of (p50 with probes / p50 without), printed with its spread.

    .venv/bin/python -m bench.bench_probes [--quick]
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from bench import Result, fleet_servers, main, percentile

PROBERS = 200
TARGET = 1.5
PAGE = "/reviews/"


# Each wrk connection waits a second between its requests: 200 connections
# make 200 probes a second, as 200 independent checkers would.
PROBE_SCRIPT = """
function delay()
  return 1000
end
done = function(summary, latency, requests)
  io.write(string.format("probes=%d errors=%d\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout))
end
"""


class ProbeStorm:
    """``PROBERS`` wrk connections on the readiness probe (wrk is C: the load
    generator takes little of the CPU the server needs)."""

    def __init__(self, url: str, script: Path, seconds: float) -> None:
        self.command = [
            "wrk", "-t2", f"-c{PROBERS}", f"-d{math.ceil(seconds)}s", "--timeout", "10s", "-s", str(script), url,
        ]  # fmt: skip
        self.output = ""

    def __enter__(self) -> ProbeStorm:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)  # every connection has sent its first probe
        return self

    def __exit__(self, *exc: object) -> None:
        self.output, _ = self.process.communicate(timeout=120)

    def counts(self) -> tuple[int, int]:
        probes = int(re.search(r"probes=(\d+)", self.output)[1])  # type: ignore[index]
        errors = int(re.search(r"errors=(\d+)", self.output)[1])  # type: ignore[index]
        return probes, errors


def page_latencies(url: str, count: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times


def run(quick: bool) -> list[Result]:
    from tests.fleet import fleet

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/install-system-deps.sh")
    rounds, requests_per_round = (2, 40) if quick else (5, 120)
    with tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp:
        base = Path(tmp)
        with fleet_servers(base) as servers, fleet(servers, base) as portal:
            portal.manage("seed_demo")
            url = portal.start_web(workers=4)
            page_latencies(url + PAGE, 20)  # warm up every worker
            script = base / "probe.lua"
            script.write_text(PROBE_SCRIPT)
            ratios, quiet_p50, busy_p50 = [], [], []
            probes_per_second = []
            for n in range(rounds):
                quiet = page_latencies(url + PAGE, requests_per_round)
                storm_seconds = 2 + sum(quiet) * 1.5
                with ProbeStorm(url + "/health/ready", script, storm_seconds) as storm:
                    busy = page_latencies(url + PAGE, requests_per_round)
                probes, errors = storm.counts()
                probes_per_second.append(probes / math.ceil(storm_seconds))
                assert errors == 0, f"{errors} probes failed"
                q, b = percentile(quiet, 50), percentile(busy, 50)
                quiet_p50.append(q)
                busy_p50.append(b)
                ratios.append(b / q)
                print(
                    f"round {n + 1}: page p50 {q * 1000:.1f} ms quiet, {b * 1000:.1f} ms with "
                    f"{probes_per_second[-1]:.0f} probes/s (p95 {percentile(busy, 95) * 1000:.1f} ms) "
                    f"-> {b / q:.2f}x"
                )
    ratio = statistics.median(ratios)
    print(
        f"\n{PAGE} p50 with {PROBERS} probers / without: median {ratio:.2f}x "
        f"(spread {min(ratios):.2f}-{max(ratios):.2f}x over {rounds} interleaved rounds; "
        f"{statistics.median(probes_per_second):.0f} probes/s; gunicorn 4 sync workers)"
    )
    return [
        Result(
            f"probes: page p50 with {PROBERS} probers / without", ratio, "x", f"<= {TARGET}x", ratio <= TARGET
        ),
        Result("probes: quiet page p50", statistics.median(quiet_p50) * 1000, "ms", "", True),
    ]


if __name__ == "__main__":
    main(run, __doc__ or "")
