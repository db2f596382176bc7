"""Placeholders that show, in a real browser on a slow network: a picture's
blurhash (over its dominant colour) is what a visitor sees while the picture
loads or is still being processed, the picture then takes its place, and
nothing on the page moves (cumulative layout shift 0)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from PIL import Image as PILImage
from PIL import ImageDraw, ImageStat
from playwright.sync_api import Locator, Route, expect

from catalog.models import Product
from tests.browser.conftest import Browsing
from tests.factories import ProductFactory
from uploads import placeholders, services
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Layout shifts as Chromium reports them, summed (CLS), from the first paint on.
CLS_OBSERVER = """
window.__layoutShifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (!entry.hadRecentInput) window.__layoutShifts.push(entry.value);
  }
}).observe({ type: "layout-shift", buffered: true });
"""
VIEWPORT = {"width": 1000, "height": 640}
COLORS = [((230, 120, 20), (20, 60, 200)), ((200, 30, 60), (250, 220, 40)), ((20, 150, 90), (240, 240, 240))]


def striped_jpeg(
    colors: tuple[tuple[int, int, int], tuple[int, int, int]], size: tuple[int, int] = (900, 600)
) -> bytes:
    """Sharp stripes: a blurhash of them is smooth, so the placeholder and the
    picture look nothing alike in a screenshot."""
    img = PILImage.new("RGB", size, colors[0])
    draw = ImageDraw.Draw(img)
    for x in range(0, size[0], 24):
        draw.rectangle((x, 0, x + 11, size[1]), fill=colors[1])
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92)
    return out.getvalue()


def looks(locator: Locator) -> tuple[tuple[float, ...], float]:
    """Mean colour and spread (mean of the channels' standard deviations) of
    what the browser drew for an element."""
    shot = PILImage.open(io.BytesIO(locator.screenshot(animations="disabled"))).convert("RGB")
    stat = ImageStat.Stat(shot)
    return tuple(stat.mean), sum(stat.stddev) / 3


def blurhash_mean(image: Image) -> tuple[float, ...]:
    tiny = placeholders.blurhash.decode(image.placeholder, 32, 21).convert("RGB")
    return tuple(ImageStat.Stat(tiny).mean)


def distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.dist(a[:3], b[:3])


@pytest.fixture
def catalog(transactional_db: None) -> list[Product]:
    products = []
    for n in range(7):
        image = services.image_upload(
            file=striped_jpeg(COLORS[n % len(COLORS)]), original_name=f"stripes{n}.jpg", alt=f"Stripes {n}"
        )
        image.refresh_from_db()
        assert image.status == Image.Status.READY, image.error
        products.append(ProductFactory.create(name=f"Striped fruit {n}", image=image))
    return products


class SlowMedia:
    """Holds every rendition request until released: the pictures stay
    loading for as long as the test looks at the page."""

    def __init__(self) -> None:
        self.held: list[Route] = []
        self.released = False

    def __call__(self, route: Route) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        self.released = True
        held, self.held = self.held, []
        for route in held:
            route.continue_()


@pytest.fixture
def slow_media(browsing: Browsing) -> Iterator[SlowMedia]:
    slow = SlowMedia()
    browsing.page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    browsing.page.add_init_script(CLS_OBSERVER)
    browsing.page.route("**/media/renditions/**", slow)
    yield slow
    slow.release()


def layout_shift(browsing: Browsing) -> float:
    return float(browsing.page.evaluate("window.__layoutShifts.reduce((a, b) => a + b, 0)"))


def test_a_lazy_picture_shows_its_placeholder_until_it_loads_without_moving_anything(
    browsing: Browsing, catalog: list[Product], slow_media: SlowMedia
) -> None:
    page = browsing.page
    page.goto(browsing.base_url + "/catalog/", wait_until="domcontentloaded")
    # Wait for the browser to ask for every picture near the viewport.
    asked = -1
    while asked != len(slow_media.held):
        asked = len(slow_media.held)
        page.wait_for_timeout(400)
    assert asked >= 3, "the browser asked for no pictures"
    browsing.shot("loading")

    cards = page.locator(".card")
    expect(cards).to_have_count(len(catalog))
    visible = page.locator(".card img[data-placeholder]").evaluate_all(
        "imgs => imgs.filter(img => img.getBoundingClientRect().top < innerHeight).length"
    )
    assert visible >= 3
    by_name = {product.name: product.image for product in catalog}
    for index in range(visible):
        card = cards.nth(index)
        img = card.locator("img")
        state = img.evaluate(
            "img => ({complete: img.complete && img.naturalWidth > 0, loaded: img.classList.contains('is-loaded'),"
            " background: getComputedStyle(img).backgroundImage, width: img.getBoundingClientRect().width,"
            " height: img.getBoundingClientRect().height})"
        )
        assert not state["complete"], "a held picture cannot have loaded"
        assert not state["loaded"]
        assert state["background"].startswith('url("data:image/png;base64,'), state["background"]
        assert state["height"] > 100
        assert abs(state["width"] / state["height"] - 1.5) < 0.02  # the card's 3:2 box, reserved
        image = by_name[card.locator(".card-title").inner_text()]
        assert image is not None
        mean, spread = looks(img)
        # What shows is the blurhash: its colours, smooth (no stripes).
        assert distance(mean, blurhash_mean(image)) < 30, (mean, blurhash_mean(image))
        assert distance(mean, (255, 255, 255)) > 40
        assert spread < 25, spread

    slow_media.release()
    page.wait_for_load_state("load")
    for index in range(len(catalog)):
        img = cards.nth(index).locator("img")
        img.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0 && img.classList.contains('is-loaded')",
            arg=img.element_handle(),
        )
        assert img.evaluate("img => getComputedStyle(img).backgroundImage") == "none"
        if index < visible:
            _, spread = looks(img)
            assert spread > 40, f"picture {index} shows no stripes: the placeholder stayed"
    page.evaluate("window.scrollTo(0, 0)")
    browsing.shot("loaded")
    assert layout_shift(browsing) == 0


@pytest.fixture
def broker_busy() -> Iterator[None]:
    """A broker that takes tasks and a worker too busy to take them: uploads
    stay pending (the in-memory broker keeps the tasks)."""
    conf = current_app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    yield
    conf.task_always_eager = eager


def test_an_image_still_processing_shows_a_placeholder_of_the_box_the_picture_will_fill(
    browsing: Browsing, broker_busy: None, slow_media: SlowMedia
) -> None:
    # Square pictures in 3:2 cards: the placeholder takes the card's shape, as the picture will.
    fresh = services.image_upload(
        file=striped_jpeg(COLORS[0], (800, 800)), original_name="fresh.jpg", alt="Fresh"
    )
    again = services.image_upload(
        file=striped_jpeg(COLORS[1], (800, 800)), original_name="again.jpg", alt="Again"
    )
    # Processed once, now waiting to be processed again: it has a blurhash.
    again = services.image_process(image_id=again.pk) or again
    services.image_reprocess(images=[again])
    again.refresh_from_db()
    assert (fresh.status, again.status) == (Image.Status.PENDING, Image.Status.PENDING)
    assert again.placeholder
    ProductFactory.create(name="Fresh fruit", image=fresh)
    ProductFactory.create(name="Again fruit", image=again)
    page = browsing.page
    slow_media.release()

    browsing.visit("/catalog/", "pending")
    boxes = {}
    for name, image in (("Fresh fruit", fresh), ("Again fruit", again)):
        card = page.locator(".card", has_text=name)
        placeholder = card.locator(".picture-placeholder")
        expect(placeholder).to_have_attribute("data-status", "pending")
        # The card's title names the product: its picture, or what stands for it, is not announced.
        expect(placeholder).to_have_attribute("aria-hidden", "true")
        boxes[name] = placeholder.bounding_box()
        mean, _ = looks(placeholder)
        if image.placeholder:
            assert distance(mean, blurhash_mean(image)) < 40, mean
        else:
            assert distance(mean, (0xD9, 0xDD, 0xE3)) < 30, mean  # a neutral box, not a hole

    for image in (fresh, again):
        services.image_process(image_id=image.pk, force=True)
    browsing.visit("/catalog/", "processed")
    for name, before in boxes.items():
        img = page.locator(".card", has_text=name).locator("img")
        browsing.assert_images_loaded(f".card:has-text('{name}') img")
        box = img.bounding_box()
        assert box is not None
        assert before is not None
        for key in ("width", "height"):
            assert abs(box[key] - before[key]) <= 1, (name, key, box, before)
    assert layout_shift(browsing) == 0


def test_pictures_work_without_the_script_too(
    browsing: Browsing, catalog: list[Product], browser: Any
) -> None:
    """No script: the picture covers its placeholder all the same."""
    context = browser.new_context(viewport=VIEWPORT, base_url=browsing.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/catalog/")
        img = page.locator(".card img").first
        img.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        _, spread = looks(img)
        assert spread > 40
        page.screenshot(path=browsing.shots / f"{browsing.test_name}-01-no-script.png", full_page=True)
    finally:
        context.close()
