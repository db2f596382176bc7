"""Settings of the portal.

Every deployment value comes from the environment (django-environ); the defaults
are the embedded set-up of ``make run``: SQLite in WAL mode, media files under
``var/media``, mail written to ``var/mail``, image processing in-process right
after the upload commits. README.md lists the variables that switch each part
to PostgreSQL, S3, SMTP, Redis and Celery.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import secrets
import socket
import warnings
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote, urlsplit

import django_stubs_ext
import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue
from kombu.common import Broadcast
from kombu.transport import resolve_transport
from kombu.utils.url import parse_url

from core.mail import address_refused
from portal.broker import transport_for
from portal.csp import IMAGE_SOURCE
from uploads.processing import OUTPUT_FORMATS

# Lets annotations such as ModelAdmin[Person] run, not only type-check.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# The built-in types, for annotations inside _Env, whose methods take their names.
_Int: TypeAlias = int
_Float: TypeAlias = float
_Bool: TypeAlias = bool
_List: TypeAlias = list


class _Env(environ.Env):
    """django-environ's, where every number is read with the range it is valid
    in. A value out of it, or not a number at all, stops the start with a
    message naming the variable, the value and the range, instead of doing
    something odd much later (a login limit of 0 refuses every admin login).
    The minimum is required, so no number is read without a range.
    """

    ON = frozenset({"true", "yes", "on", "1"})
    OFF = frozenset({"false", "no", "off", "0"})

    def bool(self, var: str, *, default: _Bool) -> _Bool:
        """A switch, on or off. django-environ reads any word it does not
        know as off: ``DJANGO_HTTPS=ture`` would serve the site without
        secure cookies, HSTS or the HTTPS redirect, without a word."""
        if var not in self.ENVIRON:
            return default
        shown = self.str(var).strip()
        if shown.lower() in self.ON:
            return True
        if shown.lower() in self.OFF:
            return False
        raise ImproperlyConfigured(f"{var} must be true or false (or yes/no, on/off, 1/0); it is {shown!r}")

    def int(self, var: str, *, default: _Int, minimum: _Int, maximum: _Int | None = None) -> _Int:
        return _Int(self._number(var, _Int, default, minimum, maximum))

    def float(self, var: str, *, default: _Float, minimum: _Float, maximum: _Float | None = None) -> _Float:
        return self._number(var, _Float, default, minimum, maximum)

    def _number(
        self, var: str, cast: type[_Float], default: _Float, minimum: _Float, maximum: _Float | None
    ) -> _Float:
        valid = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        if var not in self.ENVIRON:
            value, shown = default, str(default)
        else:
            shown = self.str(var).strip()
            try:
                value = cast(shown)
            except ValueError:
                value = math.nan
            # A whole number is finite, however long (too long for a float, even).
            if isinstance(value, _Float) and not math.isfinite(value):
                kind = "a whole number" if cast is _Int else "a number"
                raise ImproperlyConfigured(f"{var} must be {kind}, {valid}; it is {shown!r}")
        if value < minimum or (maximum is not None and value > maximum):
            raise ImproperlyConfigured(f"{var} must be {valid}; it is {shown}")
        return value

    def db_url(self, var: str, *, default: str) -> dict[str, Any]:
        return self._url(
            var, default, self.db_url_config, "ENGINE", "postgres://user:password@host:5432/name"
        )

    def cache_url(self, var: str, *, default: str) -> dict[str, Any]:
        return self._url(var, default, self._cache_url_read, "BACKEND", "redis://host:6379/1")

    def _cache_url_read(self, value: str) -> dict[str, Any]:
        """django-environ's reading, whose Redis locations it takes as they
        are: a port that is not a number was found out at the first cache
        call, as a ValueError answering every throttled request with a 500."""
        config: dict[str, Any] = self.cache_url_config(value)
        location = config.get("LOCATION") or []
        for each in [location] if isinstance(location, str) else location:
            # Django's Redis cache takes several servers separated so.
            for server in re.split("[;,]", each):
                if "://" in server:
                    _ = urlsplit(server).port  # raises ValueError, naming the port
        return config

    def email_url(self, var: str, *, default: str) -> dict[str, Any]:
        """django-environ's reading, whose query (``?timeout=5``) goes into
        OPTIONS, which no mail setting is made of, or into the switches
        (``?email_use_tls=false`` turned STARTTLS on): refused, rather than
        dropped or misread without a word."""
        config = self._url(
            var, default, self.email_url_config, "EMAIL_BACKEND", "smtp+tls://user:password@host:587"
        )
        parts = urlsplit(self.str(var, default=default))
        if parts.query:
            names = ", ".join(
                sorted({name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)})
            )
            raise ImproperlyConfigured(
                f"{var} takes no options in its query; it has {names or parts.query} "
                "(the time-out is EMAIL_TIMEOUT)"
            )
        if parts.scheme == "smtps":
            # django-environ reads it as STARTTLS, on port 25 without one
            # given: on 465 the client waited for a plain greeting while the
            # server waited for the TLS handshake, and every mail failed as a
            # server that did not answer. It names TLS from the start, as curl
            # and mail clients read it.
            config.pop("EMAIL_USE_TLS", None)
            config["EMAIL_USE_SSL"] = True
        if config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend":
            self._email_port_check(var, parts.scheme, config)
            # Django logs in only with both: with one alone it sent as no one,
            # and a server that wants a login refused every sender.
            user, password = config.get("EMAIL_HOST_USER"), config.get("EMAIL_HOST_PASSWORD")
            if bool(user) != bool(password):
                has = "a password and no user" if password else "a user and no password"
                raise ImproperlyConfigured(
                    f"{var} must give both a user and a password to log in with, or neither; it has {has}"
                )
        if config["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend":
            # The folder as written: django-environ drops its first slash and
            # reads the first name of a relative one as a host, so that
            # filemail:///srv/mail wrote to srv/mail under the folder each
            # process started in. A relative one is read from beside
            # manage.py, as every other folder is; none is var/mail.
            folder = unquote(parts.netloc + parts.path)
            config["EMAIL_FILE_PATH"] = str(BASE_DIR / folder) if folder else ""
        return config

    @staticmethod
    def _email_port_check(var: str, scheme: str, config: dict[str, Any]) -> None:
        """Port 587 takes STARTTLS, 465 TLS from the start (RFC 8314): the
        other kind on either failed every mail, an alert's with it, and only
        when one was sent. smtps:// on 587 mailed as STARTTLS before smtps://
        meant TLS from the start."""
        port = config.get("EMAIL_PORT")
        if config.get("EMAIL_USE_SSL") and port == 587:
            raise ImproperlyConfigured(
                f"{var} opens TLS from the start ({scheme}://) on port 587, where a mail server takes "
                f"STARTTLS: write smtp+tls:// for port 587, or {scheme}:// on port 465"
            )
        if not config.get("EMAIL_USE_SSL") and port == 465:
            starttls = config.get("EMAIL_USE_TLS")
            how = "upgrades with STARTTLS" if starttls else "speaks plain SMTP"
            other = f", or {scheme}:// on port 587" if starttls else ""
            raise ImproperlyConfigured(
                f"{var} {how} ({scheme}://) on port 465, where a mail server opens with TLS: "
                f"write smtps:// for port 465{other}"
            )

    def line(self, var: str, *, default: str) -> str:
        """A text of one line (a name), without the spaces around it: one
        read from a file ends in a line break, which a mail header it goes
        into cannot hold (every mail failed as it was sent). A line break or
        another control character within it stops the start."""
        shown = self.str(var, default=default).strip()
        if not shown.isprintable():
            raise ImproperlyConfigured(
                f"{var} must be a name on one line, without control characters; it is {shown!r}"
            )
        return shown

    def folder(self, var: str, *, default: Path) -> Path:
        """A folder; empty reads as the default, and a relative path from
        beside manage.py, where the default ``var/`` is. Read from the folder
        the process started in, the web server, the worker and cron (each
        started in a folder of its own) kept a database, media and a secret
        key each, or checked another disk's free space; empty was that
        folder itself."""
        shown = self.str(var, default="").strip()
        return BASE_DIR / shown if shown else default

    def broker_url(self, var: str) -> str:
        """The task queue's URL (empty: none, tasks run in-process), or
        several separated by ``;`` (failover), as kombu reads it. One it
        cannot read was taken as it was: the web processes failed to publish
        every upload (left pending, a traceback each in the log), the worker
        failed to start, and the broker check failed, each in kombu's words
        naming no variable (``Port could not be cast to integer value``);
        one without its scheme went to a RabbitMQ, kombu's default. Each is
        given without the spaces around it, as it is checked: kombu keeps
        them, and reads " redis://b:6379/0" as Redis on localhost with the
        database "b:6379/0"."""
        if not self.str(var, default="").strip():
            return ""
        self._url(var, "", self._broker_url_read, "transport", "redis://host:6379/0")
        return ";".join(url.strip() for url in self.str(var).split(";"))

    @staticmethod
    def _broker_url_read(value: str) -> dict[str, Any]:
        transport = ""
        for url in value.split(";"):
            try:
                parts = parse_url(url.strip())
            except (KeyError, TypeError) as exc:  # an option of its query kombu does not know
                raise ValueError(f"{type(exc).__name__}: {exc}") from None
            transport = parts["transport"]
            if not transport:
                return {}
            try:
                resolve_transport(transport)
            except (KeyError, ImportError):
                raise ValueError(f"no such transport: {transport}") from None
            database = parts["virtual_host"]
            if transport in ("redis", "rediss") and database and not database.isdigit():
                raise ValueError(f"the Redis database must be a number, not {database!r}")
        return {"transport": transport}

    def _url(
        self, var: str, default: str, parse: Callable[[str], dict[str, Any]], key: str, example: str
    ) -> dict[str, Any]:
        """A service's URL, read by django-environ. One it cannot read stopped
        the start with its own words, naming no variable (``Port could not be
        cast to integer value as 'abc'``), or a KeyError much later (an
        unknown scheme, or an empty value, reads as no engine at all)."""
        value = self.str(var, default=default)
        try:
            with warnings.catch_warnings():  # its warning of an unknown scheme shows the password
                warnings.simplefilter("ignore")
                config = parse(value)
        except (ImproperlyConfigured, ValueError) as exc:
            reason = str(exc)
        else:
            if config.get(key):
                return config
            reason = f"no scheme it knows, such as {example.partition(':')[0]}"
        # Up to the last @: a password may hold a / or an @ not percent-encoded,
        # which django-environ then reads as part of a port it names.
        password = re.search(r"//[^/@:]*:(.*)@", value)
        shown = value
        if password and password.group(1):
            secret = password.group(1)
            shown = value[: password.start(1)] + "***" + value[password.end(1) :]
            reason = re.sub(r"'([^']+)'", lambda m: "'***'" if m.group(1) in secret else m.group(0), reason)
        raise ImproperlyConfigured(f"{var} must be a URL such as {example}; it is {shown!r} ({reason})")

    def rate(self, var: str, *, default: str) -> str:
        """A rate limit as the throttles read it: a count of at least 1, per
        second, minute, hour or day (``10/min``; DRF reads only the first
        letter of the period). Anything else would answer every post it
        limits with a 500."""
        shown = self.str(var, default=default).strip()
        count, _, period = shown.partition("/")
        count, period = count.strip(), period.strip()
        if not (
            count.isascii() and count.isdigit() and int(count) >= 1 and period[:1] in ("s", "m", "h", "d")
        ):
            raise ImproperlyConfigured(
                f"{var} must be a count of at least 1 per s, min, hour or day (as 10/min); it is {shown!r}"
            )
        return f"{int(count)}/{period}"

    def list(self, var: str, *, default: _List[str]) -> _List[str]:
        """Entries separated by commas, each without the spaces around it;
        an empty one (a comma at the end, two in a row) is dropped.
        django-environ keeps the spaces: ``a.com, b.com`` read as the host
        ``" b.com"``, which no request matches (each was answered 400)."""
        return [entry.strip() for entry in super().list(var, default=default) if entry.strip()]

    def entries(
        self, var: str, *, default: _List[str], valid: Callable[[str], object], what: str, form: str
    ) -> _List[str]:
        """A list whose every entry must be ``valid``: the first that is not
        stops the start naming it, ``what`` it should be and the ``form`` of
        the whole."""
        entries = self.list(var, default=default)
        for entry in entries:
            if not valid(entry):
                raise ImproperlyConfigured(f"{var}: not {what}: {entry!r} ({form})")
        return entries

    def networks(self, var: str, *, default: _List[str]) -> _List[str]:
        """IP networks (``10.0.0.0/8``, ``::1/128``) or addresses, separated
        by commas, each as ``ipaddress.ip_network`` reads it (empty: none).
        Read only as a request is checked against them, one it cannot read
        answered that request with a 500 (every scrape of /metrics, every
        post to /fruits/) instead of stopping the start."""

        def network(entry: str) -> _Bool:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                return False
            return True

        return self.entries(
            var,
            default=default,
            valid=network,
            what="an IP network or address",
            form="networks separated by commas, such as 10.0.0.0/8,::1/128",
        )

    def hosts(self, var: str, *, default: _List[str]) -> _List[str]:
        """Host names as ALLOWED_HOSTS matches them: a name or an address
        (``[::1]``), ``.example.com`` for a domain and its subdomains, or
        ``*``. Django compares the Host without its port to each entry
        whole: one with a scheme, a port or a path matches no request."""
        return self.entries(
            var,
            default=default,
            valid=_HOST.fullmatch,
            what="a host name",
            form="names without a scheme, port or path, separated by commas, such as portal.example.com,.example.org",
        )

    def origins(self, var: str, *, default: _List[str]) -> _List[str]:
        """Origins as CSRF_TRUSTED_ORIGINS matches them: a scheme and a
        host (``*.`` for its subdomains), with a port if not the scheme's
        own. Without the scheme Django refuses to start (only when its
        checks run); with a path, an origin never matches a browser's."""
        return self.entries(
            var,
            default=default,
            valid=_ORIGIN.fullmatch,
            what="an origin",
            form="a scheme and a host each, separated by commas, such as https://portal.example.com",
        )

    def choice(self, var: str, *, default: str, choices: Sequence[str]) -> str:
        """One of ``choices``, in any case, given back as ``choices`` spells it."""
        shown = self.str(var, default=default).strip()
        spelled = {choice.lower(): choice for choice in choices}
        if shown.lower() not in spelled:
            raise ImproperlyConfigured(f"{var} must be one of {', '.join(choices)}; it is {shown!r}")
        return spelled[shown.lower()]

    def time_zone(self, var: str, *, default: str) -> str:
        """A time zone of the IANA database. Django refuses any other only
        as its settings load, naming no variable (``Incorrect timezone
        setting: Mars/Base``); empty reads as UTC, as the C library does."""
        shown = self.str(var, default=default).strip() or "UTC"
        try:
            zoneinfo.ZoneInfo(shown)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ImproperlyConfigured(
                f"{var} must be a time zone of the IANA database, such as UTC or Europe/Berlin; it is {shown!r}"
            ) from None
        return shown

    def addresses(self, var: str, *, default: _List[str]) -> _List[str]:
        """Mail addresses separated by commas, each one Django's mail can
        send to (empty: none). Django's SMTP backend refuses any other only
        as it sends, with a ValueError: the health checks Celery beat sends
        every minute would fail at each run, mailing nothing, as would the
        errors mailed to the admins."""
        addresses = self.list(var, default=default)
        if refused := address_refused(addresses):
            raise ImproperlyConfigured(f"{var}: {refused}")
        return addresses

    def address(self, var: str, *, default: str) -> str:
        """One mail address, as ``addresses`` reads each: a sender Django's
        mail cannot write fails every message as it is sent."""
        address: str = self.str(var, default=default)
        if refused := address_refused([address]):
            raise ImproperlyConfigured(f"{var}: {refused}")
        return address

    def base_url(self, var: str) -> str:
        """The address the portal is reached at, which the links it mails
        start with: an http or https URL with a host (a port, and a path if
        the portal is served under one), without the trailing slash; empty
        when unset. Anything else (no scheme, a query, a space) would be a
        broken link in every mail that gives one, found out only by whoever
        clicks it."""
        shown = self.str(var, default="").strip()
        if not shown:
            return ""
        try:
            parts = urlsplit(shown)
            valid = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                # Raises ValueError for a port that is not a number or out of range.
                and (parts.port is None or parts.port > 0)
                # Credentials would be mailed to every recipient.
                and "@" not in parts.netloc
                and "?" not in shown
                and "#" not in shown
                # urlsplit drops tabs and line breaks without a word.
                and all(char.isprintable() and not char.isspace() for char in shown)
            )
        except ValueError:
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"{var} must be an http or https URL with a host and no query or fragment "
                f"(as https://portal.example.com); it is {shown!r}"
            )
        return shown.rstrip("/")


# A host name or address as Django's host validation reads it (which takes no
# underscore), an IPv6 address in brackets, or a leading dot for subdomains.
_HOST = re.compile(r"\*|\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\]", re.IGNORECASE)
_ORIGIN = re.compile(
    r"https?://(?:\*\.)?(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?", re.IGNORECASE
)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

env = _Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = env.folder("PORTAL_VAR_DIR", default=BASE_DIR / "var")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Behind TLS in production: secure cookies, HSTS and the HTTPS redirect.
HTTPS = env.bool("DJANGO_HTTPS", default=False)


def _secret_key() -> str:
    """The key from the environment; on a laptop, one made once and kept in var/."""
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    if HTTPS:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_HTTPS is on.")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.hosts("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.origins("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
# Where a sign-in with no (or a refused) ?next= lands: staff sign in for the admin.
LOGIN_REDIRECT_URL = "/admin/"
ADMINS = [("Admin", addr) for addr in env.addresses("DJANGO_ADMINS", default=[])]
SITE_NAME = env.str("PORTAL_SITE_NAME", default="The Portal")
# Where the portal is reached, for the links in what it mails (no request
# says which host that is); unset, those mails give the path alone and say so.
BASE_URL = env.base_url("PORTAL_BASE_URL")

INSTALLED_APPS = [
    # The admin without discovery at start-up; see PortalAdminConfig.
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Before rest_framework.authtoken: of two apps with a command of one
    # name, Django runs the first one's, and drf_create_token is the portal's.
    "portal",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_prometheus",
    "uploads",
    "catalog",
]

MIDDLEWARE = [
    # Probes and the metrics scrape, answered whatever the Host and scheme.
    "portal.middleware.ProbeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that may answer early (a null character, a body
    # over its limit, a host not allowed): every page carries the headers.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.NullCharacterMiddleware",
    # Before anything reads the body (CSRF reads the form of a POST).
    "portal.middleware.BodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.DependencyErrorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.site",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while a writer commits; IMMEDIATE takes the write
    # lock at BEGIN so two writers queue instead of failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60, minimum=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # A server that takes the connection and never answers (stuck, or a
    # proxy before one that is down) would hold a request, a probe or a
    # health_check run for ever: libpq waits with no limit unless told.
    # libpq takes 2 s at the least, and reads it as a C int: past
    # 2,147,483,647 it refuses the value and every connection fails. A
    # connect_timeout in the URL wins.
    _database_options = DATABASES["default"].setdefault("OPTIONS", {})
    _database_options.setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=10, minimum=2, maximum=2_147_483_647)
    )
    # Once connected, a server whose packets stop coming (a firewall that
    # drops them, its machine frozen or gone) sends no reset either: the
    # kernel retransmits a query for some 15 minutes before it gives up, and
    # Django's check of a kept connection at the start of each request is a
    # query. tcp_user_timeout gives up on what was sent and not acknowledged
    # within the bound; the keepalives find the same on a connection waiting
    # for an answer or kept between requests. A live server's kernel
    # acknowledges both however long its query runs, so no query is cut for
    # being long, as a statement_timeout would cut it (which would bound
    # nothing here anyway: the server is the one that keeps it). A server
    # process stuck on a machine that still answers is not seen by either.
    # Each of these in the URL wins. The kernel takes a keepalive's idle time
    # and interval up to 32,767 s: past that libpq cannot set them, and every
    # connection would fail.
    _network_timeout = env.int("DATABASE_NETWORK_TIMEOUT", default=20, minimum=1, maximum=32_767)
    for _option, _value in {
        "keepalives": 1,
        "keepalives_idle": _network_timeout,
        "keepalives_interval": max(1, _network_timeout // 3),
        "keepalives_count": 3,  # where the system has no tcp_user_timeout
        "tcp_user_timeout": _network_timeout * 1000,
    }.items():
        _database_options.setdefault(_option, _value)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://portal")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "portal.cache.ResilientRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 1, "socket_timeout": 1})
# What every process of the machine must count alike (admin lockouts, rate
# limits): the default cache when it is shared, else a folder of var/ that
# every worker of `make serve` reads (one process's memory would let each
# worker count its own failures).
CACHES["shared"] = (
    CACHES["default"]
    if CACHES["default"]["BACKEND"].endswith("RedisCache")
    else {
        # A folder that drops expired entries before live ones when full.
        "BACKEND": "portal.cache.SharedFileCache",
        "LOCATION": str(VAR_DIR / "cache" / "shared"),
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
)

# --- Files --------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = env.folder("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_URL = env.str("DJANGO_MEDIA_URL", default="/media/")
MEDIA_ROOT = env.folder("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
USE_S3 = bool(AWS_STORAGE_BUCKET_NAME)

# Originals are private: in their own bucket (or, if none is named, under the
# originals/ prefix of the media bucket, which its policy keeps private; see
# docs/deploy.md), reached only through short-lived signed URLs.
AWS_PRIVATE_BUCKET_NAME = env.str("AWS_PRIVATE_BUCKET_NAME", default="") or AWS_STORAGE_BUCKET_NAME
# How long a signed link to an original stays valid.
ORIGINAL_URL_SECONDS = env.int("PORTAL_ORIGINAL_URL_SECONDS", default=300, minimum=1, maximum=604_800)
# How long S3 may take to connect or to answer, per try (two tries): well
# under gunicorn's --timeout (checked below), so a hung store is a 503, not a
# killed worker.
STORAGE_TIMEOUT_SECONDS = env.int("PORTAL_STORAGE_TIMEOUT_SECONDS", default=10, minimum=1)

if USE_S3:
    _media_storage: dict[str, Any] = {
        "BACKEND": "uploads.storage.MediaS3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "custom_domain": env.str("AWS_S3_CUSTOM_DOMAIN", default="") or None,
            "querystring_auth": env.bool("AWS_QUERYSTRING_AUTH", default=False),
            "file_overwrite": False,
            "default_acl": None,
            "addressing_style": env.choice(
                "AWS_S3_ADDRESSING_STYLE", default="path", choices=("path", "virtual", "auto")
            ),
            "signature_version": "s3v4",
        },
    }
    _originals_storage: dict[str, Any] = {
        "BACKEND": "uploads.storage.MediaS3Storage",
        "OPTIONS": {
            **_media_storage["OPTIONS"],
            "bucket_name": AWS_PRIVATE_BUCKET_NAME,
            "custom_domain": None,
            "querystring_auth": True,
            "querystring_expire": ORIGINAL_URL_SECONDS,
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }
    # Outside the media root: nothing serves this folder. Under it, a proxy
    # serving the media root (PORTAL_SERVE_MEDIA off) would hand out every original.
    _originals_root = env.folder("PORTAL_ORIGINALS_ROOT", default=VAR_DIR / "private")
    if _originals_root.resolve().is_relative_to(MEDIA_ROOT.resolve()):
        raise ImproperlyConfigured(
            f"PORTAL_ORIGINALS_ROOT must be a folder outside DJANGO_MEDIA_ROOT ({MEDIA_ROOT}), whose files "
            f"are served to anyone; it is {str(_originals_root)!r}"
        )
    _originals_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": _originals_root},
    }

STORAGES = {
    "default": _media_storage,
    "originals": _originals_storage,
    "staticfiles": {
        "BACKEND": env.str(
            "DJANGO_STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedStaticFilesStorage",
        )
    },
}
# The portal serves media itself unless they come from a bucket or a proxy.
SERVE_MEDIA = env.bool("PORTAL_SERVE_MEDIA", default=not USE_S3)

# --- Images -------------------------------------------------------------------

IMAGE_MAX_BYTES = env.int("PORTAL_IMAGE_MAX_BYTES", default=25 * 1024 * 1024, minimum=1)
IMAGE_MAX_PIXELS = env.int("PORTAL_IMAGE_MAX_PIXELS", default=50_000_000, minimum=1)
IMAGE_AVIF = env.bool("PORTAL_IMAGE_AVIF", default=False)
IMAGE_DEFAULT_PRESET = "web"
IMAGE_PRESETS: dict[str, dict[str, Any]] = {
    "web": {
        "widths": [320, 640, 1024, 1600],
        "formats": ["avif", "webp", "jpeg"] if IMAGE_AVIF else ["webp", "jpeg"],
        "thumbnail": 256,
    },
    "icon": {"rotate": 90, "size": [128, 128], "formats": ["jpeg"]},
    "supplier": {"fit": [600, 400], "formats": ["jpeg"]},
}
# Images left pending/processing longer than this are queued again by the sweep.
IMAGE_STUCK_AFTER_SECONDS = env.int(
    "PORTAL_IMAGE_STUCK_AFTER_SECONDS", default=600, minimum=0, maximum=31_536_000
)
# Objects no row points at are deleted once older than this (see sweep_orphans).
IMAGE_ORPHAN_GRACE_SECONDS = env.int(
    "PORTAL_IMAGE_ORPHAN_GRACE_SECONDS", default=3600, minimum=0, maximum=31_536_000
)
# An image under which the process decoding it dies this many times (a crash,
# the OOM killer, the hard time limit) ends failed instead of taking more
# workers down; a whole worker or server going away is not counted.
IMAGE_MAX_ATTEMPTS = env.int("PORTAL_IMAGE_MAX_ATTEMPTS", default=3, minimum=1)
# Memory ceiling (data segment) of the child process forked to decode each
# image (by a Celery pool process, the embedded server or a command, none of
# which is capped itself). 0 turns it off.
IMAGE_MEMORY_LIMIT_MB = env.int("PORTAL_IMAGE_MEMORY_LIMIT_MB", default=1024, minimum=0)
# How far that child's CPU priority is lowered (nice, 0 to 19) when it
# processes an upload in the background: on a machine that also serves web
# requests, they come first. Renditions on demand, which a visitor waits for,
# keep the normal priority. 0 turns it off.
IMAGE_NICE = env.int("PORTAL_IMAGE_NICE", default=10, minimum=0, maximum=19)
# Renditions on demand (/img/<signature>/<id>/<spec>/<format>/, see
# uploads/ondemand.py and docs/deploy.md for what they can cost): the largest
# side asked for, the formats, and how many one image may have (each size and
# format counts once); a pending image is waited for this long before 202; a
# rendition taking longer than the time limit to make is given up (503).
IMAGE_ONDEMAND_MAX_SIZE = env.int("PORTAL_IMAGE_ONDEMAND_MAX_SIZE", default=4000, minimum=1)
IMAGE_ONDEMAND_FORMATS = [
    entry.lower()
    for entry in env.entries(
        "PORTAL_IMAGE_ONDEMAND_FORMATS",
        default=["webp", "jpeg", "avif", "png"],
        valid=lambda entry: entry.lower() in OUTPUT_FORMATS,
        what="a format renditions are made in",
        form=f"any of {', '.join(OUTPUT_FORMATS)}, separated by commas",
    )
]
if not IMAGE_ONDEMAND_FORMATS:
    # Pages and the rendition URL endpoint fall back on the first of them.
    raise ImproperlyConfigured(
        "PORTAL_IMAGE_ONDEMAND_FORMATS: names no format; renditions on demand are made in at least one "
        f"(any of {', '.join(OUTPUT_FORMATS)}, separated by commas)"
    )
IMAGE_ONDEMAND_MAX_PER_IMAGE = env.int("PORTAL_IMAGE_ONDEMAND_MAX_PER_IMAGE", default=20, minimum=1)
IMAGE_ONDEMAND_WAIT_SECONDS = env.float("PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS", default=2.0, minimum=0)
IMAGE_ONDEMAND_TIME_LIMIT_SECONDS = env.int("PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS", default=30, minimum=1)
# How long the request making a rendition holds its claim past the time limit
# (to store and record it): requests for the same one wait for it as long,
# then answer 503.
IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS = env.int(
    "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS", default=15, minimum=0
)
# How long the web server lets a request run before it kills its worker
# (gunicorn's --timeout, which `make serve` takes from here): the client gets
# a dropped connection, not the portal's 503.
WEB_TIMEOUT_SECONDS = env.int("PORTAL_WEB_TIMEOUT_SECONDS", default=60, minimum=1)
# A request for a rendition on demand waits for its image to be ready, then
# for the request making it (a request that made it took no longer).
_ondemand_longest = (
    IMAGE_ONDEMAND_WAIT_SECONDS + IMAGE_ONDEMAND_TIME_LIMIT_SECONDS + IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS
)
if _ondemand_longest >= WEB_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "PORTAL_IMAGE_ONDEMAND_WAIT_SECONDS + PORTAL_IMAGE_ONDEMAND_TIME_LIMIT_SECONDS + "
        "PORTAL_IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS, the longest a request for a rendition on demand may "
        f"take, must be less than PORTAL_WEB_TIMEOUT_SECONDS ({WEB_TIMEOUT_SECONDS}), after which the web "
        f"server kills its worker; it is {IMAGE_ONDEMAND_WAIT_SECONDS:g} + {IMAGE_ONDEMAND_TIME_LIMIT_SECONDS} "
        f"+ {IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS} = {_ondemand_longest:g}"
    )
# What else a request may wait on before its 503, each within the web
# server's timeout: a store that hangs, two tries and the delete that takes
# back what it may have kept (at most 2 s); a kept PostgreSQL connection whose
# network stopped, then a fresh connection's attempt.
_web_waits: list[tuple[str, str, float]] = []
if USE_S3:
    _web_waits.append(
        (
            "2 * PORTAL_STORAGE_TIMEOUT_SECONDS + 2, the longest a request waits on a store that hangs",
            f"2 * {STORAGE_TIMEOUT_SECONDS} + 2",
            STORAGE_TIMEOUT_SECONDS * 2 + 2,
        )
    )
if "tcp_user_timeout" in DATABASES["default"].get("OPTIONS", {}):
    _network_seconds = int(DATABASES["default"]["OPTIONS"]["tcp_user_timeout"]) / 1000
    _connect_seconds = int(DATABASES["default"]["OPTIONS"]["connect_timeout"])
    _web_waits.append(
        (
            "DATABASE_NETWORK_TIMEOUT + DATABASE_CONNECT_TIMEOUT (or DATABASE_URL's tcp_user_timeout, in ms, "
            "and connect_timeout), the longest a request waits on a database whose network stopped",
            f"{_network_seconds:g} + {_connect_seconds}",
            _network_seconds + _connect_seconds,
        )
    )
for _what, _sum, _seconds in _web_waits:
    if _seconds >= WEB_TIMEOUT_SECONDS:
        raise ImproperlyConfigured(
            f"{_what}, must be less than PORTAL_WEB_TIMEOUT_SECONDS ({WEB_TIMEOUT_SECONDS}), after which the "
            f"web server kills its worker; it is {_sum} = {_seconds:g}"
        )
# Uploads above this size are streamed to a temp file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# A body for an endpoint that takes no file is refused above this size (413),
# before it is read; endpoints that take files have the image byte limit.
MAX_BODY_BYTES = env.int("PORTAL_MAX_BODY_BYTES", default=1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES
FILE_UPLOAD_HANDLERS = [
    "core.limits.StreamingLimitHandler",
    # Django's, hashing each file as it arrives (core.limits).
    "core.limits.DigestingMemoryFileUploadHandler",
    "core.limits.DigestingTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FILES = 100

# --- Feedback -----------------------------------------------------------------

# When on, new reviews wait for a moderator; by default they publish at once.
FEEDBACK_MODERATION = env.bool("PORTAL_FEEDBACK_MODERATION", default=False)
FEEDBACK_RATE = env.rate("PORTAL_FEEDBACK_RATE", default="10/min")
ADMIN_LOGIN_MAX_FAILURES = env.int("PORTAL_ADMIN_LOGIN_MAX_FAILURES", default=5, minimum=1)
ADMIN_LOGIN_LOCKOUT_SECONDS = env.int(
    "PORTAL_ADMIN_LOGIN_LOCKOUT_SECONDS", default=900, minimum=1, maximum=31_536_000
)
# Failed admin logins from one address across all accounts in a window (0: no
# limit): far above what honest typos behind one NAT reach, far below a spray.
ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int(
    "PORTAL_ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS", default=100, minimum=0
)

# --- Email --------------------------------------------------------------------

_email = env.email_url("EMAIL_URL", default="filemail://")
# SMTP through the portal's backend, which reports recipients the server
# refused; files through one that reports a folder it cannot write to as it
# writes, as a mail server that is away.
EMAIL_BACKEND = {
    "django.core.mail.backends.smtp.EmailBackend": "core.mail.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend": "core.mail.FileEmailBackend",
}.get(_email["EMAIL_BACKEND"], _email["EMAIL_BACKEND"])
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
# Without a port, implicit TLS (smtp+ssl) takes the port for it (465, RFC
# 8314): on 25 the server's plain greeting failed every handshake.
EMAIL_PORT = int(_email.get("EMAIL_PORT") or (465 if EMAIL_USE_SSL else 25))
# At most an hour: a server slower than that is away, and past what a
# socket's time-out takes every mail failed with an OverflowError.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30, minimum=1, maximum=3600)
DEFAULT_FROM_EMAIL = env.address("DEFAULT_FROM_EMAIL", default="automation@example.com")
SERVER_EMAIL = env.address("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
REPORT_RECIPIENTS = env.addresses("PORTAL_REPORT_RECIPIENTS", default=["supplier@example.com"])

# --- Health -------------------------------------------------------------------

HEALTH_CPU_MAX_PERCENT = env.float("PORTAL_HEALTH_CPU_MAX_PERCENT", default=80.0, minimum=0, maximum=100)
HEALTH_DISK_MIN_PERCENT = env.float("PORTAL_HEALTH_DISK_MIN_PERCENT", default=20.0, minimum=0, maximum=100)
HEALTH_MEMORY_MIN_MB = env.int("PORTAL_HEALTH_MEMORY_MIN_MB", default=500, minimum=0)
HEALTH_DISK_PATH = str(env.folder("PORTAL_HEALTH_DISK_PATH", default=Path("/")))
HEALTH_RECIPIENTS = env.addresses("PORTAL_HEALTH_RECIPIENTS", default=["admin@example.com"])
# A check that stays failed is mailed again this often, and once when it
# passes again (0: at every run, and nothing more, as the course's script).
HEALTH_REMIND_MINUTES = env.int("PORTAL_HEALTH_REMIND_MINUTES", default=0, minimum=0, maximum=525_600)
# The host named in the alerts: a fleet's hosts all send the same subjects.
HEALTH_HOST = env.line("PORTAL_HEALTH_HOST", default="") or socket.gethostname()
# /health/ shows every check's detail to staff and to callers with this token.
HEALTH_TOKEN = env.str("PORTAL_HEALTH_TOKEN", default="")
# /health/ready reuses its answer this long: a storm of probes costs one check.
HEALTH_READY_CACHE_SECONDS = env.float("PORTAL_HEALTH_READY_CACHE_SECONDS", default=5.0, minimum=0)
# /metrics answers to these networks, or to a bearer token.
METRICS_ALLOWED_NETWORKS = env.networks("PORTAL_METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# Where the course's /fruits/ and /upload/ take writes without credentials:
# loopback and the private ranges (the company's own network), not the
# internet, where anyone could rewrite the catalog. Elsewhere: a token.
LAB_WRITE_NETWORKS = env.networks(
    "PORTAL_LAB_WRITE_NETWORKS",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
METRICS_TOKEN = env.str("PORTAL_METRICS_TOKEN", default="")

# --- Celery -------------------------------------------------------------------

_broker_url = env.broker_url("CELERY_BROKER_URL")
BROKER_CONFIGURED = bool(_broker_url)
# No broker: run tasks in-process (after commit; on a background thread when
# serving, see uploads.dispatch), and the server sweeps (uploads.embedded).
CELERY_BROKER_URL = _broker_url or "memory://localhost/"
# On Redis, a worker that loses it reconnects whatever it was doing (portal.broker).
CELERY_BROKER_TRANSPORT = transport_for(CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = not BROKER_CONFIGURED
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Past the soft limit an image ends failed ("took longer than 120 s"); it also
# bounds decoding where no worker runs (embedded, commands): the child is killed.
# 0: no soft limit, the hard one alone (which then bounds that decoding).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120, minimum=0)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180, minimum=1)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    # The hard limit would kill the pool process first: an image too slow
    # would be counted as a death and tried again, never failed as too slow.
    raise ImproperlyConfigured(
        f"CELERY_TASK_SOFT_TIME_LIMIT must be less than CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}), "
        f"or 0 for none; it is {CELERY_TASK_SOFT_TIME_LIMIT}"
    )
# After this, a task whose worker died unacknowledged is handed out again.
# Longer than the hard time limit by default, so a slow task is not handed
# out again while it runs; shorter is allowed, and hands a dead worker's
# tasks out sooner.
_visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT * 2, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility_timeout}
# With the broker away, give up publishing quickly: the upload is kept pending
# and the sweep queues it once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# At most a day: what the sweep queues (an upload kept pending while the
# broker was away) waits for it no longer; and beat's interval and the run's
# expiry are durations, which a number of many digits overflowed at start.
SWEEP_INTERVAL_SECONDS = env.int("PORTAL_SWEEP_INTERVAL_SECONDS", default=60, minimum=1, maximum=86_400)
# Where beat keeps when each entry last ran, whoever starts it (`make worker`,
# `celery -A portal beat`); its scheduler makes the folder.
CELERY_BEAT_SCHEDULER = "portal.celery:Scheduler"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The scheduled runs have a queue of their own, and every worker takes from
# both queues in turn (a worker started without -Q consumes every queue named
# here): a sweep or a health check waits for one image, not for a backlog of
# thousands. Each run expires when the next is due: runs missed are dropped
# instead of arriving together (the same alert mailed once a minute missed).
CELERY_TASK_DEFAULT_QUEUE = "celery"
SCHEDULED_QUEUE = "scheduled"
# What each worker host checks of itself (CPU, disk, memory, localhost) is
# sent to every worker at once: a fanout exchange, which each worker takes
# from through a queue of its own. The checks every host shares (database,
# file store, task queue) are run once, by whichever worker takes them.
# Celery does not declare a broadcast queue when it sends to it (that would
# make the sender a queue of its own); its exchange is declared instead, so
# that Redis knows it is a fanout one.
# A worker consuming it reconnects after losing Redis through portal.broker's
# channel; kombu's own stops such a worker for good.
HOSTS_QUEUE = "hosts"
_hosts = Broadcast(HOSTS_QUEUE)
CELERY_TASK_QUEUES = [
    *(Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, SCHEDULED_QUEUE)),
    _hosts,
]
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-images": {
        "task": "uploads.tasks.sweep_stuck_images",
        "schedule": dt.timedelta(seconds=SWEEP_INTERVAL_SECONDS),
        "options": {"expires": SWEEP_INTERVAL_SECONDS, "queue": SCHEDULED_QUEUE},
    },
    "sweep-moved-crops": {
        "task": "uploads.tasks.sweep_moved_crops",
        "schedule": dt.timedelta(seconds=SWEEP_INTERVAL_SECONDS),
        "options": {"expires": SWEEP_INTERVAL_SECONDS, "queue": SCHEDULED_QUEUE},
    },
    "sweep-orphan-files": {
        "task": "uploads.tasks.sweep_orphan_files",
        "schedule": crontab(minute=17),
        "options": {"expires": 3600, "queue": SCHEDULED_QUEUE},
    },
    # Daily, at 03:43 UTC (beat's time zone, whatever TZ says).
    "clear-expired-sessions": {
        "task": "portal.tasks.clear_expired_sessions",
        "schedule": crontab(minute=43, hour=3),
        "options": {"expires": 86_400, "queue": SCHEDULED_QUEUE},
    },
    # Daily, at 03:47 UTC: a run of its own, with a time limit of its own.
    "clear-expired-tokens": {
        "task": "portal.tasks.clear_expired_tokens",
        "schedule": crontab(minute=47, hour=3),
        "options": {"expires": 86_400, "queue": SCHEDULED_QUEUE},
    },
    "health-check": {
        "task": "portal.tasks.health_check",
        "schedule": crontab(minute="*"),
        "options": {"expires": 60, "queue": SCHEDULED_QUEUE},
    },
    "health-check-hosts": {
        "task": "portal.tasks.health_check_host",
        "schedule": crontab(minute="*"),
        "options": {"expires": 60, "queue": HOSTS_QUEUE, "declare": [_hosts.exchange]},
    },
}

# --- API ----------------------------------------------------------------------

# Days an API token works after it is made; then it is refused (401) and the
# daily sweep deletes it. 0: tokens never expire. At most ten years: longer
# is as good as never, which 0 says, and a number of many digits would
# overflow the date it is added to.
API_TOKEN_MAX_AGE_DAYS = env.int("PORTAL_API_TOKEN_MAX_AGE_DAYS", default=0, minimum=0, maximum=3650)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's, by a key's digest: the table holds no key.
        "core.authentication.TokenAuthentication",
        # Staff only, as the admin that signs them in.
        "core.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        # DRF's DjangoModelPermissionsOrAnonReadOnly, whose 403 names the permission lacking.
        "core.permissions.ModelPermissions",
    ],
    # orjson, and a bound on nesting; forms, multipart too, in their encoding alone (core.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 20,
    # orjson: the standard library's encoder is a large part of a page's cost.
    "DEFAULT_RENDERER_CLASSES": [
        "core.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        # django-filter's, skipped when no filter is asked for.
        "core.filters.FilterBackend",
        "core.filters.SearchFilter",
        # DRF's, with the primary key ending the order (core.filters).
        "core.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.schema.ErrorDocumentingAutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "feedback": FEEDBACK_RATE,
        # The course's scripts post a folder's worth of files in a burst.
        "lab": env.rate("PORTAL_LAB_RATE", default="300/min"),
    },
    # Reads are not throttled here (each check is a cache round trip on every
    # request; rate limits per address belong to the proxy); writes that
    # anyone may make are: feedback and the course endpoints.
    "DEFAULT_THROTTLE_CLASSES": [],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.renderers.ContentNegotiation",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Portal API",
    "DESCRIPTION": "People, feedback, products and images of the portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Examples in plain text: the default colouring draws numbers at 3.45:1
    # on its dark ground, under the 4.5:1 of WCAG 1.4.3.
    "SWAGGER_UI_SETTINGS": {"syntaxHighlight": {"activated": False}},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FeedbackStatusEnum": "catalog.models.Feedback.Status",
        "ImageStatusEnum": "uploads.models.Image.Status",
    },
}

# --- Auth, i18n ---------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.time_zone("TZ", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Admin imports and exports ------------------------------------------------

# Unset, django-import-export lets every staff member import and export every
# model; the catalog's admins also ask for add as well as change to import.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
# Between an import's preview and its confirmation (which another server may
# answer) the file waits in the shared cache, or without one (embedded, one
# machine) in IMPORT_FILES_DIR; either way for IMPORT_FILES_SECONDS at most.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "core.imports.ImportFileStorage"
IMPORT_FILES_SECONDS = env.int("PORTAL_IMPORT_FILES_SECONDS", default=3600, minimum=1, maximum=31_536_000)
IMPORT_FILES_DIR = VAR_DIR / "imports"
# The folders import_feedback, import_images and import_supplier read are
# filled by other programs: with this set, a file changed more recently may
# still be being written, and is left for the next run (core.dropfolder).
# 0 (the default): every file is taken, as the course's scripts do, run
# once the folder is filled.
IMPORT_SETTLE_SECONDS = env.float("PORTAL_IMPORT_SETTLE_SECONDS", default=0, minimum=0)

# --- Security -----------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000 if HTTPS else 0, minimum=0)
# Both reach beyond this site, so they are opt-in: includeSubDomains makes
# browsers refuse plain HTTP on every subdomain, and preload, once the domain
# is submitted, is built into browsers and takes months to undo. `check
# --deploy` warns while they are off (W005, W021); off is deliberate, and
# README.md says how to turn them on.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Content-Security-Policy (portal.middleware.SecurityHeadersMiddleware):
# report-only sends it as Content-Security-Policy-Report-Only, so that a
# policy (or a new page) can be tried on real traffic first; images may come
# from the media storage's origin and these sources too (a second CDN
# domain); violations are posted to the report URI when one is set.
CSP_REPORT_ONLY = env.bool("PORTAL_CSP_REPORT_ONLY", default=False)
CSP_IMG_SOURCES = env.entries(
    "PORTAL_CSP_IMG_SOURCES",
    default=[],
    valid=IMAGE_SOURCE.fullmatch,
    what="a source of images",
    form="hosts with an optional scheme, port and path, separated by commas, "
    "such as https://img.example.com,*.cdn.example.net",
)
CSP_REPORT_URI = env.str("PORTAL_CSP_REPORT_URI", default="")
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
# How many proxies in front of the portal append to X-Forwarded-For; the
# client address for throttles, lockouts and /metrics is read through them.
TRUSTED_PROXY_COUNT = env.int("PORTAL_TRUSTED_PROXY_COUNT", default=0, minimum=0)

# --- Logging ------------------------------------------------------------------

LOG_LEVEL = env.choice("DJANGO_LOG_LEVEL", default="INFO", choices=_LOG_LEVELS)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "disallowed_host_as_warning": {"()": "portal.log.DisallowedHostAsWarning"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "portal.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {
            "handlers": ["console", "mail_admins"],
            "level": "ERROR",
            "propagate": False,
        },
        # A request for another site's host (scanners send them all day):
        # one warning line with the host and the path, never mailed. The
        # other django.security events stay errors with their traceback.
        "django.security.DisallowedHost": {
            "handlers": ["console"],
            "level": "WARNING",
            "filters": ["disallowed_host_as_warning"],
            "propagate": False,
        },
        # Errors outside a request reach ADMINS too: background processing,
        # publishing to the broker, the sweeps. The portal's own errors are
        # an outage answered 503 (mailed above as that request's error) or
        # an alert the mail server refused, so they are not mailed again.
        "portal": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "catalog": {"handlers": ["console", "mail_admins"], "level": LOG_LEVEL, "propagate": False},
        "uploads": {"handlers": ["console", "mail_admins"], "level": LOG_LEVEL, "propagate": False},
        # A task that raised: a worker takes over the root and "celery"
        # loggers' handlers for its own output, but leaves this one's.
        "celery.app.trace": {"handlers": ["mail_admins"]},
    },
}
