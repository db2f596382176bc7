"""Admin imports (django-import-export) of many rows.

Out of the box the library reads each row's stored object with a query of its
own, checks the unique fields with another, and saves each row alone inside a
savepoint: five queries a row. A file of 10,000 people took a minute and a half
for its preview and as long again for its confirmation, past the web server's
time limit for a request, and the preview listed every row (7 MB of HTML).

Here the objects a file names are read in a few queries before its rows, and
the rows are written in batches (the whole import still one transaction, so
a failure leaves nothing written). The database is not asked about unique
values row by row: the stored objects are known from that first read, and a
key the file repeats is refused on the row that repeats it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import tablib
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export import resources, widgets
from import_export.instance_loaders import ModelInstanceLoader

from core import multipart, validation
from core.limits import accepts_files
from core.validation import holds_null_character

# Keys asked for in one query (SQLite allows some 32,000 parameters a query).
KEYS_PER_QUERY = 2000
# Rows written by one INSERT or UPDATE.
BATCH_ROWS = 1000
# Rows of a preview or of its errors shown on the page; the others are counted.
PREVIEW_ROWS = 100
# Rows a file may have: a preview, and again its confirmation, takes some 5 s
# of a core for 10,000 people; past this many, on a busy host, it could
# outlast the web server's time limit for a request (make serve: 60 s).
MAX_ROWS = 20_000


class KeyedInstanceLoader(ModelInstanceLoader):
    """The stored objects of every key in the file, read before the rows.

    For a resource with one import id field (the library's own cached loader
    asks for every key of the file in one query, which SQLite refuses past
    its limit of parameters)."""

    def __init__(self, resource: Any, dataset: Any = None) -> None:
        super().__init__(resource, dataset)
        (name,) = resource.get_import_id_fields()
        self.key = resource.fields[name]
        keys = []
        if dataset is not None and self.key.column_name in (dataset.headers or ()):
            keys = list({self._key(row) for row in dataset.dict} - {None, ""})
        self.stored: dict[Any, Model] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            lookup = {f"{self.key.attribute}__in": keys[start : start + KEYS_PER_QUERY]}
            for obj in self.get_queryset().filter(**lookup):
                self.stored[self.key.get_value(obj)] = obj

    def _key(self, row: dict[str, Any]) -> Any:
        try:
            key = self.key.clean(row)
        except ValueError:
            return None  # not a key at all: the row's own import says why
        if holds_null_character(key):
            # No stored row has it, and PostgreSQL cannot even compare text
            # with it: the row's own check names the field.
            return None
        return key

    def get_instance(self, row: dict[str, Any]) -> Model | None:
        return self.stored.get(self.key.clean(row))


def _unstorable(dataset: Any) -> str | None:
    """Why a file cannot be imported, if a header or a value holds a null
    character or a lone surrogate (JSON's and YAML's escapes ``\\u0000``,
    ``\\ud800``): PostgreSQL refuses them in the very query that looks the
    rows up, and no page shows a surrogate, so each would be a server error."""
    headers = list(dataset.headers or ())
    for column, header in enumerate(headers, start=1):
        if message := validation.unstorable(header):
            return f"The header of column {column}: {message}"
    for number, row in enumerate(dataset, start=1):
        for column, value in enumerate(row):
            if message := validation.unstorable(value):
                name = headers[column] if column < len(headers) else f"column {column + 1}"
                return f"Row {number}, {name}: {message}"
    return None


class _Absent(str):
    """The value of a key a row of a JSON or YAML file does not give: blank
    where the row is shown, and its field left as it is stored."""


ABSENT = _Absent()


def dataset_of_rows(rows: Sequence[Mapping[Any, Any]]) -> tablib.Dataset:
    """The dataset of rows that each give their own keys in their own order
    (the library's takes the first row's keys as the columns, and each row's
    values in the order the row gives them): a column for every key, in the
    order first given; a key a row lacks is ``ABSENT`` there."""
    dataset = tablib.Dataset()
    headers = list(dict.fromkeys(key for row in rows for key in row))
    if headers:
        dataset.headers = headers
    for row in rows:
        dataset.append([row.get(key, ABSENT) for key in headers])
    return dataset


class _Undiffed:
    """The diff of a row past those a preview shows: none (the library's
    renders each field twice and compares them, a third of a row's time)."""

    def __init__(self, resource: Any, instance: Any, new: bool) -> None:
        pass

    def compare_with(self, resource: Any, instance: Any) -> None:
        pass

    def as_html(self) -> list[str]:
        return []


class TextWidget(widgets.CharWidget):
    """Text, as the library's CharWidget reads it; a list or a mapping of a
    JSON or YAML file is refused, where the library stored its printout
    (``['Ada', 'Lovelace']``) as the text."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        if isinstance(value, (list, tuple, dict)):
            raise ValueError(f"must be text, not {'a list' if not isinstance(value, dict) else 'a mapping'}")
        return super().clean(value, row, **kwargs)


class BatchedModelResource(resources.ModelResource):
    """A ModelResource with one import id field whose rows are written in batches."""

    WIDGETS_MAP = {**resources.ModelResource.WIDGETS_MAP, "CharField": TextWidget, "TextField": TextWidget}

    class Meta:
        instance_loader_class = KeyedInstanceLoader
        use_bulk = True
        batch_size = BATCH_ROWS

    def import_data(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        """A file of more than ``MAX_ROWS`` rows, or with text no database
        stores: refused before its first row."""
        refusal: str | None
        if len(dataset) > MAX_ROWS:
            refusal = (
                f"A file has at most {MAX_ROWS:,} rows; this one has {len(dataset):,}. Import it in parts."
            )
        else:
            refusal = _unstorable(dataset)
        if refusal is None:
            return super().import_data(dataset, *args, **kwargs)
        result = self.get_result_class()()
        result.total_rows = len(dataset)
        result.append_base_error(self.get_error_result_class()(ValueError(refusal)))
        return result

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        super().before_import(dataset, **kwargs)
        self.rows_by_key: dict[Any, int] = {}

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        """A key the file gives twice: refused on the second row, naming the
        first (written in one batch, the two would meet only in the database)."""
        super().before_import_row(row, **kwargs)
        self.row_number: int = kwargs["row_number"]
        (name,) = self.get_import_id_fields()
        field = self.fields[name]
        if field.column_name not in row:
            return
        key = field.clean(row)
        if key in (None, ""):
            return  # said by the model's own check: the key is required
        first = self.rows_by_key.setdefault(key, self.row_number)
        if first != self.row_number:
            raise ValidationError(
                {field.attribute: f"{key} is on row {first} already: a file gives each once."}
            )

    def import_field(
        self, field: Any, instance: Model, row: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        """A field whose key the row lacks keeps what is stored (a new
        object's default), as a column the file lacks does."""
        if isinstance(row.get(field.column_name), _Absent):
            return
        super().import_field(field, instance, row, *args, **kwargs)

    def skip_row(
        self, instance: Model, original: Model | None, row: Any, import_validation_errors: Any = None
    ) -> bool:
        """A row that would make a new object is never unchanged: the
        library skipped one whose values were all blank (``,`` under the
        header, ``{}``) before the model's check, where it is refused."""
        if instance.pk is None:
            return False
        # Compared as it would be stored: a file's text decomposed (a Mac's)
        # is the text the object holds composed, and the row unchanged.
        compose_text = getattr(instance, "compose_text", None)
        if compose_text is not None:
            compose_text()
        return bool(super().skip_row(instance, original, row, import_validation_errors))

    def get_diff_class(self) -> Any:
        # Rows past those a preview shows need no diff.
        if getattr(self, "row_number", 0) > PREVIEW_ROWS:
            return _Undiffed
        return super().get_diff_class()

    def validate_instance(
        self, instance: Model, import_validation_errors: Any = None, validate_unique: bool = True
    ) -> None:
        # The stored objects of the file's keys were read before its rows,
        # and the file's own repeats are refused above: no query a row.
        super().validate_instance(instance, import_validation_errors, validate_unique=False)

    def _auto_now_fields(self) -> list[str]:
        return [f.name for f in self._meta.model._meta.concrete_fields if getattr(f, "auto_now", False)]

    def get_bulk_update_fields(self) -> list[str]:
        fields: list[str] = super().get_bulk_update_fields()
        return [*fields, *(f for f in self._auto_now_fields() if f not in fields)]

    def before_save_instance(self, instance: Model, row: dict[str, Any], **kwargs: Any) -> None:
        """A batch update writes the fields as they are: ``auto_now`` ones
        (when the row changed) are set here, as ``save()`` would."""
        super().before_save_instance(instance, row, **kwargs)
        if instance.pk is not None:
            now = timezone.now()
            for name in self._auto_now_fields():
                setattr(instance, name, now)


class PreviewOf:
    """An import's result as its page shows it: the first ``PREVIEW_ROWS``
    rows, invalid rows and rows in error; totals and the rest as they are."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.invalid_rows = result.invalid_rows[:PREVIEW_ROWS]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)

    def valid_rows(self) -> list[Any]:
        return list(self.result.valid_rows()[:PREVIEW_ROWS])

    def row_errors(self) -> list[Any]:
        return list(self.result.row_errors()[:PREVIEW_ROWS])

    def invalid_count(self) -> int:
        return len(self.result.invalid_rows)

    def error_count(self) -> int:
        return len(self.result.row_errors())


class ImportPreviewMixin:
    """For a ModelAdmin with django-import-export's import (put before the
    library's mixin): the import page takes a file as large as other uploads
    (not the 1 MB of a form, some 9,000 rows of people), the preview of a
    large file lists its first rows and counts the others, and a file refused
    (one it cannot read, or a row of which is refused) answers 400."""

    import_template_name = "admin/import.html"
    model: Any

    def get_urls(self) -> list[Any]:
        urls: list[Any] = super().get_urls()  # type: ignore[misc]
        name = f"{self.model._meta.app_label}_{self.model._meta.model_name}_import"
        for url in urls:
            if getattr(url, "name", None) == name:
                accepts_files(url.callback)
        return urls

    def import_action(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """(A file the preview refuses, or that fails it, is deleted from the
        import files at once: only a preview that asks for the confirmation
        keeps its file for it.)"""
        kept = False
        try:
            response = self._import_preview(request, **kwargs)
            kept = response.status_code == 200 and bool(
                (getattr(response, "context_data", None) or {}).get("confirm_form")
            )
        finally:
            if not kept:
                self._discard_import_file(request)
        return response

    @method_decorator(require_POST)
    def process_import(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """A confirmation that does not fit a preview (a format or resource
        the import does not have, a field left out) imports nothing and gets
        the import page again (400) saying why; the preview's own
        confirmation is still taken. The library looked the format and the
        resource up as they came: an index past its lists was a 500, and a
        negative one counted from their end."""
        if not self.has_import_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        unfit = self._unfit_confirmation(request)
        if unfit:
            return self.import_page_again(
                request,
                f"This confirmation does not fit its preview ({unfit}): nothing was imported. "
                "Confirm the import from its preview, or upload the file again.",
            )
        response: HttpResponse = super().process_import(request, **kwargs)  # type: ignore[misc]
        return response

    def _unfit_confirmation(self, request: HttpRequest) -> str | None:
        """Why the confirmation's fields are not those of a preview, or None."""
        form = self.create_confirm_form(request)  # type: ignore[attr-defined]
        if not form.is_valid():
            return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        given = {
            "format": (form.cleaned_data["format"], len(self.get_import_formats())),  # type: ignore[attr-defined]
            # Left out, the library takes the first.
            "resource": (
                form.cleaned_data.get("resource") or "0",
                len(self.get_import_resource_classes(request)),  # type: ignore[attr-defined]
            ),
        }
        for name, (value, count) in given.items():
            if not (value.isascii() and value.isdigit() and int(value) < count):
                return f"{name} {value!r} is not one of the import's"
        return None

    def import_page_again(self, request: HttpRequest, message: str) -> HttpResponse:
        """The empty import page (400), saying ``message``."""
        self.message_user(request, message, messages.ERROR)  # type: ignore[attr-defined]
        # Without the fields of the request, the import page is the empty form.
        fresh = copy.copy(request)
        fresh.method, fresh.POST = "GET", QueryDict()
        response = self.import_action(fresh)
        response.status_code = 400
        return response

    def _discard_import_file(self, request: HttpRequest) -> None:
        upload = request.FILES.get("import_file")
        name = getattr(upload, "tmp_storage_name", None)
        if name:
            storage = self.get_tmp_storage_class()(name=name, **self.get_tmp_storage_class_kwargs())  # type: ignore[attr-defined]
            storage.remove()

    def _import_preview(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        sent = multipart.unusable_name(request.FILES.get("import_file"))
        if request.method == "POST" and sent is not None:
            return self.import_page_again(request, multipart.unusable_name_message(sent))
        response: HttpResponse = super().import_action(request, **kwargs)  # type: ignore[misc]
        context = getattr(response, "context_data", None) or {}
        form = context.get("form")
        if request.method == "POST" and form is not None and form.errors:
            response.status_code = 400  # a file the import cannot read, or none
            if "fields_list" in context and not context["fields_list"]:
                # The library names the columns only of a file it read: the
                # page of one refused said "will import the following fields:"
                # and none.
                context["fields_list"] = self._fields_list(request, form)
        result = context.get("result")
        if result is not None:
            context["result"] = PreviewOf(result)
            context["preview_rows"] = PREVIEW_ROWS
            if result.has_errors() or result.has_validation_errors():
                response.status_code = 400
        return response

    def _fields_list(self, request: HttpRequest, form: Any) -> list[tuple[str, list[str]]]:
        """Each resource's name and the columns it imports, as the import page lists them."""
        kwargs = self.get_import_resource_kwargs(request=request, form=form)  # type: ignore[attr-defined]
        resources = [cls(**kwargs) for cls in self.get_import_resource_classes(request)]  # type: ignore[attr-defined]
        return [
            (resource.get_display_name(), [field.column_name for field in resource.get_user_visible_fields()])
            for resource in resources
        ]
