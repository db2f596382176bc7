"""Bulk import (SPEC §9.4): 10,000 lab-format review files in at most 10 s.

Writes 10,000 distinct review files (line 1 title, line 2 name, line 3 date,
then the text; one in seven with CRLF line ends) into a temporary folder and
times ``manage.py import_feedback DIR`` as a whole command, interpreter start
included, on the embedded SQLite set-up, then against PostgreSQL: ``RUNS``
timed runs each, every one into a fresh, migrated database (a fresh
``PORTAL_VAR_DIR``, or a new PostgreSQL database), the two set-ups taking
turns. The figure is the median with its spread (min-max); the database is
migrated before the clock starts. The first round also shows what starting
the command costs (the same command on an empty folder) and a second import
of the same folder (every file a duplicate).

Where the time went, and what the command does about it: Django's start-up
no longer imports every admin module (and, through them, the API, DRF and
the S3 client), the command runs only the model and database checks (not
the URL check, which loads every view), and the files go in one transaction,
checked field by field for what a file supplies, in batches that each ask
once which fingerprints are already held.

    .venv/bin/python -m bench.bench_import [--quick] [--report-only]
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, Result, load_average, main, spread

FILES = 10_000
RUNS = 5
TARGET_SECONDS = 10.0
# The variables that move the portal off its embedded set-up.
SERVICE_VARS = (
    "DATABASE_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "EMAIL_URL",
)
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
TITLES = ("Great service", "Fresh fruit", "Good value", "Could be riper", "Slow reply", "Lovely")
NAMES = ("John", "Katie", "Tom", "Sara", "Anonymous", "Mei", "Kofi", "Priya", "Jonas", "Ada")


def write_reviews(folder: Path, count: int = FILES, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = dt.date(2020, 1, 1)
    for i in range(count):
        words = rng.choices(WORDS, k=rng.randint(8, 60))
        text = " ".join(words).capitalize() + f". Order {i}."
        lines = [
            f"{rng.choice(TITLES)} #{i}",
            rng.choice(NAMES),
            (start + dt.timedelta(days=rng.randint(0, 1800))).isoformat(),
            text,
        ]
        newline = "\r\n" if i % 7 == 0 else "\n"
        (folder / f"{i:05}.txt").write_bytes((newline.join(lines) + newline).encode())


def portal_env(var_dir: Path, database_url: str | None = None) -> dict[str, str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="bench-secret-" + "x" * 40,
        PORTAL_VAR_DIR=str(var_dir),
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return result


def time_import(env: dict[str, str], folder: Path) -> tuple[float, str]:
    manage(env, "migrate", "--no-input", "--verbosity", "0")
    started = time.perf_counter()
    out = manage(env, "import_feedback", str(folder))
    return time.perf_counter() - started, out.stdout.strip()


def startup_seconds(env: dict[str, str], empty: Path) -> float:
    """What the command costs before it reads a file: interpreter, Django set-up
    and the command's checks, timed as the same command on an empty folder."""
    started = time.perf_counter()
    manage(env, "import_feedback", str(empty))
    return time.perf_counter() - started


def run(quick: bool) -> list[Result]:
    results: list[Result] = []
    rounds = 2 if quick else RUNS
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        base = Path(tmp)
        folder = base / "reviews"
        folder.mkdir()
        write_reviews(folder)
        empty = base / "empty"
        empty.mkdir()
        print(f"{FILES} review files written to {folder} ({sum(1 for _ in folder.iterdir())} files)")

        labels = ["SQLite (embedded)"]
        postgres = None
        if not quick:
            from tests.servers import PostgresServer

            postgres = PostgresServer()
            postgres.start()
            labels.append("PostgreSQL")
        times: dict[str, list[float]] = {label: [] for label in labels}
        try:
            for round_no in range(rounds):
                print(f"\nround {round_no + 1}/{rounds}; {load_average()}")
                for label in labels:
                    url = None
                    if postgres is not None and label == "PostgreSQL":
                        name = f"bench_import_{round_no}"
                        with postgres.connect() as conn:
                            conn.execute(f'CREATE DATABASE "{name}"')
                        url = postgres.url_for(name)
                    env = portal_env(base / f"var-{label[:6]}-{round_no}", url)
                    seconds, summary = time_import(env, folder)
                    times[label].append(seconds)
                    print(f"  {label}: {seconds:.2f} s, {FILES / seconds:,.0f} files/s -> {summary}")
                    if round_no == 0:
                        overhead = startup_seconds(env, empty)
                        again, summary_again = time_import(env, folder)
                        print(
                            f"    of which ~{overhead:.2f} s is starting the command (on an empty folder);"
                            f" the same folder again: {again:.2f} s -> {summary_again}"
                        )
        finally:
            if postgres is not None:
                postgres.close()
        for label, runs in times.items():
            median = statistics.median(runs)
            print(f"\n{label}: median {median:.2f} s over {len(runs)} runs ({spread(runs)} s)")
            results.append(
                Result(
                    f"import 10,000 review files, {label}",
                    round(median, 2),
                    "s",
                    f"<= {TARGET_SECONDS:g} s",
                    median <= TARGET_SECONDS,
                    spread(runs),
                )
            )
    return results


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
