"""API tokens: a key is given once, to whoever makes it, and the database
keeps only its stored form (core.authentication.stored_key). Every way of
making a token (the admin, drf_create_token) makes it here: DRF's own
``Token.objects.create()`` stores the key it makes as it is, and that key
would not even authenticate.

Apart from portal.services: the signal handlers, loaded at start-up, import
this module and need none of the health checks'."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework.authtoken.models import Token

from core import tokens as expiring
from core.authentication import stored_key, token_expiry


@dataclass(frozen=True)
class Issued:
    """A token just made: its key, which nothing else holds, when it was
    made, and when it stops working (None: never)."""

    key: str
    created: dt.datetime
    expires: dt.datetime | None


def token_owner_lock(*, user_id: Any) -> None:
    """Lock the user's row for the rest of the transaction: writers of one
    user's token take turns. Else two, each finding no token (or deleting
    the one there), both insert one on PostgreSQL, and the second breaks
    the one-token-a-user constraint (SQLite's IMMEDIATE transactions take
    turns already)."""
    users = Token._meta.get_field("user").related_model._default_manager
    list(users.select_for_update().filter(pk=user_id).values_list("pk"))


def _expired_token_of(*, user_id: Any) -> QuerySet[Token]:
    """The user's token if it has expired: refused as it is sent, it is no
    token to keep from a new one, though the daily sweep has not deleted it
    yet."""
    return expiring.expired().filter(user_id=user_id)


def token_expired_of(*, user_id: Any) -> bool:
    """Whether the user's token has expired (a new one would replace it)."""
    return _expired_token_of(user_id=user_id).exists()


@transaction.atomic
def token_issue(*, token: Token) -> Issued:
    """Save the new ``token`` with a new key's stored form, in place of the
    user's token if that has expired. A user who has a live token (made
    meanwhile too, by a writer that took no lock) is a ValidationError.
    After the lock: of two at once, the later finds the earlier's token."""
    key = Token.generate_key()
    token.key = stored_key(key)
    token_owner_lock(user_id=token.user_id)
    _expired_token_of(user_id=token.user_id).delete()
    token.full_clean()
    try:
        with transaction.atomic():
            token.save(force_insert=True)
    except IntegrityError:
        raise ValidationError(
            f"{token.user} has a token already, made meanwhile, whose key is not kept.", code="unique"
        ) from None
    return Issued(key=key, created=token.created, expires=token_expiry(token.created))


def token_create(*, user: Any) -> Issued:
    """A new token of ``user`` (who has none, or an expired one)."""
    return token_issue(token=Token(user=user))


@transaction.atomic
def token_replace(*, user: Any) -> Issued:
    """A new token of ``user`` in place of the one they have, if any, whose
    key stops working."""
    token_owner_lock(user_id=user.pk)
    token_revoke(user=user)
    return token_create(user=user)


def token_revoke(*, user: Any) -> int:
    """Delete the token of ``user``: its key stops working. How many went."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
