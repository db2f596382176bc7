"""`make bench` (python -m bench) as a contract, with stand-in benchmarks that
measure nothing: it ends with one table of figures, targets and verdicts, and
exits 1 on a missed target unless --report-only, and on a benchmark that did
not complete whatever the flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import __main__ as runner

STAND_IN = """
import json, sys
figures = {figures}
path = sys.argv[sys.argv.index("--results") + 1]
with open(path, "w") as out:
    json.dump(figures, out)
sys.exit({code})
"""


def _figure(name: str, met: bool) -> dict[str, object]:
    return {"name": name, "value": 0.5, "unit": "x", "target": "<= 0.8x", "met": met, "spread": "0.4-0.6"}


@pytest.fixture
def benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two stand-in benchmarks: ``pipeline`` meets its target, ``api_reads``
    meets the one its test writes into it."""
    scripts = {"pipeline": tmp_path / "pipeline.py", "api_reads": tmp_path / "api_reads.py"}
    scripts["pipeline"].write_text(STAND_IN.format(figures=[_figure("pipeline speed", True)], code=0))
    scripts["api_reads"].write_text(STAND_IN.format(figures=[_figure("api reads", True)], code=0))
    monkeypatch.setattr(runner, "MODULES", {name: str(path) for name, path in scripts.items()})
    return scripts


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["bench", *args])
    try:
        runner.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    return code, capsys.readouterr().out


def _summary(out: str) -> list[str]:
    return out.split(f" summary {'=' * 30}", 1)[1].strip().splitlines()


def test_every_target_met_exits_zero_after_one_table(
    benchmarks: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(monkeypatch, capsys)
    assert code == 0
    summary = _summary(out)
    assert "load average" in summary[0]
    header = next(line for line in summary if line.startswith("figure"))
    assert header.split() == ["figure", "value", "spread", "(min-max)", "unit", "target", "verdict"]
    rows = [line.split() for line in summary if line.startswith(("pipeline speed", "api reads"))]
    assert [row[-1] for row in rows] == ["met", "met"]
    assert summary[-1] == "2 of 2 targets met"


def test_a_missed_target_exits_one_unless_reporting_only(
    benchmarks: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmarks["api_reads"].write_text(STAND_IN.format(figures=[_figure("api reads", False)], code=0))
    code, out = _run(monkeypatch, capsys)
    assert code == 1
    assert any(line.startswith("api reads") and line.endswith("MISSED") for line in _summary(out))
    assert _summary(out)[-1] == "1 of 2 targets met; missed: api reads"

    code, out = _run(monkeypatch, capsys, "--report-only")
    assert code == 0
    assert _summary(out)[-1] == "1 of 2 targets met; missed: api reads"


def test_a_benchmark_that_did_not_complete_fails_the_run_even_reporting_only(
    benchmarks: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmarks["pipeline"].write_text(STAND_IN.format(figures=json.dumps([]), code=3))
    code, out = _run(monkeypatch, capsys, "--report-only")
    assert code == 1
    assert "[pipeline: " in out
    assert ", exit 3]" in out
    assert _summary(out)[-1] == "did not complete: pipeline"
