"""API tokens in the admin: a key is a password, shown once to whoever made
it; staff make tokens for themselves, superusers for anyone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.authentication import stored_key
from tests.factories import UserFactory, api_key, logged_in, staff_with
from tests.portal.test_tokens import another_token_made_meanwhile

pytestmark = pytest.mark.django_db

TOKENS = "/admin/authtoken/tokenproxy/"
ADD = f"{TOKENS}add/"


def shown_key(response: HttpResponse) -> str:
    """The key a page shows, once, after its token is made."""
    [key] = re.findall(r"<code>([0-9a-f]{40})</code>", response.content.decode())
    return key


@pytest.fixture
def boss() -> Any:
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def boss_token(boss: Any) -> str:
    """The key of the boss's token."""
    return api_key(boss)


def test_keys_are_not_listed_nor_shown_on_a_token_s_page_only_their_first_characters(
    boss: Any, boss_token: str
) -> None:
    clerk = staff_with("authtoken", "view_tokenproxy")
    own = api_key(clerk)
    client = logged_in(clerk)
    listing = client.get(TOKENS)
    page = client.get(f"{TOKENS}{clerk.pk}/change/")
    assert listing.status_code == page.status_code == 200
    for shown in (listing.content.decode(), page.content.decode()):
        assert own not in shown
        assert stored_key(own) not in shown
        assert f"{own[:8]}…" in shown
    # Another user's token is not even listed, nor its page shown.
    assert boss_token[:8] not in listing.content.decode()
    assert client.get(f"{TOKENS}{boss.pk}/change/").status_code == 302  # "does not exist"


@pytest.mark.parametrize("lookup", ["key__startswith", "key__gt", "key", "pk__startswith", "key__in"])
def test_the_list_cannot_be_filtered_by_key_to_read_it_a_character_at_a_time(boss: Any, lookup: str) -> None:
    """Filtered by a key's first characters, the list would say whether a
    token has them, and so give away its key one character at a time."""
    other = UserFactory(username="service")
    stored = Token.objects.get(key=stored_key(api_key(other))).key

    response = logged_in(boss).get(TOKENS, {lookup: stored[:10] if lookup != "key__gt" else "0"})

    assert response.status_code == 400
    assert "service" not in response.content.decode()


@pytest.mark.parametrize(
    "lookup",
    ["auth_token__key__startswith", "auth_token__pk__startswith", "auth_token", "auth_token__key__gt"],
)
def test_the_users_list_cannot_be_filtered_by_token_to_read_a_key_a_character_at_a_time(
    boss: Any, boss_token: str, lookup: str
) -> None:
    """Filtered by their token's first characters, the list of users would
    say whose key begins so, and so give away a superuser's key to staff
    who may only view users."""
    viewer = staff_with("auth", "view_user")
    stored = stored_key(boss_token)
    value = "0" if lookup.endswith("__gt") else stored if lookup == "auth_token" else stored[:3]

    response = logged_in(viewer).get("/admin/auth/user/", {lookup: value})

    assert response.status_code == 400
    assert f"/admin/auth/user/{boss.pk}/change/" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [{"_popup": "1"}, {"_popup": "1", "_to_field": "key"}],
    ids=["popup", "popup naming the key"],
)
def test_the_list_opened_as_a_popup_gives_no_key_away(boss: Any, query: dict[str, str]) -> None:
    """A pop-up's list hands each row's primary key to the page that opened
    it, and a token's is its key: every user's, to a superuser."""
    other = UserFactory(username="service")
    key = api_key(other)

    response = logged_in(boss).get(TOKENS, query)

    assert response.status_code == 400
    assert key not in response.content.decode()
    assert stored_key(key) not in response.content.decode()
    assert "pop-up" in response.content.decode()


def test_a_token_made_in_a_popup_is_refused_and_not_made(boss: Any) -> None:
    """Made in a pop-up, the key would go back to the opener as its choice,
    in the page's data, beside the page that shows it once."""
    other = UserFactory(username="service")

    response = logged_in(boss).post(f"{ADD}?_popup=1", {"user": other.pk, "_popup": "1"})

    assert response.status_code == 400
    assert not Token.objects.filter(user=other).exists()


def test_a_user_s_delete_page_does_not_show_their_key(boss: Any, boss_token: str) -> None:
    response = logged_in(boss).get(f"/admin/auth/user/{boss.pk}/delete/")
    assert response.status_code == 200
    assert boss_token not in response.content.decode()
    assert stored_key(boss_token) not in response.content.decode()


def test_staff_make_a_token_for_themselves_and_see_its_key_once() -> None:
    clerk = staff_with("authtoken", "add_tokenproxy", "view_tokenproxy")
    client = logged_in(clerk)
    response = client.post(ADD, {"user": clerk.pk}, follow=True)
    key = shown_key(response)
    assert response.status_code == 200
    assert Token.objects.get(user=clerk).key == stored_key(key)
    assert key not in client.get(TOKENS).content.decode()
    assert key not in LogEntry.objects.get().object_repr
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/people/").status_code == 200


def messages_in_cookie(response: HttpResponse) -> str:
    """The text of the messages a response sets in the messages cookie."""
    morsel = response.cookies.get("messages")
    if morsel is None or not morsel.value:
        return ""
    return " ".join(str(m) for m in CookieStorage(HttpRequest())._decode(morsel.value) or [])


def test_a_new_key_travels_in_no_cookie_and_shows_on_the_next_page_only() -> None:
    clerk = staff_with("authtoken", "add_tokenproxy", "view_tokenproxy")
    client = logged_in(clerk)

    added = client.post(ADD, {"user": clerk.pk})
    assert added.status_code == 302
    assert "was added successfully" in messages_in_cookie(added)

    shown = client.get(added["Location"])
    key = shown_key(shown)
    assert key not in messages_in_cookie(added)
    assert key not in str(added.cookies)
    assert key not in messages_in_cookie(shown)
    assert key not in str(shown.cookies)
    assert key not in client.get(added["Location"]).content.decode()


def test_staff_who_may_only_add_tokens_see_the_new_key_on_the_add_page() -> None:
    clerk = staff_with("authtoken", "add_tokenproxy")
    client = logged_in(clerk)
    response = client.post(ADD, {"user": clerk.pk}, follow=True)
    assert response.redirect_chain == [(ADD, 302)]
    assert Token.objects.get(user=clerk).key == stored_key(shown_key(response))


def test_a_token_made_for_the_user_meanwhile_is_a_409_saying_so(
    boss: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the form's check that the user has no token and the insert,
    a writer that takes no lock made one: the add is refused, naming the
    user, not a server error."""
    clerk = staff_with("authtoken")
    other = another_token_made_meanwhile(monkeypatch, clerk)

    response = logged_in(boss).post(ADD, {"user": clerk.pk})

    assert response.status_code == 409
    assert "clerk has a token already" in response.content.decode()
    # Nothing of its own. (The other token, made here in its transaction, went back with it.)
    assert not Token.objects.exclude(pk=other.pk).exists()


def test_staff_cannot_make_a_token_for_someone_else(boss: Any) -> None:
    client = logged_in(staff_with("authtoken", "add_tokenproxy", "view_tokenproxy"))
    response = client.post(ADD, {"user": boss.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Token.objects.exists()


def test_a_superuser_makes_a_token_for_anyone(boss: Any) -> None:
    clerk = staff_with("authtoken")
    response = logged_in(boss).post(ADD, {"user": clerk.pk}, follow=True)
    assert Token.objects.get(user=clerk).key == stored_key(shown_key(response))


def test_a_token_cannot_be_moved_to_another_user(boss: Any) -> None:
    clerk = staff_with("authtoken", "add_tokenproxy", "change_tokenproxy", "view_tokenproxy")
    mine = api_key(clerk)
    response = logged_in(clerk).post(f"{TOKENS}{clerk.pk}/change/", {"user": boss.pk})
    assert response.status_code == 403
    assert Token.objects.get(key=stored_key(mine)).user == clerk


def test_staff_delete_their_own_token_only(boss: Any, boss_token: str) -> None:
    clerk = staff_with("authtoken", "delete_tokenproxy", "view_tokenproxy")
    api_key(clerk)
    client = logged_in(clerk)
    assert client.post(f"{TOKENS}{boss.pk}/delete/", {"post": "yes"}).status_code in {302, 403}
    assert Token.objects.filter(user=boss).exists()
    assert client.post(f"{TOKENS}{clerk.pk}/delete/", {"post": "yes"}).status_code == 302
    assert list(Token.objects.values_list("user__username", flat=True)) == ["boss"]


def test_a_superuser_deletes_anyone_s_token(boss: Any) -> None:
    clerk = staff_with("authtoken")
    api_key(clerk)
    response = logged_in(boss).post(f"{TOKENS}{clerk.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not Token.objects.exists()
    assert not re.search(r"[0-9a-f]{40}", response.content.decode())


def test_staff_see_and_bulk_delete_their_own_token_only(boss: Any, boss_token: str) -> None:
    clerk = staff_with("authtoken", "delete_tokenproxy", "view_tokenproxy")
    api_key(clerk)
    client = logged_in(clerk)
    listed = client.get(TOKENS).content.decode()
    assert "clerk" in listed
    assert boss_token[:8] not in listed
    every = [str(boss.pk), str(clerk.pk)]
    client.post(TOKENS, {"action": "delete_selected", "_selected_action": every, "post": "yes"})
    assert Token.objects.filter(user=boss).exists()
