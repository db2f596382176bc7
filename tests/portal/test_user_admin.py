"""Users in the admin: staff who may edit users never take over a
superuser's account, nor make anyone one, as tokens keep a superuser's
access theirs (``test_token_admin``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.factories import UserFactory, logged_in

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"


@pytest.fixture
def boss() -> Any:
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def clerk() -> Any:
    """A staff member who may view, add, change and delete users."""
    user = UserFactory(username="clerk", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__endswith="_user")
    )
    return user


def change_form(user: Any, **changed: Any) -> dict[str, Any]:
    """What the user's change page posts, with these fields changed."""
    fields = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "user_permissions": [str(pk) for pk in user.user_permissions.values_list("pk", flat=True)],
        **changed,
    }
    return {name: value for name, value in fields.items() if value not in ("", [])}


def test_staff_who_may_edit_users_may_not_set_a_superuser_s_password(boss: Any, clerk: Any) -> None:
    client = logged_in(clerk)
    password = f"{USERS}{boss.pk}/password/"

    assert client.get(password).status_code == 403
    response = client.post(password, {"password1": "taken over 123!", "password2": "taken over 123!"})

    assert response.status_code == 403
    boss.refresh_from_db()
    assert boss.check_password("correct horse battery staple")


def test_staff_who_may_edit_users_see_a_superuser_s_page_but_change_nothing_on_it(
    boss: Any, clerk: Any
) -> None:
    client = logged_in(clerk)
    page = client.get(f"{USERS}{boss.pk}/change/")
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False

    response = client.post(f"{USERS}{boss.pk}/change/", change_form(boss, email="clerk@example.com"))

    assert response.status_code == 403
    boss.refresh_from_db()
    assert boss.email == "boss@example.com"


def test_staff_who_may_delete_users_may_not_delete_a_superuser(boss: Any, clerk: Any) -> None:
    client = logged_in(clerk)
    assert client.get(f"{USERS}{boss.pk}/delete/").status_code == 403
    assert client.post(f"{USERS}{boss.pk}/delete/", {"post": "yes"}).status_code == 403

    bulk = {"action": "delete_selected", "_selected_action": [str(boss.pk)], "post": "yes"}
    assert client.post(USERS, bulk).status_code == 403

    assert get_user_model().objects.filter(pk=boss.pk).exists()


def test_staff_who_may_edit_users_make_no_one_a_superuser(clerk: Any) -> None:
    other: Any = UserFactory(username="other", is_staff=True)
    client = logged_in(clerk)

    for user in (clerk, other):
        response = client.post(
            f"{USERS}{user.pk}/change/", change_form(user, is_superuser="on", first_name="X")
        )
        assert response.status_code == 302
        user.refresh_from_db()
        # The rest of the form is saved; the box is not one they may tick.
        assert (user.first_name, user.is_superuser) == ("X", False)


def test_a_superuser_edits_superusers_and_makes_others_superusers(boss: Any) -> None:
    other = UserFactory(username="other", is_staff=True)
    client = logged_in(UserFactory(username="chief", is_staff=True, is_superuser=True))

    made = client.post(f"{USERS}{other.pk}/change/", change_form(other, is_superuser="on"))
    changed = client.post(f"{USERS}{boss.pk}/change/", change_form(boss, first_name="Big"))
    password = client.post(
        f"{USERS}{boss.pk}/password/", {"password1": "n3w pass phrase!", "password2": "n3w pass phrase!"}
    )

    assert (made.status_code, changed.status_code, password.status_code) == (302, 302, 302)
    other.refresh_from_db()
    boss.refresh_from_db()
    assert other.is_superuser
    assert boss.first_name == "Big"
    assert boss.check_password("n3w pass phrase!")
