"""Mail through SMTP that says when the server refused some of the recipients.

smtplib hands back the recipients a server refused while it took the message
for the others; Django's backend drops them, so a report refused for one
address of two would count as mailed to both. A message larger than the
server takes is told apart from other refusals (:class:`MessageTooLarge`), so
a caller can send a smaller one instead.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from typing import Any

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.core.mail.message import EmailMessage, sanitize_address

logger = logging.getLogger(__name__)


class RecipientsRefused(smtplib.SMTPRecipientsRefused):
    """The server took the message for ``accepted`` and refused the others
    (``recipients``: address → (code, reply), as smtplib gives them)."""

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


def reason(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


class EmailBackend(SMTPEmailBackend):
    """Django's SMTP backend, raising RecipientsRefused (an OSError, like
    smtplib's errors) when only some recipients were taken,
    MessageTooLarge when the server does not take a message that large, and
    ServerUnavailable, naming the server and the time-out, when it cannot be
    reached or stops answering (smtplib says "Connection unexpectedly
    closed: timed out" of a server that never closed anything)."""

    # What a server that is away, refusing or silent raises, as opposed to
    # the replies of one that answers.
    AWAY = (TimeoutError, ConnectionError, socket.gaierror, smtplib.SMTPServerDisconnected)

    def open(self) -> bool | None:
        try:
            return super().open()
        except self.AWAY as exc:
            raise _unavailable(self.host, self.port, self.timeout, exc) from exc

    def send_messages(self, email_messages: Any) -> int:
        try:
            return super().send_messages(email_messages)
        except ServerUnavailable:
            raise
        except self.AWAY as exc:
            raise _unavailable(self.host, self.port, self.timeout, exc) from exc

    def _send(self, email_message: EmailMessage) -> bool:
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        message: Any = email_message.message()
        data = message.as_bytes(linesep="\r\n")
        connection: Any = self.connection
        try:
            try:
                # smtplib gives the size in MAIL FROM when the server advertises
                # a limit (ESMTP SIZE): a message over it is refused before its data.
                refused = connection.sendmail(from_email, recipients, data)
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                # 552: "exceeded storage allocation", the size refusal (RFC 5321).
                if exc.smtp_code != 552:
                    raise
                limit = int(connection.esmtp_features.get("size") or 0) or None
                raise MessageTooLarge(len(data), limit, reason(exc.smtp_code, exc.smtp_error)) from exc
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        if refused:
            error = RecipientsRefused(refused, [r for r in recipients if r not in refused])
            if not self.fail_silently:
                raise error
            logger.warning("mail %r: %s", email_message.subject, error)
        return True
