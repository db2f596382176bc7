"""Renditions on demand, at signed URLs.

``/img/<signature>/<id>/<spec>/<format>/`` names one rendition of one image:
``fill-480x320`` (exactly that size, cropped around the focal point),
``width-640`` (that width, height to scale) or ``max-800x600`` (the whole
picture within that box), in one of the on-demand formats. The signature is an
HMAC, keyed from SECRET_KEY, over the id, the spec and the format: only the
portal (a page, the API, the admin) hands such URLs out, so nobody can ask for
sizes of their own choosing.

The first request makes the rendition (once, however many ask at the same
time), stores it under a content-addressed key like every other rendition and
records it as a Rendition row named after the spec; later requests are
redirected to it without any processing. What one image may cost is bounded
by the limits in settings (largest side, formats, renditions per image); see
docs/deploy.md, "Renditions on demand: the cost model".
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from core.quoting import quoted
from uploads import processing, sandbox, services, storage
from uploads.models import Image, Rendition

logger = logging.getLogger(__name__)

OPERATIONS: Final = ("fill", "width", "max")
_SPEC = re.compile(
    r"^(?P<op>fill|max)-(?P<w>[1-9][0-9]{0,5})x(?P<h>[1-9][0-9]{0,5})$|^width-(?P<width>[1-9][0-9]{0,5})$"
)
# Preset renditions are named w320, thumb, fit, icon: never with a dash.
_PREFIXES: Final = tuple(f"{op}-" for op in OPERATIONS)
_SALT: Final = "uploads.ondemand"
_POLL_MAX_SECONDS: Final = 0.5
# How long a rendition that could not be made is remembered as such (the
# image reprocessed starts afresh): requests meanwhile are refused at once.
_UNMAKEABLE_SECONDS: Final = 3600


def _pause(seconds: float) -> None:
    """Wait between looks at the database (another request is at work)."""
    time.sleep(seconds)


class SpecInvalid(ValueError):
    """The spec or format is malformed or outside the limits; says which limit."""


class OverLimit(Exception):
    """The image has as many on-demand renditions as it may have."""

    def __init__(self, image_id: int, limit: int) -> None:
        super().__init__(
            f"Image {image_id} already has {limit} renditions made on demand, the most one image may have "
            f"(IMAGE_ONDEMAND_MAX_PER_IMAGE); ask for one of those sizes instead."
        )
        self.limit = limit


class NotReady(Exception):
    """The image is pending or processing: nothing can be cut from it yet."""


class Gone(Exception):
    """The image does not exist, or failed to process."""


class Unmakeable(Exception):
    """This image cannot give this rendition (its decoder or an encoder
    refused it): asking again would fail the same way."""


class Busy(Exception):
    """Another request is making this rendition and has not finished in time,
    or the rendition could not be made now (time or memory limit)."""


@dataclass(frozen=True)
class Spec:
    op: str
    width: int
    height: int = 0  # none for width-W

    @property
    def name(self) -> str:
        """The canonical text, also the Rendition's name: ``fill-480x320``."""
        if self.op == "width":
            return f"width-{self.width}"
        return f"{self.op}-{self.width}x{self.height}"

    def __str__(self) -> str:
        return self.name

    def scaled(self, factor: int) -> Spec:
        """The same spec for a screen of ``factor`` device pixels per CSS pixel."""
        return Spec(self.op, self.width * factor, self.height * factor)

    def size(self, display: tuple[int, int]) -> tuple[int, int]:
        """The rendition's size for an image of ``display`` size: what
        processing will make, known beforehand so pages can reserve its box.
        Never larger than the source: a fill that does not fit keeps its
        aspect ratio at the largest size that does."""
        dw, dh = display
        if self.op == "width":
            if self.width >= dw:
                return dw, dh
            return self.width, max(1, round(dh * self.width / dw))
        if self.op == "max":
            scale = min(self.width / dw, self.height / dh, 1.0)
            return max(1, round(dw * scale)), max(1, round(dh * scale))
        if self.width <= dw and self.height <= dh:
            return self.width, self.height
        factor = min(dw / self.width, dh / self.height)
        return max(1, round(self.width * factor)), max(1, round(self.height * factor))


def max_size() -> int:
    return int(settings.IMAGE_ONDEMAND_MAX_SIZE)


def formats() -> tuple[str, ...]:
    return tuple(f.lower() for f in settings.IMAGE_ONDEMAND_FORMATS)


def max_per_image() -> int:
    return int(settings.IMAGE_ONDEMAND_MAX_PER_IMAGE)


def limits_text() -> str:
    return (
        f"sizes up to {max_size()} px on each side, formats {', '.join(formats())}, "
        f"at most {max_per_image()} on-demand renditions per image"
    )


def parse_spec(text: str) -> Spec:
    """``fill-480x320``, ``width-640`` or ``max-800x600`` within the size limit.

    Raises SpecInvalid saying what is wrong and what is allowed.
    """
    match = _SPEC.match(text)
    if match is None:
        raise SpecInvalid(
            f"Unknown size {quoted(text)}: use fill-WxH (cropped around the focal point), width-W or "
            f"max-WxH (fitted inside), with whole numbers of pixels and no leading zeros."
        )
    if match["width"]:
        spec = Spec("width", int(match["width"]))
    else:
        spec = Spec(match["op"], int(match["w"]), int(match["h"]))
    largest = max(spec.width, spec.height)
    if largest > max_size():
        raise SpecInvalid(
            f"{spec.name} asks for {largest} px; the largest size made on demand is {max_size()} px."
        )
    return spec


def check_size(spec: Spec, display: tuple[int, int]) -> tuple[int, int]:
    """The size ``spec`` gives an image of ``display`` size, within the
    largest-side limit (a width-W of a tall image can pass it in height).

    Raises SpecInvalid naming the size and the limit.
    """
    size = spec.size(display)
    if max(size) > max_size():
        raise SpecInvalid(
            f"{spec.name} of this {display[0]}x{display[1]} image would be {size[0]}x{size[1]} px; the "
            f"largest side made on demand is {max_size()} px (ask for max-{spec.width}x{max_size()} instead)."
        )
    return size


def parse_format(text: str) -> str:
    fmt = text.lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in formats():
        raise SpecInvalid(
            f"Unknown format {quoted(text)}: renditions on demand are made as {', '.join(formats())}."
        )
    return fmt


def is_on_demand(name: str) -> bool:
    """Whether a rendition's name is an on-demand spec (not a preset's)."""
    return name.startswith(_PREFIXES)


def on_demand_names() -> Q:
    """The filter of on-demand rendition rows."""
    query = Q()
    for prefix in _PREFIXES:
        query |= Q(name__startswith=prefix)
    return query


# --------------------------------------------------------------------------
# Signing


def _signer() -> signing.Signer:
    # Keyed from SECRET_KEY (and SECRET_KEY_FALLBACKS while a key is rotated
    # out), salted so no other signature of the portal is valid here.
    return signing.Signer(salt=_SALT)


def _message(image_id: int | str, spec: str, fmt: str) -> str:
    return f"{image_id}/{spec}/{fmt}"


def signature(image_id: int, spec: Spec | str, fmt: str) -> str:
    return _signer().sign(_message(image_id, str(spec), fmt)).rsplit(":", 1)[1]


def signature_valid(sig: str, image_id: str, spec: str, fmt: str) -> bool:
    """Checked on the URL's text as it came, before anything is parsed."""
    try:
        _signer().unsign(f"{_message(image_id, spec, fmt)}:{sig}")
    except signing.BadSignature:
        return False
    return True


def url_path(image_id: int, spec: Spec | str, fmt: str) -> str:
    """The signed path of a rendition (no host): what pages put in ``src``."""
    name = str(spec)
    return reverse(
        "image-rendition",
        kwargs={
            "signature": signature(image_id, name, fmt),
            "image_id": str(image_id),
            "spec": name,
            "fmt": fmt,
        },
    )


# --------------------------------------------------------------------------
# Making, once


def _preset_for(image: Image, spec: Spec, fmt: str) -> processing.Preset:
    """A one-output preset cutting ``spec`` from the displayed image (no
    rotation of the image's own preset), at the image's preset's qualities."""
    try:
        base = services.preset_get(image.preset)
    except ValidationError:  # a preset removed from settings since: the default qualities
        base = processing.Preset("base", widths=(1,))
    shape: dict[str, Any] = {"widths": (), "thumbnail": None, "fit": None, "size": None, "crop": False}
    if spec.op == "width":
        shape["widths"] = (spec.width,)
    elif spec.op == "max":
        shape["fit"] = (spec.width, spec.height)
    else:
        shape.update(size=spec.size((image.width, image.height)), crop=True)
    return dataclasses.replace(base, name=f"on-demand {spec.name}", formats=(fmt,), rotate=0, **shape)


def _render(image: Image, spec: Spec, fmt: str) -> processing.Output:
    """Decode the original (under the memory ceiling and a time limit, never
    in the web process itself) and encode the one rendition.

    Raises Gone when the original is missing from the store (restored from
    an older backup, deleted by hand): asking again will not bring it back,
    unlike a store that is briefly away (503)."""
    try:
        with image.file.open("rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        now = Image.objects.filter(pk=image.pk).values_list("file", flat=True).first()
        if now is None:
            raise Gone(f"Image {image.pk} no longer exists.") from exc
        if now != image.file.name:
            # Its original moved to another key meanwhile (services._image_rekey),
            # the old one deleted once that committed: there now.
            raise NotReady(f"The original of image {image.pk} moved meanwhile.") from exc
        logger.error("image id=%s: its original %s is missing from the store", image.pk, image.file.name)
        raise Gone(
            f"The original of image {image.pk} is missing from the image store; no renditions are made "
            f"from it until it is uploaded again."
        ) from exc
    result = sandbox.process(
        data,
        _preset_for(image, spec, fmt),
        max_pixels=settings.IMAGE_MAX_PIXELS,
        memory_limit_mb=settings.IMAGE_MEMORY_LIMIT_MB,
        time_limit=settings.IMAGE_ONDEMAND_TIME_LIMIT_SECONDS,
        focal_point=_cut_around(image),
    )
    [output] = result.outputs
    return output


def _cut_around(image: Image) -> processing.FocalPoint | None:
    return image.focal_point_in_force


def _count(image: Image) -> int:
    return Rendition.objects.filter(on_demand_names(), image=image).count()


def _find(image_id: int, spec: Spec, fmt: str) -> Rendition | None:
    """The rendition, while its image is ready. One queued or being processed
    again has those of the run before (cut from an original since replaced,
    perhaps), which this run's end deletes; one that failed keeps them for a
    reprocess. Neither shows them (see listed)."""
    renditions = Rendition.objects.filter(image_id=image_id, name=spec.name, format=fmt)
    return renditions.filter(image__status=Image.Status.READY).first()


def listed(status: str, name: str) -> bool:
    """Whether a rendition of an image in this status is served, and so
    listed: none of a failed image, none made on demand of an image being
    processed (again), as _find finds them."""
    if status == Image.Status.FAILED:
        return False
    return status == Image.Status.READY or not is_on_demand(name)


def made(image: Image) -> list[Rendition]:
    """The image's renditions on demand that are served, of its renditions
    (prefetched or not)."""
    return [r for r in image.renditions.all() if is_on_demand(r.name) and listed(image.status, r.name)]


@transaction.atomic
def _record(
    *,
    image_id: int,
    spec: Spec,
    fmt: str,
    output: processing.Output,
    key: str,
    cut_around: processing.FocalPoint | None,
    processed_at: datetime.datetime | None,
) -> Rendition:
    """The row of a rendition just stored, cut from the image as processed at
    ``processed_at``; the one already there if another request recorded it
    first. The image row is locked, so the count of its on-demand renditions
    cannot be passed by requests for different sizes."""
    image = Image.objects.select_for_update().filter(pk=image_id).first()
    if image is None:
        raise Gone(f"Image {image_id} no longer exists.")
    if image.status != Image.Status.READY:
        raise NotReady(f"Image {image_id} is being processed again.")
    if image.processed_at != processed_at:
        # A run that ended meanwhile deleted the renditions of the image as
        # this was cut from it (its original may have been replaced).
        raise NotReady(f"Image {image_id} was processed again while this was cut; it is cut anew next time.")
    if spec.op == "fill" and _cut_around(image) != cut_around:
        # Staff moved the focal point while this was cut around the old one.
        raise NotReady(f"The focal point of image {image_id} moved; it is cut again on the next request.")
    existing = _find(image_id, spec, fmt)
    if existing is not None:
        return existing
    if _count(image) >= max_per_image():
        raise OverLimit(image_id, max_per_image())
    try:
        with transaction.atomic():
            return Rendition.objects.create(
                image=image,
                name=spec.name,
                format=fmt,
                width=output.width,
                height=output.height,
                bytes=len(output.data),
                storage_key=key,
            )
    except IntegrityError:
        # Recorded meanwhile by a request that did not see the lock (a
        # database that ignores SELECT ... FOR UPDATE): the unique constraint
        # on (image, name, format) keeps one row.
        existing = _find(image_id, spec, fmt)
        if existing is None:
            raise
        return existing


@dataclass(frozen=True)
class Made:
    """A rendition on demand: its row, and its bytes when this request made it."""

    rendition: Rendition
    data: bytes | None = None


def _check_image(image_id: int) -> Image:
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        raise Gone(f"There is no image {image_id}.")
    if image.status == Image.Status.FAILED:
        raise Gone(
            f"Image {image_id} failed to process; no renditions are made from it until it is reprocessed."
        )
    if image.status != Image.Status.READY:
        raise NotReady(f"Image {image_id} is still being processed.")
    return image


def _wait_ready(image_id: int) -> Image:
    """The image once ready, waiting up to IMAGE_ONDEMAND_WAIT_SECONDS for
    one still being processed (an upload a moment old)."""
    deadline = time.monotonic() + settings.IMAGE_ONDEMAND_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            return _check_image(image_id)
        except NotReady:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            _pause(min(delay, left))
            delay = min(delay * 2, _POLL_MAX_SECONDS)


def rendition_get_or_make(*, image_id: int, spec: Spec, fmt: str) -> Made:
    """The rendition, made now if it does not exist yet.

    Concurrent first requests make it once: one of them claims the making (a
    cache entry, shared by every web process when CACHE_URL is set), the
    others wait for its row (Busy if it gives up without one); the unique
    constraint keeps one row whatever happens. Raises Gone (404), NotReady (202), OverLimit (403), SpecInvalid
    (403: outside the limits for this image), Unmakeable (422) or Busy (503).
    """
    existing = _find(image_id, spec, fmt)
    if existing is not None:
        return Made(existing)
    image = _wait_ready(image_id)
    check_size(spec, (image.width, image.height))
    _refuse_if_unmakeable(image, spec, fmt)
    # Held past the time limit by the margin, to store and record it: the
    # settings refuse a sum of the waits that the web server's timeout cuts.
    held = settings.IMAGE_ONDEMAND_TIME_LIMIT_SECONDS + settings.IMAGE_ONDEMAND_CLAIM_MARGIN_SECONDS
    claim_key = f"ondemand:{image_id}:{spec.name}:{fmt}"
    claim = uuid.uuid4().hex
    deadline = time.monotonic() + held
    delay = 0.05
    waited = False
    while not cache.add(claim_key, claim, timeout=held):
        if cache.get(claim_key) is None:
            # No claim to wait for: it lapsed just now, or the cache is away
            # (and its add says no). Made here; the unique constraint keeps one row.
            break
        # Someone else is making it: wait for their row (or their claim to lapse).
        waited = True
        _pause(delay)
        delay = min(delay * 2, _POLL_MAX_SECONDS)
        existing = _find(image_id, spec, fmt)
        if existing is not None:
            return Made(existing)
        if time.monotonic() > deadline:
            raise Busy(f"{spec.name}.{fmt} of image {image_id} is still being made; try again shortly.")
    try:
        existing = _find(image_id, spec, fmt)
        if existing is not None:
            return Made(existing)
        # The request whose claim this waited for may have found that the
        # image cannot give it: every request that waited would otherwise
        # decode the original again in turn.
        _refuse_if_unmakeable(image, spec, fmt)
        if _count(image) >= max_per_image():
            raise OverLimit(image_id, max_per_image())
        if waited:
            # The request waited for gave up (out of time or memory, a store
            # away) or was cut off: made now, on top of the wait, this one
            # would hold its web worker past the server's timeout. The next
            # request makes it.
            raise Busy(
                f"{spec.name}.{fmt} of image {image_id} could not be made just now; try again shortly."
            )
        return _make(image, spec, fmt)
    finally:
        if cache.get(claim_key) == claim:
            cache.delete(claim_key)


def _refuse_if_unmakeable(image: Image, spec: Spec, fmt: str) -> None:
    failed = cache.get(_unmakeable_key(image, spec, fmt))
    if failed is not None:
        raise Unmakeable(failed)


def _unmakeable_key(image: Image, spec: Spec, fmt: str) -> str:
    processed = image.processed_at.timestamp() if image.processed_at else 0
    return f"ondemand-unmakeable:{image.pk}:{processed}:{spec.name}:{fmt}"


def _make(image: Image, spec: Spec, fmt: str) -> Made:
    started = time.monotonic()
    try:
        output = _render(image, spec, fmt)
    except (processing.ImageRejected, processing.ProcessingError) as exc:
        # The image's fault, not the moment's: the same request would fail
        # again, so it is refused (and not tried again) rather than retried.
        logger.warning("image id=%s: %s.%s not made: %s", image.pk, spec.name, fmt, processing.logged(exc))
        message = f"{spec.name}.{fmt} cannot be made of image {image.pk}; ask for another size or format."
        cache.set(_unmakeable_key(image, spec, fmt), message, timeout=_UNMAKEABLE_SECONDS)
        raise Unmakeable(message) from exc
    except (sandbox.TimedOut, sandbox.OutOfMemory, sandbox.Died) as exc:
        logger.warning("image id=%s: %s.%s not made: %s", image.pk, spec.name, fmt, exc)
        raise Busy(
            f"{spec.name}.{fmt} of image {image.pk} could not be made now; try again shortly."
        ) from exc
    # Every make is logged, also one that then finds another request's row.
    logger.info(
        "image id=%s rendition=%s.%s size=%sx%s bytes=%s ms=%s outcome=made on demand",
        image.pk,
        spec.name,
        fmt,
        output.width,
        output.height,
        len(output.data),
        int((time.monotonic() - started) * 1000),
    )
    key = storage.rendition_key(output.data, output.extension)
    with storage.writing({key}):
        storage.put(key, output.data)
        try:
            rendition = _record(
                image_id=image.pk,
                spec=spec,
                fmt=fmt,
                output=output,
                key=key,
                cut_around=_cut_around(image),
                processed_at=image.processed_at,
            )
        except BaseException:
            storage.delete_unreferenced({key})
            raise
    if rendition.storage_key != key:
        storage.delete_unreferenced({key})
        return Made(rendition)
    return Made(rendition, output.data)
