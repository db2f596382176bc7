"""Who the API's caller is (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES).

Apart from core.api: DRF reads this setting while its views module loads,
which core.api imports.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import authentication
from rest_framework.request import Request

# Where a request keeps the name of a signed-in user whose session was set aside.
_SET_ASIDE = "portal_session_set_aside"


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
