"""Run every benchmark, one after another, and print a summary of every ratio.

    .venv/bin/python -m bench [--only NAME] [--quick] [--report-only]

Ends with one table: each figure, its target, met or missed. Exits 1 when a
target is missed or a benchmark did not complete, unless ``--report-only``
(then only a benchmark that did not complete fails the run).

Each benchmark runs in its own interpreter: the image pipeline's memory figures
stay clean, and each Django set-up (embedded, or a fleet's) is its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, Result, load_average, missed, print_results, read_results

MODULES = {
    "pipeline": "bench/bench_pipeline.py",
    "upload_ack": "bench.bench_upload_ack",
    "api_reads": "bench.bench_api_reads",
    "import": "bench.bench_import",
    "pages": "bench.bench_pages",
    "probes": "bench.bench_probes",
    "ondemand": "bench.bench_ondemand",
    "batch": "bench.bench_batch",
}


def run_module(name: str, quick: bool, results_file: Path) -> tuple[int, list[Result]]:
    module = MODULES[name]
    runner = [module] if module.endswith(".py") else ["-m", module]
    command = [sys.executable, *runner, "--results", str(results_file)]
    code = subprocess.run([*command, *(["--quick"] if quick else [])], cwd=ROOT, check=False).returncode
    return code, read_results(results_file) if code == 0 and results_file.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MODULES), action="append", help="run this one (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="exit 0 when targets are missed (not when a benchmark fails)",
    )
    args = parser.parse_args()
    names = [n for n in MODULES if not args.only or n in args.only]

    started = time.monotonic()
    print(f"Benchmarks: {', '.join(names)}{' (quick)' if args.quick else ''}; {load_average()}")
    summary: list[Result] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            print(f"\n{'=' * 30} {name} {'=' * 30}", flush=True)
            began = time.monotonic()
            code, results = run_module(name, args.quick, Path(tmp) / f"{name}.json")
            print(f"[{name}: {time.monotonic() - began:.0f} s, exit {code}]", flush=True)
            if code != 0 or not results:
                failed.append(name)
            summary += results

    print(f"\n{'=' * 30} summary {'=' * 30}")
    print(f"{time.monotonic() - started:.0f} s in all; at the end: {load_average()}\n")
    print_results(summary)
    targets = [r for r in summary if r.target]
    misses = missed(summary)
    print(f"\n{len(targets) - len(misses)} of {len(targets)} targets met", end="")
    print(f"; missed: {', '.join(r.name for r in misses)}" if misses else "")
    if failed:
        print(f"did not complete: {', '.join(failed)}")
        sys.exit(1)
    if misses and not args.report_only:
        sys.exit(1)


if __name__ == "__main__":
    main()
