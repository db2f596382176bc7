"""API tokens that expire: with PORTAL_API_TOKEN_MAX_AGE_DAYS set, a token
older than that is refused, saying so and how to get another, the admin
shows when each expires, and the daily sweeps delete the expired ones. Unset
(0), tokens work for ever, as before."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from typing import Any

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db.models import QuerySet
from django.utils import formats, timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import tokens
from core.authentication import stored_key
from portal import tasks
from portal.tokens import token_create, token_replace
from tests.factories import UserFactory, api_key, logged_in, staff_with
from uploads import embedded

pytestmark = pytest.mark.django_db

TOKENS = "/admin/authtoken/tokenproxy/"


def token_of(username: str, *, age: dt.timedelta) -> str:
    """The key of a token of a new user ``username``, made ``age`` ago."""
    key = api_key(UserFactory(username=username))
    Token.objects.filter(user__username=username).update(created=timezone.now() - age)
    return key


def read_with(key: str) -> Any:
    return APIClient().get("/api/v1/people/", HTTP_AUTHORIZATION=f"Token {key}")


def holders() -> set[str]:
    """Whose tokens the table keeps."""
    return set(Token.objects.values_list("user__username", flat=True))


@pytest.fixture
def ninety_days(settings: Any) -> None:
    settings.API_TOKEN_MAX_AGE_DAYS = 90


@pytest.fixture(autouse=True)
def _tokens_due_at_the_next_round(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever round of the sweeper another test ran.
    monkeypatch.setattr(embedded._state, "tokens_due", float("-inf"))


# --- The authentication ----------------------------------------------------------


def test_by_default_tokens_never_expire() -> None:
    assert django_settings.API_TOKEN_MAX_AGE_DAYS == 0
    key = token_of("old-tool", age=dt.timedelta(days=3650))

    assert read_with(key).status_code == 200


@pytest.mark.usefixtures("ninety_days")
def test_a_token_older_than_the_maximum_age_is_refused_saying_it_expired_and_how_to_get_another() -> None:
    key = token_of("old-tool", age=dt.timedelta(days=90, seconds=1))
    expiry = Token.objects.get().created + dt.timedelta(days=90)

    response = read_with(key)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    detail = response.json()["detail"]
    assert detail.startswith(f"The token expired on {expiry.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC: ")
    assert "a token works for 90 days after it is made" in detail
    assert "staff add another in the admin (Tokens → Add)" in detail
    assert "manage.py drf_create_token <username>)" in detail


@pytest.mark.usefixtures("ninety_days")
def test_a_token_younger_than_the_maximum_age_works() -> None:
    key = token_of("new-tool", age=dt.timedelta(days=89, hours=23))

    assert read_with(key).status_code == 200


@pytest.mark.usefixtures("ninety_days")
def test_the_lab_endpoints_refuse_an_expired_token_too() -> None:
    key = token_of("old-tool", age=dt.timedelta(days=91))

    response = APIClient().post(
        "/fruits/",
        {"name": "Banana", "weight": "500"},
        format="json",
        REMOTE_ADDR="203.0.113.5",  # outside every network that may write without a token
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "The token expired on " in response.json()["detail"]


@pytest.mark.usefixtures("ninety_days")
def test_a_new_token_in_place_of_an_expired_one_works() -> None:
    old = token_of("tool", age=dt.timedelta(days=100))
    assert read_with(old).status_code == 401

    new = token_replace(user=Token.objects.get().user).key

    assert read_with(new).status_code == 200


# --- The admin -------------------------------------------------------------------


@pytest.mark.usefixtures("ninety_days")
def test_the_admin_lists_when_each_token_expires() -> None:
    clerk = staff_with("authtoken", "view_tokenproxy")
    api_key(clerk)
    created = Token.objects.get().created
    shown = formats.localize(timezone.template_localtime(created + dt.timedelta(days=90)))

    client = logged_in(clerk)
    listing = client.get(TOKENS).content.decode()
    page = client.get(f"{TOKENS}{clerk.pk}/change/").content.decode()

    assert "Expires" in listing
    assert shown in listing
    assert shown in page


def test_the_admin_shows_tokens_that_never_expire_as_such() -> None:
    clerk = staff_with("authtoken", "view_tokenproxy")
    api_key(clerk)

    client = logged_in(clerk)
    listing = client.get(TOKENS).content.decode()
    page = client.get(f"{TOKENS}{clerk.pk}/change/").content.decode()

    assert '<td class="field-expires">never</td>' in listing
    assert '<div class="readonly">never</div>' in page


# --- The sweeps ------------------------------------------------------------------


@pytest.mark.usefixtures("ninety_days")
def test_the_daily_run_deletes_the_expired_tokens_and_keeps_the_live_ones() -> None:
    token_of("old-tool", age=dt.timedelta(days=90, seconds=1))
    live = token_of("new-tool", age=dt.timedelta(days=89))

    assert tasks.clear_expired_tokens.apply().get() == 1

    assert holders() == {"new-tool"}
    assert read_with(live).status_code == 200


@pytest.mark.usefixtures("ninety_days")
def test_a_token_refused_at_the_very_moment_it_expires_is_deleted_then_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = token_of("tool", age=dt.timedelta(0))
    now = Token.objects.get().created + dt.timedelta(days=90)
    monkeypatch.setattr(timezone, "now", lambda: now)

    assert read_with(key).status_code == 401
    assert tasks.clear_expired_tokens.apply().get() == 1
    assert holders() == set()


def test_with_no_maximum_age_the_daily_run_deletes_nothing_and_asks_nothing(
    django_assert_num_queries: Any,
) -> None:
    token_of("old-tool", age=dt.timedelta(days=3650))

    with django_assert_num_queries(0):
        assert tasks.clear_expired_tokens.apply().get() == 0

    assert holders() == {"old-tool"}


def test_beat_runs_it_once_a_day_on_the_scheduled_queue() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["clear-expired-tokens"]
    assert entry["task"] == tasks.clear_expired_tokens.name
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert (len(schedule.minute), len(schedule.hour), len(schedule.day_of_week)) == (1, 1, 7)
    assert entry["options"] == {"expires": 86_400, "queue": django_settings.SCHEDULED_QUEUE}


@pytest.mark.usefixtures("ninety_days")
def test_a_round_of_the_embedded_sweeper_clears_them_then_waits_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_of("old-tool", age=dt.timedelta(days=91))
    token_of("new-tool", age=dt.timedelta(days=1))

    embedded.sweep()
    assert holders() == {"new-tool"}

    token_of("later-tool", age=dt.timedelta(days=91))
    embedded.sweep()  # the next round, a minute on: not due yet
    assert holders() == {"new-tool", "later-tool"}

    a_day_on = embedded.time.monotonic() + 86_400
    monkeypatch.setattr(embedded.time, "monotonic", lambda: a_day_on)
    embedded.sweep()
    assert holders() == {"new-tool"}


_names = itertools.count()


@pytest.mark.usefixtures("ninety_days")
def test_a_backlog_is_deleted_in_batches_and_a_run_past_its_budget_leaves_the_rest() -> None:
    for _ in range(5):
        token_of(f"old-{next(_names)}", age=dt.timedelta(days=400))
    token_of("new-tool", age=dt.timedelta(days=1))

    # A budget spent at once: the first batch, then the next run goes on.
    assert tokens.clear_expired(batch_size=2, budget_seconds=0) == (2, False)
    assert len(holders()) == 4
    assert tokens.clear_expired(batch_size=2) == (3, True)
    assert holders() == {"new-tool"}


@pytest.mark.usefixtures("ninety_days")
def test_a_run_cut_off_by_the_time_limit_keeps_what_it_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        token_of(f"old-{next(_names)}", age=dt.timedelta(days=400))

    class CutOff(Exception):
        pass

    delete = QuerySet.delete
    calls = itertools.count()

    def cut_off_second(self: QuerySet[Any]) -> Any:
        if next(calls) == 1:
            raise CutOff
        return delete(self)

    monkeypatch.setattr(QuerySet, "delete", cut_off_second)
    assert tokens.clear_expired(batch_size=2, cut_off_by=(CutOff,)) == (2, False)
    assert len(holders()) == 1


# --- A new token in place of an expired one -----------------------------------


def issued_by_the_command(username: str) -> tuple[str, str, str]:
    """What ``drf_create_token username`` prints: the key its stdout gives,
    then its stdout and its stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("drf_create_token", username, stdout=out, stderr=err)
    [key] = re.findall(rf"^Generated token ([0-9a-f]{{40}}) for user {username}$", out.getvalue(), re.M)
    return key, out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("ninety_days")
def test_the_command_gives_a_user_whose_token_expired_a_new_one_without_reset() -> None:
    """Refused until the daily sweep deleted it, the expired token stood in
    the way of the new one its 401 told the user to get."""
    old = token_of("tool", age=dt.timedelta(days=90, seconds=1))

    new, _, _ = issued_by_the_command("tool")

    assert read_with(new).status_code == 200
    assert read_with(old).status_code == 401
    assert holders() == {"tool"}


@pytest.mark.usefixtures("ninety_days")
def test_the_command_still_refuses_a_user_whose_token_is_live() -> None:
    key = token_of("tool", age=dt.timedelta(days=89, hours=23))

    with pytest.raises(CommandError, match="has a token already"):
        call_command("drf_create_token", "tool", stdout=io.StringIO(), stderr=io.StringIO())

    assert read_with(key).status_code == 200


@pytest.mark.usefixtures("ninety_days")
def test_the_command_says_on_stderr_when_the_new_key_expires_and_prints_the_key_alone_on_stdout() -> None:
    """A script that captures stdout still reads DRF's line, and nothing else."""
    UserFactory(username="tool")

    key, out, err = issued_by_the_command("tool")

    expiry = Token.objects.get().created + dt.timedelta(days=90)
    assert out == f"Generated token {key} for user tool\n"
    assert f"expires on {expiry.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" in err
    assert "90 days" in err


def test_with_no_maximum_age_the_command_says_nothing_of_an_expiry() -> None:
    UserFactory(username="tool")

    key, out, err = issued_by_the_command("tool")

    assert out == f"Generated token {key} for user tool\n"
    assert err == ""


def added_in_the_admin(user: Any) -> Any:
    """The page a superuser's add of a token for ``user`` leads to."""
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = logged_in(boss)
    added = client.post(f"{TOKENS}add/", {"user": user.pk})
    assert added.status_code == 302, added.content.decode()
    return client.get(added["Location"])


@pytest.mark.usefixtures("ninety_days")
def test_the_admin_adds_a_token_in_place_of_an_expired_one() -> None:
    old = token_of("tool", age=dt.timedelta(days=90, seconds=1))

    page = added_in_the_admin(Token.objects.get().user).content.decode()

    [new] = re.findall(r"<code>([0-9a-f]{40})</code>", page)
    assert read_with(new).status_code == 200
    assert read_with(old).status_code == 401
    assert Token.objects.filter(user__username="tool").count() == 1


@pytest.mark.usefixtures("ninety_days")
def test_the_admin_still_refuses_a_user_whose_token_is_live() -> None:
    key = token_of("tool", age=dt.timedelta(days=89, hours=23))
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)

    response = logged_in(boss).post(f"{TOKENS}add/", {"user": Token.objects.get().user.pk})

    assert response.status_code == 200
    assert "Token with this User already exists." in response.content.decode()
    assert read_with(key).status_code == 200


@pytest.mark.usefixtures("ninety_days")
def test_the_admin_s_message_with_the_new_key_says_when_it_expires() -> None:
    page = added_in_the_admin(UserFactory(username="tool")).content.decode()

    expiry = Token.objects.get(user__username="tool").created + dt.timedelta(days=90)
    shown = formats.localize(timezone.template_localtime(expiry))
    assert f"Copy it now: it is not shown again. It expires on {shown}." in page


def test_with_no_maximum_age_the_admin_s_message_says_nothing_of_an_expiry() -> None:
    page = added_in_the_admin(UserFactory(username="tool")).content.decode()

    assert "Copy it now: it is not shown again.</li>" in page
    assert "expires on" not in page


@pytest.mark.parametrize("days", [0, 90])
def test_the_issued_token_says_its_key_when_it_was_made_and_when_it_expires(settings: Any, days: int) -> None:
    settings.API_TOKEN_MAX_AGE_DAYS = days

    issued = token_create(user=UserFactory(username="tool"))

    token = Token.objects.get()
    assert token.key == stored_key(issued.key)
    assert issued.created == token.created
    assert issued.expires == (token.created + dt.timedelta(days=days) if days else None)
