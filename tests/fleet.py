"""The portal run as a fleet on loopback: gunicorn web processes and Celery
workers started as the make targets start them, configured only through the
environment variables the README documents, against real servers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.servers import CeleryWorker, PostgresServer, RedisServer, S3Server, SMTPServer, free_port

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TOKEN = "fleet-health-token"
BIN = Path(sys.executable).parent


@dataclass
class Servers:
    postgres: PostgresServer
    redis: RedisServer
    s3: S3Server
    smtp: SMTPServer


@contextlib.contextmanager
def running_servers(
    base: Path, *, persistent_redis: bool = False, postgres_settings: Mapping[str, str] | None = None
) -> Iterator[Servers]:
    """PostgreSQL, Redis, S3 and SMTP on loopback, started and stopped together."""
    with (
        PostgresServer(settings=postgres_settings) as postgres,
        RedisServer(persistent=persistent_redis, base_dir=base) as redis,
        S3Server(base_dir=base) as s3,
        SMTPServer(base_dir=base) as smtp,
    ):
        yield Servers(postgres=postgres, redis=redis, s3=s3, smtp=smtp)


@dataclass
class Fleet:
    """One portal deployment: its own database, bucket and Redis databases."""

    servers: Servers
    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    web: subprocess.Popen[bytes] | None = None
    web_url: str = ""
    workers: list[CeleryWorker] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    token: str = ""
    bucket: str = ""
    private_bucket: str = ""

    def __post_init__(self) -> None:
        name = f"portal_{uuid.uuid4().hex[:8]}"
        with self.servers.postgres.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.bucket = self.servers.s3.create_bucket(name.replace("_", "-"))
        self.private_bucket = self.servers.s3.create_bucket(f"{self.bucket}-private")
        self.database_url = self.servers.postgres.url_for(name)

    @property
    def env(self) -> dict[str, str]:
        s = self.servers
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": "fleet-test-secret-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PORTAL_VAR_DIR": str(self.workdir / "var"),
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": s.redis.url_for(0),
            "CACHE_URL": s.redis.url_for(1),
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_PRIVATE_BUCKET_NAME": self.private_bucket,
            "PORTAL_HEALTH_TOKEN": HEALTH_TOKEN,
            "AWS_S3_ENDPOINT_URL": s.s3.endpoint_url,
            "AWS_ACCESS_KEY_ID": s.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s.s3.secret_key,
            "AWS_S3_REGION_NAME": s.s3.region,
            "EMAIL_URL": s.smtp.url,
            **self.extra_env,
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        return env

    def manage(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def setup(self) -> Fleet:
        self.manage("migrate", "--no-input")
        self.manage("media_bucket_policy", "--apply")
        script = (
            "from django.contrib.auth.models import User;"
            "from portal.tokens import token_create;"
            "u = User.objects.create_superuser('fleet', 'fleet@example.com', 'fleet-pass-123');"
            "print(token_create(user=u).key)"
        )
        self.token = self.manage("shell", "-c", script).stdout.strip().splitlines()[-1]
        return self

    def _make(self, target: str, log_name: str, **variables: str) -> subprocess.Popen[bytes]:
        """Start a make target as a deployment would, in its own process group."""
        log = (self.workdir / log_name).open("ab")
        return subprocess.Popen(
            ["make", "--no-print-directory", target, *(f"{k}={v}" for k, v in variables.items())],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_web(self, workers: int = 2) -> str:
        """``make serve``: gunicorn with several workers."""
        port = free_port()
        self.web = self._make(
            "serve", "gunicorn.log", HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY=str(workers)
        )
        self.web_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.web_url}/api/v1/", timeout=2).status_code == 200:
                    return self.web_url
            if self.web.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(
            "make serve did not start:\n" + (self.workdir / "gunicorn.log").read_text()[-3000:]
        )

    def start_make_worker(self) -> subprocess.Popen[bytes]:
        """``make worker``: a Celery worker with the beat schedule."""
        process = self._make("worker", "make-worker.log")
        self.processes.append(process)
        return process

    def start_worker(
        self, *, beat: bool = False, concurrency: int = 1, env: Mapping[str, str] | None = None
    ) -> CeleryWorker:
        """A Celery worker; ``env`` adds to the deployment's variables for it alone."""
        args: tuple[str, ...] = ("--without-mingle", "--without-gossip")
        if beat:
            args += ("--beat", f"--schedule={self.workdir / 'beat-schedule'}")
        worker = CeleryWorker(
            "portal",
            env={**self.env, **(env or {})},
            cwd=ROOT,
            concurrency=concurrency,
            extra_args=args,
            base_dir=self.workdir,
        )
        worker.start()
        self.workers.append(worker)
        return worker

    # --- Client side ------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.web_url}{path}", headers=headers, timeout=60, **kwargs)

    def upload(self, data: bytes, name: str = "photo.jpg", **fields: str) -> requests.Response:
        return self.api("POST", "/api/v1/images/", files={"file": (name, data)}, data=fields)

    def wait_for_images(self, ids: list[int], *, timeout: float = 120) -> list[dict[str, Any]]:
        """Poll the API until every image is ready or failed."""
        deadline = time.monotonic() + timeout
        while True:
            images = [self.api("GET", f"/api/v1/images/{i}/").json() for i in ids]
            if all(img["status"] in {"ready", "failed"} for img in images):
                return images
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not processed in {timeout}s: {[(i['id'], i['status']) for i in images]}"
                )
            time.sleep(0.5)

    def bucket_keys(self, *, bucket: str | None = None) -> set[str]:
        """The keys in the media and the private bucket (or in one of them)."""
        client = self.servers.s3.client()
        keys: set[str] = set()
        for name in [bucket] if bucket else [self.bucket, self.private_bucket]:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys.update(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.close()
        for process in [*self.processes, *([self.web] if self.web else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def fleet(servers: Servers, workdir: Path, **extra_env: str) -> Iterator[Fleet]:
    deployment = Fleet(servers=servers, workdir=workdir, extra_env=extra_env).setup()
    try:
        yield deployment
    finally:
        deployment.stop()
