"""A task that fails on a real Celery worker is mailed to ADMINS: the worker
takes the logging over for its own output, and the mail must survive that."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery

from tests.servers import CeleryWorker, RedisServer, ServerError, SMTPServer

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN = "ops@example.com"


def test_a_task_that_fails_on_a_worker_is_mailed_to_the_admins(tmp_path: Path) -> None:
    with RedisServer(base_dir=tmp_path) as redis, SMTPServer(base_dir=tmp_path) as smtp:
        env: dict[str, str | None] = {
            "CELERY_BROKER_URL": redis.url,
            "EMAIL_URL": smtp.url,
            "DJANGO_ADMINS": ADMIN,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "a-secret-key-for-this-worker-alone-" * 2,
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": None,
        }
        client = Celery("client", broker=redis.url)
        with CeleryWorker("portal", env=env, cwd=ROOT, base_dir=tmp_path) as worker:
            # An id that is no id: the task fails before it can look the image up.
            client.send_task("uploads.tasks.process_image", args=["not-an-id"])
            try:
                [message] = smtp.wait_for(1, timeout=30)
            except ServerError:
                pytest.fail("nothing mailed; the worker's log:\n" + worker.log_since_start()[-3000:])
        client.close()
    assert message.envelope_to == [ADMIN]
    assert "uploads.tasks.process_image" in message["Subject"]
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert "ValueError" in body
    assert "in process_image" in body  # the traceback
