"""Benchmarks of the portal (``make bench`` runs ``python -m bench``).

Every benchmark prints ratios measured side by side in one run, never asserts
timings; each module exposes ``run(quick) -> list[Result]`` and runs alone with
``.venv/bin/python -m bench.bench_<name> [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fleet import Servers

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Result:
    """One measured figure and the target it is held against."""

    name: str
    value: float
    unit: str
    target: str  # human-readable, e.g. "<= 2.0x"; empty for a figure shown for information
    met: bool
    # How far the rounds the value is the median of lay apart, e.g. "0.68-0.74".
    spread: str = ""

    def line(self) -> str:
        value = f"{self.value:.3g}" if not float(self.value).is_integer() else f"{self.value:.0f}"
        verdict = ("met" if self.met else "MISSED") if self.target else "(information)"
        return f"{self.name:58} {value:>9} {self.spread or '-':>17} {self.unit:<7} {self.target or '-':<16} {verdict}"


def header() -> str:
    return f"{'figure':58} {'value':>9} {'spread (min-max)':>17} {'unit':<7} {'target':<16} verdict"


def spread(values: Sequence[float], digits: int = 2) -> str:
    """The range of a figure's rounds, for the table beside its median."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def print_results(results: Sequence[Result]) -> None:
    print(header())
    for result in results:
        print(result.line())


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def write_results(path: str, results: Sequence[Result]) -> None:
    Path(path).write_text(json.dumps([asdict(r) for r in results]))


def read_results(path: Path) -> list[Result]:
    return [Result(**item) for item in json.loads(path.read_text())]


@contextlib.contextmanager
def fleet_servers(base: Path) -> Iterator[Servers]:
    """PostgreSQL, Redis, S3 and SMTP on loopback, as the integration suite starts them."""
    from tests.fleet import running_servers

    with running_servers(base) as servers:
        yield servers


def missed(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if r.target and not r.met]


def main(run: Callable[[bool], list[Result]], description: str) -> None:
    """Command line of one benchmark module: ``--quick``, ``--results FILE``,
    ``--report-only``. Exits 1 when a target is missed, unless reporting only
    or writing results for ``python -m bench``, which judges them itself."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    parser.add_argument("--results", help="also write the results as JSON to this file")
    parser.add_argument("--report-only", action="store_true", help="exit 0 even when a target is missed")
    args = parser.parse_args()
    print(f"At start: {load_average()}")
    results = run(args.quick)
    print(f"\nAt end: {load_average()}")
    print_results(results)
    if args.results:
        write_results(args.results, results)
    elif missed(results) and not args.report_only:
        sys.exit(1)
