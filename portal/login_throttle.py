"""Throttling of the admin login.

Failed attempts are counted per username and client address: after a few
for one account from one address, further attempts for that account from
that address are refused with 429 until the window that began with the
first of them is over. An attacker therefore locks out only their own
attempts, never an administrator who signs in from elsewhere; the client
address is read through the trusted proxies only (core.net), so behind a
proxy everyone is not one address. An IPv6 address counts as its /64
network, which one client holds whole: address by address, it would have
more fresh counts than it could ever use.

They are also counted per address across all accounts: past a generous
limit, every attempt from that address is refused, so one address cannot
try a password on thousands of accounts, nor fill the shared cache with
an entry for each.

Each attempt takes its place in the counts before its password is checked
(an atomic add and incr in the shared cache): attempts sent at once, each
waiting on the slow password hash, cannot all pass before the first
failure is counted. An attempt that signs in gives its place back, so
signing in never locks an account; the failures before it stay counted
for their window, so someone behind the same address who signs in gives
an attacker no fresh guesses. With the shared cache away (Redis down)
nothing is counted and every attempt goes to the password check.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import methods
from core.net import address_block, client_ip, through_untrusted_proxy
from core.throttling import seconds_until


@dataclass
class AttemptCount:
    """The failed attempts of one address, or of one account from one address."""

    key: str
    limit: int
    whose: str  # as the refusal names it: "for this account from your address"
    # When the window this attempt was counted in ends (what gives it back
    # checks it is still that window's count).
    taken_in: float | None = None

    @property
    def _ends_key(self) -> str:
        return f"{self.key}:ends"

    def take(self, request: HttpRequest) -> HttpResponse | None:
        """Counts this attempt, or answers 429 if the count is at its limit."""
        shared = caches["shared"]
        window = settings.ADMIN_LOGIN_LOCKOUT_SECONDS
        failures = shared.get(self.key, 0)
        if isinstance(failures, bool) or not isinstance(failures, int):
            # No count: a record of the former counting ({"failures", "since"}),
            # under the key the count has now. Counted anew, not a 500 at each attempt.
            shared.delete(self.key)
            failures = 0
        if failures < self.limit:
            place = self._place(window)
            if place <= self.limit:
                return None
            self.give_back()  # attempts sent at the same time took the last places
            failures = self.limit
        return _locked_out(
            request, self, failures, seconds_until(shared.get(self._ends_key), time.time(), window)
        )

    def _place(self, window: int) -> int:
        """This attempt's place in the count of its window."""
        shared = caches["shared"]
        # The window may end between add and incr, and another attempt open
        # the next one: each turn starts over, in whatever window is open.
        for _ in range(3):
            # The window's first attempt sets when it ends, for Retry-After.
            shared.add(self._ends_key, time.time() + window, timeout=window)
            shared.add(self.key, 0, timeout=window)
            self.taken_in = shared.get(self._ends_key)
            with contextlib.suppress(ValueError):
                return int(shared.incr(self.key))
        return 1  # windows that end as fast as they open: not counted

    def give_back(self) -> None:
        """Uncounts this attempt, in the window it was counted in only: an
        attempt that outlived its window (a slow sign-in at its very end)
        would otherwise take a place off the next window's count."""
        shared = caches["shared"]
        if not _same_end(shared.get(self._ends_key), self.taken_in):
            return
        with contextlib.suppress(ValueError):  # its window is over
            shared.decr(self.key)


def _same_end(read: Any, taken_in: Any) -> bool:
    """Whether a window's end, as read again, is the one an attempt was
    counted in. Compared as stored, not with ==: an end that reads as NaN is
    not equal to itself (signing in kept its place in the count), and one
    that reads as an array compares into an array with no truth (a 500)."""
    return pickle.dumps(read) == pickle.dumps(taken_in)


def attempt_counts(request: HttpRequest, username: str) -> list[AttemptCount]:
    # As the login form reads it (NFKC): a fullwidth "admin" signs in as "admin", so it
    # must count, and be refused, as "admin".
    account = unicodedata.normalize("NFKC", username).strip().casefold()
    account = hashlib.sha256(account.encode()).hexdigest()[:32]
    address = address_block(client_ip(request))
    per_account = AttemptCount(
        f"admin-login:{address}:{account}",
        settings.ADMIN_LOGIN_MAX_FAILURES,
        "for this account from your address",
    )
    if settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS <= 0:
        return [per_account]
    # The address first: past its limit, no entry is written for one more account.
    return [
        AttemptCount(
            f"admin-login:{address}", settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS, "from your address"
        ),
        per_account,
    ]


# Django's sign-in takes a PUT as a POST (with no form: a 200 saying the fields are required).
@methods("GET", "POST")
def throttled_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    counts = attempt_counts(request, request.POST.get("username", ""))
    for n, count in enumerate(counts):
        refused = count.take(request)
        if refused is not None:
            for taken in counts[:n]:
                taken.give_back()
            return refused
    response = admin.site.login(request, extra_context)
    if response.status_code == 302:  # signed in (a failed attempt shows the form again)
        for count in counts:
            count.give_back()
    return response


def _locked_out(request: HttpRequest, count: AttemptCount, failures: int, seconds: int) -> HttpResponse:
    minutes = math.ceil(seconds / 60)
    message = (
        f"{failures} failed attempts {count.whose} (the limit is {count.limit}). "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    if through_untrusted_proxy(request):
        # The address counted is the proxy's (docs/deploy.md): "your address" would be untrue.
        message += (
            " This request came through a proxy that PORTAL_TRUSTED_PROXY_COUNT does not count as "
            "trusted: the proxy's address is every client's, and so is this lockout."
        )
    response = render(
        request,
        "error.html",
        {
            "status": 429,
            "title": "Too many failed logins",
            "message": message,
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
