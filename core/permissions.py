"""The API's permissions: Django's model permissions, whose refusals name
what is lacking. Apart from ``core.api``, as DRF's settings import them
while ``rest_framework.views`` is itself being imported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import permissions
from rest_framework.request import Request


class ModelPermissions(permissions.DjangoModelPermissionsOrAnonReadOnly):
    """DRF's model permissions (reads for anyone; a write needs the model's
    add, change or delete permission), whose refusal names the permission
    lacking, where DRF says only "You do not have permission to perform this
    action.": staff whose change is refused learn what to ask for. Checked
    of the model, before any row is looked up: the same refusal whatever the
    address, which tells nothing of the rows there are."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if super().has_permission(request, view):
            return True
        user = request.user
        if user is not None and user.is_authenticated:  # else a 401, which asks for credentials
            model = self._queryset(view).model
            needed = self.get_required_permissions(request.method or "", model)
            self.message = permission_needed([perm for perm in needed if not user.has_perm(perm)])
        return False


class ModelChangePermissions(ModelPermissions):
    """For an action that changes an object by a ``POST`` (an image's focal
    point, its reprocessing): the change permission, not add."""

    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


def permission_needed(perms: Sequence[str]) -> str:
    """A refusal naming the permissions lacking, as ``app_label.codename``."""
    if len(perms) == 1:
        return f"This needs the permission {perms[0]}."
    return f"This needs the permissions {', '.join(perms)}."
