"""Who the API's caller is (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES).

Apart from core.api: DRF reads this setting while its views module loads,
which core.api imports.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication
from rest_framework.request import Request


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """A session is a sign-in to the admin, which only staff make: one kept
    by a user whose staff status has since been taken away is no one here,
    as in the admin (DRF's would still let it write with the model
    permissions). A caller who is not staff writes with a token."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if not user or not user.is_active or not user.is_staff:
            return None
        self.enforce_csrf(request)
        return (user, None)
