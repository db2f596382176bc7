"""A kept PostgreSQL connection whose network stops carrying packets (a
firewall dropping them, the server's machine frozen or gone) fails the next
request within DATABASE_NETWORK_TIMEOUT and DATABASE_CONNECT_TIMEOUT, instead
of holding its worker for the kernel's quarter of an hour; a query longer than
that bound, on a network that carries it, is left to finish.

The network is cut for real: the server and the portal's settings run in a
network namespace of their own (tests/integration/network_cut.py), whose
loopback then drops every packet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.integration.network_cut import LONG_QUERY_SECONDS
from tests.processes import ROOT, portal_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NETWORK_TIMEOUT = 2
CONNECT_TIMEOUT = 2


def _why_not() -> str | None:
    """Why this machine cannot cut a network of its own, if it cannot."""
    if os.geteuid() != 0:
        return "a network namespace with its own packet rules needs root"
    for tool in ("unshare", "ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    tried = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True, check=False)
    if tried.returncode != 0:
        return f"no network namespace: {tried.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What each request of network_cut.py saw."""
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    env = portal_env(
        tmp_path_factory.mktemp("var"),
        DATABASE_NETWORK_TIMEOUT=str(NETWORK_TIMEOUT),
        DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
    )
    result = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-m", "tests.integration.network_cut"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return seen


def test_a_request_on_a_kept_connection_whose_network_is_cut_fails_within_the_bounds(
    seen: dict[str, Any],
) -> None:
    assert seen["kept"]["answer"] == seen["long"]["answer"]  # the connection was kept
    assert seen["parameters"]["tcp_user_timeout"] == str(NETWORK_TIMEOUT * 1000), seen["parameters"]
    assert seen["parameters"]["connect_timeout"] == str(CONNECT_TIMEOUT), seen["parameters"]
    # Django's check of the kept connection gives up on the network timeout,
    # then connecting afresh on the connect timeout, in libpq's words: a
    # request held past either is stopped, and says so (Hung).
    assert seen["cut"]["error"] == "OperationalError: connection timeout expired", seen["cut"]


def test_a_query_waiting_for_its_answer_when_the_network_is_cut_fails_within_the_bound(
    seen: dict[str, Any],
) -> None:
    """The keepalives find it: probes go unanswered once the connection has
    heard nothing for the network timeout (twice that where the system has
    no tcp_user_timeout)."""
    parameters = seen["parameters"]
    assert (parameters["keepalives"], parameters["keepalives_idle"]) == ("1", str(NETWORK_TIMEOUT)), (
        parameters
    )
    # The kernel gave up on the connection (ETIMEDOUT), as the keepalives and
    # tcp_user_timeout have it: a query held longer is stopped, and says so (Hung).
    waiting = seen["waiting"]
    assert waiting["error"] is not None
    assert waiting["error"].startswith("OperationalError"), waiting
    assert waiting["error"].endswith("could not receive data from server: Connection timed out"), waiting


def test_a_query_longer_than_the_network_timeout_is_not_cut(seen: dict[str, Any]) -> None:
    long = seen["long"]
    assert long["error"] is None
    assert long["seconds"] >= LONG_QUERY_SECONDS > 2 * NETWORK_TIMEOUT
