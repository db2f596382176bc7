"""API tokens that expire: with PORTAL_API_TOKEN_MAX_AGE_DAYS set, a token
older than that is refused, saying so and how to get another, and the
admin shows when each expires. Unset (0), tokens work for ever, as before."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import formats, timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portal.tokens import token_replace
from tests.factories import UserFactory, api_key, logged_in, staff_with

pytestmark = pytest.mark.django_db

TOKENS = "/admin/authtoken/tokenproxy/"


def token_of(username: str, *, age: dt.timedelta) -> str:
    """The key of a token of a new user ``username``, made ``age`` ago."""
    key = api_key(UserFactory(username=username))
    Token.objects.filter(user__username=username).update(created=timezone.now() - age)
    return key


def read_with(key: str) -> Any:
    return APIClient().get("/api/v1/people/", HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def ninety_days(settings: Any) -> None:
    settings.API_TOKEN_MAX_AGE_DAYS = 90


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
    assert "delete the expired token in the admin (Tokens) and add another" in detail
    assert "manage.py drf_create_token --reset <username>" in detail


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

    _, new = token_replace(user=Token.objects.get().user)

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
