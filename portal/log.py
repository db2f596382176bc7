"""Filters and handlers of the portal's logging configuration (settings.LOGGING)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.mail import get_connection
from django.utils.log import AdminEmailHandler as DjangoAdminEmailHandler
from django_stubs_ext import StrOrPromise

from core import mail


class DisallowedHostAsWarning(logging.Filter):
    """A request for a host not in ALLOWED_HOSTS, as one warning line.

    Scanners send them all day, each answered 400: Django logs each as an
    error with its traceback, which buries the errors worth reading (and
    mails ADMINS wherever their handler takes errors). The host and the path
    are written as Python literals, so that a line break or any control
    character sent in them stays inside the line, and each is cut to
    ``SHOWN`` characters, so that a line stays a line.
    """

    SHOWN = 200

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None:
            host = request._get_raw_host()  # Django's own, not in the stubs: the host it refused
            record.msg = "host %r not allowed (ALLOWED_HOSTS): %s %r"
            record.args = (self._cut(host), request.method, self._cut(request.path))
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info = record.exc_text = None
        return True

    @classmethod
    def _cut(cls, text: str) -> str:
        if len(text) <= cls.SHOWN:
            return text
        return f"{text[: cls.SHOWN]}… ({len(text):,} characters)"


class AdminEmailHandler(DjangoAdminEmailHandler):
    """Django's mail of an error to ADMINS, once per ``interval`` for the same
    error, within twice EMAIL_TIMEOUT.

    A storm of one failure (the database away for every request, a store
    that fails every image of an import) would mail each occurrence: hundreds
    of the same traceback in a few minutes, burying any other error, and
    each costing the thread that logged it a wait on the mail server. The
    same error is the same logger, message and exception raised at the same
    line (a request's status too); the first of its occurrences in an
    interval is mailed, the others are counted across the processes (in the
    shared cache) and its next mail says how many there were. The log keeps
    every one. A cache that cannot be asked costs the throttle, never the
    mail.

    The mail goes out in the thread that logged the error: a request's, a
    task's. EMAIL_TIMEOUT bounds each read from the server alone, so a server
    answering a byte at a time would hold that request or task for as long as
    it trickles; past the deadline the mail is dropped (fail_silently, as
    Django has it) and the thread goes on.
    """

    def __init__(self, *args: Any, interval: float = 600, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interval = interval
        self._note = ""

    def emit(self, record: logging.LogRecord) -> None:
        if not settings.ADMINS:
            return
        key = _error_key(record)
        held = 0
        try:
            shared = caches["shared"]
            # Not added: mailed in this interval, or the cache is away (a
            # Redis that is away answers each call its fallback: nothing
            # added, nothing found), when every error is mailed.
            if not shared.add(key, True, timeout=self.interval) and shared.get(key) is not None:
                _count(shared, f"{key}:held")
                return
            held = shared.get(f"{key}:held") or 0
            if held:
                # Taken off what was read, not deleted: an error another
                # worker counts meanwhile stays counted for the next mail.
                shared.decr(f"{key}:held", held)
        except Exception:  # noqa: BLE001, S110 - the mail matters more than its throttle
            pass
        every = f"{self.interval / 60:g} minutes" if self.interval >= 60 else f"{self.interval:g} seconds"
        self._note = f"This error is mailed at most once every {every}; the log has every one.\n"
        if held:
            self._note += f"It occurred {held:,} more time(s) since its last mail, not mailed.\n"
        try:
            super().emit(record)
        finally:
            self._note = ""

    def send_mail(self, subject: StrOrPromise, message: StrOrPromise, *args: Any, **kwargs: Any) -> None:
        super().send_mail(subject, f"{self._note}\n{message}" if self._note else message, *args, **kwargs)

    def connection(self) -> Any:
        return get_connection(
            backend=self.email_backend, fail_silently=True, deadline=mail.Deadline.for_a_run()
        )


def _count(shared: Any, key: str) -> None:
    """One more error held back under ``key``. Not counted if the cache
    fails meanwhile: it is held back all the same, as mailed already."""
    with contextlib.suppress(Exception):
        if shared.add(key, 1, timeout=None):
            return
        try:
            shared.incr(key)
        except ValueError:  # gone since the add (cleared, culled): counted anew
            shared.add(key, 1, timeout=None)


def _error_key(record: logging.LogRecord) -> str:
    """The shared cache's key of an error: its logger, message (before its
    arguments: an image's id, a request's path), status, and the exception's
    type and the line that raised it."""
    parts = [record.name, str(record.msg), str(getattr(record, "status_code", ""))]
    if record.exc_info and record.exc_info[0] is not None:
        parts.append(record.exc_info[0].__qualname__)
        tb = record.exc_info[2]
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            parts.append(f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
    digest = hashlib.blake2b("\0".join(parts).encode(errors="replace"), digest_size=16).hexdigest()
    return f"admin-mail:{digest}"
