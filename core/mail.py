"""Mail through SMTP that says when the server refused some of the recipients.

smtplib hands back the recipients a server refused while it took the message
for the others; Django's backend drops them, so a report refused for one
address of two would count as mailed to both.
"""

from __future__ import annotations

import logging
import smtplib
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


def reason(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


class EmailBackend(SMTPEmailBackend):
    """Django's SMTP backend, raising RecipientsRefused (an OSError, like
    smtplib's errors) when only some recipients were taken."""

    def _send(self, email_message: EmailMessage) -> bool:
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        message: Any = email_message.message()
        connection: Any = self.connection
        try:
            refused = connection.sendmail(from_email, recipients, message.as_bytes(linesep="\r\n"))
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
