from __future__ import annotations

import base64
import io
import re
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client
from PIL import Image as PILImage
from PIL import ImageChops

from tests.uploads import corpus
from uploads import ondemand, placeholders, services
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


def test_a_decorative_pending_image_is_not_announced(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        image = services.image_upload(file=corpus.photo_jpeg(400, 300), original_name="p.jpg", alt="Soon")
    html = render(image, alt="")
    assert 'aria-hidden="true"' in html
    assert "role=" not in html
    assert "aria-label" not in html


def test_alt_text_is_escaped(commit: Any) -> None:
    image = Image.objects.prefetch_related("renditions").get(pk=uploaded(commit).pk)
    template = Template("{% load images %}{% picture image alt=alt %}")
    html = template.render(Context({"image": image, "alt": '"><script>alert(1)</script>'}))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# --- Placeholders ------------------------------------------------------------------


def placeholder_png(html: str) -> PILImage.Image:
    """The placeholder painted behind the picture, decoded from its data: URI."""
    found = re.search(r"background-image: url\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", html)
    assert found is not None, html
    return PILImage.open(io.BytesIO(base64.b64decode(found.group(1))))


def test_a_ready_picture_paints_its_blurhash_over_its_dominant_colour_behind_the_img(commit: Any) -> None:
    image = uploaded(commit)
    image.refresh_from_db()
    html = render(image)
    img = re.search(r"<img [^>]*>", html)
    assert img is not None
    assert f"background-color: {image.dominant_color}" in img.group(0)
    assert "data-placeholder" in img.group(0)
    tiny = placeholder_png(img.group(0))
    assert tiny.size == (32, 24)  # the image's 4:3 shape
    expected = placeholders.blurhash.decode(image.placeholder, 32, 24).convert("RGB")
    assert ImageChops.difference(tiny.convert("RGB"), expected).getbbox() is None


def test_a_pending_image_shows_the_placeholder_it_had(commit: Any) -> None:
    image = uploaded(commit)
    image.refresh_from_db()
    with commit():
        services.image_reprocess(images=[image])
        html = render(image)
    assert 'data-status="pending"' in html
    assert placeholder_png(html).size == (32, 24)
    assert f"background-color: {image.dominant_color}" in html


def test_a_new_pending_image_shows_a_neutral_box_of_its_shape(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        image = services.image_upload(file=corpus.photo_jpeg(300, 600), original_name="tall.jpg")
    html = render(image)
    assert "aspect-ratio: 300 / 600" in html
    assert "background-color: #d9dde3" in html
    assert "background-image" not in html


def test_no_image_renders_a_box_that_says_there_is_no_photo() -> None:
    html = Template("{% load images %}{% picture image alt='Lime' %}").render(Context({"image": None}))
    assert html.startswith('<span class="picture-placeholder picture-missing ')
    assert ">No photo</span>" in html
    assert "aspect-ratio: 3 / 2" in html
    assert 'data-status="none"' in html
    assert "Lime" not in html


def test_a_failed_image_says_there_is_no_photo_rather_than_looking_like_it_loads(commit: Any) -> None:
    image = uploaded(commit)
    Image.objects.filter(pk=image.pk).update(status=Image.Status.FAILED, error="Truncated file")
    html = render(image, alt="Lime")
    assert ">No photo</span>" in html
    assert 'data-status="failed"' in html
    assert "aspect-ratio: 2000 / 1500" in html
    assert 'role="img"' not in html
    assert "Lime" not in html
    assert "<picture" not in html
    assert 'aspect-ratio: 1 / 1"' in render(image, variant="thumb")


def test_a_placeholder_keeps_the_shape_and_refuses_a_broken_hash() -> None:
    assert placeholders.tiny_size(1600, 1200) == (32, 24)
    assert placeholders.tiny_size(600, 1200) == (16, 32)
    assert placeholders.tiny_size(5000, 10) == (32, 1)
    assert placeholders.data_uri("not a blurhash", 10, 10) == ""
    assert placeholders.data_uri("", 10, 10) == ""


# --- Sizes on demand ----------------------------------------------------------------


def test_a_spec_asks_for_signed_renditions_at_1x_and_2x(commit: Any, client: Client) -> None:
    image = uploaded(commit)  # 2000x1500
    html = render(image, spec="fill-480x320")
    webp = re.search(r'<source type="image/webp" srcset="([^"]+)">', html)
    assert webp is not None
    assert webp.group(1) == (
        f"{ondemand.url_path(image.pk, 'fill-480x320', 'webp')} 1x, "
        f"{ondemand.url_path(image.pk, 'fill-960x640', 'webp')} 2x"
    )
    assert f'src="{ondemand.url_path(image.pk, "fill-480x320", "jpeg")}"' in html
    assert 'width="480" height="320"' in html
    assert "sizes=" not in html  # densities, not widths
    src = re.search(r'<img src="([^"]+)"', html)
    assert src is not None
    response = client.get(src.group(1))
    assert response.status_code == 200
    assert PILImage.open(io.BytesIO(response.content)).size == (480, 320)


def test_a_spec_offers_only_the_density_the_original_has(commit: Any) -> None:
    with commit():
        image = services.image_upload(file=corpus.photo_jpeg(800, 600), original_name="small.jpg")
    html = render(image, spec="fill-480x320")
    assert f"{ondemand.url_path(image.pk, 'fill-960x640', 'webp')} 1.67x" in html  # 800x533 at most
    html = render(image, spec="width-800")
    assert " 2x" not in html
    assert 'width="800" height="600"' in html


def test_a_spec_costs_no_query_and_no_rendition(commit: Any, django_assert_num_queries: Any) -> None:
    image = Image.objects.prefetch_related("renditions").get(pk=uploaded(commit).pk)
    template = Template('{% load images %}{% picture image spec="max-300x300" %}')
    with django_assert_num_queries(0):
        html = template.render(Context({"image": image}))
    assert 'width="300" height="225"' in html
    assert not image.renditions.filter(name="max-300x300").exists()


def test_a_pending_image_with_a_spec_reserves_the_specs_box(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        image = services.image_upload(file=corpus.photo_jpeg(400, 300), original_name="p.jpg")
    assert "aspect-ratio: 400 / 100" in render(image, spec="fill-1200x300")


def test_a_malformed_spec_in_a_template_is_its_authors_error(commit: Any) -> None:
    with pytest.raises(ondemand.SpecInvalid):
        render(uploaded(commit), spec="fill-10")
