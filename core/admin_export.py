"""Admin exports (django-import-export) of any number of rows.

The library's "Export selected" action puts every selected id on its export
page as a hidden field, which the page posts back: past 1,000 rows the post
breaks Django's limit on the number of fields (DATA_UPLOAD_MAX_NUMBER_FIELDS),
past some 50,000 the body limit, and the page itself takes as long to build
as the ids are many. Here the selection travels in the export page's URL as
the changelist's own filters do: "all N rows" is the list's filters alone,
a page's rows (a few hundred at most) one ``pk__in`` filter.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from core.errors import error_response


class ExportSelectionMixin:
    """For a ModelAdmin with django-import-export's export action (put before
    ``ExportActionMixin``)."""

    admin_site: Any
    model: Any
    export_template_name = "admin/export.html"

    def export_admin_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse:
        """To the export page, for the rows the changelist's filters (kept
        from its URL) and the selection give."""
        opts = self.model._meta
        params = request.GET.copy()
        # As the changelist reads it: with "select all N", every row the filters give.
        across = helpers.ActionForm.base_fields["select_across"].clean(request.POST.get("select_across"))
        if not across:
            # The rows of one page at most: the queryset is narrowed to them.
            ids = queryset.order_by().values_list("pk", flat=True)
            params[f"{opts.pk.name}__in"] = ",".join(str(pk) for pk in ids)
        url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_export")
        return HttpResponseRedirect(f"{url}?{params.urlencode(safe=',')}" if params else url)

    def export_action(self, request: HttpRequest) -> HttpResponse:
        """A filter in the URL that does not fit its field (an id that is not
        a number, an unknown field) is the client's mistake: 400 naming it."""
        try:
            return super().export_action(request)  # type: ignore[misc,no-any-return]
        except IncorrectLookupParameters:
            return error_response(
                request,
                400,
                "Bad request",
                "The filters in this page's address do not fit the list: a field it does not have, "
                "or a value of the wrong kind (an id that is not a number).",
            )

    def init_request_context_data(self, request: HttpRequest, form: Any) -> dict[str, Any]:
        """How many rows the export will have, said on its page."""
        context: dict[str, Any] = super().init_request_context_data(request, form)  # type: ignore[misc]
        context["export_rows"] = self.get_export_queryset(request).count()  # type: ignore[attr-defined]
        return context
