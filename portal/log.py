"""Filters and handlers of the portal's logging configuration (settings.LOGGING)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import get_connection
from django.utils.log import AdminEmailHandler as DjangoAdminEmailHandler

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
    """Django's mail of an error to ADMINS, within twice EMAIL_TIMEOUT.

    The mail goes out in the thread that logged the error: a request's, a
    task's. EMAIL_TIMEOUT bounds each read from the server alone, so a server
    answering a byte at a time would hold that request or task for as long as
    it trickles; past the deadline the mail is dropped (fail_silently, as
    Django has it) and the thread goes on.
    """

    def connection(self) -> Any:
        return get_connection(
            backend=self.email_backend, fail_silently=True, deadline=mail.Deadline.for_a_run()
        )
