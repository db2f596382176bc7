"""``manage.py check --deploy`` with the production settings docs/deploy.md
gives: nothing to report but the checks it names as silenced on purpose."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import manage_py

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def _check_deploy(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_", "DATABASE_", "AWS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_VAR_DIR=str(tmp_path),
        DJANGO_HTTPS="true",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL="postgres://portal:secret@db.internal:5432/portal",
        **extra,
    )
    return manage_py("check", "--deploy", "--fail-level", "WARNING", env=env)


@pytest.mark.slow
def test_check_deploy_reports_nothing_with_the_production_settings(tmp_path: Path) -> None:
    result = _check_deploy(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no issues ({len(settings.SILENCED_SYSTEM_CHECKS)} silenced)" in result.stdout


@pytest.mark.slow
def test_check_deploy_warns_of_the_choices_the_deploy_guide_says_it_warns_of(tmp_path: Path) -> None:
    result = _check_deploy(tmp_path, DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_HSTS_SECONDS="0")

    assert result.returncode == 1
    warned = {
        line.split("(", 1)[1].split(")", 1)[0] for line in result.stderr.splitlines() if "(security." in line
    }
    assert warned == {"security.W008", "security.W004"}
    assert all(f"`{check}`" in DEPLOY for check in warned)


def test_every_check_silenced_is_explained_in_the_deploy_guide() -> None:
    assert settings.SILENCED_SYSTEM_CHECKS
    for check in settings.SILENCED_SYSTEM_CHECKS:
        assert f"`{check}`" in DEPLOY, check
