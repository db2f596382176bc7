"""The two commands the README opens with, what CI runs, and the containers:
each runs a make target the tests run (`make serve`, `make worker`, `make
migrate`), so what is deployed is what is tested; of the workers, exactly one
runs the beat schedule."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _make_dry_run(*args: str) -> str:
    """What ``make ARGS`` would run (the venv taken as installed)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.runtime", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_opens_with_make_run_and_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```\w*\n(.*?)```", readme, re.S)
    assert block, "no command block"
    headings = [line for line in readme[: block.start()].splitlines() if line.startswith("#")]
    assert headings == ["# The portal"]  # the title, a paragraph, then the commands
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


def test_ci_runs_make_test_and_nothing_else() -> None:
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]


def _portal_services() -> dict[str, Any]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {name: service for name, service in services.items() if "build" in service}


def test_every_container_of_the_portal_runs_a_make_target() -> None:
    services = _portal_services()
    assert set(services) == {"migrate", "web", "worker-beat", "worker"}
    for name, service in services.items():
        command = service["command"]
        assert command[0] == "make", f"{name} runs {command}"
        assert _make_dry_run(*command[1:]).strip(), name
    [cmd] = re.findall(r"^CMD (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert json.loads(cmd) == ["make", "serve"]


def test_of_the_workers_one_runs_the_beat_schedule_and_the_others_do_not() -> None:
    services = _portal_services()
    runs = {name: _make_dry_run(*services[name]["command"][1:]) for name in ("worker-beat", "worker")}
    for run in runs.values():
        assert ".venv/bin/celery -A portal worker " in run
        assert "--concurrency=${CELERY_CONCURRENCY:-2}" in run
    assert "--beat" in runs["worker-beat"]
    assert "--beat" not in runs["worker"]


def _serve_started(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """``make serve`` past collecting the static files, gunicorn's command
    echoed rather than run."""
    collect, _, start = _make_dry_run("serve").partition("\n")
    assert "collectstatic" in collect
    assert ".venv/bin/gunicorn portal.wsgi:application" in start
    read = {name: value for name, value in os.environ.items() if not name.startswith(("PORTAL_", "DJANGO_"))}
    return subprocess.run(
        ["sh", "-c", start.replace(".venv/bin/gunicorn", "echo")],
        cwd=ROOT,
        env={
            **read,
            "DJANGO_SECRET_KEY": "a-key-for-the-test",
            "PORTAL_VAR_DIR": str(tmp_path),
            **environment,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_serve_gives_gunicorn_the_web_timeout_of_the_settings(tmp_path: Path) -> None:
    assert " --timeout 60 " in _serve_started(tmp_path).stdout
    started = _serve_started(
        tmp_path, PORTAL_WEB_TIMEOUT_SECONDS="90", PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS="60"
    )
    assert started.returncode == 0, started.stderr
    assert " --timeout 90 " in started.stdout


def test_make_serve_starts_no_gunicorn_whose_timeout_cuts_a_rendition_on_demand(tmp_path: Path) -> None:
    started = _serve_started(tmp_path, PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS="45")
    assert started.returncode != 0
    assert "portal.wsgi" not in started.stdout
    assert (
        "must be less than PORTAL_WEB_TIMEOUT_SECONDS (60), after which the web server kills its worker; "
        "it is 2 + 45 + 15 = 62"
    ) in started.stderr
