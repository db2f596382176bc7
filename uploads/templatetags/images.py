"""``{% picture image %}``: a responsive <picture> built from the database rows
alone (prefetched renditions), with a sized placeholder while processing."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join

from uploads import selectors
from uploads.models import Image

register = template.Library()


@register.simple_tag
def picture(
    image: Image | None,
    sizes: str = "100vw",
    alt: str | None = None,
    variant: str = "main",
    css_class: str = "",
    eager: bool = False,
) -> str:
    if image is None:
        return ""
    text = image.alt if alt is None else alt
    square = variant == "thumb"
    if not image.is_ready or not (sets := selectors.source_sets(image, variant=variant)):
        width, height = (1, 1) if square else (image.width or 4, image.height or 3)
        label = "Image failed to process" if image.status == Image.Status.FAILED else "Image processing"
        return format_html(
            '<span class="picture-placeholder {}" role="img" aria-label="{}" '
            'style="aspect-ratio: {} / {}; background-color: {}" data-status="{}"></span>',
            css_class,
            text or label,
            width,
            height,
            image.dominant_color or "#d9dde3",
            image.status,
        )
    fallback = next((s for s in sets if s.format == "jpeg"), sets[-1])
    sources = format_html_join(
        "",
        '<source type="{}" srcset="{}" sizes="{}">',
        ((s.content_type, s.srcset, sizes) for s in sets if s is not fallback),
    )
    largest = fallback.fallback
    return format_html(
        '<picture class="{}">{}<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" '
        'alt="{}" loading="{}" decoding="async" style="background-color: {}"></picture>',
        css_class,
        sources,
        largest.url,
        fallback.srcset,
        sizes,
        largest.width,
        largest.height,
        text,
        "eager" if eager else "lazy",
        image.dominant_color or "transparent",
    )
