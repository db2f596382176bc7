"""Admin exports (django-import-export) of many rows.

The library's "Export selected" action puts every selected id on its export
page as a hidden field, which the page posts back: past 1,000 rows the post
breaks Django's limit on the number of fields (DATA_UPLOAD_MAX_NUMBER_FIELDS),
past some 50,000 the body limit, and the page itself takes as long to build
as the ids are many. Here the selection travels in the export page's URL as
the changelist's own filters do: "all N rows" is the list's filters alone,
a page's rows (a few hundred at most) one ``pk__in`` filter.

The library also builds the whole file in memory before sending a byte, row
by row through a table object, with whatever the list prefetches for its
page: 100,000 reviews took half a minute and some 200 MB, 20,000 people most
of a minute (reading every photo's renditions). Here CSV and TSV, whose rows
are lines, are written and sent a chunk of rows at a time, each chunk
written by the library's own format, without the list's prefetches; the
formats that cannot be cut so (JSON, YAML, HTML) are for exports of at most
``BUFFERED_MAX_ROWS`` rows. Each limit is said on the export page, and an
export past it is refused naming it. Their text cells are written for a
spreadsheet (see ``core.spreadsheets``): one it would run as a formula is
marked as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tablib
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from import_export.fields import Field
from import_export.formats import base_formats
from import_export.resources import Resource
from import_export.signals import post_export

from core.errors import error_response
from core.spreadsheets import as_text

# Rows read from the database, and written to the client, at a time.
CHUNK_ROWS = 2000
# Formats whose rows are lines of their own, after a line of headers.
STREAMED_FORMATS = (base_formats.CSV, base_formats.TSV)
# The other formats are built whole in memory, as the library does.
BUFFERED_MAX_ROWS = 10_000
# A streamed export takes some 12 s of a core for 100,000 reviews (less for
# people): past this many rows, on a busy host, it could outlast the web
# server's time limit for a request (make serve: 60 s) and be cut off mid-file.
STREAMED_MAX_ROWS = 150_000


class ExportTooLarge(ValueError):
    """An export too large for the format asked (the library shows a
    ValueError's text on the export page)."""


def too_large(rows: int) -> str:
    """What an export of ``rows`` rows is limited to, in words for staff."""
    if rows > STREAMED_MAX_ROWS:
        return (
            f"An export has at most {STREAMED_MAX_ROWS:,} rows; this one has {rows:,}. "
            "Filter the list (by date, for instance) and export it in parts."
        )
    if rows > BUFFERED_MAX_ROWS:
        return f"An export of more than {BUFFERED_MAX_ROWS:,} rows is written as CSV or TSV only; this one has {rows:,}."
    return ""


def _exporter(resource: Resource[Any], field: Field) -> Callable[[Any], Any]:
    """What ``resource.export_field(field, obj)`` calls for every row (the
    resource's ``dehydrate_<field>`` or the field's widget), looked up once
    per export instead of once per value."""
    dehydrate = field.get_dehydrate_method(resource.get_field_name(field))
    method = dehydrate if callable(dehydrate) else getattr(resource, dehydrate, None)
    return method if method is not None else field.export  # type: ignore[no-any-return]


def export_chunks(
    file_format: base_formats.Format,
    resource: Resource[Any],
    queryset: QuerySet[Any],
    fields: Sequence[str] | None,
) -> Iterator[str]:
    """The file ``resource.export()`` would give in a line-per-row format,
    piece by piece: the headers, then each chunk of rows written by the
    format itself (a table without headers is its rows alone), each text
    cell a spreadsheet would run as a formula marked as text."""
    columns = [_exporter(resource, field) for field in resource.get_export_fields(fields)]
    yield file_format.export_data(tablib.Dataset(headers=resource.get_export_headers(selected_fields=fields)))
    rows: list[list[Any]] = []
    for obj in queryset.iterator(chunk_size=CHUNK_ROWS):
        rows.append([as_text(column(obj)) for column in columns])
        if len(rows) == CHUNK_ROWS:
            yield file_format.export_data(tablib.Dataset(*rows))
            rows = []
    if rows:
        yield file_format.export_data(tablib.Dataset(*rows))


class StreamedExportMixin:
    """For a ModelAdmin with django-import-export's export (put before the
    library's mixin): any number of rows in CSV or TSV, sent as they are read;
    the export page says how many rows it exports; filters in its address
    that do not fit the list are a 400."""

    admin_site: Any
    model: Any
    export_template_name = "admin/export.html"

    def get_export_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # What the list prefetches for its page (thumbnails): no export reads it.
        return super().get_export_queryset(request).prefetch_related(None)  # type: ignore[misc,no-any-return]

    def export_action(self, request: HttpRequest) -> HttpResponse:
        """A filter in the URL that does not fit its field (an id that is not
        a number, an unknown field) is the client's mistake: 400 naming it;
        so is a format the export is too large for (said on the page), and a
        form the page refuses (a format it does not have, no column ticked:
        the page again with its errors, as an import refuses a file)."""
        try:
            response: HttpResponse = super().export_action(request)  # type: ignore[misc]
        except IncorrectLookupParameters:
            return error_response(
                request,
                400,
                "Bad request",
                "The filters in this page's address do not fit the list: a field it does not have, "
                "or a value of the wrong kind (an id that is not a number).",
            )
        form = (getattr(response, "context_data", None) or {}).get("form")
        refused = request.method == "POST" and form is not None and bool(form.errors)
        if refused or getattr(request, "export_too_large", False):
            response.status_code = 400
        return response

    def init_request_context_data(self, request: HttpRequest, form: Any) -> dict[str, Any]:
        """How many rows the export will have, and what that allows, said on its page."""
        context: dict[str, Any] = super().init_request_context_data(request, form)  # type: ignore[misc]
        rows = self.get_export_queryset(request).count()
        context["export_rows"] = rows
        context["export_limit"] = too_large(rows)
        return context

    def _do_file_export(
        self,
        file_format: base_formats.Format,
        request: HttpRequest,
        queryset: QuerySet[Any],
        export_form: Any = None,
    ) -> HttpResponseBase:
        streamed = isinstance(file_format, STREAMED_FORMATS)
        rows = queryset.count()
        if rows > (STREAMED_MAX_ROWS if streamed else BUFFERED_MAX_ROWS):
            request.export_too_large = True  # type: ignore[attr-defined]
            raise ExportTooLarge(too_large(rows))
        if not streamed:
            return super()._do_file_export(file_format, request, queryset, export_form)  # type: ignore[misc,no-any-return]
        if not self.has_export_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        resource_class = self.choose_export_resource_class(export_form, request)  # type: ignore[attr-defined]
        resource = resource_class(**self.get_export_resource_kwargs(request, export_form=export_form))  # type: ignore[attr-defined]
        fields = self.get_export_resource_fields_from_form(export_form)  # type: ignore[attr-defined]
        response = StreamingHttpResponse(
            export_chunks(file_format, resource, queryset, fields),
            content_type=file_format.get_content_type(),
        )
        filename = self.get_export_filename(request, queryset, file_format)  # type: ignore[attr-defined]
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        post_export.send(sender=None, model=self.model)
        return response


class ExportSelectionMixin(StreamedExportMixin):
    """For a ModelAdmin with django-import-export's export action (put before
    ``ExportActionMixin``)."""

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
