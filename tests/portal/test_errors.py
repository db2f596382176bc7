"""Errors in production: the client gets a plain 500 that tells nothing of
the failure, and ADMINS get a mail with the traceback, whether the error
happened answering a request or in the background (a task, publishing to the
broker). A request a scanner sends for a host of another site is a
warning of one line, never mailed."""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import current_app
from django.core import mail
from django.core.cache import caches
from django.test import Client

from catalog import selectors
from portal import log
from portal.log import AdminEmailHandler, _error_key
from tests.servers import free_port, trickling_smtp
from uploads import dispatch

pytestmark = pytest.mark.django_db

ADMIN = "ops@example.com"
# What an exception could give away: an internal host and a secret.
INSIDE = "db-7.internal:5432 password=hunter2"


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False
    settings.ADMINS = [("Ops", ADMIN)]


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"could not reach {INSIDE}")


def _mailed_to_admins() -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if m.to == [ADMIN]]


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("url", "broken", "accept"),
    [
        ("/", "feedback_published", "text/html"),
        ("/api/v1/feedback/", "feedback_visible", "application/json"),
    ],
    ids=["page", "api"],
)
def test_a_request_that_fails_is_a_plain_500_and_its_traceback_is_mailed_to_the_admins(
    monkeypatch: pytest.MonkeyPatch, url: str, broken: str, accept: str
) -> None:
    monkeypatch.setattr(selectors, broken, _explode)
    response = Client(raise_request_exception=False).get(url, HTTP_ACCEPT=accept)

    assert response.status_code == 500
    assert response["Content-Type"].startswith(accept)
    body = response.content.decode()
    assert "db-7" not in body
    assert "hunter2" not in body
    assert "RuntimeError" not in body
    [message] = _mailed_to_admins()
    assert url in message.subject
    assert f"RuntimeError at {url}\ncould not reach db-7.internal:5432" in message.body
    assert "in _explode" in message.body  # the traceback


@pytest.mark.usefixtures("production")
def test_a_task_that_fails_unexpectedly_is_mailed_to_the_admins() -> None:
    # An id that is no id: the task cannot even look the image up.
    result = current_app.tasks[dispatch.PROCESS_IMAGE].apply(args=["not-an-id"])

    assert result.failed()
    [message] = _mailed_to_admins()
    assert "uploads.tasks.process_image" in message.subject
    assert "ValueError" in message.body
    assert "in process_image" in message.body  # the traceback


@pytest.mark.usefixtures("production")
def test_an_upload_that_could_not_be_handed_to_the_broker_is_mailed_to_the_admins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "_publish", _explode)
    dispatch.hold_until_answered()
    dispatch._answering.held = [(41, False)]
    dispatch.publish_held()

    [message] = _mailed_to_admins()
    assert "image 41 left pending for the sweep" in message.subject
    assert "RuntimeError\ncould not reach db-7.internal:5432" in message.body
    assert "in _explode" in message.body  # the traceback


@pytest.mark.usefixtures("production")
def test_a_mail_server_that_trickles_holds_a_failed_request_twice_email_timeout_at_most(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    left = threading.Event()
    threading.Thread(target=trickling_smtp, args=(listener, left), daemon=True).start()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    settings.EMAIL_TIMEOUT = 1  # no read waits that long
    monkeypatch.setattr(selectors, "feedback_published", _explode)
    with listener:
        response = Client(raise_request_exception=False).get("/", HTTP_ACCEPT="text/html")

    assert response.status_code == 500
    # Set only by a client that hangs up before the trickle ends (20 s of it).
    assert left.wait(timeout=30), "the request kept reading the trickle"


def _mail_admins_handler() -> logging.Handler:
    [handler] = [h for h in logging.getLogger("django.request").handlers if h.name == "mail_admins"]
    return handler


def _explode_elsewhere(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("another failure")


@pytest.mark.usefixtures("production")
def test_a_storm_of_one_error_is_mailed_once_per_interval_with_how_often_it_occurred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Far longer than the storm takes on a loaded machine; ended below as
    # time ends it, its key gone from the shared cache.
    monkeypatch.setattr(_mail_admins_handler(), "interval", 59)
    keys: list[str] = []

    def noted_key(record: logging.LogRecord) -> str:
        keys.append(_error_key(record))
        return keys[-1]

    monkeypatch.setattr(log, "_error_key", noted_key)
    monkeypatch.setattr(selectors, "feedback_published", _explode)
    client = Client(raise_request_exception=False)
    for _ in range(20):
        assert client.get("/", HTTP_ACCEPT="text/html").status_code == 500
    [first] = _mailed_to_admins()
    assert "This error is mailed at most once every 59 seconds" in first.body
    assert "RuntimeError at /\ncould not reach db-7.internal:5432" in first.body

    # Another error in the meantime is mailed: it is not the same one.
    monkeypatch.setattr(selectors, "feedback_published", _explode_elsewhere)
    assert client.get("/", HTTP_ACCEPT="text/html").status_code == 500
    assert len(_mailed_to_admins()) == 2

    caches["shared"].delete(keys[0])  # the interval is over
    monkeypatch.setattr(selectors, "feedback_published", _explode)
    assert client.get("/", HTTP_ACCEPT="text/html").status_code == 500
    *_, again = _mailed_to_admins()
    assert len(_mailed_to_admins()) == 3
    assert "It occurred 19 more time(s) since its last mail, not mailed." in again.body


@pytest.mark.usefixtures("production")
def test_every_error_is_mailed_while_the_shared_cache_is_away(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Redis that is away answers each call its fallback (an add that adds
    # nothing): the errors are mailed unthrottled, not taken as mailed already.
    away = {"BACKEND": "portal.cache.ResilientRedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    settings.CACHES = {**settings.CACHES, "shared": {**away, "OPTIONS": {"socket_connect_timeout": 0.2}}}
    monkeypatch.setattr(selectors, "feedback_published", _explode)
    client = Client(raise_request_exception=False)
    for _ in range(3):
        assert client.get("/", HTTP_ACCEPT="text/html").status_code == 500

    mailed = _mailed_to_admins()
    assert len(mailed) == 3
    assert all("RuntimeError at /" in m.body for m in mailed)


def _record() -> logging.LogRecord:
    return logging.LogRecord("portal.test", logging.ERROR, __file__, 1, "the store failed", None, None)


def _interleaved(monkeypatch: pytest.MonkeyPatch, method: str, held: str, then: Callable[[], None]) -> None:
    """Runs ``then`` once, right after the shared cache's ``method`` has
    answered for the key ``held``: another worker's turn in between."""
    shared = caches["shared"]
    original = getattr(shared, method)
    pending = [then]

    def interleaved(key: str, *args: Any, **kwargs: Any) -> Any:
        answer = original(key, *args, **kwargs)
        if key == held and pending:
            pending.pop()()
        return answer

    monkeypatch.setattr(shared, method, interleaved)


@pytest.mark.usefixtures("production")
def test_an_error_counted_while_a_new_interval_reads_the_count_is_kept_for_the_next_mail(
    shared_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = AdminEmailHandler(), AdminEmailHandler()
    key = _error_key(_record())
    caches["shared"].set(f"{key}:held", 3, timeout=None)  # held back in the interval before

    # The first worker starts an interval and reads the 3; the second counts one more.
    _interleaved(monkeypatch, "get", f"{key}:held", lambda: second.emit(_record()))
    first.emit(_record())
    monkeypatch.undo()

    caches["shared"].delete(key)  # the interval is over
    second.emit(_record())
    [mailed, again] = _mailed_to_admins()
    assert "It occurred 3 more time(s) since its last mail, not mailed." in mailed.body
    assert "It occurred 1 more time(s) since its last mail, not mailed." in again.body


@pytest.mark.usefixtures("production")
def test_an_error_counted_while_a_new_interval_begins_is_not_mailed(
    shared_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = AdminEmailHandler(), AdminEmailHandler()
    key = _error_key(_record())
    caches["shared"].set(key, True, timeout=600)
    caches["shared"].set(f"{key}:held", 3, timeout=None)

    def interval_over_and_first_worker_mails() -> None:
        caches["shared"].delete(key)
        first.emit(_record())

    # The second worker finds the interval running, and the first begins the next before it counts.
    _interleaved(monkeypatch, "add", f"{key}:held", interval_over_and_first_worker_mails)
    second.emit(_record())
    monkeypatch.undo()

    [mailed] = _mailed_to_admins()
    assert "It occurred 3 more time(s) since its last mail, not mailed." in mailed.body
    caches["shared"].delete(key)
    first.emit(_record())
    *_, again = _mailed_to_admins()
    assert "It occurred 1 more time(s) since its last mail, not mailed." in again.body


def test_nothing_is_mailed_while_debugging(settings: Any) -> None:
    settings.DEBUG = True
    settings.ADMINS = [("Ops", ADMIN)]
    current_app.tasks[dispatch.PROCESS_IMAGE].apply(args=["not-an-id"])
    assert _mailed_to_admins() == []


@contextmanager
def _console() -> Iterator[io.StringIO]:
    """What the portal's configured console handler writes meanwhile."""
    [console] = [h for h in logging.getLogger("django").handlers if h.name == "console"]
    assert isinstance(console, logging.StreamHandler)
    written = io.StringIO()
    stream = console.setStream(written)
    try:
        yield written
    finally:
        console.setStream(stream)


@pytest.mark.usefixtures("production")
def test_a_request_for_a_host_not_allowed_is_one_warning_line_and_is_not_mailed() -> None:
    with _console() as written:
        response = Client().get("/wp-login.php%0Aforged", HTTP_HOST="scanner.example")

    assert response.status_code == 400
    [line] = written.getvalue().splitlines()
    assert " WARNING django.security.DisallowedHost " in line
    assert "'scanner.example'" in line
    assert "'/wp-login.php\\nforged'" in line  # a line break in the path stays in its line
    assert _mailed_to_admins() == []


@pytest.mark.usefixtures("production")
def test_a_request_for_a_long_host_not_allowed_is_a_short_line() -> None:
    with _console() as written:
        response = Client().get("/" + "p" * 5000, HTTP_HOST="h" * 10_000 + ".example")

    assert response.status_code == 400
    [line] = written.getvalue().splitlines()
    assert len(line) < 800
    assert "'" + "h" * 200 + "… (10,008 characters)'" in line
    assert "… (5,001 characters)'" in line


@pytest.mark.usefixtures("production")
def test_other_suspicious_requests_are_still_errors_with_their_traceback(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    with _console() as written:
        response = Client().get("/reviews/?a=1&b=2&c=3")

    assert response.status_code == 400
    output = written.getvalue()
    assert " ERROR django.security.TooManyFieldsSent " in output
    assert "Traceback" in output
