"""Fixtures shared by the whole suite: media in a temp dir, a clean cache,
eager tasks, and the personas of the permission tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from django.urls import get_resolver
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from portal import cache as portal_cache
from tests.factories import UserFactory, api_key
from tests.servers import RedisServer
from uploads import holders

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def _urls_as_configured() -> None:
    """The URLconf is read once, when first used, with the settings of that
    moment: read under a test's changed setting (an absolute MEDIA_URL), its
    routes would hold for every test after it."""
    assert get_resolver().url_patterns


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": "/media/"},
        },
        "originals": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.IMPORT_FILES_DIR = tmp_path / "imports"


@pytest.fixture(scope="session", autouse=True)
def _shared_cache_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What the run keeps in its caches, apart from any other run's. Without
    CACHE_URL, the shared cache is a folder of var/ that every test run of
    the checkout would share: another run beside this one, clearing it at
    each of its tests, would wipe what a test keeps there between two steps
    (the health alerts' memory). Each run has a folder of its own instead.
    With CACHE_URL on Redis, each run has a key prefix of its own, and only
    its own keys are cleared: a run never empties the Redis database of
    another run, or of the site it was pointed at. Set once: a test that
    changes CACHES gets it back."""
    configured = settings.CACHES
    if any(_is_redis(config) for config in configured.values()):
        prefix = f"test-run-{get_random_string(12)}"
        ours = {name: {**config, "KEY_PREFIX": prefix} for name, config in configured.items()}
    elif "LOCATION" in configured["shared"]:
        location = tmp_path_factory.mktemp("var") / "cache" / "shared"
        ours = {**configured, "shared": {**configured["shared"], "LOCATION": str(location)}}
    else:
        ours = configured
    with override_settings(CACHES=ours):
        yield


def _is_redis(config: dict[str, Any]) -> bool:
    return str(config["BACKEND"]).endswith("RedisCache")


def _clear(name: str) -> None:
    """Empty a cache of the run: a Redis one by its run's key prefix alone
    (``clear()`` would empty the whole Redis database)."""
    store = caches[name]
    if not _is_redis(settings.CACHES[name]):
        store.clear()
        return
    client = store._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"{store.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _clean_cache(_shared_cache_of_this_run: None) -> Iterator[None]:
    for name in ("default", "shared"):
        _clear(name)
    yield
    # A Redis a test left for away is not one a later test finds on its port.
    portal_cache._breakers.clear()
    for name in ("default", "shared"):
        _clear(name)


@pytest.fixture(params=["folder", "redis"])
def shared_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The shared cache of the run (a folder without CACHE_URL), or Redis."""
    if request.param == "folder":
        yield settings.CACHES["shared"]["BACKEND"]
        return
    with RedisServer(base_dir=tmp_path) as redis:
        shared = {"BACKEND": "portal.cache.ResilientRedisCache", "LOCATION": redis.url}
        # Undone before the server stops: the suite's clean-up clears the shared cache.
        with override_settings(CACHES={**settings.CACHES, "shared": shared}):
            yield shared["BACKEND"]
            caches["shared"].clear()


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """``with commit(): ...`` runs the block's on-commit callbacks (processing,
    file deletion) at its end, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# How many compiled statements sqlite3 keeps per connection (its default;
# Django sets none).
STATEMENT_CACHE_SIZE = 128


@pytest.fixture
def sqlite_limit(db: None) -> Iterator[Callable[[int, int], None]]:
    """``sqlite_limit(category, value)`` lowers one of SQLite's limits
    (``sqlite3.SQLITE_LIMIT_*``) on the test's connection until the test
    ends, so that a small request goes past it."""
    connection.ensure_connection()
    raw = connection.connection
    before: dict[int, int] = {}

    def lower(category: int, value: int) -> None:
        before.setdefault(category, raw.getlimit(category))
        raw.setlimit(category, value)
        # sqlite3 keeps the connection's last statements compiled, and one
        # compiled under the old limit is not checked again (another test's
        # search of as many words): push them out with others.
        for n in range(STATEMENT_CACHE_SIZE):
            raw.execute(f"SELECT {n}")

    yield lower
    for category, value in before.items():
        raw.setlimit(category, value)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- Personas -----------------------------------------------------------------


class BrowserSessionClient(APIClient):
    """A logged-in browser: CSRF is enforced, and like a page of the site the
    client sends the token from its cookie with every unsafe request."""

    def __init__(self, **defaults: Any) -> None:
        super().__init__(enforce_csrf_checks=True, **defaults)
        self.cookies[settings.CSRF_COOKIE_NAME] = get_random_string(32)

    def generic(self, method: str, path: str, *args: Any, **extra: Any) -> Any:  # type: ignore[override]
        if method.upper() not in {"GET", "HEAD", "OPTIONS", "TRACE"}:
            extra.setdefault("HTTP_X_CSRFTOKEN", self.cookies[settings.CSRF_COOKIE_NAME].value)
        return super().generic(method, path, *args, **extra)


@pytest.fixture
def visitor() -> APIClient:
    """Anyone on the internet: no account."""
    return APIClient()


@pytest.fixture
def staff_user(db: None) -> Any:
    user = UserFactory(username="staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["catalog", "uploads"]))
    return user


@pytest.fixture
def staff(staff_user: Any) -> APIClient:
    """A staff member logged in to a browser session, with the model permissions."""
    client = BrowserSessionClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def token_client(db: None) -> APIClient:
    """An external tool with an API token and the model permissions."""
    user = UserFactory(username="integration-bot")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["catalog", "uploads"]))
    key = api_key(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def outsider(db: None) -> APIClient:
    """Signed in, with a token, but with no permissions at all (a session is
    staff's: core.authentication)."""
    user = UserFactory(username="outsider")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key(user)}")
    return client


@pytest.fixture
def ended_process() -> str:
    """A process of this host that has since been killed, as an image's
    holder or a health check's claim names it."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        process = holders._me(child.pid)
    finally:
        child.kill()
        child.wait()
    return process
