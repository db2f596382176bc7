"""The admin login's lockout: per account and address, per address, and
held when attempts arrive at the same time."""

from __future__ import annotations

import pickle
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.test import Client, RequestFactory

from portal.login_throttle import AttemptCount, attempt_counts

RIGHT = "right-password-123"


def _login(username: str, password: str, address: str = "127.0.0.1") -> Any:
    return Client().post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db(transaction=True)  # the attempts' threads see the account
def test_attempts_sent_at_once_get_no_more_password_checks_than_the_limit(
    settings: Any, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    attempts = 8
    checked: list[str] = []
    refused: list[int] = []
    progress = threading.Condition()
    check_password = ModelBackend.authenticate

    def slow_check(backend: ModelBackend, request: Any, **credentials: Any) -> Any:
        # As when each hash takes long: every check waits until all the
        # attempts are either checking their password or refused.
        with progress:
            checked.append(credentials["username"])
            progress.notify_all()
            progress.wait_for(lambda: len(checked) + len(refused) == attempts, timeout=60)
        return check_password(backend, request, **credentials)

    def attempt(n: int) -> int:
        status: int = _login("boss", f"guess-{n}").status_code
        if status == 429:
            with progress:
                refused.append(n)
                progress.notify_all()
        return status

    monkeypatch.setattr(ModelBackend, "authenticate", slow_check)
    with ThreadPoolExecutor(attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts)))
    assert len(checked) == 3
    assert sorted(statuses) == [200] * 3 + [429] * 5
    locked = _login("boss", RIGHT)
    assert locked.status_code == 429
    assert "3 failed attempts for this account from your address (the limit is 3)" in locked.content.decode()
    assert 0 < int(locked["Retry-After"]) <= settings.ADMIN_LOGIN_LOCKOUT_SECONDS


@pytest.mark.django_db
def test_signing_in_again_and_again_never_locks_the_account(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    assert [_login("boss", RIGHT).status_code for _ in range(5)] == [302] * 5


@pytest.mark.django_db
def test_signing_in_leaves_the_failures_before_it_counted(settings: Any) -> None:
    """Someone behind the same address who signs in gives an attacker no fresh guesses."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    assert _login("boss", "guess").status_code == 200
    assert _login("boss", "guess").status_code == 200
    assert _login("boss", RIGHT).status_code == 302
    assert _login("boss", "guess").status_code == 200
    assert _login("boss", RIGHT).status_code == 429


# --- Per address ----------------------------------------------------------------------


@pytest.mark.django_db
def test_one_address_trying_many_accounts_is_refused_past_its_own_limit(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 4
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    for n in range(4):
        assert _login(f"user{n}", "Summer2024!", address="203.0.113.9").status_code == 200
    refused = _login("boss", RIGHT, address="203.0.113.9")
    assert refused.status_code == 429
    assert "4 failed attempts from your address (the limit is 4)" in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= settings.ADMIN_LOGIN_LOCKOUT_SECONDS
    # The administrator elsewhere is not concerned.
    assert _login("boss", RIGHT, address="198.51.100.7").status_code == 302


@pytest.mark.django_db
def test_past_the_address_limit_no_entry_is_written_for_another_account(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    for n in range(2):
        _login(f"user{n}", "Summer2024!")
    assert _login("user2", "Summer2024!").status_code == 429
    request = RequestFactory().post("/admin/login/")  # 127.0.0.1, as the test client
    per_account = attempt_counts(request, "user2")[-1]
    assert not caches["shared"].has_key(per_account.key)


@pytest.mark.django_db
def test_a_sign_in_does_not_count_toward_the_address_limit(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    assert [_login("boss", RIGHT).status_code for _ in range(3)] == [302] * 3
    assert _login("user0", "guess").status_code == 200


@pytest.mark.django_db
def test_an_address_limit_of_zero_is_none(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 0
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    for n in range(10):
        assert _login(f"user{n}", "guess").status_code == 200
    assert _login("boss", RIGHT).status_code == 302


def test_the_address_limit_is_100_by_default() -> None:
    assert django_settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS == 100


@pytest.mark.django_db
def test_a_garbled_count_in_the_shared_folder_is_counted_anew_not_a_server_error(settings: Any) -> None:
    if settings.CACHES["shared"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("the shared cache is Redis (CACHE_URL)")
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    request = RequestFactory().post("/admin/login/")  # 127.0.0.1, as the test client
    shared = caches["shared"]
    for count in attempt_counts(request, "boss"):
        shared.set(count.key, 1, timeout=600)
        Path(shared._key_to_file(count.key)).write_bytes(b"garbage")  # type: ignore[attr-defined]
    assert _login("boss", "guess").status_code == 200
    assert _login("boss", "guess").status_code == 200
    assert _login("boss", "guess").status_code == 429


# --- IPv6 -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_ipv6_client_gets_no_fresh_guesses_from_the_other_addresses_of_its_network(settings: Any) -> None:
    """A provider hands one line a /64: its 2**64 addresses are one client's."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    statuses = [_login("boss", "guess", address=f"2001:db8:1:2::{n:x}").status_code for n in range(5)]
    assert statuses == [200] * 3 + [429] * 2
    assert _login("boss", RIGHT, address="2001:db8:1:2:ffff::1").status_code == 429
    # The administrator on another line is not concerned.
    assert _login("boss", RIGHT, address="2001:db8:1:3::1").status_code == 302


@pytest.mark.django_db
def test_an_ipv6_network_is_one_address_for_the_limit_across_accounts(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        assert _login(f"user{n}", "guess", address=f"2001:db8:1:2::{n + 1:x}").status_code == 200
    refused = _login("user9", "guess", address="2001:db8:1:2::abcd")
    assert refused.status_code == 429
    assert "3 failed attempts from your address (the limit is 3)" in refused.content.decode()


@pytest.mark.django_db
def test_an_ipv4_address_written_as_ipv6_counts_as_the_ipv4_address(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    assert _login("boss", "guess", address="203.0.113.9").status_code == 200
    assert _login("boss", "guess", address="::ffff:203.0.113.9").status_code == 200
    assert _login("boss", "guess", address="203.0.113.9").status_code == 429


def test_an_attempt_that_outlives_its_window_gives_nothing_back_to_the_next() -> None:
    """A sign-in counted at the very end of a window, and done after it, must
    not take a place off the count of the window that began meanwhile."""
    request = RequestFactory().post("/admin/login/")
    slow, first_of_next = (AttemptCount("admin-login:203.0.113.9", 5, "from your address") for _ in range(2))
    assert slow.take(request) is None
    caches["shared"].delete_many(
        ["admin-login:203.0.113.9", "admin-login:203.0.113.9:ends"]
    )  # the window ends
    assert first_of_next.take(request) is None
    slow.give_back()  # signed in, at last
    assert caches["shared"].get("admin-login:203.0.113.9") == 1
    first_of_next.give_back()
    assert caches["shared"].get("admin-login:203.0.113.9") == 0


@pytest.mark.django_db
def test_failures_kept_by_the_former_counting_are_counted_anew_not_a_server_error(
    settings: Any, shared_cache: str
) -> None:
    """The count of an account from an address was once kept as a record of
    its failures and when they began, under the key its count has now: a
    lockout of that time still in the shared cache is no count."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    request = RequestFactory().post("/admin/login/")
    per_account = attempt_counts(request, "boss")[-1]
    caches["shared"].set(per_account.key, {"failures": 9, "since": 1_000_000.0}, timeout=600)
    assert [_login("boss", "guess").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("ends", [float("nan"), float("inf"), "soon"])
@pytest.mark.django_db
def test_a_lockout_whose_end_cannot_be_read_waits_the_whole_window(settings: Any, ends: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    settings.ADMIN_LOGIN_LOCKOUT_SECONDS = 600
    assert _login("boss", "guess").status_code == 200
    per_account = attempt_counts(RequestFactory().post("/admin/login/"), "boss")[-1]
    caches["shared"].set(f"{per_account.key}:ends", ends, timeout=600)
    refused = _login("boss", "guess")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "600"


@pytest.mark.django_db
def test_an_attempt_that_finds_its_window_ended_and_the_next_opened_is_counted_in_that_one(
    settings: Any, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 0
    backend = type(caches["shared"])
    incr, add = backend.incr, backend.add
    steps: list[str] = []

    def incr_as_the_window_ends(cache: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        if not steps and str(key).startswith("admin-login:"):
            steps.append("ended")
            cache.delete_many([key, f"{key}:ends"])
            raise ValueError(key)  # the window ended between this attempt's add and incr
        return incr(cache, key, *args, **kwargs)

    def add_after_another(cache: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        if steps == ["ended"] and str(key).startswith("admin-login:"):
            steps.append("opened")
            assert _login("boss", "guess").status_code == 200  # another attempt opens the next window
        return add(cache, key, *args, **kwargs)

    monkeypatch.setattr(backend, "incr", incr_as_the_window_ends)
    monkeypatch.setattr(backend, "add", add_after_another)
    assert _login("boss", "guess").status_code == 429
    assert steps == ["ended", "opened"]


# An expiry that is no time, as something other than this cache (or an older
# layout) may have written it: NaN or infinity never ended, and an object
# whose comparison answers an array has no truth at all.
NO_TIME = {
    "NaN": float("nan"),
    "infinite": float("inf"),
    "text": "soon",
    "an array": numpy.array([1.0, 2.0]),
}


@pytest.mark.parametrize("expiry", NO_TIME.values(), ids=NO_TIME.keys())
@pytest.mark.parametrize("whose", ["account", "address"])
@pytest.mark.django_db
def test_a_lockout_whose_expiry_in_the_shared_folder_is_no_time_is_counted_anew(
    settings: Any, expiry: Any, whose: str
) -> None:
    """Such a lockout was kept for good (NaN, infinity), or answered every
    login of its account with a 500 (an array)."""
    if settings.CACHES["shared"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("the shared cache is Redis (CACHE_URL)")
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    per_address, per_account = attempt_counts(RequestFactory().post("/admin/login/"), "boss")
    count = per_account if whose == "account" else per_address
    shared = caches["shared"]
    shared.set(count.key, 2, timeout=600)  # at the limit
    entry = Path(shared._key_to_file(count.key))  # type: ignore[attr-defined]
    entry.write_bytes(pickle.dumps(expiry) + zlib.compress(pickle.dumps(2)))
    assert [_login("boss", "guess").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("ends", [float("nan"), numpy.array([1.0, 2.0])], ids=["NaN", "an array"])
@pytest.mark.django_db
def test_signing_in_never_locks_the_account_whatever_its_window_s_end_reads_as(
    settings: Any, shared_cache: str, ends: Any
) -> None:
    """NaN is not NaN: each sign-in found its window's end changed and kept
    its place, so signing in locked the account; an array compared into an
    array with no truth, a 500."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    for count in attempt_counts(RequestFactory().post("/admin/login/"), "boss"):
        caches["shared"].set(f"{count.key}:ends", ends, timeout=600)
    assert [_login("boss", RIGHT).status_code for _ in range(4)] == [302] * 4


@pytest.mark.django_db
def test_a_lockout_through_a_proxy_not_counted_as_trusted_says_it_is_the_proxy_s_address(
    settings: Any,
) -> None:
    """Behind a proxy PORTAL_TRUSTED_PROXY_COUNT does not count, every
    client has the proxy's address: the refusal says so, and names the
    setting, instead of blaming the address of whoever is refused."""
    settings.TRUSTED_PROXY_COUNT = 0
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    get_user_model().objects.create_superuser("boss", "boss@example.com", RIGHT)
    through_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    browser = Client()
    browser.post("/admin/login/", {"username": "boss", "password": "wrong"}, **through_proxy)

    refused = browser.post("/admin/login/", {"username": "boss", "password": RIGHT}, **through_proxy)

    assert refused.status_code == 429
    text = refused.content.decode()
    assert "1 failed attempts for this account from your address (the limit is 1)" in text
    assert "PORTAL_TRUSTED_PROXY_COUNT" in text
    assert "the proxy&#x27;s address is every client&#x27;s" in text
    # Straight from the client, the address is the client's own.
    _login("chief", "wrong", address="203.0.113.9")
    direct = _login("chief", "wrong", address="203.0.113.9")
    assert direct.status_code == 429
    assert "PORTAL_TRUSTED_PROXY_COUNT" not in direct.content.decode()
