"""Run a management command with every decode counted (test helper, run as a
script): ``python tests/uploads/batch_probe.py REPORT COMMAND [ARGS...]``.

Each call of ``uploads.sandbox.process`` (one decoding child each) is counted
while under way; the first two wait for each other (up to BATCH_PROBE_WAIT_SECONDS, 60 by
default), so a
command that decodes two images at once is seen doing so however fast each
decode is, and one that decodes one at a time is seen with one under way.
REPORT gets ``{"peak": N, "calls": M}``; REPORT with ``.both`` appended is
created once two decodes are under way at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402 - after the project is on the path
from django.core.management import execute_from_command_line  # noqa: E402

from uploads import sandbox  # noqa: E402 - knows nothing of Django: safe before set-up

WAIT_SECONDS = float(os.environ.get("BATCH_PROBE_WAIT_SECONDS", "60"))


class Probe:
    def __init__(self, report: Path) -> None:
        self.report = report
        self.lock = threading.Lock()
        self.now = self.peak = self.calls = 0
        self.both = threading.Barrier(2, action=lambda: Path(f"{report}.both").touch())
        self.real = sandbox.process

    def process(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
            first_two = self.calls <= 2
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            # Alone past the wait: one at a time.
            if first_two:
                with contextlib.suppress(threading.BrokenBarrierError):
                    self.both.wait(WAIT_SECONDS)
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1

    def write(self) -> None:
        self.report.write_text(json.dumps({"peak": self.peak, "calls": self.calls}))


def main() -> None:
    probe = Probe(Path(sys.argv[1]))
    django.setup()
    sandbox.process = probe.process  # type: ignore[assignment]
    try:
        execute_from_command_line(["manage.py", *sys.argv[2:]])
    finally:
        probe.write()


if __name__ == "__main__":
    main()
