"""The rate limits of the open feedback endpoints: held when a client's
posts arrive at the same time, on the shared folder and on Redis, and
passing every post (with a warning) while Redis is away."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client, override_settings
from rest_framework.test import APIClient

from catalog.api import FeedbackThrottle
from catalog.lab import LabThrottle
from catalog.models import Feedback
from core.throttling import ClientRateThrottle, seconds_until
from tests.factories import UserFactory, api_key
from tests.servers import free_port

LAB_REVIEW = {"title": "t", "name": "n", "date": "2020-01-01", "feedback": "x"}
API_REVIEW = {"title": "t", "name": "n", "date": "2020-01-01", "text": "x", "rating": 5}
FORM_REVIEW = {**API_REVIEW, "website": ""}


# Each lab or form post a review of its own: one posted again is the review held.
_lab_numbers = itertools.count()


def _lab(address: str) -> int:
    review = {**LAB_REVIEW, "feedback": f"x {next(_lab_numbers)}"}
    return APIClient().post("/feedback/", review, format="json", REMOTE_ADDR=address).status_code


def _api(address: str) -> int:
    return APIClient().post("/api/v1/feedback/", API_REVIEW, format="json", REMOTE_ADDR=address).status_code


def _form(address: str) -> int:
    review = {**FORM_REVIEW, "text": f"x {next(_lab_numbers)}"}
    status = Client().post("/reviews/new/", review, REMOTE_ADDR=address).status_code
    return 201 if status == 302 else status  # a review taken redirects to the list


POSTS: dict[str, tuple[type[ClientRateThrottle], str, Callable[[str], int]]] = {
    "lab": (LabThrottle, "lab", _lab),
    "api": (FeedbackThrottle, "feedback", _api),
    "form": (FeedbackThrottle, "feedback", _form),
}


def _limit(
    monkeypatch: pytest.MonkeyPatch, throttle: type[ClientRateThrottle], scope: str, rate: str
) -> None:
    monkeypatch.setattr(throttle, "THROTTLE_RATES", {**throttle.THROTTLE_RATES, scope: rate})


@pytest.mark.parametrize("endpoint", list(POSTS))
@pytest.mark.django_db(transaction=True)  # the posts' threads write their reviews
def test_posts_sent_at_once_get_no_more_through_than_the_limit(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    throttle, scope, post = POSTS[endpoint]
    _limit(monkeypatch, throttle, scope, "3/min")
    posts = 8
    # Every post, once it has made its first read or count in the shared
    # cache, waits there until all the others have made theirs: all of them
    # are being decided at once, as when a burst reaches several workers.
    together = threading.Barrier(posts, timeout=60)
    poster = threading.local()
    backend = type(caches["shared"])

    def first_call_waits(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(cache: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(cache, *args, **kwargs)
            finally:
                if getattr(poster, "first_call", False):
                    poster.first_call = False
                    together.wait()

        return wrapper

    for name in ("get", "incr"):
        monkeypatch.setattr(backend, name, first_call_waits(getattr(backend, name)))
    # Once decided, the posts go on one at a time: the test database (SQLite
    # in memory) takes no reader beside a writer.
    in_turn = threading.Lock()
    decide = ClientRateThrottle.allow_request

    def decide_then_wait_turn(instance: ClientRateThrottle, request: Any, view: Any) -> bool:
        allowed = decide(instance, request, view)
        in_turn.acquire()
        poster.has_turn = True
        return allowed

    monkeypatch.setattr(ClientRateThrottle, "allow_request", decide_then_wait_turn)
    statuses: list[int] = []

    def send() -> None:
        poster.first_call, poster.has_turn = True, False
        try:
            statuses.append(post("203.0.113.7"))
        finally:
            if poster.has_turn:
                in_turn.release()

    threads = [threading.Thread(target=send) for _ in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 3 + [429] * 5
    assert Feedback.objects.count() == 3


@pytest.mark.parametrize("endpoint", list(POSTS))
@pytest.mark.django_db
def test_the_limit_is_the_client_s_and_a_refusal_says_when_a_place_frees_up(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    throttle, scope, post = POSTS[endpoint]
    _limit(monkeypatch, throttle, scope, "2/min")
    now = [1_000_000.0]
    monkeypatch.setattr(ClientRateThrottle, "timer", staticmethod(lambda: now[0]))
    assert [post("203.0.113.7") for _ in range(2)] == [201, 201]
    now[0] += 45
    assert post("203.0.113.7") == 429
    assert post("198.51.100.4") == 201  # another client has a limit of its own
    refused = (
        APIClient().post("/feedback/", LAB_REVIEW, format="json", REMOTE_ADDR="203.0.113.7")
        if endpoint == "lab"
        else APIClient().post("/api/v1/feedback/", API_REVIEW, format="json", REMOTE_ADDR="203.0.113.7")
    )
    assert refused.status_code == 429
    assert refused["Retry-After"] == "15"  # the window opened by the first post ends
    assert "the limit is 2 per minute" in refused.json()["detail"]
    assert Feedback.objects.count() == 3


@pytest.mark.django_db
def test_a_history_kept_by_the_former_throttle_is_no_count_and_no_error(
    monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    _limit(monkeypatch, LabThrottle, "lab", "2/min")
    caches["shared"].set("throttle_lab_203.0.113.7", [1_000_000.0, 999_999.0], timeout=60)
    assert [_lab("203.0.113.7") for _ in range(3)] == [201, 201, 429]


@pytest.mark.django_db
def test_with_redis_away_every_post_passes_with_a_warning(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _limit(monkeypatch, LabThrottle, "lab", "2/min")
    away = {
        "BACKEND": "portal.cache.ResilientRedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 0.2},
    }
    with (
        override_settings(CACHES={**settings.CACHES, "shared": away}),
        caplog.at_level(logging.WARNING, logger="portal.cache"),
    ):
        assert [_lab("203.0.113.7") for _ in range(4)] == [201] * 4
    assert "cache unavailable" in caplog.text
    assert Feedback.objects.count() == 4


@pytest.mark.django_db
def test_reads_have_no_throttle() -> None:
    """Each throttle is a round trip to the shared cache: the lists and
    details (benchmarked) make none."""
    client = APIClient()
    for path in ("/api/v1/feedback/", "/feedback/"):
        view = client.get(path).renderer_context["view"]
        assert view.get_throttles() == []


@pytest.mark.parametrize("entry", ["x", [1_000_000.0], None], ids=["text", "list", "none"])
@pytest.mark.django_db
def test_an_entry_that_is_no_count_under_a_client_s_key_opens_a_window_anew_not_a_server_error(
    entry: Any, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    _limit(monkeypatch, LabThrottle, "lab", "2/min")
    caches["shared"].set("throttle-window_lab_203.0.113.7", entry, timeout=60)
    assert [_lab("203.0.113.7") for _ in range(3)] == [201, 201, 429]


@pytest.mark.parametrize("ends", [float("nan"), float("inf"), "soon"])
@pytest.mark.django_db
def test_a_window_end_that_cannot_be_read_makes_a_refusal_wait_the_whole_period(
    ends: Any, monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    _limit(monkeypatch, LabThrottle, "lab", "1/min")
    assert _lab("203.0.113.7") == 201
    caches["shared"].set("throttle-window_lab_203.0.113.7:ends", ends, timeout=60)
    refused = APIClient().post("/feedback/", LAB_REVIEW, format="json", REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"


@pytest.mark.django_db
def test_a_post_that_finds_a_window_ending_and_another_opening_counts_in_the_new_one(
    monkeypatch: pytest.MonkeyPatch, shared_cache: str
) -> None:
    """The post finds a window open (its add loses), then ended (its incr
    finds none), and another post opens the next one before it can: it is
    the second of that window, not a first beside the other's."""
    _limit(monkeypatch, LabThrottle, "lab", "1/min")
    backend = type(caches["shared"])
    add = backend.add
    calls: list[str] = []

    def add_with_rival(cache: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        is_count = "throttle-window_lab_" in str(key) and not str(key).endswith(":ends")
        if is_count and not calls:
            calls.append("found")
            return False  # a window open, which ends before the incr that follows
        if is_count and calls == ["found"]:
            calls.append("rival")
            assert _lab("203.0.113.7") == 201  # opens the next window first
        return add(cache, key, *args, **kwargs)

    monkeypatch.setattr(backend, "add", add_with_rival)
    assert _lab("203.0.113.7") == 429
    assert calls == ["found", "rival"]


@pytest.mark.django_db
def test_a_signed_in_client_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is an anonymous client's: one with a token is not counted,
    nor counted with every other signed-in client under one key."""
    _limit(monkeypatch, FeedbackThrottle, "feedback", "1/min")
    for username in ("ann", "bob"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key(UserFactory(username=username))}")
        statuses = [
            client.post("/api/v1/feedback/", API_REVIEW, format="json", REMOTE_ADDR="203.0.113.7").status_code
            for _ in range(2)
        ]
        assert statuses == [201, 201]
    assert _api("203.0.113.7") == 201
    assert _api("203.0.113.7") == 429


@pytest.mark.parametrize(
    ("ends", "wait"),
    [
        (1_000_002.5, 3),  # a part of a second is waited whole
        (1_000_000.0, 1),  # ending now: a client told 0 would come back at once
        (999_990.0, 1),
        (1_000_000.0 + 3600, 60),  # never longer than the period
        (True, 60),  # no number, though Python counts it one
        (None, 60),
    ],
)
def test_a_refusal_waits_from_one_second_to_the_period_until_the_window_ends(ends: Any, wait: int) -> None:
    assert seconds_until(ends, 1_000_000.0, 60) == wait
