"""Mail through SMTP that says when the server refused some of the recipients.

smtplib hands back the recipients a server refused while it took the message
for the others; Django's backend drops them, so a report refused for one
address of two would count as mailed to both. A message larger than the
server takes is told apart from other refusals (:class:`MessageTooLarge`), so
a caller can send a smaller one instead. A :class:`Deadline` bounds the
whole sending, however slowly the server answers.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend
from django.core.mail.backends.filebased import EmailBackend as DjangoFileEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.core.mail.message import EmailMessage, sanitize_address
from django.core.validators import validate_email

logger = logging.getLogger(__name__)


ADDRESS_FORM = "one address each, such as name@example.com or Name <name@example.com>"


def address_refused(addresses: Iterable[str]) -> str | None:
    """Why mail cannot go to one of ``addresses`` (the first found), or None.

    Asked before the work whose outcome is mailed: Django's SMTP backend
    refuses a list in one text (``a@x.com,b@x.com``) or a blank address only
    as it sends, with a ValueError that no caller expects, after an import
    has run; and a blank address is dropped without a word, so a message to
    it alone counted as mailed. An address whose part before the @ is not
    ASCII is refused too: Django's mail would write it in a form no server
    delivers."""
    for address in addresses:
        if "\n" in address or "\r" in address:
            return f"not an email address: {address!r} holds a line break ({ADDRESS_FORM})"
        try:
            sanitize_address(address, "utf-8")
            _validate(parseaddr(address)[1])
        except (ValueError, ValidationError):
            return f"not an email address: {address!r} ({ADDRESS_FORM})"
    return None


# A host's own name, without a domain (ops@mailhost): mail to it goes out
# inside a company's network, though Django's validator wants a domain.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _validate(address: str) -> None:
    """``validate_email``, taking a bare host name for the domain too."""
    local, at, domain = address.rpartition("@")
    if at and _HOST.fullmatch(domain) and not domain.isdigit():
        address = f"{local}@localhost"  # the one name the validator takes alone
    validate_email(address)


class RecipientsRefused(smtplib.SMTPRecipientsRefused):
    """The server took the message for ``accepted`` (none, when it refused
    them all) and refused the others (``recipients``: address → (code,
    reply), as smtplib gives them). Each address is named as the caller gave
    it, not as it went to the server (a name in MIME words, a domain in
    punycode)."""

    def __init__(self, refused: dict[str, tuple[int, bytes]], accepted: list[str]) -> None:
        super().__init__(refused)
        self.accepted = accepted

    def __str__(self) -> str:
        return "; ".join(
            f"not mailed to {address}: {reason(*reply)}" for address, reply in self.recipients.items()
        )


class MessageTooLarge(smtplib.SMTPException):
    """The server does not take a message this large (it answered 552);
    ``limit`` is the size it advertises (ESMTP SIZE), if any."""

    def __init__(self, size: int, limit: int | None, reply: str = "") -> None:
        super().__init__(size, limit, reply)
        self.size = size
        self.limit = limit
        self.reply = reply

    def __str__(self) -> str:
        text = f"the message is {self.size:,} bytes"
        if self.limit:
            text += f", the mail server takes at most {self.limit:,} bytes"
        return text + (f" ({self.reply})" if self.reply else "")


class ServerRefused(smtplib.SMTPException):
    """The mail server answered, refusing ``what`` (the connection, the
    greeting, the login, the sender, the message) with its reply: smtplib's
    own errors read as a tuple of the code and the reply's bytes. A server
    answering 421 is closing the connection instead (ServerUnavailable)."""

    def __init__(self, server: str, what: str, code: int, reply: bytes | str) -> None:
        super().__init__(server, what, code, reply)
        self.server = server
        self.what = what
        self.smtp_code = code
        self.reply = reply

    def __str__(self) -> str:
        return f"the mail server {self.server} refused {self.what}: {reason(self.smtp_code, self.reply)}"


class ServerUnavailable(smtplib.SMTPException):
    """The mail server could not be reached, or stopped answering: which
    server, and why (a time-out names the limit it ran into)."""

    def __init__(self, server: str, why: str) -> None:
        super().__init__(server, why)
        self.server = server
        self.why = why

    def __str__(self) -> str:
        return f"the mail server {self.server} {self.why}"


def _unavailable(host: str, port: int, timeout: float | None, exc: OSError) -> ServerUnavailable:
    cause = exc.__context__ if isinstance(exc, smtplib.SMTPServerDisconnected) else exc
    if cause is None:  # smtplib found the connection closed: no socket error under it
        why = f"closed the connection ({exc})"
    elif isinstance(cause, TimeoutError):
        why = f"did not answer within {timeout:g} s (EMAIL_TIMEOUT)" if timeout else "did not answer in time"
    elif isinstance(cause, ConnectionRefusedError):
        why = "refused the connection"
    elif isinstance(cause, socket.gaierror):
        why = f"does not resolve ({cause.strerror or cause})"
    else:
        why = f"is unavailable ({cause or type(cause).__name__})"
    return ServerUnavailable(f"{host}:{port}", why)


@dataclass(frozen=True)
class Deadline:
    """When a sending must be over (``time.monotonic()``), and the limit it
    stands for, as an error names it. EMAIL_TIMEOUT bounds each read from the
    server; a server answering one byte at a time never runs into it."""

    at: float
    limit: str

    @classmethod
    def for_a_run(cls) -> Deadline | None:
        """Twice EMAIL_TIMEOUT for everything one run mails: a server that
        answers in time for each read still has this much for the whole."""
        if not settings.EMAIL_TIMEOUT:
            return None
        seconds = 2 * settings.EMAIL_TIMEOUT
        return cls(time.monotonic() + seconds, f"{seconds:g} s (twice EMAIL_TIMEOUT)")

    def remaining(self) -> float:
        return self.at - time.monotonic()


def reason(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


# What the server refused, by the error smtplib raises as it opens a session.
_SESSION_STEPS = {
    smtplib.SMTPConnectError: "the connection",
    smtplib.SMTPHeloError: "the greeting (EHLO)",
}


class EmailBackend(SMTPEmailBackend):
    """Django's SMTP backend, raising RecipientsRefused (an OSError, like
    smtplib's errors) when only some recipients were taken,
    MessageTooLarge when the server does not take a message that large,
    ServerRefused, with its reply in words, when it refuses the connection,
    the greeting, the login, the sender or the message, and
    ServerUnavailable, naming the server and the time-out, when it cannot be
    reached or stops answering (smtplib says "Connection unexpectedly
    closed: timed out" of a server that never closed anything).

    With a ``deadline`` (:class:`Deadline`), the connection is shut once it
    is past, whatever the server is doing, and ServerUnavailable names the
    limit."""

    # What a server that is away, refusing or silent raises, as opposed to
    # the replies of one that answers.
    AWAY = (TimeoutError, ConnectionError, socket.gaierror, smtplib.SMTPServerDisconnected)

    def __init__(self, *args: Any, deadline: Deadline | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self._timer: threading.Timer | None = None
        self._expired = threading.Event()
        self._socket: socket.socket | None = None

    @property
    def connection_class(self) -> Any:
        """smtplib's class, telling this backend its socket as soon as it is
        made: the server's greeting is read before the connection is."""
        backend = self

        class Connection(super().connection_class):  # type: ignore[misc]
            def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
                backend._socket = super()._get_socket(host, port, timeout)
                return backend._socket

        return Connection

    def _arm(self) -> None:
        if self.deadline is None or self._timer is not None:
            return
        remaining = self.deadline.remaining()
        if remaining <= 0:
            self._expired.set()
            raise self._late()
        self._timer = threading.Timer(remaining, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        """Past the deadline: shut the connection, so that whatever waits on
        the server (a read, a write, the TLS handshake) returns at once."""
        self._expired.set()
        connections: list[Any] = [getattr(self, "_partial_connection", None), self.connection]
        sockets = [getattr(connection, "sock", None) for connection in connections] + [self._socket]
        for sock in sockets:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _late(self) -> ServerUnavailable:
        assert self.deadline is not None  # noqa: S101 - only called with one
        return ServerUnavailable(
            f"{self.host}:{self.port}", f"did not take the mail within {self.deadline.limit}"
        )

    def _refused(self, what: str, exc: smtplib.SMTPResponseException) -> smtplib.SMTPException:
        server = f"{self.host}:{self.port}"
        if exc.smtp_code == 421:  # "closing the channel": going down or busy, refusing nothing
            return ServerUnavailable(
                server, f"closed the connection ({reason(exc.smtp_code, exc.smtp_error)})"
            )
        return ServerRefused(server, what, exc.smtp_code, exc.smtp_error)

    def _failed(self, exc: OSError) -> ServerUnavailable:
        if self._expired.is_set():
            return self._late()
        return _unavailable(self.host, self.port, self.timeout, exc)

    def open(self) -> bool | None:
        self._arm()
        try:
            return super().open()
        except OSError as exc:
            self._disarm()
            if self._socket is not None:  # a greeting that never came leaves it open
                self._socket.close()
            if isinstance(exc, self.AWAY):
                raise self._failed(exc) from exc
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                raise self._refused(f"the login as {self.username}", exc) from exc
            if isinstance(exc, smtplib.SMTPResponseException):
                # Its greeting, its answer to ours or to STARTTLS: in words,
                # not smtplib's tuple of the code and the reply's bytes.
                raise self._refused(_SESSION_STEPS.get(type(exc), "the session"), exc) from exc
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._disarm()
            self._socket = None

    def send_messages(self, email_messages: Any) -> int:
        try:
            return super().send_messages(email_messages)
        except ServerUnavailable:
            raise
        except self.AWAY as exc:
            raise self._failed(exc) from exc

    def _send(self, email_message: EmailMessage) -> bool:
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = sanitize_address(email_message.from_email, encoding)
        # Each address as it goes to the server, and as the caller gave it.
        given = {sanitize_address(addr, encoding): addr for addr in email_message.recipients()}
        recipients = list(given)
        message: Any = email_message.message()
        data = message.as_bytes(linesep="\r\n")
        connection: Any = self.connection
        try:
            try:
                # smtplib gives the size in MAIL FROM when the server advertises
                # a limit (ESMTP SIZE): a message over it is refused before its data.
                refused = connection.sendmail(from_email, recipients, data)
            except smtplib.SMTPRecipientsRefused as exc:  # every one of them
                raise RecipientsRefused(_named(exc.recipients, given), []) from exc
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                # 552: "exceeded storage allocation", the size refusal (RFC 5321).
                if exc.smtp_code == 552:
                    limit = int(connection.esmtp_features.get("size") or 0) or None
                    raise MessageTooLarge(len(data), limit, reason(exc.smtp_code, exc.smtp_error)) from exc
                if isinstance(exc, smtplib.SMTPSenderRefused):
                    raise self._refused(f"the sender {email_message.from_email}", exc) from exc
                raise self._refused("the message", exc) from exc
            except smtplib.SMTPResponseException as exc:  # its answer to our greeting
                raise self._refused(_SESSION_STEPS.get(type(exc), "the session"), exc) from exc
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        if refused:
            error = RecipientsRefused(
                _named(refused, given), [given[r] for r in recipients if r not in refused]
            )
            if not self.fail_silently:
                raise error
            logger.warning("mail %r: %s", email_message.subject, error)
        return True


def _named(refused: dict[str, tuple[int, bytes]], given: dict[str, str]) -> dict[str, tuple[int, bytes]]:
    """smtplib's refusals keyed by each address as the caller gave it."""
    return {given.get(address, address): reply for address, reply in refused.items()}


class MailNotWritten(OSError):
    """The file backend's folder cannot be written to: ``why``, in Django's words."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why

    def __str__(self) -> str:
        return f"mail cannot be written: {self.why}"


class FileEmailBackend(DjangoFileEmailBackend):
    """Django's file backend (``filemail://``, the default), whose folder that
    cannot be written to (not a folder, not ours, on a disk mounted
    read-only) is a :class:`MailNotWritten`, an OSError as a mail server that
    is away raises, when a message is to be written. Django raises
    ImproperlyConfigured as the connection is made, which no caller of a
    mail expects: a health check run or a supplier import ended in a
    traceback, its alerts or its report unsaid, and an error meant for the
    admins was lost with a traceback of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.unwritable: str | None = None
        try:
            super().__init__(*args, **kwargs)
        except ImproperlyConfigured as exc:
            self.unwritable = str(exc)
            kwargs.pop("file_path", None)
            ConsoleEmailBackend.__init__(self, *args, **{**kwargs, "stream": None})

    def open(self) -> bool | None:
        if self.unwritable is not None:
            raise MailNotWritten(self.unwritable)
        return super().open()
