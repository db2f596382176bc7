"""Who the API's caller is (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES).

Apart from core.api: DRF reads this setting while its views module loads,
which core.api imports. Nor does it import a model: that may happen before
the apps are loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

# Where a request keeps the name of a signed-in user whose session was set aside.
_SET_ASIDE = "portal_session_set_aside"


# How much of a key its stored form keeps as it is, for pages to show: enough
# to tell tokens apart, 32 of the key's 160 random bits.
KEY_PREFIX_LENGTH = 8
# The length of a key and of its stored form: DRF's column.
KEY_LENGTH = 40
# What every key is: DRF's generate_key writes 20 random bytes in hex.
KEY_SHAPE = re.compile(r"[0-9a-f]{40}")


def stored_key(key: str) -> str:
    """The form of ``key`` the token table holds, in DRF's 40-character key
    column: the key's first characters, then SHA-256 of the whole key. A
    copy of the table (a dump, a backup, an injection that reads it) gives
    no key away, and a stored form is no key: sent as one, it is hashed in
    turn. One fast hash is enough: a key is 160 random bits, not a password
    a person chose, and a lookup stays one indexed query."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key[:KEY_PREFIX_LENGTH] + digest[: KEY_LENGTH - KEY_PREFIX_LENGTH]


def token_max_age() -> dt.timedelta | None:
    """How long a token works after it is made (API_TOKEN_MAX_AGE_DAYS), or
    None: for ever."""
    days = settings.API_TOKEN_MAX_AGE_DAYS
    return dt.timedelta(days=days) if days else None


def token_expiry(created: dt.datetime) -> dt.datetime | None:
    """When a token made at ``created`` stops working, or None: never."""
    max_age = token_max_age()
    return None if max_age is None else created + max_age


def utc_minute(moment: dt.datetime) -> str:
    """``moment`` as an expiry is told outside a page: in UTC, to the minute."""
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def token_expired(expiry: dt.datetime) -> str:
    """Why a token past ``expiry`` is refused, and how its user gets another:
    a client told only "Invalid token." would be sent looking for a typo."""
    return (
        f"The token expired on {utc_minute(expiry)}: a token works for "
        f"{settings.API_TOKEN_MAX_AGE_DAYS} days after it is made. For a new one in its place, staff add "
        "another in the admin (Tokens → Add); anyone else asks an administrator "
        "(manage.py drf_create_token <username>)."
    )


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, looking a key up by its stored form: the table holds no key.
    A key looked up as sent (DRF's way) would let whoever read the table
    use what they read. A token past its expiry (token_expiry) is refused,
    until the daily sweep deletes it."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """A key of another shape is no key, refused without a query: its
        first characters go into the lookup as they are, and PostgreSQL
        cannot even compare text holding a null character (a 500)."""
        if not KEY_SHAPE.fullmatch(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = super().authenticate_credentials(stored_key(key))
        expiry = token_expiry(token.created)
        if expiry is not None and expiry <= timezone.now():
            raise exceptions.AuthenticationFailed(token_expired(expiry))
        return user, token


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """A session is a sign-in to the admin, which only staff make: one kept
    by a user whose staff status has since been taken away is no one here,
    as in the admin (DRF's would still let it write with the model
    permissions). A caller who is not staff writes with a token."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if not user or not user.is_active or not user.is_staff:
            if user is not None and user.is_authenticated:
                setattr(request._request, _SET_ASIDE, user.get_username())
            return None
        self.enforce_csrf(request)
        return (user, None)


def set_aside_session(request: HttpRequest) -> str | None:
    """Why a request refused for want of credentials sent some all the
    same: a session of a user who is not (or no longer) staff. DRF's
    "Authentication credentials were not provided" would tell a browser
    that sent its cookie that it sent nothing."""
    username = getattr(request, _SET_ASIDE, None)
    if username is None:
        return None
    return (
        f"The session of {username!r} writes nothing here: the API takes a session of active staff "
        "only, as the admin does. Send a token instead (Authorization: Token <key>)."
    )
