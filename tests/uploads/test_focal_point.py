"""Focal points: estimated from the pixels or set by staff, kept in frame by
every cropped rendition; moving one re-cuts the crops and nothing else."""

from __future__ import annotations

import io
import math
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from PIL import Image as PILImage
from PIL import ImageDraw
from rest_framework.test import APIClient

from portal import demo
from tests.factories import ImageFactory, ProductFactory
from tests.uploads import corpus
from uploads import embedded, processing, sandbox, services, storage, tasks
from uploads.models import Image, Rendition, crops_owed
from uploads.processing import FocalPoint, Preset

RGB = tuple[int, int, int]
PNG_WEB = Preset("web", widths=(320, 640), formats=("png",), thumbnail=256)
# A wide picture: a centred square crop leaves out both sides entirely, so a
# subject at 0.85 across can only be in the thumbnail if the crop went to it.
WIDE = (1600, 900)
SUBJECT_AT = (0.85, 0.2)
SUBJECT_RADIUS = 0.06
MARKER_AT = (0.1, 0.8)
# Smaller than the subject: the estimate goes to the red disc, staff may prefer the marker.
MARKER_RADIUS = 0.025


def opened(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def count_near(img: PILImage.Image, color: RGB, tolerance: int = 40) -> int:
    """How many pixels of ``img`` have ``color`` (within ``tolerance`` per channel)."""
    masks = [
        band.point([255 if abs(v - c) <= tolerance else 0 for v in range(256)])
        for band, c in zip(img.convert("RGB").split(), color, strict=True)
    ]
    both = PILImage.new("L", img.size, 255)
    for mask in masks:
        both = PILImage.composite(mask, PILImage.new("L", img.size, 0), both)
    return both.histogram()[255]


def disc_area_in_square(source: tuple[int, int], radius: float, side: int) -> float:
    """Pixels a disc of ``radius`` (share of the shorter side) covers in a
    ``side`` square thumbnail cut as the largest square of the source."""
    return math.pi * (radius * side) ** 2


def square_shows(thumb: PILImage.Image, color: RGB, radius: float, *, square_disc: bool = False) -> float:
    """The share of the subject (a disc, or a square) that the thumbnail shows."""
    side = thumb.width
    expected = (2 * radius * side) ** 2 if square_disc else disc_area_in_square(WIDE, radius, side)
    return count_near(thumb, color) / expected


def subject_png(size: tuple[int, int] = WIDE, at: tuple[float, float] = SUBJECT_AT) -> bytes:
    return corpus.png(corpus.subject_off_centre(size, at, SUBJECT_RADIUS))


def marked_png(size: tuple[int, int] = WIDE) -> bytes:
    """The red subject at (0.85, 0.2) and, far from it, a blue marker at (0.1, 0.8)."""
    img = corpus.subject_off_centre(size, SUBJECT_AT, SUBJECT_RADIUS)
    return corpus.png(corpus.with_marker(img, MARKER_AT, MARKER_RADIUS))


def output(result: processing.Result, name: str, fmt: str = "png") -> PILImage.Image:
    [found] = [o for o in result.outputs if o.name == name and o.format == fmt]
    return opened(found.data)


# --- The estimate and the crops --------------------------------------------------


@pytest.mark.parametrize(
    ("size", "at"),
    [(WIDE, SUBJECT_AT), ((900, 1600), (0.2, 0.85)), ((1600, 900), (0.12, 0.75))],
    ids=["wide-top-right", "tall-bottom-left", "wide-bottom-left"],
)
def test_the_automatic_focal_point_finds_a_subject_far_from_the_centre(
    size: tuple[int, int], at: tuple[float, float]
) -> None:
    result = processing.process(subject_png(size, at), PNG_WEB)
    assert result.focal_point.x == pytest.approx(at[0], abs=0.04)
    assert result.focal_point.y == pytest.approx(at[1], abs=0.04)
    assert square_shows(output(result, "thumb"), corpus.SUBJECT_RED, SUBJECT_RADIUS) > 0.85


def test_a_centred_crop_would_miss_the_subject_so_the_check_can_fail() -> None:
    result = processing.process(subject_png(), PNG_WEB, focal_point=FocalPoint(0.5, 0.5))
    assert square_shows(output(result, "thumb"), corpus.SUBJECT_RED, SUBJECT_RADIUS) == 0


def test_a_manual_focal_point_wins_over_the_estimate() -> None:
    result = processing.process(marked_png(), PNG_WEB, focal_point=FocalPoint(*MARKER_AT))
    thumb = output(result, "thumb")
    assert square_shows(thumb, corpus.MARKER_BLUE, MARKER_RADIUS, square_disc=True) > 0.85
    assert count_near(thumb, corpus.SUBJECT_RED) == 0
    # The estimate is still made, and still points at the red subject.
    assert (result.focal_point.x, result.focal_point.y) == pytest.approx(SUBJECT_AT, abs=0.04)


def test_whole_renditions_ignore_the_focal_point() -> None:
    data = marked_png()
    plain = processing.process(data, PNG_WEB, focal_point=FocalPoint(*MARKER_AT))
    other = processing.process(data, PNG_WEB, focal_point=FocalPoint(0.9, 0.9, 0.1))
    for name in ("w320", "w640"):
        [a] = [o.data for o in plain.outputs if o.name == name]
        [b] = [o.data for o in other.outputs if o.name == name]
        assert a == b


def test_an_icon_preset_given_a_crop_keeps_the_point_through_its_rotation() -> None:
    """Turned a quarter clockwise, the marker at (0.1, 0.8) is near the top of
    a tall picture: a centred square would leave it out."""
    icon = Preset("icon", rotate=90, size=(128, 128), crop=True, formats=("png",))
    result = processing.process(marked_png(), icon, focal_point=FocalPoint(*MARKER_AT))
    assert [(o.name, o.width, o.height) for o in result.outputs] == [("icon", 128, 128)]
    shown = output(result, "icon")
    assert square_shows(shown, corpus.MARKER_BLUE, MARKER_RADIUS, square_disc=True) > 0.8
    centred = processing.process(marked_png(), icon, focal_point=FocalPoint(0.5, 0.5))
    assert count_near(output(centred, "icon"), corpus.MARKER_BLUE) == 0


def test_the_estimate_of_a_turning_preset_is_given_where_the_subject_is_displayed() -> None:
    """Turned a quarter clockwise, the subject at (0.85, 0.2) is at (0.8,
    0.85) of the icon: the estimate is made there, and handed back in the
    picture as displayed, where every focal point is given."""
    icon = Preset("icon", rotate=90, size=(128, 128), crop=True, formats=("png",))
    result = processing.process(subject_png(), icon)
    assert (result.focal_point.x, result.focal_point.y) == pytest.approx(SUBJECT_AT, abs=0.04)
    assert square_shows(output(result, "icon"), corpus.SUBJECT_RED, SUBJECT_RADIUS) > 0.85


def test_a_fill_of_any_shape_keeps_the_estimated_subject() -> None:
    """A wide fill (3:2) cut from a tall picture whose subject is near its bottom."""
    fill = Preset("fill", size=(480, 320), crop=True, formats=("png",))
    result = processing.process(subject_png((900, 1600), (0.3, 0.9)), fill)
    shown = output(result, "icon")
    assert shown.size == (480, 320)
    # The box is 900 x 600 source pixels scaled to 480 x 320; the disc's radius is 54 of them.
    expected = math.pi * (SUBJECT_RADIUS * 900 * 480 / 900) ** 2
    assert count_near(shown, corpus.SUBJECT_RED) / expected > 0.85


def test_a_stretched_icon_stays_as_the_course_wants_it() -> None:
    """Without ``crop`` the icon preset still squeezes the whole picture."""
    result = processing.process(marked_png(), processing.DEFAULT_PRESETS["icon"])
    icon = output(result, "icon", "jpeg")
    assert count_near(icon, corpus.MARKER_BLUE) > 0
    assert count_near(icon, corpus.SUBJECT_RED) > 0


def test_only_the_crops_can_be_made_and_they_match_a_full_run() -> None:
    full = processing.process(marked_png(), PNG_WEB, focal_point=FocalPoint(*MARKER_AT))
    crops = processing.process(marked_png(), PNG_WEB, focal_point=FocalPoint(*MARKER_AT), crops_only=True)
    assert [(o.name, o.format) for o in crops.outputs] == [("thumb", "png")]
    [thumb] = [o for o in full.outputs if o.name == "thumb"]
    # Made from a smaller decode, so not the same bytes, but the same picture.
    assert square_shows(output(crops, "thumb"), corpus.MARKER_BLUE, MARKER_RADIUS, square_disc=True) > 0.85
    assert crops.outputs[0].width == thumb.width == 256


def test_a_preset_without_crops_has_none_to_remake() -> None:
    assert processing.DEFAULT_PRESETS["supplier"].crop_names == ()
    with pytest.raises(ValueError, match="no cropped rendition"):
        processing.process(marked_png(), processing.DEFAULT_PRESETS["supplier"], crops_only=True)


def test_a_featureless_picture_is_cropped_at_its_centre() -> None:
    flat = PILImage.new("RGB", (300, 200), (90, 140, 200))
    assert processing.estimate_focal_point(flat) == FocalPoint(0.5, 0.5)


def test_the_estimate_ignores_transparent_ground() -> None:
    """A subject on a transparent sheet: what is under the alpha never counts."""
    img = PILImage.new("RGBA", (400, 300), (255, 0, 255, 0))  # loud magenta, fully transparent
    img.paste((200, 40, 40, 255), (40, 200, 100, 260))
    point = processing.estimate_focal_point(img)
    assert (point.x, point.y) == pytest.approx((70 / 400, 230 / 300), abs=0.05)


@pytest.mark.parametrize("mode", ["LA", "P"])
def test_the_estimate_ignores_transparent_ground_of_grey_and_palette_pictures(mode: str) -> None:
    """A grey or palette picture with alpha, given as it is decoded and as
    small as the estimate reads it: a ring under full transparency is no
    subject, the dark disc shown is."""
    size = width, height = (60, 45)
    # The palette's colours: the ground, the ring's inside and edge (all
    # hidden), the disc.
    colours = [(255, 0, 255, 0), (255, 255, 255, 0), (0, 0, 0, 0), (20, 20, 20, 255)]
    img = PILImage.new("P", size, 0)
    img.putpalette([value for colour in colours for value in colour], rawmode="RGBA")
    draw = ImageDraw.Draw(img)
    draw.ellipse((0.7 * width, 0.05 * height, 0.95 * width, 0.4 * height), fill=1, outline=2, width=2)
    draw.ellipse((0.05 * width, 0.6 * height, 0.3 * width, 0.95 * height), fill=3)
    if mode == "LA":
        img = img.convert("RGBA").convert("LA")
    assert img.mode == mode

    point = processing.estimate_focal_point(img)

    assert inside_oval(point, size, (0.175 * width, 0.775 * height), (0.125 * width, 0.175 * height))


def decoded(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img


def inside_oval(
    point: FocalPoint, size: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]
) -> bool:
    """Whether ``point`` falls in the oval of ``radii`` (pixels) about ``centre`` (pixels)."""
    dx = (point.x * size[0] - centre[0]) / radii[0]
    dy = (point.y * size[1] - centre[1]) / radii[1]
    return dx * dx + dy * dy <= 1


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("product", demo.PRODUCTS, ids=[p["name"] for p in demo.PRODUCTS])
def test_the_estimate_finds_a_fruit_on_a_tan_table(product: dict[str, Any], seed: int) -> None:
    """The table is as tan as skin and spans the frame: a surface, not the
    subject. The fruit's oval is as ``fruit_image`` draws it."""
    size = (1800, 1200)
    point = processing.estimate_focal_point(decoded(demo.fruit_image(product["fruit"], seed, size)))
    radius = size[1] * 0.28
    assert inside_oval(point, size, (size[0] * 0.5, size[1] * 0.48), (radius, radius * 0.95)), point


@pytest.mark.parametrize("person", demo.PEOPLE, ids=[p["username"] for p in demo.PEOPLE])
def test_the_estimate_stays_on_a_face_before_any_backdrop(person: dict[str, Any]) -> None:
    """Some backdrops are as skin-coloured as the face (``portrait_image``
    draws the face's oval from 0.3 to 0.7 across, 0.18 to 0.6 down)."""
    size = (900, 1100)
    point = processing.estimate_focal_point(decoded(demo.portrait_image(person["color"], size)))
    assert inside_oval(point, size, (size[0] * 0.5, size[1] * 0.39), (size[0] * 0.2, size[1] * 0.21)), point


@pytest.mark.parametrize(
    ("at", "color"),
    [((0.3, 0.62), corpus.SUBJECT_RED), ((0.7, 0.66), (40, 160, 60)), ((0.55, 0.8), (40, 160, 60))],
    ids=["red-left", "green-right", "green-low"],
)
def test_the_estimate_finds_a_small_object_on_a_wooden_floor(at: tuple[float, float], color: RGB) -> None:
    size, radius = (1200, 800), 0.07
    point = processing.estimate_focal_point(corpus.on_floor(size, at, radius, color))
    r = radius * min(size)
    assert inside_oval(point, size, (at[0] * size[0], at[1] * size[1]), (r, r)), point


@pytest.mark.parametrize(
    ("at", "wall", "desk"),
    [
        ((0.65, 0.4), corpus.BEIGE_WALL, None),
        ((0.35, 0.4), (150, 170, 190), corpus.BEIGE_WALL),
        ((0.5, 0.35), corpus.BEIGE_WALL, (120, 90, 60)),
    ],
    ids=["beige-wall", "blue-wall-beige-desk", "beige-wall-brown-desk"],
)
def test_the_estimate_finds_a_face_before_a_beige_wall_or_desk(
    at: tuple[float, float], wall: RGB, desk: RGB | None
) -> None:
    size, radius = (1000, 800), 0.18
    point = processing.estimate_focal_point(corpus.face(size, at, radius, wall, desk))
    r = radius * min(size)
    assert inside_oval(point, size, (at[0] * size[0], at[1] * size[1]), (r * 0.8, r)), point


def in_central_third(
    point: FocalPoint, size: tuple[int, int], centre: tuple[float, float], half: tuple[float, float]
) -> bool:
    """Whether ``point`` falls in the middle third, across and down, of a box
    of ``half`` its width and height (pixels) about ``centre`` (fractions)."""
    return (
        abs(point.x - centre[0]) * size[0] <= half[0] / 3
        and abs(point.y - centre[1]) * size[1] <= half[1] / 3
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("width_share", [0.5, 0.6, 0.7, 0.8])
@pytest.mark.parametrize(
    ("size", "at"),
    [
        ((1000, 800), (0.35, 0.39)),
        ((1000, 800), (0.65, 0.42)),
        ((1000, 800), (0.6, 0.6)),
        ((800, 1000), (0.42, 0.58)),
        ((800, 1000), (0.65, 0.42)),
    ],
    ids=["wide-up-left", "wide-up-right", "wide-low-right", "tall-low-left", "tall-up-right"],
)
def test_the_estimate_stays_on_a_face_that_fills_most_of_the_frame(
    size: tuple[int, int], at: tuple[float, float], width_share: float, seed: int
) -> None:
    """A close-up is wider than half the frame, yet no surface: it stops
    short of a side at least, so its skin and its lines count. The point stays
    in the middle third, across and down, of the face's oval (hair included),
    where a crop cut around it keeps both eyes and the mouth; before, the
    skin's widest rows were dropped and it slid down to the chin."""
    point = processing.estimate_focal_point(corpus.close_up(size, at, width_share, seed))
    half_width = width_share * size[0] / 2
    assert in_central_third(point, size, at, (half_width, half_width / 0.8)), point


@pytest.mark.parametrize(("x", "y", "radius"), [(-0.1, 0.5, None), (0.5, 1.01, None), (0.5, 0.5, 0.0)])
def test_a_focal_point_outside_the_picture_is_refused(x: float, y: float, radius: float | None) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        FocalPoint(x, y, radius)


def test_a_quarter_turn_moves_the_point_with_the_picture() -> None:
    point = FocalPoint(0.1, 0.8, 0.2)

    def coordinates(p: FocalPoint) -> tuple[float, float, float | None]:
        return (p.x, p.y, p.radius)

    # A point near the bottom left of a wide picture is near the top left once
    # the picture is turned clockwise, near the top right once turned upside down.
    assert coordinates(point.rotated(90)) == pytest.approx((0.2, 0.1, 0.2))
    assert coordinates(point.rotated(180)) == pytest.approx((0.9, 0.2, 0.2))
    assert coordinates(point.rotated(270)) == pytest.approx((0.8, 0.9, 0.2))
    assert coordinates(point.rotated(90).rotated(-90)) == pytest.approx(coordinates(point))


@pytest.mark.parametrize(
    ("size", "aspect", "focal", "box"),
    [
        ((1600, 900), (1, 1), FocalPoint(0.85, 0.2), (700.0, 0.0, 1600.0, 900.0)),  # slid back inside
        ((1600, 900), (1, 1), FocalPoint(0.5, 0.5), (350.0, 0.0, 1250.0, 900.0)),
        ((1600, 900), (1, 1), None, (350.0, 0.0, 1250.0, 900.0)),
        ((900, 1600), (3, 2), FocalPoint(0.3, 0.9), (0.0, 1000.0, 900.0, 1600.0)),
        ((1000, 1000), (2, 1), FocalPoint(0.5, 0.3), (0.0, 50.0, 1000.0, 550.0)),
    ],
)
def test_the_crop_box_is_the_largest_of_its_shape_centred_on_the_point(
    size: tuple[int, int], aspect: tuple[int, int], focal: FocalPoint | None, box: tuple[float, ...]
) -> None:
    assert processing.crop_box(size, aspect, focal) == pytest.approx(box)


# --- Stored, shown and moved -----------------------------------------------------------

URL = "/api/v1/images/"
# JPEG softens the edges of a small flat shape: most of it, not all, stays
# within the colour tolerance. Out of frame, none of it does.
JPEG_SHARE = 0.6


def stored(key: str) -> PILImage.Image:
    with default_storage.open(key) as fh:
        return opened(fh.read())


def thumb_of(image: Image) -> Rendition:
    return image.renditions.get(name="thumb", format="jpeg")


@pytest.fixture
def marked(db: None, commit: Any) -> Image:
    """A processed web image: the red subject top right, the blue marker bottom left."""
    picture = corpus.with_marker(
        corpus.subject_off_centre(WIDE, SUBJECT_AT, SUBJECT_RADIUS), MARKER_AT, MARKER_RADIUS
    )
    with commit():
        image: Image = ImageFactory.create(file=corpus.jpeg(picture, quality=92))
    image.refresh_from_db()
    assert image.status == Image.Status.READY
    return image


@pytest.mark.django_db
def test_processing_stores_the_estimate_and_the_api_shows_it_as_automatic(
    marked: Image, visitor: APIClient
) -> None:
    assert (marked.focal_auto_x, marked.focal_auto_y) == pytest.approx(SUBJECT_AT, abs=0.04)
    assert marked.focal_x is None
    ProductFactory(image=marked)  # shown by the catalog, so public
    body = visitor.get(f"{URL}{marked.pk}/").json()
    assert body["focal_point"]["kind"] == "auto"
    assert (body["focal_point"]["x"], body["focal_point"]["y"]) == pytest.approx(SUBJECT_AT, abs=0.04)
    assert body["focal_point"]["radius"] is None
    # The stored thumbnail shows the subject.
    thumb = stored(thumb_of(marked).storage_key)
    assert count_near(thumb, corpus.SUBJECT_RED) / disc_area_in_square(WIDE, SUBJECT_RADIUS, 256) > JPEG_SHARE


# Committed as a request commits: its answer tells whether the crops were cut.
@pytest.mark.django_db(transaction=True)
def test_setting_the_point_recuts_only_the_crops(
    marked: Image, token_client: APIClient, commit: Any, media_files: Any, sweep_after: Any
) -> None:
    ladder_before = {(r.pk, r.storage_key) for r in marked.renditions.exclude(name="thumb")}
    thumbs_before = set(marked.renditions.filter(name="thumb").values_list("storage_key", flat=True))
    with commit():
        response = token_client.patch(
            f"{URL}{marked.pk}/", {"focal_point": {"x": 0.1, "y": 0.8, "radius": 0.05}}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["focal_point"] == {"x": 0.1, "y": 0.8, "radius": 0.05, "kind": "manual"}
    marked.refresh_from_db()
    assert (marked.focal_x, marked.focal_y, marked.focal_radius) == (0.1, 0.8, 0.05)
    assert (marked.focal_auto_x, marked.focal_auto_y) == pytest.approx(SUBJECT_AT, abs=0.04)  # kept apart
    # The width ladder: the same rows and the same objects.
    assert {(r.pk, r.storage_key) for r in marked.renditions.exclude(name="thumb")} == ladder_before
    # The thumbnails: new objects showing the marker; the old objects are
    # kept for the redirects that may be cached, then swept.
    thumbs_after = set(marked.renditions.filter(name="thumb").values_list("storage_key", flat=True))
    assert len(thumbs_after) == 2
    assert not thumbs_after & thumbs_before
    files = media_files()
    assert thumbs_after | thumbs_before <= files
    assert sweep_after(storage.REPLACED_KEEP_SECONDS) == sorted(thumbs_before)
    assert not thumbs_before & media_files()
    thumb = stored(thumb_of(marked).storage_key)
    assert count_near(thumb, corpus.MARKER_BLUE) / (2 * MARKER_RADIUS * 256) ** 2 > JPEG_SHARE
    assert count_near(thumb, corpus.SUBJECT_RED) == 0
    # What the API lists is what is stored.
    detail = token_client.get(f"{URL}{marked.pk}/").json()
    listed = {r["url"] for r in detail["renditions"] if r["name"] == "thumb"}
    assert listed == {default_storage.url(key) for key in thumbs_after}


# Committed as a request commits: its answer tells whether the crops were cut.
@pytest.mark.django_db(transaction=True)
def test_clearing_the_point_goes_back_to_the_estimate(
    marked: Image, token_client: APIClient, commit: Any
) -> None:
    with commit():
        token_client.post(f"{URL}{marked.pk}/focal-point/", {"x": 0.1, "y": 0.8}, format="json")
    with commit():
        response = token_client.patch(f"{URL}{marked.pk}/", {"focal_point": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["focal_point"]["kind"] == "auto"
    marked.refresh_from_db()
    assert marked.focal_point is None
    thumb = stored(thumb_of(marked).storage_key)
    assert count_near(thumb, corpus.SUBJECT_RED) / disc_area_in_square(WIDE, SUBJECT_RADIUS, 256) > JPEG_SHARE
    assert count_near(thumb, corpus.MARKER_BLUE) == 0


# Committed as a request commits: its answer tells whether the crops were cut.
@pytest.mark.django_db(transaction=True)
def test_the_focal_point_action_sets_the_point(marked: Image, staff: APIClient, commit: Any) -> None:
    with commit():
        response = staff.post(f"{URL}{marked.pk}/focal-point/", {"x": 0.1, "y": 0.8}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["focal_point"] == {"x": 0.1, "y": 0.8, "radius": None, "kind": "manual"}
    thumb = stored(thumb_of(Image.objects.get(pk=marked.pk)).storage_key)
    assert count_near(thumb, corpus.MARKER_BLUE) > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "status"), [("visitor", 401), ("outsider", 403)], ids=["anonymous", "outsider"]
)
@pytest.mark.parametrize("method", ["patch", "post"])
def test_only_staff_with_the_change_permission_move_a_focal_point(
    marked: Image, request: pytest.FixtureRequest, persona: str, status: int, method: str
) -> None:
    client: APIClient = request.getfixturevalue(persona)
    if method == "patch":
        response = client.patch(f"{URL}{marked.pk}/", {"focal_point": {"x": 0.1, "y": 0.8}}, format="json")
    else:
        response = client.post(f"{URL}{marked.pk}/focal-point/", {"x": 0.1, "y": 0.8}, format="json")
    assert response.status_code == status, response.content
    marked.refresh_from_db()
    assert marked.focal_point is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"x": 1.5, "y": 0.5}, "x"),
        ({"x": 0.5}, "y"),
        ({"x": 0.5, "y": 0.5, "radius": 0}, "radius"),
        ({"x": "left", "y": 0.5}, "x"),
    ],
)
def test_a_bad_focal_point_gets_400_naming_the_field(
    marked: Image, token_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = token_client.post(f"{URL}{marked.pk}/focal-point/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    patched = token_client.patch(f"{URL}{marked.pk}/", {"focal_point": body}, format="json")
    assert patched.status_code == 400
    assert field in patched.json()["focal_point"], patched.json()
    marked.refresh_from_db()
    assert marked.focal_point is None


@pytest.mark.django_db
def test_a_patch_without_a_focal_point_changes_nothing_and_says_why(
    marked: Image, token_client: APIClient
) -> None:
    response = token_client.patch(f"{URL}{marked.pk}/", {"title": "New"}, format="json")
    assert response.status_code == 400
    assert "focal_point" in response.json()
    assert Image.objects.get(pk=marked.pk).title == marked.title


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["title", "alt"])
def test_a_patch_that_would_change_the_text_is_refused_whole_not_half_made(
    marked: Image, token_client: APIClient, field: str
) -> None:
    # The title and alt text are set at upload and changed in the admin: a
    # 200 that moved the point and dropped the text would read as both done.
    body = {"focal_point": {"x": 0.2, "y": 0.3}, field: "New"}
    response = token_client.patch(f"{URL}{marked.pk}/", body, format="json")
    assert response.status_code == 400
    assert "admin" in response.json()[field][0]
    assert "focal_point" not in response.json()
    image = Image.objects.get(pk=marked.pk)
    assert (image.focal_point, getattr(image, field)) == (None, getattr(marked, field))

    # Without a point, the answer names both what is missing and what is refused.
    alone = token_client.patch(f"{URL}{marked.pk}/", {field: "New"}, format="json")
    assert alone.status_code == 400
    assert set(alone.json()) == {"focal_point", field}


@pytest.mark.django_db
def test_a_patch_sending_back_the_image_it_read_moves_the_point(
    marked: Image, token_client: APIClient
) -> None:
    # A client sends back the representation it read with the point moved:
    # its title and alt text, unchanged, change nothing and are no reason to refuse.
    Image.objects.filter(pk=marked.pk).update(title="Harbour", alt="Boats in the harbour")
    body = token_client.get(f"{URL}{marked.pk}/").json()
    body["focal_point"] = {"x": 0.2, "y": 0.3}
    response = token_client.patch(f"{URL}{marked.pk}/", body, format="json")
    assert response.status_code in (200, 202), response.json()
    image = Image.objects.get(pk=marked.pk)
    assert (image.focal_point, image.title, image.alt) == (
        FocalPoint(0.2, 0.3),
        "Harbour",
        "Boats in the harbour",
    )

    # A form repeating them as they are is read the same way; one changing either is refused.
    form = {"focal_point.x": "0.4", "focal_point.y": "0.6", "title": "Harbour", "alt": "Boats in the harbour"}
    assert token_client.patch(f"{URL}{marked.pk}/", form, format="multipart").status_code in (200, 202)
    changed = token_client.patch(
        f"{URL}{marked.pk}/", {**form, "focal_point.x": "0.9", "alt": "Boats"}, format="multipart"
    )
    assert changed.status_code == 400
    assert set(changed.json()) == {"alt"}
    image.refresh_from_db()
    assert (image.focal_point, image.alt) == (FocalPoint(0.4, 0.6), "Boats in the harbour")


@pytest.mark.django_db
def test_a_point_set_before_processing_is_used_by_it(commit: Any) -> None:
    image: Image = ImageFactory.create(file=marked_png(), processed=False)
    services.image_set_focal_point(image=image, focal_point=FocalPoint(*MARKER_AT))
    done = services.image_process(image_id=image.pk)
    assert done is not None
    assert done.status == Image.Status.READY
    thumb = stored(thumb_of(done).storage_key)
    assert count_near(thumb, corpus.MARKER_BLUE) / (2 * MARKER_RADIUS * 256) ** 2 > JPEG_SHARE


@pytest.mark.django_db
def test_a_point_outside_the_picture_is_refused_by_the_service(marked: Image) -> None:

    class Loose:  # what a careless caller could pass: no checks of its own
        x, y, radius = 1.2, 0.5, None

    with pytest.raises(ValidationError):
        services.image_set_focal_point(image=marked, focal_point=Loose())  # type: ignore[arg-type]
    marked.refresh_from_db()
    assert marked.focal_point is None


@pytest.mark.django_db
def test_the_schema_documents_the_focal_point(visitor: APIClient) -> None:
    schema = visitor.get("/api/schema/?format=json").json()
    image = schema["components"]["schemas"]["Image"]["properties"]["focal_point"]
    assert image.get("nullable") or any(
        part.get("nullable") for part in image.get("allOf", []) + image.get("oneOf", [])
    ), image
    paths = schema["paths"]
    assert "patch" in paths["/api/v1/images/{id}/"]
    assert "put" not in paths["/api/v1/images/{id}/"]
    assert "post" in paths["/api/v1/images/{id}/focal-point/"]
    point = schema["components"]["schemas"]["FocalPoint"]["properties"]
    assert set(point) == {"x", "y", "radius", "kind"}
    request = schema["components"]["schemas"]["FocalPointRequest"]["properties"]
    assert set(request) == {"x", "y", "radius"}


@pytest.mark.django_db
def test_the_schema_requires_the_focal_point_in_a_patch(visitor: APIClient, token_client: APIClient) -> None:
    # The view reads the PATCH body whole: without focal_point it is a 400,
    # so the schema may not offer the field as optional.
    schema = visitor.get("/api/schema/?format=json").json()
    body = schema["paths"]["/api/v1/images/{id}/"]["patch"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert component.get("required") == ["focal_point"], component
    assert body["required"] is True

    response = token_client.patch(f"{URL}{ImageFactory().pk}/", {}, format="json")
    assert response.status_code == 400
    assert "focal_point" in response.json()


FORMS = ["application/x-www-form-urlencoded", "multipart/form-data"]


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", FORMS)
def test_the_schema_gives_a_patch_s_form_body_as_the_view_reads_it(
    visitor: APIClient, token_client: APIClient, media_type: str
) -> None:
    # A form gives a nested object's fields under dotted names, as DRF reads
    # them (focal_point.x): the names the schema gives set the point.
    schema = visitor.get("/api/schema/?format=json").json()
    body = schema["paths"]["/api/v1/images/{id}/"]["patch"]["requestBody"]
    assert set(body["content"]) == {"application/json", *FORMS}
    assert body["required"] is True
    ref = body["content"][media_type]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(component["properties"]) == {"focal_point.x", "focal_point.y", "focal_point.radius"}
    assert component.get("required") == ["focal_point.x", "focal_point.y"], component

    image = ImageFactory()
    form = {"focal_point.x": "0.25", "focal_point.y": "0.75"}
    if media_type == "multipart/form-data":
        response = token_client.patch(f"{URL}{image.pk}/", form, format="multipart")
    else:
        response = token_client.patch(f"{URL}{image.pk}/", urlencode(form), content_type=media_type)
    assert response.status_code in (200, 202), response.content
    image.refresh_from_db()
    assert image.focal_point == FocalPoint(0.25, 0.75)


# --- The admin's editor --------------------------------------------------------------


@pytest.fixture
def admin_client(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def change_form(client: Client, image: Image) -> dict[str, str]:
    """The change form's inputs as the page fills them (the renditions
    inline's management form among them), as a browser would send them."""
    page = client.get(f"/admin/uploads/image/{image.pk}/change/").content.decode()
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="submit"' not in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


@pytest.mark.django_db
def test_the_change_page_carries_the_editor_with_a_static_script_only(
    marked: Image, admin_client: Client
) -> None:
    response = admin_client.get(f"/admin/uploads/image/{marked.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    [editor] = re.findall(r"<div class=\"focal-editor\"[^>]*>", page)
    assert f'data-auto-x="{marked.focal_auto_x:.4f}"' in editor
    assert 'data-rotate="0"' in editor
    assert 'class="focal-editor-image"' in page
    for name in ("focal_x", "focal_y", "focal_radius"):
        assert f'name="{name}"' in page
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S)
    assert any("uploads/admin/focal-point.js" in attrs for attrs, _ in scripts)
    # The site's CSP runs no inline script: every script here is a file.
    assert all("src=" in attrs and not body.strip() for attrs, body in scripts), scripts
    assert "uploads/admin/focal-point.css" in page
    assert finders.find("uploads/admin/focal-point.js")
    assert finders.find("uploads/admin/focal-point.css")


@pytest.mark.django_db
def test_saving_a_point_in_the_admin_recuts_the_thumbnail(
    marked: Image, admin_client: Client, commit: Any
) -> None:
    old = thumb_of(marked).storage_key
    with commit():
        response = admin_client.post(
            f"/admin/uploads/image/{marked.pk}/change/",
            {
                **change_form(admin_client, marked),
                "title": "Desk",
                "alt": "A desk",
                "focal_x": "0.1",
                "focal_y": "0.8",
                "focal_radius": "",
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    marked.refresh_from_db()
    assert (marked.title, marked.focal_x, marked.focal_y, marked.focal_radius) == ("Desk", 0.1, 0.8, None)
    new = thumb_of(marked).storage_key
    assert new != old
    assert count_near(stored(new), corpus.MARKER_BLUE) > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"focal_x": "0.1", "focal_y": ""}, "both coordinates"),
        ({"focal_x": "", "focal_y": "", "focal_radius": "0.2"}, "needs a focal point"),
        ({"focal_x": "1.5", "focal_y": "0.5"}, "less than or equal to 1"),
        ({"focal_x": "0.5", "focal_y": "-1", "focal_radius": "0.2"}, "greater than or equal to 0"),
    ],
)
def test_the_admin_explains_a_bad_point(
    marked: Image, admin_client: Client, fields: dict[str, str], message: str
) -> None:
    data = {**change_form(admin_client, marked), "focal_x": "", "focal_y": "", "focal_radius": "", **fields}
    response = admin_client.post(f"/admin/uploads/image/{marked.pk}/change/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "uploads_image_focal_point_valid" not in response.content.decode()
    marked.refresh_from_db()
    assert marked.focal_point is None


# --- A point saved while the store cannot take its crops ---------------------------------


def thumb_keys(image: Image) -> set[str]:
    return set(image.renditions.filter(name="thumb").values_list("storage_key", flat=True))


def shows_the_marker(image: Image) -> bool:
    return count_near(stored(thumb_of(image).storage_key), corpus.MARKER_BLUE) > 0


# Committed as a request commits: the crops are cut (or not) before the answer.
@pytest.mark.django_db(transaction=True)
def test_a_point_saved_while_the_store_is_full_is_kept_and_the_api_says_the_crops_come_later(
    marked: Image, token_client: APIClient, renditions_disk: Any
) -> None:
    before = thumb_keys(marked)
    renditions_disk.full = True
    response = token_client.post(f"{URL}{marked.pk}/focal-point/", {"x": 0.1, "y": 0.8}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["focal_point"] == {"x": 0.1, "y": 0.8, "radius": None, "kind": "manual"}
    # The crops as they are: still the old ones.
    listed = {r["url"] for r in body["renditions"] if r["name"] == "thumb"}
    assert listed == {default_storage.url(key) for key in before}
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert image.crops_outdated
    assert thumb_keys(image) == before
    assert not shows_the_marker(image)


@pytest.mark.django_db(transaction=True)
def test_saving_the_same_point_again_once_the_store_is_back_cuts_the_crops(
    marked: Image, token_client: APIClient, renditions_disk: Any
) -> None:
    point = {"focal_point": {"x": 0.1, "y": 0.8, "radius": None}}
    renditions_disk.full = True
    assert token_client.patch(f"{URL}{marked.pk}/", point, format="json").status_code == 202
    renditions_disk.full = False
    again = token_client.patch(f"{URL}{marked.pk}/", point, format="json")
    assert again.status_code == 200, again.content
    image = Image.objects.get(pk=marked.pk)
    assert not image.crops_outdated
    assert image.crops_point == FocalPoint(*MARKER_AT)
    assert shows_the_marker(image)
    listed = {r["url"] for r in again.json()["renditions"] if r["name"] == "thumb"}
    assert listed == {default_storage.url(key) for key in thumb_keys(image)}


@pytest.mark.django_db(transaction=True)
def test_the_admin_saves_a_point_while_the_store_is_full_and_says_the_crops_come_later(
    marked: Image, admin_client: Client, renditions_disk: Any
) -> None:
    url = f"/admin/uploads/image/{marked.pk}/change/"
    form = {**change_form(admin_client, marked), "focal_x": "0.1", "focal_y": "0.8", "focal_radius": ""}
    warning = "The focal point was saved, but the cropped renditions could not be cut again now"
    renditions_disk.full = True
    response = admin_client.post(url, form, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert warning in page
    assert "was changed successfully" in page
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert image.crops_outdated

    renditions_disk.full = False
    again = admin_client.post(url, form, follow=True)
    assert warning not in again.content.decode()
    image = Image.objects.get(pk=marked.pk)
    assert not image.crops_outdated
    assert shows_the_marker(image)


@pytest.mark.django_db
def test_crops_no_decoder_could_be_started_for_are_left_for_the_sweep_saying_so(
    marked: Image, commit: Any, caplog: pytest.LogCaptureFixture, no_process_can_start: None
) -> None:
    before = thumb_keys(marked)
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
    assert services.image_sweep_moved_crops() == 0
    assert "crops left for the sweep, no process to decode it could be started" in caplog.text
    assert "crops of images left for the next sweep, no process to decode it could be started" in caplog.text
    assert "the store is unavailable" not in caplog.text
    image = Image.objects.get(pk=marked.pk)
    assert image.crops_outdated  # cut by a later round
    assert thumb_keys(image) == before


@pytest.mark.django_db
def test_the_sweep_cuts_the_crops_a_full_store_left_around_the_old_point(
    marked: Image, commit: Any, renditions_disk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Processing recorded what it cut the crops around: nothing is owed.
    assert marked.crops_point == marked.focal_point_auto
    assert services.image_sweep_moved_crops() == 0
    renditions_disk.full = True
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
    assert "crops left for the sweep" in caplog.text
    # Still full: left for a later round.
    assert services.image_sweep_moved_crops() == 0
    assert Image.objects.get(pk=marked.pk).crops_outdated

    renditions_disk.full = False
    caplog.clear()
    with commit():
        embedded.sweep()  # a round of the embedded set-up's sweeper
    image = Image.objects.get(pk=marked.pk)
    assert not image.crops_outdated
    assert shows_the_marker(image)
    assert f"cut again the crops of 1 of 1 images whose focal point had moved: [{marked.pk}]" in caplog.text
    assert tasks.sweep_moved_crops() == 0  # the worker's periodic run finds nothing left


@pytest.mark.django_db
def test_the_sweep_cuts_a_bounded_batch_each_round(
    marked: Image, commit: Any, renditions_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = ImageFactory.create(file=marked_png())
    with commit():
        services.image_set_focal_point(image=other, focal_point=FocalPoint(*MARKER_AT))
    renditions_disk.full = True
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
        # Back to the estimate: owed too, its crops cut around the marker.
        services.image_set_focal_point(image=other, focal_point=None)
    assert {i.pk for i in Image.objects.all() if i.crops_outdated} == {marked.pk, other.pk}
    renditions_disk.full = False
    monkeypatch.setattr(services, "RECROP_BATCH", 1)
    assert [services.image_sweep_moved_crops() for _ in range(3)] == [1, 1, 0]
    assert shows_the_marker(Image.objects.get(pk=marked.pk))
    assert not shows_the_marker(Image.objects.get(pk=other.pk))


# Staff's point, the estimate and the point the crops were cut around:
# none, the same as another, or off in x, y or the radius.
STAFF_POINTS = [(None, None, None), (0.5, 0.5, None), (0.5, 0.5, 0.2)]
AUTO_POINTS = [(None, None), (0.5, 0.5), (0.25, 0.5), (0.5, 0.25)]
CROPS_POINTS = [(None, None, None), (0.5, 0.5, None), (0.5, 0.5, 0.2), (0.25, 0.5, None), (0.5, 0.25, None)]


@pytest.mark.django_db
def test_the_sweep_finds_exactly_the_images_whose_crops_are_owed() -> None:
    """Each combination of points, ready or not: the images the sweep's
    condition (and its index) holds are those ``crops_outdated`` says."""
    Image.objects.bulk_create(
        Image(
            file=f"originals/{n}.png",
            sha256=f"{n:064x}",
            format="PNG",
            width=1,
            height=1,
            bytes=1,
            status=status,
            focal_x=staff[0],
            focal_y=staff[1],
            focal_radius=staff[2],
            focal_auto_x=auto[0],
            focal_auto_y=auto[1],
            crops_x=crops[0],
            crops_y=crops[1],
            crops_radius=crops[2],
        )
        for n, (status, staff, auto, crops) in enumerate(
            (status, staff, auto, crops)
            for status in (Image.Status.READY, Image.Status.FAILED)
            for staff in STAFF_POINTS
            for auto in AUTO_POINTS
            for crops in CROPS_POINTS
        )
    )
    owed = {image.pk for image in Image.objects.all() if image.crops_outdated}
    assert 0 < len(owed) < Image.objects.filter(status=Image.Status.READY).count()
    assert set(Image.objects.filter(crops_owed()).values_list("pk", flat=True)) == owed


@pytest.mark.django_db
def test_the_sweep_reads_the_images_whose_crops_are_owed_through_their_index() -> None:
    """Not the whole table (or every ready image) at every round, as it did:
    at 100,000 images that was most of a tenth of a second a minute."""
    ran: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        ran.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        services.image_sweep_moved_crops()
    [(sql, params)] = [(sql, params) for sql, params in ran if 'FROM "uploads_image"' in sql]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " / ".join(row[-1] for row in cursor.fetchall())
    assert "USING INDEX uploads_image_crops_owed_idx" in plan, plan


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.django_db
def test_a_sweep_round_starts_no_recrop_once_its_time_budget_is_spent(
    marked: Image, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each recrop's decoding may take up to the soft time limit: ten in a
    # row would outlast the worker's run, and hold up the embedded sweeper's
    # other chores for twenty minutes.
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120  # a budget of 30 s a round
    others = [ImageFactory.create(file=marked_png()) for _ in range(2)]
    Image.objects.update(focal_x=MARKER_AT[0], focal_y=MARKER_AT[1])
    clock = Clock()
    real = services.image_recrop
    started: list[int] = []

    def taking_20_seconds(*, image_id: int, **kwargs: Any) -> Image | None:
        started.append(image_id)
        clock.now += 20
        return real(image_id=image_id, **kwargs)

    monkeypatch.setattr(services, "time", clock)
    monkeypatch.setattr(services, "image_recrop", taking_20_seconds)
    # The first starts at 0 s, the second at 20 s; at 40 s the budget is spent.
    assert [services.image_sweep_moved_crops() for _ in range(3)] == [2, 1, 0]
    assert sorted(started) == sorted([marked.pk, *(o.pk for o in others)])
    assert all(shows_the_marker(image) for image in Image.objects.all())


@pytest.mark.django_db
def test_processing_records_the_point_it_cut_the_crops_around() -> None:
    image: Image = ImageFactory.create(file=marked_png(), processed=False)
    # Not committed: nothing is cut again after it.
    done = services.image_process(image_id=image.pk)
    assert done is not None
    assert done.crops_point == done.focal_point_auto is not None
    assert not done.crops_outdated
    services.image_set_focal_point(image=done, focal_point=FocalPoint(*MARKER_AT, 0.05))
    redone = services.image_process(image_id=image.pk, force=True)
    assert redone is not None
    assert redone.crops_point == FocalPoint(*MARKER_AT, 0.05)
    assert not redone.crops_outdated


@pytest.mark.django_db
def test_a_point_moved_while_the_image_was_processed_has_the_crops_cut_around_it(
    commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image: Image = ImageFactory.create(file=marked_png(), processed=False)
    real = sandbox.process

    def staff_move_it_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not kwargs.get("crops_only"):
            Image.objects.filter(pk=image.pk).update(focal_x=MARKER_AT[0], focal_y=MARKER_AT[1])
        return result

    monkeypatch.setattr(sandbox, "process", staff_move_it_meanwhile)
    with commit():
        services.image_process(image_id=image.pk)
    done = Image.objects.get(pk=image.pk)
    assert done.crops_point == FocalPoint(*MARKER_AT)
    assert shows_the_marker(done)


@pytest.mark.django_db
def test_crops_that_cannot_be_decoded_again_are_given_up_not_tried_every_round(
    marked: Image, commit: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # What decoding refuses now it refuses in every round of the sweep too
    # (a lowered pixel ceiling or memory limit, a picture too slow to cut):
    # the old crops stay, as before the point moved, and no round decodes it again.
    before = thumb_keys(marked)
    decodes: list[bool] = []

    def too_slow(*args: Any, **kwargs: Any) -> Any:
        decodes.append(kwargs.get("crops_only", False))
        raise sandbox.TimedOut(120)

    monkeypatch.setattr(sandbox, "process", too_slow)
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
    assert decodes == [True]
    assert "crops not remade: took longer than 120 s" in caplog.text
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert not image.crops_outdated
    assert thumb_keys(image) == before
    assert [services.image_sweep_moved_crops() for _ in range(3)] == [0, 0, 0]
    assert decodes == [True]


@pytest.mark.django_db
def test_with_no_soft_time_limit_a_recrop_is_bounded_by_the_hard_one(
    marked: Image, commit: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 0 leaves the hard limit alone, not none at all: a decode that never
    # ended would hold the embedded sweeper for good. The decoder is stopped
    # 15 s before it: in a worker, the hard limit kills the run.
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 180
    limits: list[float | None] = []
    real = sandbox.process

    def timed(*args: Any, **kwargs: Any) -> Any:
        limits.append(kwargs["time_limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox, "process", timed)
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
    assert limits == [165]


@pytest.mark.django_db
def test_with_no_soft_time_limit_a_sweeps_recrop_is_stopped_before_the_hard_limit_of_the_run(
    marked: Image, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard limit counts from the start of the sweep's run: a recrop
    started 40 s into it may decode for what is left short of the margin,
    not for the whole 165 s, which would take the run past the hard limit
    and the pool process down with it."""
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 180  # a budget of 45 s a round
    ImageFactory.create(file=marked_png())
    Image.objects.update(focal_x=MARKER_AT[0], focal_y=MARKER_AT[1])
    clock = Clock()
    limits: list[float] = []
    real = sandbox.process

    def taking_40_seconds(*args: Any, **kwargs: Any) -> Any:
        limits.append(kwargs["time_limit"])
        clock.now += 40
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "time", clock)
    monkeypatch.setattr(sandbox, "process", taking_40_seconds)
    assert services.image_sweep_moved_crops() == 2
    assert limits == [165, 125]


@pytest.mark.django_db
def test_a_recrop_the_workers_time_limit_cuts_off_is_given_up_not_tried_every_run(
    marked: Image, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # In a worker the run's soft time limit (the same 120 s as decoding's own)
    # cuts a slow decode off before decoding's own limit does: the image is
    # as slow to cut as one that ran out of time, and would end every run.
    before = thumb_keys(marked)
    Image.objects.filter(pk=marked.pk).update(focal_x=MARKER_AT[0], focal_y=MARKER_AT[1])
    decodes: list[bool] = []

    def cut_off(*args: Any, **kwargs: Any) -> Any:
        decodes.append(kwargs.get("crops_only", False))
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(sandbox, "process", cut_off)
    assert tasks.sweep_moved_crops() == 0  # ends without an error
    assert decodes == [True]
    assert f"image id={marked.pk}: crops not remade: cut off by the time limit" in caplog.text
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert not image.crops_outdated
    assert thumb_keys(image) == before
    assert [tasks.sweep_moved_crops() for _ in range(3)] == [0, 0, 0]
    assert decodes == [True]


# Committed for real: the recrop runs as the processing's transaction commits.
@pytest.mark.django_db(transaction=True)
def test_the_recrop_a_point_moved_during_processing_owes_waits_for_the_processing_writes_to_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Taking the new crops' keys while the renditions' keys are still held
    # could wait in a circle with a deletion of keys of both (storage.writing).
    real_process, real_recrop = sandbox.process, services.image_recrop
    depths: list[int] = []

    def staff_move_it_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real_process(*args, **kwargs)
        if not kwargs.get("crops_only"):
            Image.objects.update(focal_x=MARKER_AT[0], focal_y=MARKER_AT[1])
        return result

    def recrop(**kwargs: Any) -> Image | None:
        depths.append(storage._writing.depth)
        return real_recrop(**kwargs)

    monkeypatch.setattr(sandbox, "process", staff_move_it_meanwhile)
    monkeypatch.setattr(services, "image_recrop", recrop)
    # Processed as its row commits.
    image: Image = ImageFactory.create(file=marked_png(), processed=False)
    assert depths == [0]
    done = Image.objects.get(pk=image.pk)
    assert done.crops_point == FocalPoint(*MARKER_AT)
    assert shows_the_marker(done)


# Committed as a request commits: its answer tells whether the crops were cut.
@pytest.mark.django_db(transaction=True)
def test_a_point_saved_on_an_image_whose_preset_is_gone_is_not_answered_as_cut_later(
    marked: Image, token_client: APIClient, settings: Any
) -> None:
    # No sweep cuts crops of a preset the settings no longer name: the 202
    # ("the store was unavailable, cut shortly") would promise what never comes.
    settings.IMAGE_PRESETS = {name: spec for name, spec in settings.IMAGE_PRESETS.items() if name != "web"}
    before = thumb_keys(marked)
    response = token_client.post(f"{URL}{marked.pk}/focal-point/", {"x": 0.1, "y": 0.8}, format="json")
    assert response.status_code == 200, response.content
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert not image.crops_outdated
    assert thumb_keys(image) == before  # cut anew once reprocessed with a preset there is


@pytest.mark.django_db(transaction=True)
def test_the_admin_saves_a_point_on_an_image_whose_preset_is_gone_and_says_the_crops_were_not_cut(
    marked: Image, admin_client: Client, settings: Any
) -> None:
    url = f"/admin/uploads/image/{marked.pk}/change/"
    form = {**change_form(admin_client, marked), "focal_x": "0.1", "focal_y": "0.8", "focal_radius": ""}
    settings.IMAGE_PRESETS = {name: spec for name, spec in settings.IMAGE_PRESETS.items() if name != "web"}
    before = thumb_keys(marked)
    response = admin_client.post(url, form, follow=True)
    assert response.status_code == 200
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert (
        "warning",
        "The focal point was saved, but the cropped renditions were not cut again: the image's preset "
        "'web' is no longer configured; reprocess the image with a preset to remake its crops.",
    ) in shown
    assert "image store is unavailable" not in response.content.decode()
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert thumb_keys(image) == before

    # Saved again unchanged, nothing is owed: the warning is not repeated.
    again = admin_client.post(url, form, follow=True)
    assert "no longer configured" not in again.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cause", ["original lost", "decoding refused"])
def test_the_admin_says_the_crops_were_not_cut_when_they_are_given_up(
    marked: Image, admin_client: Client, monkeypatch: pytest.MonkeyPatch, cause: str
) -> None:
    """Given up as for a preset no longer configured, the crops stay around
    the old point: "changed successfully" alone would read as done."""
    url = f"/admin/uploads/image/{marked.pk}/change/"
    form = {**change_form(admin_client, marked), "focal_x": "0.1", "focal_y": "0.8", "focal_radius": ""}
    if cause == "original lost":
        marked.file.storage.delete(marked.file.name)
        said = "its original is missing from the image store"
    else:

        def too_slow(*args: Any, **kwargs: Any) -> Any:
            raise sandbox.TimedOut(120)

        monkeypatch.setattr(sandbox, "process", too_slow)
        said = "could not be decoded again"
    before = thumb_keys(marked)

    response = admin_client.post(url, form, follow=True)

    assert response.status_code == 200
    [(level, shown)] = [
        (m.level_tag, str(m)) for m in response.context["messages"] if m.level_tag != "success"
    ]
    assert level == "warning"
    assert shown.startswith("The focal point was saved, but the cropped renditions were not cut again")
    assert said in shown
    assert "image store is unavailable" not in shown
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert thumb_keys(image) == before


@pytest.mark.django_db(transaction=True)
def test_the_admin_says_nothing_more_when_the_crops_are_cut(marked: Image, admin_client: Client) -> None:
    url = f"/admin/uploads/image/{marked.pk}/change/"
    form = {**change_form(admin_client, marked), "focal_x": "0.1", "focal_y": "0.8", "focal_radius": ""}

    response = admin_client.post(url, form, follow=True)

    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    assert shows_the_marker(Image.objects.get(pk=marked.pk))


@pytest.mark.django_db
def test_the_schema_tells_a_200_may_leave_the_old_crops(visitor: APIClient) -> None:
    # A point saved on an image whose crops are given up (original lost,
    # preset gone, decoding refused) is answered 200: the schema may not
    # promise that the crops are cut around it.
    paths = visitor.get("/api/schema/?format=json").json()["paths"]
    for operation in (
        paths["/api/v1/images/{id}/"]["patch"],
        paths["/api/v1/images/{id}/focal-point/"]["post"],
    ):
        saved, later = (
            operation["responses"]["200"]["description"],
            operation["responses"]["202"]["description"],
        )
        assert "the old crops stay until the image is reprocessed" in saved
        assert "are cut around it shortly" in later


@pytest.mark.django_db
def test_an_original_lost_from_the_store_is_not_waited_for_as_a_store_away(
    marked: Image, commit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Restored from an older backup, deleted by hand: asking again will not
    # bring it back, and every round of the sweep would stop at it, saying
    # the store is away.
    marked.file.storage.delete(marked.file.name)
    before = thumb_keys(marked)
    with commit():
        services.image_set_focal_point(image=marked, focal_point=FocalPoint(*MARKER_AT))
    assert f"image id={marked.pk}: crops not remade: its original" in caplog.text
    assert "left for the sweep" not in caplog.text
    image = Image.objects.get(pk=marked.pk)
    assert image.focal_point == FocalPoint(*MARKER_AT)
    assert not image.crops_outdated
    assert thumb_keys(image) == before
    assert services.image_sweep_moved_crops() == 0
