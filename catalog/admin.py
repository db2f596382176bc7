from __future__ import annotations

import io
import json
import unicodedata
from typing import Any

import tablib
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from import_export import fields, resources, widgets
from import_export.admin import ExportActionMixin, ImportExportModelAdmin
from import_export.formats import base_formats

from catalog import formats, selectors, services
from catalog.forms import ReviewDateFormField
from catalog.models import Feedback, Person, Product, normal_username, username_taken, validate_phone
from core import admin_import, spreadsheets
from core.admin_actions import ValidSelectionMixin
from core.admin_counts import EstimatedCountMixin
from core.admin_dates import DateDrillDownMixin
from core.admin_delete import CountedDeleteMixin
from core.admin_export import ExportSelectionMixin, StreamedExportMixin
from core.admin_filters import KnownValuesFilter, TypedValuesFilter
from core.admin_import import ABSENT, BatchedModelResource, ImportPreviewMixin, dataset_of_rows
from core.admin_limits import DateHierarchyMixin, FilterLimitMixin, IndexOrderedMixin, SearchLimitMixin
from core.forms import ComposedCharField, ComposedTextForm
from core.imports import ImportExpired
from core.quoting import quoted
from core.validation import unstorable
from uploads.admin import thumbnail

# The code of the import form's error for a file of no people.
NO_PEOPLE = "no_people"
# Characters of a review's text its row in the list shows.
REVIEW_EXCERPT_LENGTH = 100


class PhoneWidget(widgets.Widget):
    """Phones by label in a spreadsheet cell: ``office: 802-867-5309; cell: ...``."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> dict[str, str]:
        try:
            return formats.parse_phone(value)
        except formats.FormatError as exc:
            raise ValueError(str(exc)) from exc

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        try:
            return formats.format_phone(formats.parse_phone(value))
        except formats.FormatError:
            # A shape saved before the admin checked it: exported as it is.
            return json.dumps(value)


def _column(dataset: Any, header: str) -> list[Any]:
    """The values of a dataset's column, none if it has no such column."""
    return list(dataset[header]) if header in (dataset.headers or ()) else []


class PersonResource(BatchedModelResource):
    phone = fields.Field(attribute="phone", column_name="phone", widget=PhoneWidget())

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        """The people kept with a username decomposed (NFD) that a username
        of the file, composed, reads as, read in a few queries: the rows
        are checked without asking the database about unique values, and
        the loader finds a person by the composed form alone."""
        super().before_import(dataset, **kwargs)
        usernames = {u for u in _column(dataset, "username") if isinstance(u, str) and not unstorable(u)}
        decomposed = list({unicodedata.normalize("NFD", u) for u in usernames} - usernames)
        self.kept_decomposed: dict[str, Person] = {}
        for start in range(0, len(decomposed), admin_import.KEYS_PER_QUERY):
            chunk = decomposed[start : start + admin_import.KEYS_PER_QUERY]
            for person in Person.objects.filter(username__in=chunk):
                self.kept_decomposed[person.username] = person

    def validate_instance(
        self, instance: Model, import_validation_errors: Any = None, validate_unique: bool = True
    ) -> None:
        """A new person whose username reads as one kept decomposed is
        refused naming them, as ``import_people`` and the API refuse it
        (``username_clash_check``)."""
        errors = dict(import_validation_errors or {})
        username = getattr(instance, "username", None)
        if instance.pk is None and isinstance(username, str) and "username" not in errors:
            other = self.kept_decomposed.get(unicodedata.normalize("NFD", username))
            if other is not None:
                errors["username"] = [username_taken(username, other)]
        super().validate_instance(instance, errors, validate_unique)

    class Meta:
        model = Person
        import_id_fields = ("username",)
        fields = ("name", "username", "phone", "department", "role", "email", "is_active")
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class FeedbackResource(resources.ModelResource):
    class Meta:
        model = Feedback
        fields = (
            "id",
            "title",
            "name",
            "date",
            "text",
            "rating",
            "product",
            "status",
            "source",
            "created_at",
        )
        export_order = fields


class PeopleTextFormat(base_formats.TextFormat):
    """A text format of the people import, whose file is read as
    ``import_people`` reads it (``formats.read_text``): UTF-8 with or without
    its BOM, or UTF-16 or UTF-32 with its BOM; CRLF, CR or LF; anything else refused
    saying why (the library took UTF-8 alone). Its bytes are handed over as
    they are, to be decoded here."""

    def is_binary(self) -> bool:
        return True

    def get_read_mode(self) -> str:
        return "rb"

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> Any:
        if isinstance(in_stream, bytes):
            in_stream = formats.read_text(in_stream)
        people = people_of(self.dataset_of(in_stream, **kwargs))
        if not len(people):
            raise NoPeople
        return people

    def dataset_of(self, text: str, **kwargs: Any) -> Any:
        return super().create_dataset(text, **kwargs)


class NoPeople(Exception):
    """A file that holds no people (a CSV header alone, ``[]``), which
    ``import_people`` imports as nobody, saying so."""


def people_of(dataset: Any) -> Any:
    """The dataset of the people a file's rows give, each read with
    ``formats.person_fields`` as ``import_people`` reads it: the same values
    (trimmed, is_active's words for yes and no) stored alike. A row the command
    refuses refuses the file, in its words."""
    if not len(dataset):
        return dataset  # the header alone: its columns are checked as they are
    # People without a key (``[{}]``) make a dataset without columns, whose
    # rows are no mappings: each is a person of no fields.
    rows = dataset.dict if dataset.headers else [{} for _ in range(len(dataset))]
    people = [
        formats.person_fields({key: value for key, value in row.items() if value is not ABSENT}, number)
        for number, row in enumerate(rows, start=1)
    ]
    for person in people:
        # Composed, as stored: the person is looked up by it.
        person["username"] = normal_username(person["username"])
    return dataset_of_rows(people)


class PeopleTableFormat(PeopleTextFormat):
    """CSV or TSV whose headers are read as ``import_people`` reads a CSV's:
    in any case, with spaces around them."""

    def dataset_of(self, text: str, **kwargs: Any) -> Any:
        delimiter = self.get_format().DEFAULT_DELIMITER
        # An empty file, or a header without name or username, refused as import_people refuses it.
        formats.check_table_header(text, delimiter)
        # Millions of lines took seconds and gigabytes to read before they were counted.
        if formats.table_rows_over(text, delimiter, admin_import.MAX_ROWS):
            raise formats.too_many_rows(admin_import.MAX_ROWS)
        # Read as tablib reads it (the first line the header, blank lines
        # skipped, a short row filled with blanks), but a cell past the
        # header's is left out, as import_people leaves it: tablib refused
        # the whole file for it ("'InvalidDimensions' encountered while
        # trying to read file"), a comma at the end of each row included.
        # A cell the export marked as text for a spreadsheet is read as it
        # was stored, as import_people reads it.
        dataset = tablib.Dataset()
        for number, (_, row) in enumerate(formats.table_records(io.StringIO(text), delimiter=delimiter)):
            if number == 0:
                dataset.headers = row
            elif row:
                width = len(dataset.headers or ())
                cells = [spreadsheets.read_text(cell) for cell in row]
                dataset.append((cells + [""] * width)[:width] if width else cells)
        dataset.headers = [formats.csv_header(header) for header in dataset.headers]
        return dataset


class PeopleCSV(PeopleTableFormat, base_formats.CSV):
    pass


class PeopleTSV(PeopleTableFormat, base_formats.TSV):
    pass


class PeopleDocumentFormat(PeopleTextFormat):
    """JSON or YAML read by ``import_people``'s reader: a list of people, a
    mapping whose ``people`` is that list, or one person; each person's keys
    in any order, a key one lacks leaving that field as it is. A file it
    refuses is refused in its words ("not valid JSON: ...")."""

    document: str

    def dataset_of(self, text: str, **kwargs: Any) -> Any:
        return dataset_of_rows(formats.document_rows(text, self.document, max_rows=admin_import.MAX_ROWS))


class PeopleJSON(PeopleDocumentFormat, base_formats.JSON):
    document = "json"


class PeopleYAML(PeopleDocumentFormat, base_formats.YAML):
    """An emoji escaped as JSON escapes it (``"\\ud83d\\ude00"``) is that
    character; a half alone is refused."""

    document = "yaml"


PHONE_SHAPE = "office: 802-867-5309; cell: 802-867-5310"


class PhoneFormField(forms.Field):
    """Numbers by label typed as the importers read them (labelled text, a
    bare number, or JSON), and shown back as labelled text."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            f"Numbers by label, e.g. “{PHONE_SHAPE}”; a bare number is the office one. "
            'JSON such as {"office": "802-867-5309"} is read too.',
        )
        kwargs.setdefault("widget", forms.TextInput(attrs={"class": "vTextField"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> str:
        if value is None or isinstance(value, str):  # nothing, or the text as it was typed
            return value or ""
        try:
            return formats.format_phone(formats.parse_phone(value))
        except formats.FormatError:
            # A shape saved before the admin checked it: shown as it is.
            return json.dumps(value)

    def to_python(self, value: Any) -> dict[str, str]:
        """In the shape every other path stores and the export and the API read."""
        try:
            phones = formats.parse_phone(value)
        except formats.FormatError as exc:
            raise forms.ValidationError(
                f"Enter phone numbers by label, e.g. “{PHONE_SHAPE}”: {exc}.", code="invalid"
            ) from exc
        validate_phone(phones)
        return phones


def _check_chosen_image(form: forms.ModelForm[Any], field: str) -> None:
    """A newly chosen image deleted since the form found it is an error on
    its field; else it is kept until the admin's transaction commits the
    save (``services.image_chosen_check``)."""
    image = form.cleaned_data.get(field)
    if image is not None and field in form.changed_data:
        try:
            services.image_chosen_check(image=image, field=field)
        except ValidationError as exc:
            form.add_error(None, exc)


class PersonForm(ComposedTextForm, forms.ModelForm[Person]):
    phone = PhoneFormField(required=False)

    class Meta:
        # The username is kept composed by the model's own check
        # (``normal_username``), not among its ``composed_fields``: composed
        # here too, before its length is counted.
        field_classes = {"username": ComposedCharField}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _check_chosen_image(self, "photo")
        return data


@admin.register(Person)
class PersonAdmin(
    FilterLimitMixin,
    SearchLimitMixin,
    ValidSelectionMixin,
    CountedDeleteMixin,
    ImportPreviewMixin,
    StreamedExportMixin,
    ImportExportModelAdmin,
):
    form = PersonForm
    resource_classes = [PersonResource]
    # The formats import_people reads, read as it reads them; an HTML table
    # is for export only.
    import_formats = [PeopleCSV, PeopleTSV, PeopleJSON, PeopleYAML]
    # Beside the navigation sidebar and the filters, a laptop's screen leaves
    # the list some 630px: no email column (the course's people have none);
    # the search finds a person by it, and their page shows it.
    list_display = [
        "photo_thumbnail",
        "name",
        "username",
        "department",
        "role",
        "is_active",
    ]
    list_display_links = ["photo_thumbnail", "name"]
    list_filter = [("department", TypedValuesFilter), ("role", TypedValuesFilter), "is_active", "is_demo"]
    search_fields = ["name", "username", "email"]
    list_select_related = ["photo"]
    raw_id_fields = ["photo"]
    readonly_fields = ["is_demo", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Person, form: Any, change: bool) -> None:
        """A change goes through ``services.person_update``, as the API's
        does, which makes a demo person real: ``seed_demo --remove`` keeps
        the person staff edited."""
        if change:
            services.person_update(person=obj)
        else:
            super().save_model(request, obj, form, change)

    def view_on_site(self, obj: Person) -> str | None:
        # An inactive person has no public page: no link to a 404.
        return obj.get_absolute_url() if obj.is_active else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Person]:
        return super().get_queryset(request).prefetch_related("photo__renditions")

    def has_export_permission(self, request: HttpRequest) -> bool:
        """An export hands over everyone's email and phones: it needs the view
        permission (django-import-export alone checks one configurable code)."""
        return self.has_view_permission(request)

    def has_import_permission(self, request: HttpRequest) -> bool:
        """An import creates people and overwrites existing ones."""
        return self.has_add_permission(request) and self.has_change_permission(request)

    def create_import_form(self, request: HttpRequest) -> Any:
        """An empty file is read, to be refused in the words of
        ``import_people`` ("the CSV file is empty"), not the form's."""
        form = super().create_import_form(request)
        form.fields["import_file"].allow_empty_file = True
        return form

    def add_data_read_fail_error_to_form(self, form: Any, e: Exception) -> None:
        """A file that is not text as ``import_people`` reads it: refused in
        the words of ``import_people`` (the library names only the exception)."""
        if isinstance(e, formats.FormatError):
            form.add_error("import_file", f"{form.cleaned_data['import_file'].name}: {e}")
        elif isinstance(e, NoPeople):
            # Ends the import here; import_action tells it as import_people does.
            form.add_error("import_file", ValidationError(NO_PEOPLE, code=NO_PEOPLE))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def import_action(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """A file of no people is no fault: the import page again, telling
        what ``import_people`` tells of it ("0 people created, ...")."""
        response = super().import_action(request, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error("import_file", code=NO_PEOPLE):
            del form.errors["import_file"]
            response.status_code = 200
            self.message_user(request, services.ImportSummary().line("people"), messages.INFO)
        return response

    def process_import(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """A confirmation whose file is gone (it waited too long, or was
        imported already) gets the import page again, saying so; so does one
        whose file its format does not read (a preview's CSV file confirmed
        as TSV)."""
        try:
            return super().process_import(request, **kwargs)
        except ImportExpired:
            return self.import_page_again(
                request,
                "This import expired or was already done; nothing was imported. Upload the file again.",
            )
        except (formats.FormatError, NoPeople) as exc:
            reason = str(exc) if isinstance(exc, formats.FormatError) else "no people in that format"
            return self.import_page_again(
                request,
                f"This confirmation does not fit its preview ({reason}): nothing was imported. "
                "Confirm the import from its preview, or upload the file again.",
            )

    @admin.display(description="Photo")
    def photo_thumbnail(self, person: Person) -> str:
        return thumbnail(person.photo, alt=person.name)


class WeightFormField(forms.IntegerField):
    """A weight read as every other path reads it (``formats.parse_weight``):
    ``500``, ``500 lbs``, the digits of any script; 1 to ``WEIGHT_MAX``.

    Typed in a text box, not a number box: a browser would refuse ``500 lbs``
    or fullwidth digits before the server reads them, and its spinner offers
    negative numbers. A stored weight shows as its digits alone."""

    widget = forms.TextInput(attrs={"inputmode": "numeric"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(min_value=1, max_value=formats.WEIGHT_MAX, localize=False)
        kwargs.setdefault(
            "help_text",
            f"Weight in lbs, a whole number from 1 to {formats.WEIGHT_MAX:,}: 500 or 500 lbs, "
            "in the digits of any script.",
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        try:
            return formats.parse_weight(value)
        except formats.FormatError as exc:
            raise forms.ValidationError(f"The {exc}.", code="invalid") from exc


class ProductForm(ComposedTextForm, forms.ModelForm[Product]):
    weight = WeightFormField()

    def clean(self) -> dict[str, Any]:
        """A product given the image file stem (else name) that another
        product already has is refused, added or changed: the form never
        overwrites that one nor pairs with it. The admin's transaction keeps
        the check's lock until the save."""
        data = super().clean() or {}
        if "name" in data and "image_name" in data:
            try:
                services.product_check_free(
                    name=data["name"],
                    image_name=data["image_name"],
                    product=None if self.instance.pk is None else self.instance,
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        _check_chosen_image(self, "image")
        return data


@admin.register(Product)
class ProductAdmin(
    EstimatedCountMixin,
    FilterLimitMixin,
    SearchLimitMixin,
    ValidSelectionMixin,
    CountedDeleteMixin,
    admin.ModelAdmin[Product],
):
    form = ProductForm
    list_display = ["image_thumbnail", "name", "weight", "image_name", "is_demo", "updated_at"]
    list_display_links = ["image_thumbnail", "name"]
    list_filter = ["is_demo"]
    search_fields = ["name", "description", "image_name"]
    list_select_related = ["image"]
    raw_id_fields = ["image"]
    readonly_fields = ["is_demo", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).prefetch_related("image__renditions")

    def view_on_site(self, obj: Product) -> str | None:
        # A demo product the catalog hides has no public page: no link to a 404.
        return obj.get_absolute_url() if selectors.product_shown(obj) else None

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        """Through the services, as every other path: an image left empty
        links by file stem. Neither adding nor changing touches another
        product (the form refused a taken file stem or name); a change makes
        a demo product real."""
        data = form.cleaned_data
        if change:
            image_given = "image" in form.changed_data
            product = services.product_update(
                product_id=obj.pk,
                name=data["name"],
                weight=data["weight"],
                description=data["description"],
                image_name=data["image_name"],
                image=data["image"] if image_given else services.UNSET,
            )
        else:
            product = services.product_create(
                name=data["name"],
                weight=data["weight"],
                description=data["description"],
                image_name=data["image_name"],
                image=data["image"],
            )
        # The admin's messages and redirect read the object it passed in.
        obj.pk = product.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        services.product_delete(product=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        services.product_delete_many(products=queryset)

    @admin.display(description="Image")
    def image_thumbnail(self, product: Product) -> str:
        return thumbnail(product.image, alt=product.name)

    def get_urls(self) -> list[Any]:
        return [
            path("report/", self.admin_site.admin_view(self.report_view), name="catalog_product_report"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "report_date": timezone.localdate().isoformat()}
        return super().changelist_view(request, extra_context)

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """The supplier report (PDF) of the products added or changed on a day."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        raw = request.GET.get("date") or timezone.localdate().isoformat()
        try:
            day = formats.parse_date(raw)
        except formats.FormatError:
            return HttpResponseBadRequest(
                f"date must be {formats.DATE_FORM}, got {quoted(raw)}", content_type="text/plain"
            )
        changed = selectors.products_with_images().filter(updated_at__date=day)
        pdf = services.report_build(
            products=changed.order_by("name"),
            date=day,
            more_url=request.build_absolute_uri(services.report_changed_on(day)),
        )
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="processed-{day.isoformat()}.pdf"'
        return response


class RatingFilter(KnownValuesFilter):
    """By rating, 1 to 5 or none: the values the model allows."""

    def known_values(self) -> list[Any]:
        return [*range(1, 6), None]


class ReviewDateListFilter(admin.DateFieldListFilter):
    """By date, its links' days (``?date__gte=2024-01-02``) read as the API's
    filters read a day: a day in another form (``20240102``, which Django's
    reading took) is refused as the admin refuses any filter it cannot apply."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        for values in self.used_parameters.values():
            for value in values if isinstance(values, list) else [values]:
                try:
                    formats.parse_date(str(value), exact=True)
                except formats.FormatError as exc:
                    raise IncorrectLookupParameters(exc) from exc
        return super().queryset(request, queryset)


class FeedbackAdminForm(ComposedTextForm, forms.ModelForm[Feedback]):
    """A review as the admin changes it, its text composed before its checks."""


@admin.register(Feedback)
class FeedbackAdmin(
    DateHierarchyMixin,
    IndexOrderedMixin,
    EstimatedCountMixin,
    DateDrillDownMixin,
    FilterLimitMixin,
    SearchLimitMixin,
    ValidSelectionMixin,
    CountedDeleteMixin,
    ExportSelectionMixin,
    ExportActionMixin,
    admin.ModelAdmin[Feedback],
):
    form = FeedbackAdminForm
    resource_classes = [FeedbackResource]
    list_display = ["review", "name", "date", "rating", "status", "source", "product"]
    list_filter = ["status", "source", ("rating", RatingFilter), ("date", ReviewDateListFilter), "is_demo"]
    search_fields = ["title", "name", "text"]
    date_hierarchy = "date"
    list_select_related = ["product"]
    raw_id_fields = ["product"]
    readonly_fields = ["source", "is_demo", "created_at", "updated_at"]
    actions = ["publish", "hide"]
    # The date read as on every other path, not in the locale's forms; the
    # calendar beside the box writes it as YYYY-MM-DD.
    formfield_overrides = {models.DateField: {"form_class": ReviewDateFormField}}

    @admin.display(description="Review", ordering="title")
    def review(self, review: Feedback) -> str:
        """The title, and under it the start of the text: enough to moderate
        from the list, in the column the title would take. A text runs to
        5,000 characters; its page shows it whole."""
        excerpt = Truncator(review.text).chars(REVIEW_EXCERPT_LENGTH)
        # Isolated, so that a right-to-left review reads in its own direction.
        return format_html('<bdi>{}</bdi><span class="review-excerpt" dir="auto">{}</span>', review, excerpt)

    def has_export_permission(self, request: HttpRequest) -> bool:
        """An export hands over every review, hidden ones included."""
        return self.has_view_permission(request)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Feedback], status: str) -> None:
        label = Feedback.Status(status).label
        changed = services.feedback_set_status(
            reviews=queryset,
            status=status,
            user_id=request.user.pk,
            change_message=f"{label} by bulk action",
        )
        self.message_user(request, f"{changed} review(s) {label.lower()}.", messages.SUCCESS)

    @admin.action(description="Publish selected reviews", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._set_status(request, queryset, Feedback.Status.PUBLISHED)

    @admin.action(description="Hide selected reviews", permissions=["change"])
    def hide(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._set_status(request, queryset, Feedback.Status.HIDDEN)
