"""A worker that loses Redis while it runs a task reconnects and goes on
consuming, with the portal's own configuration (its transport, its queues,
the broadcast one among them)."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection, Consumer, Exchange, Queue

from portal import broker
from tests.servers import CeleryWorker, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent


def _wait_while_running(worker: CeleryWorker, pattern: str, *, timeout: float = 60) -> bool:
    """Whether ``pattern`` showed in the worker's log before the worker ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = worker.running
        if re.search(pattern, worker.log_since_start()):
            return True
        if not running:
            return False
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("concurrency", [1, 2])  # with 2, a BRPOP is pending as well
def test_a_worker_that_loses_redis_mid_task_reconnects_and_goes_on(tmp_path: Path, concurrency: int) -> None:
    with RedisServer(persistent=True, base_dir=tmp_path) as redis:
        env = {
            "DJANGO_SECRET_KEY": "x" * 50,
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "CELERY_BROKER_URL": redis.url,
        }
        sender = Celery(broker=redis.url)
        with CeleryWorker(
            "portal",
            env=env,
            cwd=ROOT,
            concurrency=concurrency,
            extra_args=("--without-mingle", "--without-gossip", "--include=tests.portal.held_tasks"),
            base_dir=tmp_path,
        ) as worker:
            assert "exchange=hosts(fanout)" in worker.log_since_start()  # beat's per-host runs
            flag = tmp_path / "finish"
            sender.send_task("tests.portal.held_tasks.hold", args=[str(flag)], queue="celery")
            worker.wait_for_log("tests.portal.held_tasks.hold[")
            redis.stop()
            assert _wait_while_running(worker, "Connection to broker lost"), worker.log_since_start()[-3000:]
            redis.start()
            flag.touch()
            sender.send_task("tests.portal.held_tasks.ping", queue="celery")
            reconnected = _wait_while_running(worker, r"held_tasks\.ping\[[0-9a-f-]+\] succeeded")
            assert reconnected, worker.log_since_start()[-3000:]
            assert worker.running
            assert "Unrecoverable error" not in worker.log_since_start()
        sender.close()


def test_a_channel_consuming_a_broadcast_queue_closes_at_once_when_redis_is_gone(tmp_path: Path) -> None:
    with (
        RedisServer(base_dir=tmp_path) as redis,
        Connection(redis.url, transport=broker.transport_for(redis.url)) as conn,
    ):
        channel = conn.channel()
        queues = [
            Queue("bcast.test", Exchange("hosts", type="fanout"), auto_delete=True),
            Queue("celery", Exchange("celery"), "celery"),
        ]
        Consumer(channel, queues, callbacks=[lambda body, message: None]).consume()
        with contextlib.suppress(socket.timeout):
            conn.drain_events(timeout=0.2)  # leaves a BRPOP waiting for its reply
        redis.stop()
        # Redis keeps the broadcast binding and the BRPOP goes unanswered: the
        # channel is closed all the same, the first time it is asked.
        channel.close()
        assert channel.closed


def test_the_portal_reaches_redis_through_its_own_transport_and_anything_else_as_named() -> None:
    assert broker.transport_for("redis://redis.internal:6379/0") == "portal.broker:Transport"
    assert broker.transport_for("rediss://redis.internal:6380/0") == "portal.broker:Transport"
    assert broker.transport_for("memory://localhost/") is None
    assert broker.transport_for("amqp://guest@rabbit//") is None
