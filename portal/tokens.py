"""API tokens: a key is given once, to whoever makes it, and the database
keeps only its stored form (core.authentication.stored_key). Every way of
making a token (the admin, drf_create_token) makes it here: DRF's own
``Token.objects.create()`` stores the key it makes as it is, and that key
would not even authenticate.

Apart from portal.services: the signal handlers, loaded at start-up, import
this module and need none of the health checks'."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.authtoken.models import Token

from core.authentication import stored_key


@transaction.atomic
def token_issue(*, token: Token) -> str:
    """Save the new ``token`` with a new key's stored form, and return the
    key: nothing else holds it."""
    key = Token.generate_key()
    token.key = stored_key(key)
    token.full_clean()
    token.save(force_insert=True)
    return key


def token_create(*, user: Any) -> tuple[Token, str]:
    """A new token of ``user`` (who has none), and its key."""
    token = Token(user=user)
    return token, token_issue(token=token)


@transaction.atomic
def token_replace(*, user: Any) -> tuple[Token, str]:
    """A new token of ``user`` in place of the one they have, if any, whose
    key stops working."""
    token_revoke(user=user)
    return token_create(user=user)


def token_revoke(*, user: Any) -> int:
    """Delete the token of ``user``: its key stops working. How many went."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
