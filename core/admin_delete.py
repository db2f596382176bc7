"""The admin's "Delete selected" for selections of any size.

Django's confirmation page lists every object the deletion takes, related
ones included, each read from the database first, and carries every selected
id back as a field of its form: 10,000 reviews selected across pages made a
page of 10,000 lines that Django then refused to take back (more than 1,000
fields), and 60,000 images with their renditions took four minutes and 3.7 GB
to list. Here a selection of more than ``LISTED_MAX`` objects is confirmed by
counts (one query for each kind of related object the deletion takes), and
the selection goes back as it came: "all N rows" as the list's filters, a
page's rows as their ids.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.admin import action, actions, helpers
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.db.models.deletion import get_candidate_relations_to_delete
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

# Objects a confirmation lists one by one (Django's page); past this, counts.
LISTED_MAX = 100
# How deep cascades are followed for the counts (each level is a subquery).
CASCADE_DEPTH = 5
# Protected objects named on a refusal.
PROTECTED_LISTED = 10


def deletion_counts(queryset: QuerySet[Any]) -> tuple[Counter[type[models.Model]], list[str]]:
    """How many rows of each model deleting ``queryset`` takes (cascades
    included), and the protected objects that would stop it (a few named)."""
    counts: Counter[type[models.Model]] = Counter({queryset.model: queryset.count()})
    protected: list[str] = []

    def follow(rows: QuerySet[Any], depth: int) -> None:
        relation: Any  # a reverse relation (the stubs type it as a field)
        for relation in get_candidate_relations_to_delete(rows.model._meta):
            model: type[models.Model] = relation.related_model
            related = model._base_manager.filter(**{f"{relation.field.name}__in": rows})
            if relation.on_delete in (models.PROTECT, models.RESTRICT):
                protected.extend(f"{model._meta.verbose_name}: {obj}" for obj in related[:PROTECTED_LISTED])
            elif relation.on_delete is models.CASCADE:
                found = related.count()
                if found:
                    counts[model] += found
                    if depth < CASCADE_DEPTH:
                        follow(related, depth + 1)

    follow(queryset.order_by(), 1)
    return counts, protected[:PROTECTED_LISTED]


def _carried(request: HttpRequest) -> list[tuple[str, str]]:
    """The fields that bring the same selection back: "select all" with the
    ids of the page it was ticked on, or the ticked ids."""
    fields = [(helpers.ACTION_CHECKBOX_NAME, pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)]
    if helpers.ActionForm.base_fields["select_across"].clean(request.POST.get("select_across")):
        fields.append(("select_across", "1"))
    return fields


@action(permissions=["delete"], description=actions.delete_selected.short_description)  # type: ignore[attr-defined]
def delete_selected(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
    """Django's own action for a few objects; counts for more."""
    total = queryset.count()
    if total <= LISTED_MAX:
        return actions.delete_selected(modeladmin, request, queryset)  # type: ignore[no-any-return]
    limit = getattr(modeladmin, "delete_selected_max", None)
    if limit is not None and total > limit:
        return _refused(
            modeladmin,
            request,
            queryset,
            f"{modeladmin.delete_selected_limit.format(max=limit)} This selection has {total:,}.",
        )
    counts, protected = deletion_counts(queryset)
    perms_lacking = sorted(
        str(model._meta.verbose_name_plural)
        for model in counts
        if modeladmin.admin_site.is_registered(model)
        and not modeladmin.admin_site.get_model_admin(model).has_delete_permission(request)
    )
    confirmed = request.POST.get("post") and request.POST.get("rows") == str(total)
    if confirmed and not protected:
        if perms_lacking:
            raise PermissionDenied
        modeladmin.log_deletions(request, queryset)
        modeladmin.delete_queryset(request, queryset)
        modeladmin.message_user(
            request,
            f"Successfully deleted {total:,} {model_ngettext(modeladmin.opts, total)}.",
            messages.SUCCESS,
        )
        return None
    if request.POST.get("post"):
        modeladmin.message_user(
            request,
            f"The selection has changed since it was confirmed: it now holds {total:,} rows. "
            "Nothing was deleted; confirm again.",
            messages.WARNING,
        )
    objects_name = str(model_ngettext(queryset))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Cannot delete {objects_name}" if perms_lacking or protected else "Delete multiple objects",
        "subtitle": None,
        "objects_name": objects_name,
        "model_count": [(m._meta.verbose_name_plural, n) for m, n in counts.items()],
        "total": total,
        "carried": _carried(request),
        "perms_lacking": perms_lacking,
        "protected": protected,
        "opts": modeladmin.model._meta,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/delete_selected_counted.html", context)


def _refused(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any], reason: str) -> HttpResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Cannot delete {model_ngettext(queryset)}",
        "subtitle": None,
        "too_many": reason,
        "opts": modeladmin.model._meta,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/delete_selected_counted.html", context, status=400)


class CountedDeleteMixin:
    """For a ModelAdmin: "Delete selected" confirms a large selection by
    counts. An admin whose rows each take long to delete (their files with
    them) sets ``delete_selected_max``, and ``delete_selected_limit`` to say
    so to staff (``{max}`` in it is the number)."""

    delete_selected_max: int | None = None
    delete_selected_limit = ""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found: dict[str, Any] = super().get_actions(request)  # type: ignore[misc]
        if "delete_selected" in found:
            _, name, description = found["delete_selected"]
            found["delete_selected"] = (delete_selected, name, description)
        return found
