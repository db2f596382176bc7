"""On PostgreSQL, two writers of one user's API token at once: each waits
for the other's transaction, on the user's row (portal.tokens), so the
later one finds the earlier one's token, as it would one at a time.

Without that lock each found no token (or deleted the one there), both
inserted one, and the later broke the one-token-a-user constraint: a
traceback from ``drf_create_token --reset``, a refusal of a replacement
that nothing stood in the way of once the first was done.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.authentication import stored_key
from tests.factories import UserFactory
from tests.integration.paused import PATIENCE, Paused, Writer, lock_waiters
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Where the first writer is held: its token inserted, not yet committed.
INSERTED = ('INSERT INTO "authtoken_token"',)


def issue(username: str, *flags: str) -> Any:
    def run() -> str:
        out = io.StringIO()
        call_command("drf_create_token", username, *flags, stdout=out, stderr=io.StringIO())
        [key] = re.findall(r"Generated token ([0-9a-f]{40}) for user", out.getvalue())
        return key

    return run


def reset(username: str) -> Any:
    return issue(username, "--reset")


def refusal(call: Any) -> Any:
    """``call``, which is to be refused: what the refusal says."""

    def run() -> str:
        try:
            call()
        except CommandError as exc:
            return str(exc)
        raise AssertionError("not refused")

    return run


def admin_add(boss: Any, user: Any) -> Any:
    def post() -> Any:
        client = Client()
        client.force_login(boss)
        return client.post("/admin/authtoken/tokenproxy/add/", {"user": user.pk})

    return post


def meet(server: PostgresServer, first: Any, second: Any) -> tuple[Any, Any]:
    """``first`` held once it has inserted its token, ``second`` run until it
    waits for a lock, then both to their end: their outcomes."""
    paused = Paused(*INSERTED)
    held = Writer(server, paused, first)
    held.start()
    paused.wait()
    other = Writer(server, Paused("never run"), second)
    other.start()
    deadline = time.monotonic() + PATIENCE
    while not lock_waiters(server):
        assert other.is_alive(), "the second writer did not wait for the first"
        assert time.monotonic() < deadline, "the second writer neither ended nor waited"
        time.sleep(0.01)
    paused.go()
    return held.outcome(), other.outcome()


def test_two_replacements_at_once_take_turns_and_the_later_key_is_the_one_kept(
    postgres_database: PostgresServer,
) -> None:
    UserFactory(username="tool")
    reset("tool")()

    first, second = meet(postgres_database, reset("tool"), reset("tool"))

    assert list(Token.objects.values_list("key", flat=True)) == [stored_key(second)]
    assert first != second


def test_a_token_added_in_the_admin_while_the_command_makes_one_is_a_form_error(
    postgres_database: PostgresServer,
) -> None:
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    user = UserFactory(username="tool")

    made, response = meet(postgres_database, reset("tool"), admin_add(boss, user))

    assert response.status_code == 200, response.content
    assert "Token with this User already exists." in response.content.decode()
    assert list(Token.objects.values_list("key", flat=True)) == [stored_key(made)]


@pytest.mark.parametrize("second", ["command", "admin"])
def test_two_new_tokens_at_once_for_a_user_whose_token_expired_give_one_and_the_later_is_refused(
    postgres_database: PostgresServer, settings: Any, second: str
) -> None:
    """The first deletes the expired token and inserts its own; the later,
    waiting on the user's row, finds that one live, as it would one at a
    time."""
    settings.API_TOKEN_MAX_AGE_DAYS = 90
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    user = UserFactory(username="tool")
    issue("tool")()
    Token.objects.update(created=timezone.now() - dt.timedelta(days=91))
    later = refusal(issue("tool")) if second == "command" else admin_add(boss, user)

    made, refused = meet(postgres_database, issue("tool"), later)

    if second == "command":
        assert "User tool has a token already" in refused
    else:
        assert refused.status_code == 200, refused.content
        assert "Token with this User already exists." in refused.content.decode()
    assert list(Token.objects.values_list("key", flat=True)) == [stored_key(made)]
