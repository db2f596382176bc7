"""API tokens whose keys a copy of the database does not give away: the
table holds a digest of each key, every way of making a token gives its key
once, and a password change cuts the user's token off."""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from core.authentication import TokenAuthentication, stored_key
from tests.factories import UserFactory, api_key, logged_in, staff_with

pytestmark = pytest.mark.django_db

PASSWORD = "an-old-Passphrase-42"
NEW_PASSWORD = "a-new-Passphrase-43"


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


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(lambda key: key[:7] + "\0" + key[8:], id="a null character"),
        pytest.param(lambda key: key + "0", id="a character too many"),
        pytest.param(lambda key: key[:-1] + "g", id="a letter past hex"),
        pytest.param(lambda key: key[:8] + "%" + key[9:], id="a pattern's wildcard"),
    ],
)
def test_a_key_of_another_shape_is_refused_without_a_query(
    sent: Callable[[str], str], django_assert_num_queries: Any
) -> None:
    """Its first characters would go into the lookup as they are: a null
    character there is a 500 on PostgreSQL."""
    key = api_key(UserFactory())

    with django_assert_num_queries(0), pytest.raises(AuthenticationFailed, match="Invalid token"):
        TokenAuthentication().authenticate_credentials(sent(key))
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


def another_token_made_meanwhile(monkeypatch: pytest.MonkeyPatch, user: Any) -> Token:
    """A token of ``user`` put in the table just before the one being made,
    as a writer that takes no lock (a shell's ``Token.objects.create()``)
    does between the check that the user has none and the insert."""
    other = Token(user=user, key=stored_key(Token.generate_key()))
    save = Token.save

    def other_first(self: Token, *args: Any, **kwargs: Any) -> None:
        if not Token.objects.filter(pk=other.pk).exists():
            Token.objects.bulk_create([other])
        save(self, *args, **kwargs)

    monkeypatch.setattr(Token, "save", other_first)
    return other


@pytest.mark.parametrize("flags", [[], ["--reset"]])
def test_the_command_refuses_a_user_given_a_token_meanwhile_saying_so(
    monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    user = UserFactory(username="tool")
    other = another_token_made_meanwhile(monkeypatch, user)

    with pytest.raises(CommandError, match="tool"):
        call_command("drf_create_token", "tool", *flags, stdout=io.StringIO())

    # Nothing of its own. (The other token, made here in its transaction, went back with it.)
    assert not Token.objects.exclude(pk=other.pk).exists()


def test_the_command_names_a_user_it_does_not_know() -> None:
    with pytest.raises(CommandError, match="user ghost does not exist"):
        call_command("drf_create_token", "ghost", stdout=io.StringIO())


@pytest.mark.parametrize("typed", ["NFD", "NFKD"])
def test_the_command_finds_a_user_by_the_name_as_typed_in_another_unicode_form(typed: str) -> None:
    """A username is stored as the login form reads it (NFKC): "José" typed
    with a combining accent, as a Mac's terminal may send it, is that user."""
    user = UserFactory(username="Jos\u00e9")
    out = io.StringIO()

    call_command("drf_create_token", unicodedata.normalize(typed, "Jos\u00e9"), stdout=out)

    [key] = re.findall(r"Generated token ([0-9a-f]{40}) for user", out.getvalue())
    assert Token.objects.get().user == user
    assert status_with(key) == 200


# --- A password change cuts a token off ----------------------------------------


def by_set_password(user: Any) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


def by_set_password_saving_it_alone(user: Any) -> None:
    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["password"])


def by_the_changepassword_command(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    call_command("changepassword", user.username, stdout=io.StringIO())


def by_the_admin(user: Any) -> None:
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    response = logged_in(boss).post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response["Location"] == f"/admin/auth/user/{user.pk}/change/"


def by_the_admin_disabling_password_sign_in(user: Any) -> None:
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    response = logged_in(boss).post(
        f"/admin/auth/user/{user.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    assert response["Location"] == f"/admin/auth/user/{user.pk}/change/"


def by_the_password_change_page(user: Any) -> None:
    response = logged_in(user).post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response["Location"] == "/admin/password_change/done/"


@pytest.mark.parametrize(
    "change",
    [
        by_set_password,
        by_set_password_saving_it_alone,
        by_the_changepassword_command,
        by_the_admin,
        by_the_admin_disabling_password_sign_in,
        by_the_password_change_page,
    ],
)
def test_a_password_change_deletes_the_user_s_token(change: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory(username="leaked", is_staff=True, password=PASSWORD)
    key = api_key(user)
    other = api_key(UserFactory(username="bystander"))

    if change is by_the_changepassword_command:
        change(user, monkeypatch)
    else:
        change(user)

    assert not Token.objects.filter(user=user).exists()
    assert status_with(key) == 401
    assert status_with(other) == 200


def test_other_saves_of_a_user_keep_their_token() -> None:
    user = UserFactory(username="tool", password=PASSWORD)
    key = api_key(user)
    user.first_name = "Tool"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert status_with(key) == 200


def test_a_user_without_a_password_keeps_their_token_through_other_saves() -> None:
    """A user the API alone uses may have no usable password: the check for
    a password disabled on a save reads the one stored before."""
    user = UserFactory(username="bot")
    user.set_unusable_password()
    user.save()
    key = api_key(user)
    user.first_name = "Bot"
    user.save()
    assert status_with(key) == 200


def test_the_hash_upgraded_at_a_login_is_no_password_change(settings: Any) -> None:
    """Django upgrades a password's hash at a login (every release makes its
    hasher slower): the token stays."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    user = UserFactory(username="staffer", is_staff=True)
    type(user).objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="md5"))
    key = api_key(user)

    assert Client().login(username="staffer", password=PASSWORD)

    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")
    assert status_with(key) == 200


def test_ensure_admin_run_again_with_the_same_chosen_password_keeps_the_admin_s_token(
    monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Any
) -> None:
    """``make run`` runs ensure_admin at each start: a PORTAL_ADMIN_PASSWORD the
    admin has already is no change of it, and their token stays; another one
    is, and cuts it off."""
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", "chief")
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", PASSWORD)
    call_command("ensure_admin", stdout=io.StringIO())
    admin = UserFactory._meta.model.objects.get(username="chief")
    key = api_key(admin)

    call_command("ensure_admin", stdout=io.StringIO())
    kept = status_with(key)
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", NEW_PASSWORD)
    call_command("ensure_admin", stdout=io.StringIO())

    assert kept == 200
    assert status_with(key) == 401
    admin.refresh_from_db()
    assert admin.check_password(NEW_PASSWORD)


def test_a_token_of_a_user_made_inactive_is_refused_and_works_again_once_active() -> None:
    user = UserFactory(username="away")
    key = api_key(user)
    user.is_active = False
    user.save()
    assert status_with(key) == 401
    user.is_active = True
    user.save()
    assert status_with(key) == 200


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
def test_the_migration_deletes_a_token_whose_key_the_portal_would_not_take_saying_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A key set by hand (``Token.objects.create(key=...)``), not one DRF
    makes: kept as its digest, it would be refused whatever is sent, and
    the user's one token, in the way of a new one."""
    made = UserFactory(username="made-by-drf")
    chosen = UserFactory(username="chosen-by-hand")
    MigrationExecutor(connection).migrate([("portal", None)])
    try:
        kept = Token.objects.create(user=made)
        Token.objects.create(user=chosen, key="CI-Token-For-The-Nightly-Run")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(Token.objects.values_list("user__username", flat=True)) == ["made-by-drf"]
    assert authenticated_as(kept.key) == "made-by-drf"
    out = capsys.readouterr().out
    assert "API tokens deleted, their keys set by hand, not made by DRF" in out
    assert "those of chosen-by-hand;" in out


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
