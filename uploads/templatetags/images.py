"""``{% picture image %}``: a responsive <picture> built from the database rows
alone (prefetched renditions), with the image's placeholder (its blurhash over
its dominant colour) shown while it is processed and while it loads.

``spec="fill-480x320"`` (or ``width-W``, ``max-WxH``) asks for that size
instead of the preset's ladder: signed URLs of renditions made on demand, at
1x and, where the original has the pixels, for denser screens; nothing is made
until a browser asks.

With no image, or one that failed to process, it renders a box of the same
place that says "No photo" in words, rather than a hole or a grey box that
looks as if something were still loading.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.conf import settings
from django.template.loader import render_to_string

from uploads import ondemand, placeholders, selectors
from uploads.models import Image

register = template.Library()

# Denser screens get a rendition with this many more pixels per CSS pixel, as
# far as the original allows.
DENSITIES = (1, 2)
PENDING_COLOR = "#d9dde3"
NO_PHOTO = "No photo"
# The shape of the "No photo" box when the image's own is unknown (a card's).
NO_PHOTO_SHAPE = (3, 2)


@dataclass(frozen=True)
class Source:
    type: str
    srcset: str
    sizes: str


def _placeholder_style(image: Image, width: int, height: int) -> str:
    """The inline style that paints the placeholder behind the picture."""
    parts = [f"background-color: {image.dominant_color or PENDING_COLOR}"]
    uri = placeholders.data_uri(image.placeholder, width, height)
    if uri:
        parts.append(f"background-image: url({uri})")
    return "; ".join(parts)


def _on_demand(image: Image, spec: ondemand.Spec) -> tuple[list[Source], str, str, tuple[int, int]]:
    """Sources, the <img>'s src and srcset, and its size, for a spec."""
    display = (image.width, image.height)
    if max(spec.size(display)) > ondemand.max_size():
        # A width-W of a tall image would pass the largest side in height:
        # that width, or as much of it as fits, within the limit instead.
        spec = ondemand.Spec("max", spec.width, ondemand.max_size())
    size = spec.size(display)
    ladder: list[tuple[ondemand.Spec, float]] = []
    for factor in DENSITIES:
        dense = spec.scaled(factor)
        if max(dense.width, dense.height, *dense.size(display)) > ondemand.max_size():
            break
        dense_size = dense.size(display)
        density = round(dense_size[0] / size[0], 2)
        if ladder and density <= ladder[-1][1]:
            break  # the original has no more pixels to give
        ladder.append((dense, density))
    available = ondemand.formats()
    fallback = "jpeg" if "jpeg" in available else available[0]
    best = [f for f in ("avif", "webp") if f in available and (f != "avif" or settings.IMAGE_AVIF)]

    def srcset(fmt: str) -> str:
        return ", ".join(f"{ondemand.url_path(image.pk, s, fmt)} {d:g}x" for s, d in ladder)

    sources = [Source(f"image/{f}", srcset(f), "") for f in best if f != fallback]
    return sources, ondemand.url_path(image.pk, spec, fallback), srcset(fallback), size


def _no_photo(image: Image | None, *, variant: str, css_class: str) -> str:
    if variant == "thumb":
        width, height = 1, 1
    elif image is not None and image.width and image.height:
        width, height = image.width, image.height
    else:
        width, height = NO_PHOTO_SHAPE
    context = {
        "missing": NO_PHOTO,
        "css_class": css_class,
        "width": width,
        "height": height,
        "status": image.status if image is not None else "none",
    }
    return render_to_string("uploads/picture.html", context)


@register.simple_tag
def picture(
    image: Image | None,
    sizes: str = "100vw",
    alt: str | None = None,
    variant: str = "main",
    css_class: str = "",
    eager: bool = False,
    spec: str = "",
) -> str:
    if image is None or image.status == Image.Status.FAILED:
        return _no_photo(image, variant=variant, css_class=css_class)
    text = image.alt if alt is None else alt
    context: dict[str, object] = {
        "css_class": css_class,
        "alt": text,
        "status": image.status,
        # alt="" given: the picture only illustrates what the text beside it
        # says (a card's title), so its placeholder is not announced either.
        "decorative": alt == "",
    }
    # A malformed spec raises here: a template's mistake, for its author to see.
    wanted = ondemand.parse_spec(spec) if spec else None
    sets = selectors.source_sets(image, variant=variant) if image.is_ready and not wanted else []
    if not image.is_ready or not (sets or wanted):
        if wanted:
            width, height = wanted.size((image.width or 1, image.height or 1))
        elif variant == "thumb":
            width, height = 1, 1
        else:
            width, height = image.width or 4, image.height or 3
        context.update(
            placeholder=True,
            width=width,
            height=height,
            label=text or "Image processing",
            style=_placeholder_style(image, width, height),
        )
        return render_to_string("uploads/picture.html", context)
    if wanted:
        sources, src, srcset, (width, height) = _on_demand(image, wanted)
        img_sizes = ""
    else:
        fallback_set = next((s for s in sets if s.format == "jpeg"), sets[-1])
        sources = [Source(s.content_type, s.srcset, sizes) for s in sets if s is not fallback_set]
        largest = fallback_set.fallback
        src, srcset, width, height = largest.url, fallback_set.srcset, largest.width, largest.height
        img_sizes = sizes
    context.update(
        sources=sources,
        src=src,
        srcset=srcset,
        sizes=img_sizes,
        width=width,
        height=height,
        loading="eager" if eager else "lazy",
        style=_placeholder_style(image, width, height),
        # What uploads/picture.js puts in the picture's place if its file is lost.
        no_photo=NO_PHOTO,
    )
    return render_to_string("uploads/picture.html", context)
