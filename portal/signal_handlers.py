"""A password change cuts a user's API token off: changing the password
(in the admin, with ``changepassword``, on the password change or reset
page, or ``set_password()`` and a save anywhere else) is how staff end a
credential that leaked, and a token kept working would be one left open.

Connected by PortalConfig.ready(). Deactivating a user needs nothing here:
the token authentication refuses an inactive user's token (DRF's check),
and a user made active again has it back, as their password."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import is_password_usable
from django.db.models.signals import post_save, pre_save

from portal import tokens

# Set on a user being saved whose password changes, for post_save to act on.
CHANGED_ATTR = "_portal_password_changed"


def note_password_change(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """Whether this save changes the password: ``set_password()`` leaves the
    new password on the user until the save (as Django's password_changed
    hook reads it); the hash Django upgrades at a login is no change, and
    Django clears it then. ``set_unusable_password()`` (the admin's
    "disable password-based authentication") leaves nothing, so the
    password stored is read, and only then."""
    if raw or instance._state.adding or (update_fields is not None and "password" not in update_fields):
        changed = False
    elif getattr(instance, "_password", None) is not None:
        changed = True
    elif not instance.has_usable_password():
        before = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
        changed = before is not None and is_password_usable(before)
    else:
        changed = False
    setattr(instance, CHANGED_ATTR, changed)


def revoke_tokens_on_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """In the same transaction as the new password, when the save is in one."""
    if getattr(instance, CHANGED_ATTR, False):
        setattr(instance, CHANGED_ATTR, False)
        tokens.token_revoke(user=instance)


def register() -> None:
    user = settings.AUTH_USER_MODEL
    pre_save.connect(note_password_change, sender=user, dispatch_uid="portal.note_password_change")
    post_save.connect(
        revoke_tokens_on_password_change, sender=user, dispatch_uid="portal.revoke_tokens_on_password_change"
    )
