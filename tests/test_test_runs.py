"""A test run keeps to its own cache entries: pointed at a Redis (CACHE_URL),
it neither empties the database's other keys nor leaves its own behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.servers import RedisServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
# Cases that share one account's lockout: each fails unless the one before
# it was cleared away.
CHILD = "tests/security/test_surface.py::test_another_spelling_of_the_username_neither_escapes_nor_resets_the_lockout"


def test_a_run_on_redis_clears_its_own_keys_and_no_others() -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url_for(1))
        client.set(":1:admin-login:203.0.113.9:someone", "the site's lockout")
        env = {**os.environ, "CACHE_URL": server.url_for(1)}
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", CHILD],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "3 passed" in run.stdout
        assert client.get(":1:admin-login:203.0.113.9:someone") == b"the site's lockout"
        assert client.keys("test-run-*") == []
