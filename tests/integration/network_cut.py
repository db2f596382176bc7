"""Run by ``test_database_network_postgres`` in a network namespace of its own
(``unshare --net``): a PostgreSQL on that namespace's loopback, the portal's
settings (from the environment) connected to it, and then the network cut as
a firewall that drops every packet cuts it. Prints what each request saw as
one line of JSON.

A stopped server process (SIGSTOP) would not do: its machine's kernel still
acknowledges what is sent and answers keepalives, so it is not the same
failure, and no connection option can tell it from a long query."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import django
from django.core.signals import request_finished, request_started
from django.db import connection

from tests.servers import PostgresServer

# A request still waiting after this long is stopped: it would have hung.
PATIENCE = 30
# Longer than the test's network timeout of 2 s, however it is counted.
LONG_QUERY_SECONDS = 5
# How far into a query of PATIENCE seconds the network is cut.
CUT_AFTER_SECONDS = 1


class Hung(Exception):
    pass


def _raise_hung(signum: int, frame: Any) -> None:
    raise Hung(f"no answer within {PATIENCE} s")


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def cut() -> None:
    """Every packet that reaches the loopback from now on is dropped as it
    arrives: sent, as far as its sender knows, and never answered, not even
    by a reset. They are handed to the sink, an interface that is down and
    drops what it is given: tc is all it takes, where iptables or nft may
    not be installed."""
    _run("tc", "qdisc", "add", "dev", "lo", "ingress")
    _run(
        "tc", "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "all",
        "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "sink",
    )  # fmt: skip


def uncut() -> None:
    _run("tc", "qdisc", "del", "dev", "lo", "ingress")


def request(sql: str, params: list[Any] | None = None) -> dict[str, Any]:
    """The first column of ``sql``, in a request as Django's handler makes
    one: the signals at its start and end keep the connection or close it
    (CONN_MAX_AGE), and its first query asks a kept connection whether it
    is usable (CONN_HEALTH_CHECKS)."""
    started = time.monotonic()
    answer, error = None, None
    request_started.send(sender=None)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            answer = cursor.fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - reported to the test, which judges it
        error = f"{type(exc).__name__}: {exc}".strip()
    finally:
        request_finished.send(sender=None)
    return {"answer": answer, "error": error, "seconds": time.monotonic() - started}


def main() -> None:
    _run("ip", "link", "set", "lo", "up")
    _run("ip", "link", "add", "sink", "type", "veth", "peer", "name", "sink-peer")
    seen: dict[str, Any] = {}
    with PostgresServer() as server:
        os.environ["DATABASE_URL"] = server.url
        django.setup()
        seen["long"] = request("SELECT pg_backend_pid() FROM pg_sleep(%s)", [LONG_QUERY_SECONDS])
        seen["kept"] = request("SELECT pg_backend_pid()")
        # What the kept connection was made with, as libpq has it.
        seen["parameters"] = connection.connection.info.get_parameters()
        signal.signal(signal.SIGALRM, _raise_hung)
        cut()
        signal.alarm(PATIENCE)
        try:
            seen["cut"] = request("SELECT 1")
        finally:
            signal.alarm(0)
            uncut()
        # Cut while the server works on a query: all the client sent has been
        # acknowledged, and it only waits for the answer.
        cutting = threading.Timer(CUT_AFTER_SECONDS, cut)
        cutting.start()
        signal.alarm(PATIENCE)
        try:
            seen["waiting"] = request("SELECT pg_backend_pid() FROM pg_sleep(%s)", [PATIENCE])
        finally:
            signal.alarm(0)
            cutting.join()
            uncut()
    sys.stdout.write(json.dumps(seen) + "\n")


if __name__ == "__main__":
    main()
