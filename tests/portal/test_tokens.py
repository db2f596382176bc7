"""API tokens whose keys a copy of the database does not give away: the
table holds a digest of each key, and every way of making a token gives its
key once."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.authentication import stored_key
from tests.factories import UserFactory, api_key, logged_in, staff_with

pytestmark = pytest.mark.django_db


def status_with(key: str) -> int:
    """How the API answers a read sent with ``key``: a key it does not take is
    a 401 even there."""
    return APIClient().get("/api/v1/people/", HTTP_AUTHORIZATION=f"Token {key}").status_code


def authenticated_as(key: str) -> str:
    """Whom the API takes ``key`` for, by a write only a token's user may make."""
    response = APIClient().post(
        "/api/v1/products/", {"name": "Kiwi", "weight": 80}, format="json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 403, response.content  # taken, but holding no permission
    return str(response.wsgi_request.user)  # type: ignore[attr-defined]


def database_text() -> str:
    """Everything the database holds, as a dump gives it away, sessions decoded."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - a table's own name
            rows.extend(repr(row) for row in cursor.fetchall())
    rows.extend(repr(session.get_decoded()) for session in Session.objects.all())
    return "\n".join(rows)


def made_by_the_service(user: Any) -> str:
    return api_key(user)


def made_by_the_command(user: Any) -> str:
    out = io.StringIO()
    call_command("drf_create_token", user.username, stdout=out)
    [key] = re.findall(rf"^Generated token ([0-9a-f]{{40}}) for user {user.username}$", out.getvalue(), re.M)
    return key


def made_in_the_admin(user: Any) -> str:
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = logged_in(boss)
    added = client.post("/admin/authtoken/tokenproxy/add/", {"user": user.pk})
    assert added.status_code == 302
    meanwhile = database_text()
    [key] = re.findall(r"<code>([0-9a-f]{40})</code>", client.get(added["Location"]).content.decode())
    # Until the page that shows it, the key waits in the session, and so in
    # the database: sealed.
    assert key not in meanwhile
    return key


@pytest.mark.parametrize("make", [made_by_the_service, made_by_the_command, made_in_the_admin])
def test_a_token_made_each_way_authenticates_with_its_key_which_the_database_does_not_hold(
    make: Callable[[Any], str],
) -> None:
    user = UserFactory(username="tool")

    key = make(user)

    assert authenticated_as(key) == "tool"
    assert key not in database_text()
    assert Token.objects.get(user=user).key == stored_key(key)


def test_pages_show_the_first_characters_of_a_key_the_stored_form_keeps() -> None:
    key = api_key(staff_with("authtoken", "view_tokenproxy"))
    stored = Token.objects.get().key
    assert stored[:8] == key[:8]
    assert stored != key


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(lambda key: Token.objects.get().key, id="the stored form"),
        pytest.param(lambda key: key[:-1] + ("0" if key[-1] != "0" else "1"), id="another key"),
        pytest.param(lambda key: key.upper(), id="the key in capitals"),
        pytest.param(lambda key: key[:8], id="the prefix pages show"),
    ],
)
def test_only_the_key_itself_authenticates(sent: Callable[[str], str]) -> None:
    """The stored form above all: were it taken as a key, the table would
    give away every token again."""
    key = api_key(UserFactory())
    assert status_with(key) == 200
    assert status_with(sent(key)) == 401


def test_lab_endpoints_take_the_key_and_refuse_its_stored_form(client: Client) -> None:
    key = api_key(UserFactory(username="reader"))

    def answer(sent: str) -> int:
        return client.post(
            "/fruits/",
            {"name": "Banana", "weight": "500"},
            content_type="application/json",
            REMOTE_ADDR="203.0.113.5",  # outside every network that may write without a token
            HTTP_AUTHORIZATION=f"Token {sent}",
        ).status_code

    assert answer(key) == 403  # taken, but holding no permission
    assert answer(Token.objects.get().key) == 401


# --- drf_create_token ---------------------------------------------------------


def test_the_command_does_not_replace_a_token_unless_told_to() -> None:
    user = UserFactory(username="tool")
    key = api_key(user)

    with pytest.raises(CommandError, match="has a token already"):
        call_command("drf_create_token", "tool", stdout=io.StringIO())

    assert status_with(key) == 200


@pytest.mark.parametrize("flag", ["-r", "--reset"])
def test_the_command_replaces_a_token_with_reset(flag: str) -> None:
    user = UserFactory(username="tool")
    old = api_key(user)
    out = io.StringIO()

    call_command("drf_create_token", "tool", flag, stdout=out)

    [new] = re.findall(r"Generated token ([0-9a-f]{40}) for user tool", out.getvalue())
    assert status_with(new) == 200
    assert status_with(old) == 401
    assert Token.objects.count() == 1


def test_the_command_names_a_user_it_does_not_know() -> None:
    with pytest.raises(CommandError, match="user ghost does not exist"):
        call_command("drf_create_token", "ghost", stdout=io.StringIO())


# --- The migration ---------------------------------------------------------------

MIGRATION = ("portal", "0001_token_key_digests")


@pytest.mark.django_db(transaction=True)
def test_the_migration_stores_a_plain_key_s_digest_and_the_key_still_works() -> None:
    user = UserFactory(username="old-tool")
    made = timezone.now() - dt.timedelta(days=400)
    MigrationExecutor(connection).migrate([("portal", None)])
    try:
        # As the release before made it: DRF's, the key as the primary key.
        old = Token.objects.create(user=user)
        Token.objects.filter(pk=old.pk).update(created=made)
        assert status_with(old.key) == 401  # the portal now looks keys up by their stored form
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    token = Token.objects.get()
    assert (token.key, token.user, token.created) == (stored_key(old.key), user, made)
    assert old.key not in database_text()
    assert authenticated_as(old.key) == "old-tool"


@pytest.mark.django_db(transaction=True)
def test_the_migration_taken_back_deletes_the_tokens_whose_keys_it_cannot_give_back() -> None:
    """The release before looked a key up as sent: a stored form left in the
    table would be a key there."""
    api_key(UserFactory())
    try:
        MigrationExecutor(connection).migrate([("portal", None)])
        assert not Token.objects.exists()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
