"""Users and groups in the admin: staff who may edit users never take over
a superuser's account, nor make anyone one, as tokens keep a superuser's
access theirs (``test_token_admin``); nor do they grant, to others or to a
group, more than they hold, nor change what they hold themselves."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

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
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
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


# --- Granting no more than one holds ----------------------------------------


def perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


@pytest.fixture
def moderators() -> Group:
    """A group of a permission the clerk holds."""
    group = Group.objects.create(name="moderators")
    group.permissions.set([perm("change_feedback")])
    return group


@pytest.fixture
def owners() -> Group:
    """A group of a permission the clerk holds and one they do not."""
    group = Group.objects.create(name="owners")
    group.permissions.set([perm("change_feedback"), perm("delete_product")])
    return group


@pytest.fixture
def moderating_clerk(clerk: Any, moderators: Group) -> Any:
    """The clerk, who may also moderate reviews (through a group)."""
    clerk.groups.add(moderators)
    return clerk


def refusals(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return dict(response.context["adminform"].form.errors)


def test_staff_who_may_edit_users_are_offered_only_the_permissions_and_groups_they_hold(
    moderating_clerk: Any, owners: Group, moderators: Group
) -> None:
    other: Any = UserFactory(username="other")
    page = logged_in(moderating_clerk).get(f"{USERS}{other.pk}/change/")

    fields = page.context["adminform"].form.fields
    held = {"change_feedback", "view_user", "add_user", "change_user", "delete_user"}
    assert {p.codename for p in fields["user_permissions"].queryset} == held
    assert list(fields["groups"].queryset) == [moderators]


def test_staff_who_may_edit_users_grant_what_they_hold(moderating_clerk: Any, moderators: Group) -> None:
    other: Any = UserFactory(username="other")
    granted = change_form(
        other, user_permissions=[str(perm("change_feedback").pk)], groups=[str(moderators.pk)]
    )

    response = logged_in(moderating_clerk).post(f"{USERS}{other.pk}/change/", granted)

    assert response.status_code == 302
    assert other.has_perm("catalog.change_feedback")
    assert list(other.groups.all()) == [moderators]


@pytest.mark.parametrize(
    ("field", "refusal"),
    [
        ("user_permissions", "You may grant only permissions you hold yourself"),
        ("groups", "You may add only groups each of whose permissions you hold yourself"),
    ],
)
def test_a_forged_grant_of_more_than_they_hold_is_refused_and_nothing_is_saved(
    moderating_clerk: Any, owners: Group, field: str, refusal: str
) -> None:
    other: Any = UserFactory(username="other")
    forged = {"user_permissions": [str(perm("delete_product").pk)], "groups": [str(owners.pk)]}[field]

    response = logged_in(moderating_clerk).post(
        f"{USERS}{other.pk}/change/", change_form(other, first_name="X", **{field: forged})
    )

    assert any(refusal in error for error in refusals(response)[field])
    other = get_user_model().objects.get(pk=other.pk)
    assert other.first_name != "X"
    assert not other.has_perm("catalog.delete_product")
    assert not other.groups.exists()


def test_staff_who_may_edit_users_change_nothing_of_what_they_hold_themselves(
    moderating_clerk: Any, moderators: Group, owners: Group
) -> None:
    client = logged_in(moderating_clerk)
    url = f"{USERS}{moderating_clerk.pk}/change/"
    page = client.get(url)
    for field in ("is_staff", "is_superuser", "groups", "user_permissions"):
        assert field not in page.context["adminform"].form.fields
    held = set(moderating_clerk.user_permissions.all())
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]

    # Neither more (posted anyway) nor less: the boxes are not theirs to tick.
    more = change_form(
        moderating_clerk, is_superuser="on", groups=[str(owners.pk)], user_permissions=everything
    )
    less = change_form(moderating_clerk, is_staff="", groups=[], user_permissions=[], first_name="X")
    for form in (more, less):
        assert client.post(url, form).status_code == 302

    me = get_user_model().objects.get(pk=moderating_clerk.pk)
    assert me.first_name == "X"
    assert (me.is_staff, me.is_superuser) == (True, False)
    assert set(me.user_permissions.all()) == held
    assert list(me.groups.all()) == [moderators]


@pytest.mark.parametrize("through", ["own", "group"])
def test_staff_who_may_edit_users_take_over_no_user_holding_more_than_they_do(
    moderating_clerk: Any, owners: Group, through: str
) -> None:
    """As for a superuser: a new password, or a new address for a reset,
    would let them log in as that user and use what they hold."""
    other: Any = UserFactory(username="other", email="other@example.com")
    if through == "own":
        other.user_permissions.add(perm("delete_product"))
    else:
        other.groups.add(owners)
    client = logged_in(moderating_clerk)
    url = f"{USERS}{other.pk}/"

    assert client.get(f"{url}change/").context["has_change_permission"] is False
    assert client.post(f"{url}change/", change_form(other, email="clerk@example.com")).status_code == 403
    assert (
        client.post(f"{url}password/", {"password1": "taken 0ver!", "password2": "taken 0ver!"}).status_code
        == 403
    )
    assert client.post(f"{url}delete/", {"post": "yes"}).status_code == 403

    other = get_user_model().objects.get(pk=other.pk)
    assert other.email == "other@example.com"
    assert other.check_password("correct horse battery staple")


def test_staff_who_may_edit_users_edit_one_holding_no_more_than_they_do(moderating_clerk: Any) -> None:
    other: Any = UserFactory(username="other")
    other.user_permissions.add(perm("change_feedback"))

    response = logged_in(moderating_clerk).post(
        f"{USERS}{other.pk}/change/", change_form(other, first_name="X")
    )

    assert response.status_code == 302
    other = get_user_model().objects.get(pk=other.pk)
    assert other.first_name == "X"
    assert list(other.user_permissions.all()) == [perm("change_feedback")]


def test_a_superuser_grants_any_permission_and_group_to_anyone_themselves_included(
    boss: Any, owners: Group
) -> None:
    other: Any = UserFactory(username="other")
    client = logged_in(boss)
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]

    for user in (other, boss):
        granted = change_form(user, user_permissions=everything, groups=[str(owners.pk)])
        assert client.post(f"{USERS}{user.pk}/change/", granted).status_code == 302

    for user in (other, boss):
        assert user.user_permissions.count() == len(everything)
        assert list(user.groups.all()) == [owners]


GROUPS = "/admin/auth/group/"


@pytest.fixture
def group_clerk(moderators: Group) -> Any:
    """A staff member who may edit groups and moderate reviews, in one of the groups."""
    user = UserFactory(username="group-clerk", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__endswith="_group")
    )
    user.groups.add(moderators)
    return user


def group_form(group: Group, permissions: list[Permission]) -> dict[str, Any]:
    return {"name": group.name, "permissions": [str(p.pk) for p in permissions]}


def test_staff_who_may_edit_groups_give_a_group_only_permissions_they_hold(
    group_clerk: Any, moderators: Group
) -> None:
    client = logged_in(group_clerk)
    url = f"{GROUPS}{moderators.pk}/change/"
    offered = client.get(url).context["adminform"].form.fields["permissions"].queryset
    assert perm("delete_product") not in offered

    forged = client.post(url, group_form(moderators, [perm("change_feedback"), perm("delete_product")]))
    assert any(
        "You may grant only permissions you hold yourself" in e for e in refusals(forged)["permissions"]
    )
    assert list(moderators.permissions.all()) == [perm("change_feedback")]
    assert not get_user_model().objects.get(pk=group_clerk.pk).has_perm("catalog.delete_product")

    made = client.post(f"{GROUPS}add/", group_form(Group(name="new"), [perm("delete_product")]))
    assert "You may grant only permissions you hold yourself" in str(refusals(made)["permissions"])
    assert not Group.objects.filter(name="new").exists()

    allowed = client.post(url, group_form(moderators, [perm("change_feedback"), perm("view_group")]))
    assert allowed.status_code == 302
    assert set(moderators.permissions.all()) == {perm("change_feedback"), perm("view_group")}


def test_a_group_keeps_the_permissions_it_had_that_the_staff_editing_it_lacks(
    group_clerk: Any, owners: Group
) -> None:
    url = f"{GROUPS}{owners.pk}/change/"
    kept = [perm("change_feedback"), perm("delete_product")]

    response = logged_in(group_clerk).post(url, {**group_form(owners, kept), "name": "proprietors"})

    assert response.status_code == 302
    owners.refresh_from_db()
    assert owners.name == "proprietors"
    assert set(owners.permissions.all()) == set(kept)


def test_a_superuser_gives_a_group_any_permission(boss: Any, moderators: Group) -> None:
    url = f"{GROUPS}{moderators.pk}/change/"
    response = logged_in(boss).post(url, group_form(moderators, [perm("delete_product")]))
    assert response.status_code == 302
    assert list(moderators.permissions.all()) == [perm("delete_product")]
