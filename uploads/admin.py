from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core import multipart
from core.admin_actions import ValidSelectionMixin
from core.admin_counts import EstimatedCountMixin
from core.admin_delete import CountedDeleteMixin
from core.admin_filters import KnownValuesFilter
from core.admin_limits import FilterLimitMixin, IndexOrderedMixin, SearchLimitMixin
from core.errors import error_response
from core.forms import ComposedCharField, ComposedTextForm
from core.limits import accepts_files
from core.validation import validate_text
from uploads import ondemand, processing, selectors, services, storage
from uploads.api import original_response
from uploads.models import ATTENTION_ORDER, Image, Rendition, attention_order
from uploads.ondemand import is_on_demand


def thumbnail(image: Image | None, size: int = 64, *, alt: str = "") -> str:
    """A small preview from the prefetched renditions, or the image's state.

    ``alt`` names what the preview stands for where it is a row's link (a
    list's first column); elsewhere it repeats the text beside it."""
    if image is None:
        return "—"
    viewable = [
        r for r in image.renditions.all() if r.format in {"jpeg", "webp", "png"} and not is_on_demand(r.name)
    ]
    candidates = [r for r in viewable if r.name == "thumb"] or viewable
    if image.is_ready and candidates:
        smallest = min(candidates, key=lambda r: r.width)
        return format_html(
            '<img src="{}" width="{}" height="{}" alt="{}" style="object-fit: cover; border-radius: 4px">',
            smallest.url,
            size,
            size,
            alt,
        )
    return format_html(
        '<span class="image-status image-status-{}">{}</span>', image.status, image.get_status_display()
    )


# What the file picker offers. Browsers map ``image/*`` to the types the
# system knows, and many systems know no HEIC/AVIF type: the extensions are
# named too, or a phone's photos would be greyed out.
UPLOAD_ACCEPT = "image/*,.heic,.heif,.avif"
UPLOAD_FORMATS = "JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF or AVIF"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": UPLOAD_ACCEPT}))
        super().__init__(*args, **kwargs)

    def to_python(self, data: Any) -> Any:
        sent = multipart.unusable_name(data)
        if sent is not None:
            raise ValidationError(multipart.unusable_name_message(sent), code="unusable_name")
        return super().to_python(data)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple) and data:
            return [single(d, initial) for d in data]
        # No file at all: the single field's own "required" error.
        return [single(None if isinstance(data, list | tuple) else data, initial)]


class ImageUploadForm(forms.Form):
    files = MultipleFileField(  # type: ignore[assignment]
        label="Images", help_text=f"One or more files: {UPLOAD_FORMATS}."
    )
    preset = forms.ChoiceField(choices=[])
    # Refused on their fields, as the change form refuses them, not on each file.
    title = ComposedCharField(max_length=200, required=False, validators=[validate_text])
    alt = ComposedCharField(max_length=300, required=False, label="Alt text", validators=[validate_text])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sorted(services.presets())
        self.fields["preset"].choices = [(n, n) for n in names]  # type: ignore[attr-defined]
        self.fields["preset"].initial = "web"


FOCAL_FIELDS = ("focal_x", "focal_y", "focal_radius")


class ImageChangeForm(ComposedTextForm, forms.ModelForm[Image]):
    """Title, alt text and the focal point; the editor fills the point's
    fields when staff click on the picture."""

    class Meta:
        model = Image
        fields = ["title", "alt", *FOCAL_FIELDS]
        widgets = {
            name: forms.NumberInput(attrs={"step": "any", "min": "0", "max": "1", "class": "vFocalField"})
            for name in FOCAL_FIELDS
        }
        labels = {"focal_x": "Focal point x", "focal_y": "Focal point y", "focal_radius": "Focal radius"}
        help_texts = {
            "focal_x": "0 = left edge, 1 = right edge.",
            "focal_y": "0 = top edge, 1 = bottom edge.",
            "focal_radius": "Optional: how much around the point to keep, as a share of the shorter side.",
        }

    def clean(self) -> dict[str, Any]:
        """Each error on the field to fill in: a field in error is left out of
        the model's checks, whose constraint would repeat it by its name."""
        data = super().clean() or {}
        if any(name in self.errors for name in FOCAL_FIELDS):
            return data  # a value out of range: said on its field already
        x, y, radius = (data.get(name) for name in FOCAL_FIELDS)
        if (x is None) != (y is None):
            missing = "focal_x" if x is None else "focal_y"
            self.add_error(missing, "Give both coordinates of the focal point, or neither.")
        elif radius is not None and x is None:
            self.add_error("focal_radius", "A focal radius needs a focal point.")
        return data

    def focal_point(self) -> processing.FocalPoint | None:
        x, y, radius = (self.cleaned_data.get(name) for name in FOCAL_FIELDS)
        return None if x is None or y is None else processing.FocalPoint(x, y, radius)


# Images one "Reprocess selected" queues, each saved and sent to the queue in
# turn (15,000 took 76 s, past the web server's time limit for a request);
# reprocess_images takes any number.
REPROCESS_MAX = 1000


class StatusFilter(admin.SimpleListFilter):
    """Status, failed first: the ones that need a look."""

    title = "status"
    parameter_name = "status"
    ORDER = tuple(Image.Status(s) for s in ATTENTION_ORDER)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in self.ORDER]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> QuerySet[Image]:
        return queryset.filter(status=self.value()) if self.value() else queryset


class PresetFilter(KnownValuesFilter):
    """By preset: those the settings name."""

    def known_values(self) -> list[Any]:
        return sorted(services.presets())


class FormatFilter(KnownValuesFilter):
    """By the original's format: those an upload is accepted in."""

    def known_values(self) -> list[Any]:
        return sorted(processing.ALLOWED_FORMATS)


class RenditionInline(admin.TabularInline[Rendition, Image]):
    model = Rendition
    extra = 0
    can_delete = False
    fields = ("name", "format", "width", "height", "bytes", "link")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="File")
    def link(self, rendition: Rendition) -> str:
        return format_html(
            '<a href="{}" title="{}">{}…{}</a>',
            rendition.url,
            rendition.storage_key,
            rendition.storage_key[:22],
            rendition.storage_key[-10:],
        )


def _crop_rows(image: Image) -> set[int]:
    """The ids of ``image``'s cropped renditions: a recrop replaces them."""
    preset = services.presets().get(image.preset)
    names = preset.crop_names if preset else ()
    return set(image.renditions.filter(name__in=names).values_list("pk", flat=True)) if names else set()


def _warn_if_crops_outdated(
    request: HttpRequest, image_id: int, *, recrop_owed: bool, crops_before: set[int]
) -> None:
    """Tell staff when the point they saved is not what the crops are cut
    around: the store was away (saved all the same, cut by the sweep), or
    the recrop was given up, the old crops kept (nothing cuts them until the
    image is reprocessed): its preset is no longer configured, its original
    is missing from the store, or decoding it again was refused."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return
    not_cut = "The focal point was saved, but the cropped renditions were not cut again"
    if image.crops_outdated:
        messages.warning(
            request,
            "The focal point was saved, but the cropped renditions could not be cut again now (the "
            "image store is unavailable); they are cut around it shortly.",
        )
    elif recrop_owed and image.preset not in settings.IMAGE_PRESETS:
        messages.warning(
            request,
            f"{not_cut}: the image's preset {image.preset!r} is no longer configured; reprocess the "
            "image with a preset to remake its crops.",
        )
    elif recrop_owed and crops_before and crops_before <= _crop_rows(image):
        if _original_lost(image):
            why = "its original is missing from the image store; upload the image again"
        else:
            why = "the image could not be decoded again (the log says why); reprocess it"
        messages.warning(request, f"{not_cut}: {why} to remake its crops.")


def _original_lost(image: Image) -> bool:
    try:
        return not image.file.name or not image.file.storage.exists(image.file.name)
    except storage.UNAVAILABLE:  # away now: what was lost is not known
        return False


def _editor_rendition(image: Image, cropped: tuple[str, ...]) -> Rendition | None:
    """A whole (uncropped) rendition of a useful size to click on, from the
    prefetched renditions."""
    if not image.is_ready:
        return None
    viewable = {"jpeg", "webp", "png"}
    whole = [
        r
        for r in image.renditions.all()
        if r.format in viewable and r.name not in cropped and not is_on_demand(r.name)
    ]
    if not whole:
        return None
    fitting = [r for r in whole if r.width <= 1024]
    return max(fitting, key=lambda r: r.width) if fitting else min(whole, key=lambda r: r.width)


@admin.register(Image)
class ImageAdmin(
    IndexOrderedMixin,
    EstimatedCountMixin,
    FilterLimitMixin,
    SearchLimitMixin,
    ValidSelectionMixin,
    CountedDeleteMixin,
    admin.ModelAdmin[Image],
):
    # No preset: it is a filter, and on the image's page; the width goes to the name.
    list_display = [
        "preview",
        "__str__",
        "status",
        "dimensions",
        "size",
        "created_at",
    ]
    list_display_links = ["preview", "__str__"]
    list_filter = [StatusFilter, ("preset", PresetFilter), ("format", FormatFilter)]
    search_fields = ["title", "alt", "original_name", "sha256"]
    actions = ["reprocess"]
    # Each image takes its original's and its renditions' files with it, some
    # 40 queries and a quarter of a second apiece: a few hundred would outlast
    # the web server's time limit for a request.
    delete_selected_max = 100
    delete_selected_limit = (
        "Images are deleted at most {max:,} at a time here (each takes its original and its renditions' "
        "files with it): select fewer, or filter the list."
    )
    inlines = [RenditionInline]
    form = ImageChangeForm
    fields = (
        "preview_large", "title", "alt", "focal_point_editor", *FOCAL_FIELDS, "preset", "status",
        "error", "rendition_url", "original_name", "original", "sha256", "format", "width", "height",
        "frames", "bytes",
        "placeholder", "dominant_color", "processing_ms", "attempts", "uploaded_by", "created_at",
        "processed_at",
    )  # fmt: skip
    readonly_fields = tuple(f for f in fields if f not in {"title", "alt", *FOCAL_FIELDS})

    class Media:
        # The focal point editor: a static script and style sheet (no inline
        # script: the site's CSP allows scripts from the site only).
        css = {"all": ["uploads/admin/focal-point.css", "uploads/admin/rendition-url.css"]}
        js = ["uploads/admin/focal-point.js", "uploads/admin/rendition-url.js"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        return selectors.images_with_renditions()

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        """Failed first, then newest first within a status. The change list
        orders by this, whatever order the queryset came in."""
        return [attention_order().asc(), "-created_at", "-id"]

    def save_model(self, request: HttpRequest, obj: Image, form: Any, change: bool) -> None:
        """Title and alt text are written alone, so a concurrent processing run
        keeps what it wrote; the focal point goes through its service, which
        re-cuts the crops once the change commits."""
        changed = set(form.changed_data)
        if not change:
            super().save_model(request, obj, form, change)
            return
        text = [name for name in ("title", "alt") if name in changed]
        if text:
            obj.save(update_fields=[*text, "updated_at"])
        # Saved again unchanged, a point whose crops the store refused last
        # time has them cut now.
        if changed & set(FOCAL_FIELDS) or obj.crops_outdated:
            crops = _crop_rows(obj)
            saved = services.image_set_focal_point(image=obj, focal_point=form.focal_point())
            # Whether the service asked for the crops to be cut once the change commits.
            owed = saved.crops_outdated
            # After the service's own recrop, which runs first once the change commits.
            transaction.on_commit(
                lambda: _warn_if_crops_outdated(request, obj.pk, recrop_owed=owed, crops_before=crops)
            )

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        services.image_delete(image=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        # Through the service, one by one in one order: two bulk deletions never wait on each other.
        for image in queryset.order_by("pk"):
            services.image_delete(image=image)

    @admin.display(description="Focal point")
    def focal_point_editor(self, image: Image) -> str:
        """The picture to click on, the point in force and the square crop it gives."""
        preset = services.presets().get(image.preset)
        shown = _editor_rendition(image, preset.crop_names if preset else ())
        if shown is None:
            return "Shown once the image is processed."
        auto = image.focal_point_auto
        return format_html(
            '<div class="focal-editor" data-focal-editor data-rotate="{}" data-auto-x="{}" data-auto-y="{}">'
            '<div class="focal-editor-frame">'
            '<img class="focal-editor-image" src="{}" width="{}" height="{}" alt="Click the subject">'
            '<span class="focal-editor-marker" hidden></span>'
            "</div>"
            '<figure class="focal-editor-preview"><div class="focal-editor-window">'
            '<img class="focal-editor-crop" src="{}" alt="">'
            "</div><figcaption>Square crop</figcaption></figure>"
            '<p class="help">Click the subject to set the focal point; cropped renditions are cut '
            'again around it when you save. <span class="focal-editor-state"></span> '
            '<button type="button" class="button focal-editor-clear">Use the automatic point</button></p>'
            "</div>",
            preset.rotate % 360 if preset else 0,
            "" if auto is None else f"{auto.x:.4f}",
            "" if auto is None else f"{auto.y:.4f}",
            shown.url,
            shown.width,
            shown.height,
            shown.url,
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # New images come through the upload view, which checks them.
        if not request.user.has_perm("uploads.add_image"):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("admin:uploads_image_upload"))

    def get_urls(self) -> list[Any]:
        upload = accepts_files(
            self.admin_site.admin_view(self.upload_view), max_files=settings.DATA_UPLOAD_MAX_NUMBER_FILES
        )
        return [
            path("upload/", upload, name="uploads_image_upload"),
            path(
                "<int:object_id>/original/",
                self.admin_site.admin_view(self.original_view),
                name="uploads_image_original",
            ),
            *super().get_urls(),
        ]

    def original_view(self, request: HttpRequest, object_id: int) -> HttpResponseBase:
        """Download the untouched upload (view or change permission on
        images: ``core.api.may_view`` asks the same in the API)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        image = get_object_or_404(Image, pk=object_id)
        try:
            return original_response(image)
        except Http404 as exc:
            # Its file lost: said in words, as in the API (the generic page
            # says there is nothing at this address, which there is).
            return error_response(request, 404, "Original missing", str(exc))

    @admin.display(description="Rendition URL")
    def rendition_url(self, image: Image) -> str:
        """Signed URLs of renditions on demand: those made so far, and a
        generator for any other size (static script; asks the API)."""
        if not image.pk:
            return "—"
        made = ondemand.made(image)
        links = format_html_join(
            "",
            '<li><a href="{}">{} {}</a> ({}×{})</li>',
            (
                (ondemand.url_path(image.pk, r.name, r.format), r.name, r.format, r.width, r.height)
                for r in made
            ),
        )
        formats = format_html_join("", '<option value="{}">{}</option>', ((f, f) for f in ondemand.formats()))
        return format_html(
            '<div class="rendition-url" data-rendition-url data-api="{}">'
            '<div class="rendition-url-form">'
            '<select class="rendition-url-op" aria-label="Operation">'
            '<option value="fill">fill (crop around the focal point)</option>'
            '<option value="width">width</option><option value="max">max (fit inside)</option></select> '
            '<input type="number" class="rendition-url-width" value="480" min="1" max="{}" aria-label="Width"> '
            '<span class="rendition-url-by">×</span> '
            '<input type="number" class="rendition-url-height" value="320" min="1" max="{}" aria-label="Height"> '
            '<select class="rendition-url-format" aria-label="Format">{}</select> '
            '<button type="button" class="button rendition-url-get">Get URL</button></div>'
            '<p class="rendition-url-result" aria-live="polite" hidden>'
            '<input type="text" class="vTextField rendition-url-value" readonly aria-label="Signed URL"> '
            '<a class="rendition-url-open" href="#" target="_blank" rel="noopener">Open</a> '
            '<span class="rendition-url-size"></span></p>'
            '<p class="errornote rendition-url-error" hidden></p>'
            '<p class="help">Up to {} px a side; at most {} sizes and formats per image, {} made so far. '
            "Each is made on its first request, then served like the others.</p>"
            "{}</div>",
            reverse("image-rendition-url", args=[image.pk]),
            ondemand.max_size(),
            ondemand.max_size(),
            formats,
            ondemand.max_size(),
            ondemand.max_per_image(),
            len(made),
            format_html('<ul class="rendition-url-made">{}</ul>', links) if made else "",
        )

    @admin.display(description="Original")
    def original(self, image: Image) -> str:
        if not image.pk:
            return "—"
        return format_html(
            '<a href="{}">Download {}</a> ({})',
            reverse("admin:uploads_image_original", args=[image.pk]),
            image.original_name or "the original",
            filesizeformat(image.bytes),
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_upload": request.user.has_perm("uploads.add_image")}
        return super().changelist_view(request, extra_context)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("uploads.add_image"):
            raise PermissionDenied
        can_view = self.has_view_or_change_permission(request)
        # Bound on any POST, an empty one too: its refusal says what it lacks.
        posted = request.method == "POST"
        form = ImageUploadForm(request.POST, request.FILES) if posted else ImageUploadForm()
        status = 200
        if request.method == "POST" and form.is_valid():
            done, refused = 0, []
            for upload in form.cleaned_data["files"]:
                try:
                    services.image_upload(
                        file=upload,
                        original_name=upload.name,
                        preset=form.cleaned_data["preset"],
                        title=form.cleaned_data["title"],
                        alt=form.cleaned_data["alt"],
                        user=request.user,
                    )
                    done += 1
                except (services.ImageInvalid, services.ImageTooLarge, ValidationError) as exc:
                    refused.append(f"{upload.name}: {exc}")
                except services.StorageUnavailable as exc:
                    refused.append(f"{upload.name}: {exc}")
                    status = 503
            if done:
                self.message_user(
                    request, f"{done} image(s) uploaded; processing has started.", messages.SUCCESS
                )
            for line in refused:
                self.message_user(request, f"Refused {line}", messages.ERROR)
            if not refused:
                # As the admin does after an add: the list only for those who may see it.
                done_url = "admin:uploads_image_changelist" if can_view else "admin:index"
                return HttpResponseRedirect(reverse(done_url))
            status = max(status, 400)
        elif request.method == "POST":
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Upload images",
            "has_view_permission": can_view,
        }
        return render(request, "admin/uploads/image/upload.html", context, status=status)

    @admin.action(description="Reprocess selected images", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Image]) -> HttpResponse | None:
        total = queryset.count()
        if total > REPROCESS_MAX:
            self.message_user(
                request,
                f"Images are reprocessed at most {REPROCESS_MAX:,} at a time here; this selection has "
                f"{total:,}. manage.py reprocess_images takes any number (--status failed, for instance).",
                messages.ERROR,
            )
            # The list again, as it was, saying so.
            again = copy.copy(request)
            again.method, again.POST = "GET", QueryDict()
            response = self.changelist_view(again)
            response.status_code = 400
            return response
        # Without the list's prefetched renditions: reprocessing reads none.
        count = services.image_reprocess(
            images=list(queryset.prefetch_related(None)),
            user_id=request.user.pk,
            change_message="Reprocessed by bulk action",
        )
        self.message_user(request, f"{count} image(s) queued for processing.", messages.SUCCESS)
        return None

    @admin.display(description="Preview")
    def preview(self, image: Image) -> str:
        return thumbnail(image, alt=str(image))

    @admin.display(description="Preview")
    def preview_large(self, image: Image) -> str:
        return thumbnail(image, size=192)

    @admin.display(description="Bytes", ordering="bytes")
    def size(self, image: Image) -> str:
        return filesizeformat(image.bytes)

    @admin.display(description="Size")
    def dimensions(self, image: Image) -> str:
        return f"{image.width}×{image.height}"
