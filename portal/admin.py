"""The admin's pages of models no app of the portal defines: API tokens, users and groups.

A key is a password: DRF's own token admin lists every key to whoever may
view tokens, and lets whoever may add one make it for any user, a superuser
included, then act as them through the API. Here a key is shown once, to the
one who made it, and the database keeps only its digest (portal.tokens);
staff make tokens for themselves, superusers for anyone.

Users and groups keep Django's pages, held to the search limit of every
other list (core.admin_limits).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import display_for_value
from django.contrib.admin.widgets import AdminSplitDateTime
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.constants import LOOKUP_SEP
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin as StockTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from core.admin_limits import FilterLimitMixin, SearchLimitMixin
from core.authentication import KEY_PREFIX_LENGTH, token_expiry
from core.errors import error_response
from portal import tokens

# Where a new key waits, in its maker's session, for the next page to show it.
NEW_KEY_SESSION_KEY = "portal.new_token_key"


def key_prefix(token: Token) -> str:
    """The start of a token's key, which its stored form keeps as it is."""
    return f"{token.key[:KEY_PREFIX_LENGTH]}…" if token.key else ""


def _key_pad(nonce: str) -> bytes:
    """Bytes to seal a key with (32, more than its 20), from the secret key
    and ``nonce``: a pad used once, for a nonce is."""
    return salted_hmac(NEW_KEY_SESSION_KEY, nonce, algorithm="sha256").digest()


def seal_key(key: str) -> dict[str, str]:
    """``key`` as its maker's session keeps it until the next page: sealed
    with the secret key, since a session is a row of the database (or an
    entry of the cache), and a key copied from there, or from a backup,
    before that page read it would work."""
    nonce = secrets.token_hex(16)
    sealed = bytes(a ^ b for a, b in zip(bytes.fromhex(key), _key_pad(nonce), strict=False))
    return {"nonce": nonce, "sealed": sealed.hex()}


def unseal_key(kept: dict[str, str]) -> str:
    if "sealed" not in kept:  # kept as it was, by an older release
        return kept["key"]
    sealed = bytes.fromhex(kept["sealed"])
    return bytes(a ^ b for a, b in zip(sealed, _key_pad(kept["nonce"]), strict=False)).hex()


# DRF names a token by its key, and the admin names objects in breadcrumbs,
# delete confirmations (a user's too), messages and the action log.
Token.__str__ = key_prefix  # type: ignore[assignment,method-assign]

if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


class TokenForm(forms.ModelForm[Any]):
    def clean(self) -> dict[str, Any]:
        """The user's row locked before the check that they have no token:
        the admin's transaction keeps the lock until the save, and another
        add for them waits, then finds this token (portal.tokens)."""
        data = super().clean() or {}
        if data.get("user") is not None:
            tokens.token_owner_lock(user_id=data["user"].pk)
        return data

    def validate_unique(self) -> None:
        """A user whose token has expired may have another: token_issue
        replaces it, under the lock clean() took."""
        user = self.cleaned_data.get("user")
        if user is not None and tokens.token_expired_of(user_id=user.pk):
            return
        super().validate_unique()


@admin.register(TokenProxy)
class TokenAdmin(FilterLimitMixin, SearchLimitMixin, StockTokenAdmin):
    form = TokenForm
    list_display = ("prefix", "user", "created", "expires")
    readonly_fields = ("prefix", "created", "expires")

    @admin.display(description="Key")
    def prefix(self, token: Token) -> str:
        return key_prefix(token)

    @admin.display(description="Expires", ordering="created")
    def expires(self, token: Token) -> str:
        """When the token stops working (PORTAL_API_TOKEN_MAX_AGE_DAYS after
        it was made): one past it is refused until the daily sweep deletes it.
        Formatted here, as the list formats a date: a token's page shows a
        method's value as it is."""
        return display_for_value(token_expiry(token.created), "never")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        """Staff see (and so may delete, one by one or in bulk) their own token only."""
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user_id=request.user.pk)

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        """No filtering by key (the token's pk too): Django allows any filter
        on a model's own fields, and a list filtered by a key's first
        characters says whether a token has them, which gives the whole key
        away a character at a time."""
        if lookup.split(LOOKUP_SEP, 1)[0] in {"key", "pk"}:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("user",) if obj is None else ("prefix", "user", "created", "expires")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user.pk}

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        """Staff who are not superusers may make a token for themselves only."""
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model._default_manager.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A token is made or deleted, never edited: moving one's own token
        to another user would hand over that user's access."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A new token gets its key here; the key waits on the object for
        response_add, and the table keeps its digest (DRF's Token.save would
        store the key itself)."""
        obj.issued = tokens.token_issue(token=obj)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new key waits in its maker's session, kept on the server and
        sealed (seal_key), for the page the add leads to: a message added
        here would ride the redirect in the messages cookie, through every
        proxy and cookie jar on the way."""
        issued = obj.issued
        request.session[NEW_KEY_SESSION_KEY] = {
            "user": str(obj.user),
            **seal_key(issued.key),
            "expires": issued.expires and issued.expires.isoformat(),
        }
        return super().response_add(request, obj, post_url_continue)

    def response_post_save_add(self, request: HttpRequest, obj: Any) -> HttpResponseRedirect:
        """Without the view permission, to the add page (where the key shows),
        not the admin's home page."""
        if not self.has_view_or_change_permission(request):
            return HttpResponseRedirect(
                reverse("admin:authtoken_tokenproxy_add", current_app=self.admin_site.name)
            )
        return super().response_post_save_add(request, obj)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if IS_POPUP_VAR in request.GET:
            return _popup_refused(request)
        return self._show_new_key(request, super().changelist_view(request, extra_context))

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if IS_POPUP_VAR in request.GET or IS_POPUP_VAR in request.POST:
            return _popup_refused(request)
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:  # token_issue's: a token made meanwhile by a writer that took no lock
            return error_response(request, 409, "Conflict", f"{' '.join(exc.messages)} Nothing was added.")
        return self._show_new_key(request, response)

    def _show_new_key(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """A page fetched and about to be rendered shows the key waiting in
        the session, once: its messages are read into this page, not stored
        in the cookie (as a redirect's, or a popup's, would be)."""
        if request.method == "GET" and isinstance(response, TemplateResponse) and not response.is_rendered:
            new = request.session.pop(NEW_KEY_SESSION_KEY, None)
            if new:
                message = format_html(
                    "The key of {}: <code>{}</code>. Copy it now: it is not shown again.",
                    new["user"],
                    unseal_key(new),
                )
                if new.get("expires"):  # none kept by an older release, nor when tokens never expire
                    expires = dt.datetime.fromisoformat(new["expires"])
                    message = format_html("{} It expires on {}.", message, display_for_value(expires, ""))
                self.message_user(request, message, messages.SUCCESS)
        return response


def _popup_refused(request: HttpRequest) -> HttpResponse:
    """A pop-up hands the page that opened it each row's primary key, and a
    token's is its key: the list would give every key it shows away, and an
    add the new key besides the page that shows it once. No record links to
    a token, so no page opens one to choose it."""
    return error_response(
        request,
        400,
        "Bad request",
        "Tokens open in no pop-up: nothing links to a token, and a pop-up would hand its key to the page "
        "that opened it. Open the list of tokens without _popup.",
    )


for stock in (User, Group):
    if admin.site.is_registered(stock):
        admin.site.unregister(stock)


class LabelledSplitDateTime(AdminSplitDateTime):
    """Django's date and time boxes, each named by its label: Django's widget
    prints "Date:" and "Time:" as bare text, and the field's own label
    names neither box (a field of two boxes is a fieldset since Django 5)."""

    # In portal/templates: the forms' renderer looks in the apps' templates only.
    template_name = "admin/widgets/split_datetime_labelled.html"


def permissions_of(user: Any) -> models.QuerySet[Permission]:
    """The permissions ``user`` holds, their own and their groups' (as
    Django's ModelBackend reads them, superusers apart)."""
    return Permission.objects.filter(Q(user=user) | Q(group__user=user))


def groups_within(permissions: models.QuerySet[Permission]) -> models.QuerySet[Group]:
    """The groups each of whose permissions is one of ``permissions``."""
    return Group.objects.exclude(permissions__in=Permission.objects.exclude(pk__in=permissions.values("pk")))


def _offer_only(field: Any, choices: models.QuerySet[Any], refusal: str) -> None:
    """Restrict a form's many-to-many ``field`` to ``choices``: a forged
    choice from outside them is refused, saying ``refusal``."""
    field.queryset = choices
    field.error_messages = {**field.error_messages, "invalid_choice": refusal}


PERMISSION_REFUSED = (
    "You may grant only permissions you hold yourself: %(value)s is not one of them, "
    "nor one this already has."
)
GROUP_REFUSED = (
    "You may add only groups each of whose permissions you hold yourself: %(value)s is not one of them, "
    "nor one this user is already in."
)


@admin.register(User)
class UserAdmin(FilterLimitMixin, SearchLimitMixin, auth_admin.UserAdmin[User]):
    """Staff who may edit users, but are no superusers, neither make anyone
    a superuser nor change, set the password of, or delete one: Django
    lets them, and so lets them log in as a superuser, as a token made for
    one would let them act as one through the API. Nor do they any of that
    to a user holding a permission they do not hold.

    Nor do they grant more than they hold: a permission they do not hold, or
    a group with one, is not offered (and refused if posted); a user keeps
    the ones they already have. Their own permissions, groups and staff
    status they cannot change at all, not even to what they hold."""

    # A user's last login and joining date: the only date and time a page edits.
    formfield_overrides = {models.DateTimeField: {"widget": LabelledSplitDateTime}}

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        """No filtering by a user's token: Django allows a filter on a field
        of a related row it reaches in one step, and a list of users
        filtered by their token's first characters
        (``?auth_token__key__startswith=``) says whose key begins so, which
        gives away anyone's key, a superuser's too, a character at a time
        to whoever may view users. Django refuses the password's own."""
        if lookup.split(LOOKUP_SEP, 1)[0] == "auth_token":
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        if obj is not None and obj.pk == request.user.pk:
            return (*fields, "is_staff", "is_superuser", "groups", "user_permissions")
        return (*fields, "is_superuser")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form
        # The form's class is made for this request: its fields are its own.
        fields = form.base_fields
        held = permissions_of(request.user)
        if "user_permissions" in fields:
            offered = Q(pk__in=held.values("pk"))
            if obj is not None:
                offered |= Q(pk__in=obj.user_permissions.values("pk"))
            choices = Permission.objects.filter(offered).select_related("content_type")
            _offer_only(fields["user_permissions"], choices, PERMISSION_REFUSED)
        if "groups" in fields:
            offered = Q(pk__in=groups_within(held).values("pk"))
            if obj is not None:
                offered |= Q(pk__in=obj.groups.values("pk"))
            _offer_only(fields["groups"], Group.objects.filter(offered), GROUP_REFUSED)
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The password page asks this too.
        return super().has_change_permission(request, obj) and self._may_touch(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # "Delete selected" asks this of each user it would delete.
        return super().has_delete_permission(request, obj) and self._may_touch(request, obj)

    @staticmethod
    def _may_touch(request: HttpRequest, obj: Any) -> bool:
        """A superuser is the extreme case: whoever could set the password
        of a user holding a permission they lack (or their address, where a
        reset goes) could log in as them and use it."""
        if obj is None or request.user.is_superuser:
            return True
        if obj.is_superuser:
            return False
        return not permissions_of(obj).exclude(pk__in=permissions_of(request.user).values("pk")).exists()


@admin.register(Group)
class GroupAdmin(FilterLimitMixin, SearchLimitMixin, auth_admin.GroupAdmin):
    """Staff who may edit groups, but are no superusers, give a group only
    permissions they hold themselves, as on a user's page: a group of their
    own would otherwise hand them any permission. A group keeps the ones it
    already has."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser or "permissions" not in form.base_fields:
            return form
        offered = Q(pk__in=permissions_of(request.user).values("pk"))
        if obj is not None:
            offered |= Q(pk__in=obj.permissions.values("pk"))
        choices = Permission.objects.filter(offered).select_related("content_type")
        _offer_only(form.base_fields["permissions"], choices, PERMISSION_REFUSED)
        return form
