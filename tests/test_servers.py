"""The loopback servers of tests/servers.py really run, answer and recover."""

from __future__ import annotations

import signal
import smtplib
import socket
import textwrap
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.servers import (
    CeleryWorker,
    PostgresServer,
    RedisServer,
    S3Server,
    ServerError,
    SMTPServer,
    free_port,
)

pytestmark = pytest.mark.integration


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


# --- ports ------------------------------------------------------------------


def test_free_port_leaves_room_for_offsets() -> None:
    port = free_port((0, 10000))
    assert 10000 <= port < 55536
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", candidate))
    assert free_port() != port


# --- PostgreSQL ---------------------------------------------------------------


def test_postgres_url_works_with_psycopg_and_django_environ(pg: PostgresServer) -> None:
    import environ
    import psycopg

    with psycopg.connect(pg.url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_database(), current_user").fetchone() == (
            pg.dbname,
            pg.user,
        )
    config = environ.Env.db_url_config(pg.url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("127.0.0.1", pg.port, pg.dbname)
    assert pg.port != 5432


def test_postgres_rejects_a_wrong_password(pg: PostgresServer) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.url.replace(pg.password, "wrong"), connect_timeout=5)


def test_postgres_user_can_create_databases(pg: PostgresServer) -> None:
    # Django's test runner creates and drops test_<name> itself.
    with pg.connect() as conn:
        conn.execute('create database "test_portal_probe"')
    with pg.connect(dbname="test_portal_probe") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pg.connect() as conn:
        conn.execute('drop database "test_portal_probe"')


def test_postgres_restarts_on_the_same_port_with_its_data(pg: PostgresServer) -> None:
    import psycopg

    with pg.connect() as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('still here')")
    port = pg.port
    pg.stop()
    assert _refused(port)
    with pytest.raises(psycopg.OperationalError):
        pg.connect(connect_timeout=2)
    pg.start()
    assert pg.port == port
    with pg.connect() as conn:
        assert conn.execute("select v from kept").fetchall() == [("still here",)]
        conn.execute("drop table kept")


# --- Redis --------------------------------------------------------------------


def test_redis_goes_down_and_comes_back_on_the_same_port() -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with RedisServer() as server:
        # redis-py retries with a growing backoff by default; fail at once.
        client = server.client(socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        assert client.ping() is True
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        port = server.port
        server.stop()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert server.port == port
        assert client.ping() is True


def test_redis_persistent_keeps_keys_across_a_restart() -> None:
    with RedisServer(persistent=True) as server:
        server.client().set("k", "v")
        server.stop()
        server.start()
        assert server.client().get("k") == b"v"


def test_redis_is_private_to_the_test(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis_server.dir.is_dir()
    assert redis_server.ping()


# --- S3 -----------------------------------------------------------------------


def test_s3_keeps_content_type_and_cache_control(s3: S3Server) -> None:
    bucket = s3.create_bucket("headers")
    assert s3.create_bucket("headers") == bucket  # idempotent
    client = s3.client()
    client.put_object(
        Bucket=bucket,
        Key="img/a.webp",
        Body=b"RIFF....WEBP",
        ContentType="image/webp",
        CacheControl="public, max-age=31536000, immutable",
    )
    head = client.head_object(Bucket=bucket, Key="img/a.webp")
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == 12
    assert s3.region == "us-east-1"


def test_s3_rejects_unknown_credentials(s3: S3Server) -> None:
    import boto3
    from botocore.exceptions import ClientError

    stranger = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id="nobody",
        aws_secret_access_key="nothing",
        region_name=s3.region,
    )
    with pytest.raises(ClientError):
        stranger.list_buckets()


def test_s3_goes_down_and_comes_back_with_its_objects(s3: S3Server) -> None:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = s3.create_bucket("survivors")
    client = s3.client(config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    client.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept", ContentType="text/plain")
    port = s3.port
    s3.stop()
    assert _refused(port)
    with pytest.raises((BotoCoreError, ClientError)):
        client.head_object(Bucket=bucket, Key="kept.txt")
    s3.start()
    assert s3.port == port
    obj = client.get_object(Bucket=bucket, Key="kept.txt")
    assert obj["Body"].read() == b"kept"
    assert obj["ContentType"] == "text/plain"
    client.put_object(Bucket=bucket, Key="after.txt", Body=b"after")
    assert client.get_object(Bucket=bucket, Key="after.txt")["Body"].read() == b"after"


# --- SMTP ---------------------------------------------------------------------


def _message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Portal <noreply@example.com>"
    msg["To"] = "alice@example.com"
    msg["Cc"] = "bob@example.com"
    msg["Subject"] = subject
    msg.set_content("Grüße aus dem Test\n")
    return msg


def test_smtp_collects_parsed_messages_with_their_envelope(smtp: SMTPServer) -> None:
    assert smtp.url == f"smtp://127.0.0.1:{smtp.port}"
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.send_message(_message("Hello"), to_addrs=["alice@example.com", "hidden@example.com"])
    [received] = smtp.wait_for(1, timeout=5)
    assert isinstance(received, EmailMessage)
    assert received["Subject"] == "Hello"
    assert received.get_content() == "Grüße aus dem Test\n"
    assert received.envelope_from == "noreply@example.com"
    assert received.envelope_to == ["alice@example.com", "hidden@example.com"]
    assert (smtp.dir / "0000.eml").exists()
    smtp.clear()
    assert smtp.messages == []


def test_smtp_wait_for_times_out_clearly(smtp: SMTPServer) -> None:
    with pytest.raises(ServerError, match="0 of 1 messages"):
        smtp.wait_for(1, timeout=0.2)


def test_smtp_with_credentials_requires_login() -> None:
    with SMTPServer(username="mailer", password="s3cret") as server:
        assert server.url == f"smtp://mailer:s3cret@127.0.0.1:{server.port}"
        with (
            smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login("mailer", "wrong")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"):
                client.send_message(_message("Anonymous"))
            client.login("mailer", "s3cret")
            client.send_message(_message("Authenticated"))
        assert server.wait_for(1)[0]["Subject"] == "Authenticated"


def test_smtp_goes_down_and_comes_back(smtp: SMTPServer) -> None:
    port = smtp.port
    smtp.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)
    smtp.start()
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(_message("Back"))
    assert smtp.wait_for(1)[0]["Subject"] == "Back"


# --- Celery -------------------------------------------------------------------

TASKS = textwrap.dedent(
    """
    import os

    from celery import Celery

    app = Celery("probe", broker=os.environ["PROBE_BROKER"], backend=os.environ["PROBE_BACKEND"])


    @app.task(name="probe.add")
    def add(a, b):
        return {"sum": a + b, "pid": os.getpid(), "flag": os.environ.get("PROBE_FLAG")}
    """
)


def _group_alive(pgid: int) -> list[int]:
    """Members of process group ``pgid`` that are neither gone nor zombies."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            alive.append(int(stat.parent.name))
    return alive


def test_celery_worker_round_trip_and_crash(redis_server: RedisServer, tmp_path: Path) -> None:
    from celery import Celery

    (tmp_path / "probe_tasks.py").write_text(TASKS)
    env: dict[str, str | None] = {
        # pytest-django exports it, and celery would then set up the portal.
        "DJANGO_SETTINGS_MODULE": None,
        "PROBE_BROKER": redis_server.url_for(2),
        "PROBE_BACKEND": redis_server.url_for(3),
        "PROBE_FLAG": "from-env",
    }
    client = Celery("client", broker=redis_server.url_for(2), backend=redis_server.url_for(3))
    with CeleryWorker("probe_tasks", queues=["probe"], env=env, cwd=tmp_path) as worker:
        first_pid = worker.pid
        assert first_pid is not None
        result = client.send_task("probe.add", args=(2, 3), queue="probe").get(timeout=30)
        assert result["sum"] == 5
        assert result["flag"] == "from-env"
        assert result["pid"] != first_pid  # ran in a prefork child

        worker.kill(signal.SIGKILL)
        assert worker.pid is None
        assert _group_alive(first_pid) == [], "the pool children must die with the worker"

        worker.start()
        assert worker.pid not in (None, first_pid)
        again = client.send_task("probe.add", args=(4, 5), queue="probe").get(timeout=30)
        assert again["sum"] == 9
        worker.stop()
        assert worker.pid is None
        assert "warm shutdown" in worker.log_tail(200).lower()
    client.close()


def test_celery_worker_reports_a_broken_app_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "broken_tasks.py").write_text("raise ImportError('no such thing')\n")
    worker = CeleryWorker(
        "broken_tasks", cwd=tmp_path, env={"DJANGO_SETTINGS_MODULE": None}, startup_timeout=30
    )
    with pytest.raises(ServerError, match="no such thing"):
        worker.start()
    worker.close()


@pytest.mark.parametrize("advertise", [True, False])
def test_smtp_refuses_a_message_over_its_size_limit(advertise: bool) -> None:
    with SMTPServer(max_message_bytes=2_000, advertise_size=advertise) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("size") is advertise
            message = _message("Big")
            message.set_content("x" * 3_000)
            with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
                client.send_message(message)
            assert refused.value.smtp_code == 552
            client.send_message(_message("Small"))
        [received] = server.wait_for(1, timeout=5)
    assert received["Subject"] == "Small"
