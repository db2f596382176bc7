from __future__ import annotations

import re
from typing import Any

import pytest
from django.template import Context, Template

from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = pytest.mark.django_db


def render(image: Image, **options: str) -> str:
    args = " ".join(f'{k}="{v}"' for k, v in options.items())
    template = Template("{% load images %}{% picture image " + args + " %}")
    image = Image.objects.prefetch_related("renditions").get(pk=image.pk)
    return template.render(Context({"image": image}))


def uploaded(commit: Any, **kwargs: Any) -> Image:
    with commit():
        return services.image_upload(
            file=corpus.photo_jpeg(2000, 1500), original_name="photo.jpg", alt="A field", **kwargs
        )


def test_a_ready_image_renders_a_responsive_picture(commit: Any) -> None:
    html = render(uploaded(commit), sizes="(min-width: 900px) 50vw, 100vw")
    assert html.startswith("<picture")
    assert '<source type="image/webp" srcset="' in html
    webp = re.search(r'<source type="image/webp" srcset="([^"]+)"', html)
    assert webp is not None
    assert [part.rsplit(" ", 1)[1] for part in webp.group(1).split(", ")] == [
        "320w",
        "640w",
        "1024w",
        "1600w",
    ]
    assert 'sizes="(min-width: 900px) 50vw, 100vw"' in html
    assert 'width="1600" height="1200"' in html
    assert 'loading="lazy"' in html
    assert 'alt="A field"' in html
    assert ".jpg 1600w" in html  # the <img> falls back to the JPEG ladder
    assert "thumb" not in html


def test_avif_comes_first_when_it_is_enabled(commit: Any, settings: Any) -> None:
    settings.IMAGE_PRESETS = {
        **settings.IMAGE_PRESETS,
        "web": {**settings.IMAGE_PRESETS["web"], "formats": ["avif", "webp", "jpeg"]},
    }
    html = render(uploaded(commit))
    assert html.index('type="image/avif"') < html.index('type="image/webp"')


def test_the_thumbnail_variant_uses_the_square_renditions(commit: Any) -> None:
    html = render(uploaded(commit), variant="thumb")
    assert 'width="256" height="256"' in html


def test_a_pending_image_renders_a_sized_placeholder(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        image = services.image_upload(file=corpus.photo_jpeg(400, 300), original_name="p.jpg", alt="Soon")
    html = render(image)
    assert "<picture" not in html
    assert 'class="picture-placeholder ' in html
    assert "aspect-ratio: 400 / 300" in html
    assert 'aria-label="Soon"' in html
    assert 'data-status="pending"' in html


def test_alt_text_is_escaped(commit: Any) -> None:
    image = Image.objects.prefetch_related("renditions").get(pk=uploaded(commit).pk)
    template = Template("{% load images %}{% picture image alt=alt %}")
    html = template.render(Context({"image": image, "alt": '"><script>alert(1)</script>'}))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
