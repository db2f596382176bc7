"""Behaviour of the Pillow image pipeline, checked by reopening every output."""

from __future__ import annotations

import functools
import io
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import blurhash
import numpy as np
import pytest
from PIL import (
    GifImagePlugin,
    Image,
    ImageChops,
    ImageCms,
    ImageDraw,
    ImageFile,
    ImageOps,
    ImageStat,
    PngImagePlugin,
    TiffImagePlugin,
)

from tests.uploads import corpus
from uploads import processing
from uploads.processing import (
    DEFAULT_PRESETS,
    ImageInfo,
    ImageRejected,
    Output,
    Preset,
    ProcessingError,
    Result,
    probe,
    process,
)

WEB = DEFAULT_PRESETS["web"]
RGB = tuple[int, int, int]


# --------------------------------------------------------------------------
# Helpers


def opened(output: Output) -> Image.Image:
    img = Image.open(io.BytesIO(output.data))
    img.load()
    return img


def only(result: Result, name: str, fmt: str) -> Output:
    matches = [o for o in result.outputs if o.name == name and o.format == fmt]
    assert len(matches) == 1, [(o.name, o.format) for o in result.outputs]
    return matches[0]


def rgb_at(img: Image.Image, xy: tuple[int, int]) -> RGB:
    pixel = img.convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def preset(**kwargs: object) -> Preset:
    return Preset.from_dict("test", kwargs)


@functools.cache
def photo_jpeg(width: int, height: int) -> bytes:
    return corpus.photo_jpeg(width, height, quality=85)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, int]]]:
    """What the test decodes: the mode and size of each picture Pillow loads."""
    loads: list[tuple[str, tuple[int, int]]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        loads.append((self.mode, self.size))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return loads


@pytest.fixture(scope="module")
def web_result() -> Result:
    return process(photo_jpeg(1800, 1200), WEB)


# --------------------------------------------------------------------------
# Geometry


def test_web_preset_renders_every_width_then_the_thumbnail_in_each_format(web_result: Result) -> None:
    assert [(o.name, o.format) for o in web_result.outputs] == [
        (name, fmt) for name in ("w320", "w640", "w1024", "w1600", "thumb") for fmt in ("webp", "jpeg")
    ]


@pytest.mark.parametrize("width", [320, 640, 1024, 1600])
def test_web_widths_keep_the_aspect_ratio_with_rounded_heights(web_result: Result, width: int) -> None:
    expected = (width, round(1200 * width / 1800))
    for fmt, pillow_format in (("webp", "WEBP"), ("jpeg", "JPEG")):
        output = only(web_result, f"w{width}", fmt)
        img = opened(output)
        assert img.format == pillow_format
        assert img.size == expected == (output.width, output.height)


def test_thumbnail_is_exactly_256_square(web_result: Result) -> None:
    for fmt in ("webp", "jpeg"):
        output = only(web_result, "thumb", fmt)
        assert opened(output).size == (256, 256) == (output.width, output.height)


@pytest.mark.parametrize("tall", [False, True], ids=["wide", "tall"])
def test_thumbnail_is_a_centre_cover_crop_of_a_wide_or_tall_image(tall: bool) -> None:
    # Three bands across the longer side: only the middle one may survive a
    # centred square crop, not even a pixel of either other one.
    img = Image.new("RGB", (900, 300), (0, 0, 255))
    img.paste((255, 0, 0), (300, 0, 600, 300))
    img = img.transpose(Image.Transpose.TRANSPOSE) if tall else img
    result = process(corpus.png(img), preset(thumbnail=256, formats=["png"]))
    thumb = opened(only(result, "thumb", "png"))
    assert thumb.size == (256, 256)
    for xy in [(2, 2), (253, 2), (128, 128), (2, 253), (253, 253)]:
        assert close_to(rgb_at(thumb, xy), (255, 0, 0), 8), xy


def test_widths_above_the_source_are_skipped_never_upscaled() -> None:
    result = process(corpus.png(corpus.quadrants(700, 500)), WEB)
    assert sorted({o.name for o in result.outputs}) == ["thumb", "w320", "w640"]
    assert opened(only(result, "w640", "jpeg")).size == (640, round(500 * 640 / 700))


def test_when_every_width_is_above_the_source_one_rendition_keeps_the_source_width() -> None:
    result = process(corpus.png(corpus.quadrants(80, 60)), WEB)
    assert [(o.name, o.width, o.height) for o in result.outputs if o.format == "jpeg"] == [
        ("w80", 80, 60),
        ("thumb", 60, 60),  # a thumbnail is not upscaled either
    ]


def test_a_tall_narrow_image_gets_every_rendition_within_the_webp_limit() -> None:
    # Band of colour at the top and bottom: both ends must survive the shrink.
    img = Image.new("RGB", (800, 30000), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 800, 1000))
    img.paste((0, 0, 255), (0, 29000, 800, 30000))
    data = corpus.png(img)
    del img
    result = process(data, WEB)
    # w640 would be 640x24000, over WebP's 16383: it is made at the largest
    # size that fits, named after its real width; w320 fits as it is.
    assert [(o.name, o.format, o.width, o.height) for o in result.outputs] == [
        ("w320", "webp", 320, 12000),
        ("w320", "jpeg", 320, 12000),
        ("w437", "webp", 437, 16383),
        ("w437", "jpeg", 437, 16383),
        ("thumb", "webp", 256, 256),
        ("thumb", "jpeg", 256, 256),
    ]
    for output in result.outputs:
        assert opened(output).size == (output.width, output.height)
    shrunk = opened(only(result, "w437", "jpeg"))
    assert close_to(rgb_at(shrunk, (218, 100)), (255, 0, 0), 12)
    assert close_to(rgb_at(shrunk, (218, 16283)), (0, 0, 255), 12)


@pytest.mark.parametrize(
    ("size", "formats", "expected"),
    [
        ((1, 20000), ["webp", "jpeg"], [("w1", 1, 16383), ("thumb", 1, 1)]),
        ((200, 20000), ["webp"], [("w164", 164, 16383), ("thumb", 200, 200)]),
        ((200, 20000), ["jpeg", "png"], [("w200", 200, 20000), ("thumb", 200, 200)]),
        ((1, 40000), ["avif"], [("w1", 1, 32768), ("thumb", 1, 1)]),
    ],
)
def test_a_rendition_too_tall_for_a_codec_is_made_at_the_largest_size_it_takes(
    size: tuple[int, int], formats: list[str], expected: list[tuple[str, int, int]]
) -> None:
    data = corpus.png(Image.new("L", size, 128))
    result = process(data, preset(widths=[320, 640], thumbnail=256, formats=formats))
    for fmt in formats:
        made = [(o.name, o.width, o.height) for o in result.outputs if o.format == fmt]
        assert made == expected
    for output in result.outputs:
        assert opened(output).size == (output.width, output.height)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"fit": [20000, 100]}, ("fit", 16383, 82)),
        ({"size": [20000, 50]}, ("icon", 16383, 41)),
        ({"size": [20000, 50], "crop": True}, ("icon", 16383, 41)),
    ],
)
def test_a_fit_or_size_too_wide_for_webp_is_made_at_the_largest_size_it_takes(
    options: dict[str, object], expected: tuple[str, int, int]
) -> None:
    data = corpus.png(Image.new("L", (20000, 100), 128))
    (output,) = process(data, preset(formats=["webp"], **options)).outputs
    assert (output.name, output.width, output.height) == expected
    assert opened(output).size == expected[1:]


def test_a_width_of_a_sliver_keeps_one_pixel_of_its_thin_side() -> None:
    data = corpus.png(Image.new("L", (4000, 3), 128))  # 0.24 px high at 320, 0.45 px at 600
    result = process(data, preset(widths=[320], fit=[600, 400], formats=["png"]))
    assert [(o.name, o.width, o.height) for o in result.outputs] == [("w320", 320, 1), ("fit", 600, 1)]
    for output in result.outputs:
        assert opened(output).size == (output.width, output.height)


def test_icon_preset_rotates_clockwise_then_resizes_to_exactly_128() -> None:
    # Icon deliveries arrive turned a quarter counter-clockwise.
    result = process(corpus.icon_tiff(), DEFAULT_PRESETS["icon"])
    assert [(o.name, o.format) for o in result.outputs] == [("icon", "jpeg")]
    icon = opened(result.outputs[0])
    assert icon.size == (128, 128)
    assert close_to(rgb_at(icon, (16, 16)), corpus.TOP_LEFT, 20)
    assert close_to(rgb_at(icon, (112, 16)), corpus.TOP_RIGHT, 20)
    assert close_to(rgb_at(icon, (16, 112)), corpus.BOTTOM_LEFT, 20)
    assert close_to(rgb_at(icon, (112, 112)), corpus.BOTTOM_RIGHT, 20)


def test_exact_size_ignores_the_aspect_ratio() -> None:
    result = process(corpus.png(corpus.quadrants(300, 100)), preset(size=[50, 80], formats=["png"]))
    assert opened(result.outputs[0]).size == (50, 80)


def test_supplier_preset_fits_a_3000x2000_rgba_tiff_into_a_600x400_rgb_jpeg() -> None:
    result = process(corpus.supplier_tiff(), DEFAULT_PRESETS["supplier"])
    assert [(o.name, o.format, o.width, o.height) for o in result.outputs] == [("fit", "jpeg", 600, 400)]
    img = opened(result.outputs[0])
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (600, 400))
    assert close_to(rgb_at(img, (5, 5)), (255, 255, 255), 4)  # transparent border -> white
    assert close_to(rgb_at(img, (100, 200)), (30, 90, 200), 12)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((500, 1000), (200, 400)), ((1200, 400), (600, 200)), ((100, 50), (100, 50))],
)
def test_fit_keeps_the_aspect_ratio_and_never_upscales(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    result = process(corpus.png(corpus.quadrants(*size)), DEFAULT_PRESETS["supplier"])
    assert opened(result.outputs[0]).size == expected


# --------------------------------------------------------------------------
# Orientation


# A point inside each quadrant of an 80x60 picture and the colour it must show
# once the picture is upright: four distinct corners tell all eight
# orientations apart (a rotation from a flip, 5 from 7, 6 from 8).
UPRIGHT_CORNERS = {
    (8, 8): corpus.TOP_LEFT,
    (72, 8): corpus.TOP_RIGHT,
    (8, 52): corpus.BOTTOM_LEFT,
    (72, 52): corpus.BOTTOM_RIGHT,
}


def assert_upright(img: Image.Image) -> None:
    assert img.size == (80, 60)
    for xy, colour in UPRIGHT_CORNERS.items():
        assert close_to(rgb_at(img, xy), colour, 30), (xy, rgb_at(img, xy), colour)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_orientation_fixtures_are_upright_by_pillows_own_reading(orientation: int) -> None:
    """The reference, independent of the pipeline: Pillow's ``exif_transpose``
    shows each fixture upright, and (but for 1) its stored pixels are not."""
    with Image.open(io.BytesIO(corpus.oriented_jpeg(orientation))) as stored:
        assert stored.getexif()[0x0112] == orientation
        assert_upright(ImageOps.exif_transpose(stored))
        if orientation != 1:
            with pytest.raises(AssertionError):
                assert_upright(stored.convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_lands_the_marked_corner_top_left(orientation: int) -> None:
    result = process(corpus.oriented_jpeg(orientation), preset(widths=[80], formats=["png", "jpeg"]))
    assert (result.info.width, result.info.height) == (80, 60)
    for output in result.outputs:
        img = opened(output)
        assert_upright(img)
        assert 0x0112 not in img.getexif()


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_tiff_orientation_lands_the_marked_corner_top_left(orientation: int, compression: str) -> None:
    data = corpus.oriented_tiff(orientation, compression)
    info = probe(data, max_pixels=10_000)
    assert (info.width, info.height) == (80, 60)
    assert_upright(opened(process(data, preset(widths=[80], formats=["png"])).outputs[0]))


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_probe_reports_the_display_size_of_turned_photos(orientation: int) -> None:
    info = probe(corpus.oriented_jpeg(orientation), max_pixels=10_000)
    assert (info.width, info.height) == (80, 60)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_an_orientation_only_in_xmp_is_not_applied_as_no_browser_applies_it(fmt: str) -> None:
    data = corpus.xmp_oriented(fmt, 6)
    with Image.open(io.BytesIO(data)) as stored:
        # The trap: Pillow's own reading takes the XMP value for the EXIF one.
        assert stored.getexif().get(0x0112) == 6
    info = probe(data, max_pixels=10_000)
    assert (info.width, info.height) == (80, 60)
    result = process(data, preset(widths=[80], formats=["png"]))
    assert_upright(opened(result.outputs[0]))


def test_an_exif_orientation_wins_over_a_stale_xmp_one() -> None:
    stored = Image.open(io.BytesIO(corpus.oriented_jpeg(6)))
    exif = stored.getexif()
    data = corpus.jpeg(stored, quality=95, exif=exif.tobytes(), xmp=corpus.xmp_orientation_packet(3))
    assert_upright(opened(process(data, preset(widths=[80], formats=["png"])).outputs[0]))


@pytest.mark.parametrize("animated", [False, True], ids=["png", "apng"])
def test_a_png_exif_chunk_starting_as_a_jpegs_exif_does_is_not_applied_as_browsers_do_not(
    animated: bool,
) -> None:
    """An eXIf chunk starts with the TIFF header; one that starts with the
    ``Exif\\0\\0`` of a JPEG's APP1 segment is no EXIF to Chromium."""
    upright = corpus.apng_with_default_image() if animated else corpus.png()
    tiff = corpus.exif_orientation_tiff(6)
    turned = corpus.with_png_chunk(upright, b"eXIf", tiff, before=b"IDAT")
    assert opened(process(turned, preset(widths=[80], formats=["png"])).outputs[0]).size == (60, 80)
    data = corpus.with_png_chunk(upright, b"eXIf", b"Exif\0\0" + tiff, before=b"IDAT")
    info = probe(data, max_pixels=80 * 60 * 3)
    assert (info.width, info.height) == (80, 60)
    assert_upright(opened(process(data, preset(widths=[80], formats=["png"])).outputs[0]))


@pytest.mark.parametrize(
    ("animated", "before"),
    [(False, b"IEND"), (True, b"fcTL"), (True, b"IEND")],
    ids=["png", "apng-before-its-first-frame", "apng-at-its-end"],
)
def test_a_png_exif_chunk_after_its_first_pixel_data_is_not_applied_as_browsers_do_not(
    animated: bool, before: bytes
) -> None:
    """Only an eXIf chunk before the first IDAT counts (the PNG and HTML
    specifications, Chromium): a picture shown cannot turn once drawn. An
    animated PNG's hidden still is that first pixel data, too."""
    upright = corpus.apng_with_default_image() if animated else corpus.png()
    data = corpus.with_png_chunk(upright, b"eXIf", corpus.exif_orientation_tiff(6), before=before)
    info = probe(data, max_pixels=80 * 60 * 3)
    assert (info.width, info.height) == (80, 60)
    result = process(data, preset(widths=[80], formats=["png"]))
    assert (result.info.width, result.info.height) == (80, 60)
    assert_upright(opened(result.outputs[0]))


def test_preset_rotation_is_applied_after_the_exif_orientation() -> None:
    result = process(corpus.oriented_jpeg(6), preset(widths=[80], rotate=90, formats=["png"]))
    img = opened(result.outputs[0])
    assert img.size == (60, 80)
    # Upright first, then a quarter turn clockwise: the top-left corner moves top-right.
    assert close_to(rgb_at(img, (52, 8)), corpus.TOP_LEFT, 30)
    assert close_to(rgb_at(img, (8, 8)), corpus.BOTTOM_LEFT, 30)


# --------------------------------------------------------------------------
# Colour


def _srgb_encode(linear: float) -> int:
    linear = min(1.0, max(0.0, linear))
    value = 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055
    return round(value * 255)


def _srgb_decode(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


# Linear RGB -> linear sRGB, both D65: textbook matrices, independent of the
# corpus code that built the profiles.
ADOBE_TO_SRGB = ((1.39836, -0.39836, 0.0), (0.0, 1.0, 0.0), (0.0, -0.04293, 1.04293))
P3_TO_SRGB = ((1.22494, -0.22494, 0.0), (-0.04206, 1.04206, 0.0), (-0.01964, -0.07864, 1.09828))


def _expected(color: RGB, matrix: tuple[tuple[float, ...], ...], decode: functools.partial[float]) -> RGB:
    linear = [decode(c) for c in color]
    out = [sum(matrix[i][k] * linear[k] for k in range(3)) for i in range(3)]
    return (_srgb_encode(out[0]), _srgb_encode(out[1]), _srgb_encode(out[2]))


def _gamma(gamma: float, value: int) -> float:
    return (value / 255) ** gamma


def _srgb(value: int) -> float:
    return _srgb_decode(value)


PNG_ONLY = Preset("png", widths=(64,), formats=("png",))


def test_adobe_rgb_pixels_are_converted_to_srgb() -> None:
    color = (60, 180, 60)
    result = process(corpus.jpeg_with_profile(color, corpus.adobe_rgb_profile()), PNG_ONLY)
    actual = rgb_at(opened(result.outputs[0]), (32, 24))
    expected = _expected(color, ADOBE_TO_SRGB, functools.partial(_gamma, 563 / 256))
    assert close_to(actual, expected, 3), (actual, expected)
    # Adobe RGB green is greener than sRGB can show: red drops to nothing.
    assert actual[0] < color[0] - 40


def test_a_large_adobe_rgb_jpeg_decoded_at_reduced_scale_is_converted_too(
    decoded: list[tuple[str, tuple[int, int]]],
) -> None:
    # Luma and colour decoded apart (see test_a_large_jpeg_is_decoded_at_reduced_scale):
    # the profile must follow the merged picture into the conversion.
    color = (60, 180, 60)
    data = corpus.jpeg_with_profile(color, corpus.adobe_rgb_profile(), size=(4000, 3000))
    result = process(data, Preset("png", widths=(1600,), formats=("png",)))
    assert "L" in {mode for mode, _ in decoded}  # the path under test
    actual = rgb_at(opened(result.outputs[0]), (800, 600))
    expected = _expected(color, ADOBE_TO_SRGB, functools.partial(_gamma, 563 / 256))
    assert close_to(actual, expected, 3), (actual, expected)
    assert "icc_profile" not in opened(result.outputs[0]).info


def test_display_p3_pixels_are_converted_to_srgb() -> None:
    color = (220, 60, 40)
    result = process(corpus.png_with_profile(color, corpus.display_p3_profile()), PNG_ONLY)
    actual = rgb_at(opened(result.outputs[0]), (32, 24))
    expected = _expected(color, P3_TO_SRGB, functools.partial(_srgb))
    assert close_to(actual, expected, 3), (actual, expected)
    assert actual[0] > color[0] + 10


def test_an_srgb_profile_leaves_colours_unchanged() -> None:
    color = (60, 120, 180)
    result = process(corpus.jpeg_with_profile(color, corpus.srgb_profile()), PNG_ONLY)
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), color, 2)


def test_an_unreadable_profile_is_ignored_rather_than_failing_the_upload() -> None:
    data = corpus.jpeg_with_profile((60, 120, 180), b"not an icc profile at all" * 8)
    result = process(data, PNG_ONLY)
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), (60, 120, 180), 2)


def test_a_profile_that_parses_but_cannot_convert_is_ignored() -> None:
    damaged = bytearray(corpus.srgb_profile())
    damaged[132:200] = b"\xff" * 68  # the tag table
    data = corpus.jpeg_with_profile((60, 120, 180), bytes(damaged))
    result = process(data, PNG_ONLY)
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), (60, 120, 180), 2)


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_grey_pixels_with_a_grey_profile_are_converted_with_or_without_alpha(mode: str) -> None:
    result = process(corpus.png_gray_with_profile(mode, 128), PNG_ONLY)
    img = opened(result.outputs[0])
    # Linear 128/255 is sRGB 188: what a colour-managed browser shows.
    expected = _srgb_encode(128 / 255)
    assert close_to(rgb_at(img, (60, 24)), (expected,) * 3, 2), rgb_at(img, (60, 24))
    if mode == "LA":
        assert img.mode == "RGBA"
        assert img.getchannel("A").getpixel((5, 24)) == 0
        assert img.getchannel("A").getpixel((60, 24)) == 255


@pytest.mark.parametrize("grey", [True, False])
def test_a_png_gamma_without_a_profile_is_honoured_as_browsers_do(grey: bool) -> None:
    data = corpus.png_with_gamma(128 if grey else (128, 128, 128), 1.0)  # linear samples
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    expected = _srgb_encode(128 / 255)  # 188
    assert close_to(actual, (expected,) * 3, 2), actual


def test_png_chromaticities_and_gamma_without_a_profile_are_converted_to_srgb() -> None:
    color = (220, 60, 40)
    data = corpus.png_with_gamma(color, 1 / 2.2, corpus.DISPLAY_P3_PRIMARIES)
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    expected = _expected(color, P3_TO_SRGB, functools.partial(_gamma, 2.2))
    assert close_to(actual, expected, 3), (actual, expected)


@pytest.mark.parametrize(
    "primaries",
    [
        ((0.64, 0.0), (0.30, 0.60), (0.15, 0.06)),  # a primary at y = 0
        ((0.30, 0.60), (0.30, 0.60), (0.30, 0.60)),  # three times the same primary
    ],
)
def test_a_png_gamma_holds_when_its_chromaticities_make_no_sense(
    primaries: tuple[tuple[float, float], ...],
) -> None:
    data = corpus.png_with_gamma((128, 128, 128), 1.0, primaries)  # linear samples
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    assert close_to(actual, (_srgb_encode(128 / 255),) * 3, 2), actual  # 188, as with sRGB's primaries


@pytest.mark.parametrize("gamma", [0.4319, 0.45455, 0.4772])
@pytest.mark.parametrize("grey", [True, False])
def test_a_png_gamma_alone_close_to_1_over_2_2_is_taken_for_srgb_as_browsers_do(
    gamma: float, grey: bool
) -> None:
    # libpng's test: within 5 % of 1/2.2 once multiplied by 2.2. As a power
    # curve 20 would come out as 12.
    data = corpus.png_with_gamma(20 if grey else (20, 20, 20), gamma)
    assert rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)) == (20, 20, 20)


@pytest.mark.parametrize("gamma", [0.4318, 0.4773])
def test_a_png_gamma_alone_further_from_1_over_2_2_is_a_power_curve(gamma: float) -> None:
    data = corpus.png_with_gamma((20, 20, 20), gamma)
    expected = _srgb_encode(_gamma(1 / gamma, 20))
    assert close_to(rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)), (expected,) * 3, 1)


def test_a_png_gamma_of_1_over_2_2_with_chromaticities_stays_a_power_curve() -> None:
    data = corpus.png_with_gamma((20, 20, 20), 0.45455, ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)))
    expected = _srgb_encode(_gamma(2.2, 20))  # 12
    assert close_to(rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)), (expected,) * 3, 1)


def test_png_chromaticities_without_a_gamma_are_ignored_as_browsers_do() -> None:
    data = corpus.png_with_gamma((220, 60, 40), None, corpus.DISPLAY_P3_PRIMARIES)
    assert rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)) == (220, 60, 40)


@pytest.mark.parametrize(
    "iccp",
    [
        b"Damaged\0\0" + zlib.compress(b"not a profile" * 20),
        b"Not compressed\0\0" + b"not a zlib stream" * 4,
        b"Empty\0\0" + zlib.compress(b""),
    ],
    ids=["damaged", "not compressed", "empty"],
)
def test_a_png_gamma_holds_where_its_profile_cannot_be_read(iccp: bytes) -> None:
    data = corpus.png_with_gamma((128, 128, 128), 1.0, iccp=iccp)  # linear samples
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    assert close_to(actual, (_srgb_encode(128 / 255),) * 3, 2), actual  # 188, as browsers show it


@pytest.mark.parametrize(
    ("color", "profile"),
    [
        ((128, 128, 128), lambda: corpus.icc_gray_profile("Grey", 2.2)),
        (128, corpus.srgb_profile),
    ],
    ids=["grey profile on colour", "colour profile on grey"],
)
def test_a_png_gamma_holds_where_its_profile_is_of_another_colour_space(
    color: int | tuple[int, int, int], profile: Any
) -> None:
    # libpng drops such an iCCP ("Gray color space not permitted on RGB PNG"),
    # and browsers go by the gAMA after it.
    iccp = b"Other\0\0" + zlib.compress(profile())
    data = corpus.png_with_gamma(color, 1.0, iccp=iccp)  # linear samples
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    assert close_to(actual, (_srgb_encode(128 / 255),) * 3, 2), actual  # 188, as browsers show it


@pytest.mark.parametrize("megabytes", [2, 7])
def test_a_png_profile_larger_than_pillow_unpacks_is_honoured_as_browsers_do(megabytes: int) -> None:
    # libpng reads a profile of up to 8 MB (a printer's, of large tables);
    # Pillow refuses the whole file past 1 MB.
    profile = corpus.display_p3_profile(padded_to=megabytes * 1024 * 1024)
    data = corpus.png_with_profile((220, 60, 40), profile)
    assert probe(data, max_pixels=50_000_000).format == "PNG"
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    expected = _expected((220, 60, 40), P3_TO_SRGB, functools.partial(_srgb))
    assert close_to(actual, expected, 3), (actual, expected)


def test_a_large_png_profile_is_honoured_on_an_animated_pngs_whole_still() -> None:
    # The animation is read before the still is gone back to, as a viewer
    # without animation shows it.
    iccp = b"P3\0\0" + zlib.compress(corpus.display_p3_profile(padded_to=2 * 1024 * 1024))
    broken = corpus.apng_with_broken_animation("corrupt", still_colour=(220, 60, 40))
    data = corpus.with_png_chunk(broken, b"iCCP", iccp, before=b"IDAT")
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (40, 30))
    expected = _expected((220, 60, 40), P3_TO_SRGB, functools.partial(_srgb))
    assert close_to(actual, expected, 3), (actual, expected)


@pytest.mark.parametrize(
    "iccp",
    [
        b"Huge\0\0" + zlib.compress(corpus.display_p3_profile(padded_to=9 * 1024 * 1024)),
        b"Unknown method\0\1" + zlib.compress(corpus.display_p3_profile()),
        b"No name" + zlib.compress(corpus.display_p3_profile()),
    ],
    ids=["past 8 MB", "unknown compression", "no name"],
)
def test_a_png_profile_libpng_ignores_leaves_the_picture_to_its_gamma(iccp: bytes) -> None:
    data = corpus.png_with_gamma((128, 128, 128), 1.0, iccp=iccp)  # linear samples
    assert probe(data, max_pixels=50_000_000).format == "PNG"
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    assert close_to(actual, (_srgb_encode(128 / 255),) * 3, 2), actual  # 188, as browsers show it


def test_a_pngs_first_colour_profile_is_the_one_honoured_as_browsers_do() -> None:
    # libpng ignores a second iCCP ("too many profiles"); Pillow kept the last.
    data = corpus.with_png_chunk(
        corpus.png_with_profile((220, 60, 40), corpus.display_p3_profile()),
        b"iCCP",
        b"sRGB\0\0" + zlib.compress(corpus.srgb_profile()),
        before=b"IDAT",
    )
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    expected = _expected((220, 60, 40), P3_TO_SRGB, functools.partial(_srgb))
    assert close_to(actual, expected, 3), (actual, expected)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_profile_where(*chunks: bytes) -> bytes:
    """A 64x48 RGB PNG of (220, 60, 40) with a Display P3 profile, its
    ``IDAT`` and ``iCCP`` chunks in the order ``chunks`` gives them."""
    body = {
        b"IDAT": zlib.compress((b"\0" + bytes((220, 60, 40)) * 64) * 48),
        b"iCCP": b"P3\0\0" + zlib.compress(corpus.display_p3_profile()),
    }
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0))
        + b"".join(_png_chunk(kind, body[kind]) for kind in chunks)
        + _png_chunk(b"IEND", b"")
    )


def test_a_small_png_colour_profile_after_the_pixel_data_is_ignored_as_browsers_do() -> None:
    # The PNG specification puts iCCP before the first IDAT; libpng ignores
    # one after it ("out of place"), where Pillow applies it on loading.
    honoured = rgb_at(opened(process(_png_profile_where(b"iCCP", b"IDAT"), PNG_ONLY).outputs[0]), (32, 24))
    expected = _expected((220, 60, 40), P3_TO_SRGB, functools.partial(_srgb))
    assert close_to(honoured, expected, 3), (honoured, expected)  # in its place, it changes the colours

    late = rgb_at(opened(process(_png_profile_where(b"IDAT", b"iCCP"), PNG_ONLY).outputs[0]), (32, 24))
    assert late == (220, 60, 40)


def test_a_png_of_many_colour_profiles_unpacks_only_its_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each unpacks to 8 MB from 8 KB: a 25 MB upload of them took minutes
    # to check, all but the first ignored by browsers.
    unpacked: list[int] = []
    real = processing._png_profile

    def counted(body: bytes) -> tuple[bool, bytes | None]:
        unpacked.append(len(body))
        return real(body)

    monkeypatch.setattr(processing, "_png_profile", counted)
    bomb = b"Bomb\0\0" + zlib.compress(b"\0" * 7_000_000, 9)
    data = corpus.png(corpus.solid((220, 60, 40), (64, 48)))
    for _ in range(50):
        data = corpus.with_png_chunk(data, b"iCCP", bomb, before=b"IDAT")
    data = corpus.with_png_chunk(data, b"iCCP", bomb, before=b"IEND")  # after the pixels
    assert probe(data, max_pixels=50_000_000).format == "PNG"
    assert len(unpacked) == 1
    assert rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)) == (220, 60, 40)


@pytest.mark.parametrize(
    ("profile", "gamma"),
    [(lambda: corpus.icc_gray_profile("Linear grey", 1.0), 0.45455), (corpus.srgb_profile, 1.0)],
    ids=["grey profile", "colour profile"],
)
def test_a_16_bit_grey_png_with_alpha_takes_a_grey_profile_as_a_grey_png_does(
    profile: Any, gamma: float
) -> None:
    """Pillow reads it as RGBA, yet it is grey to libpng and browsers: its
    grey profile holds (over the gAMA), a colour one is dropped for the gAMA."""
    data = corpus.png_16bit_gray_alpha(128 * 257)  # linear samples, by the profile or the gAMA
    data = corpus.with_png_chunk(data, b"gAMA", struct.pack(">I", round(gamma * 100_000)), before=b"IDAT")
    data = corpus.with_png_chunk(data, b"iCCP", b"P\0\0" + zlib.compress(profile()), before=b"IDAT")
    actual = rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24))
    assert close_to(actual, (_srgb_encode(128 / 255),) * 3, 2), actual  # 188, as browsers show it


def test_a_readable_png_profile_still_overrides_its_gamma() -> None:
    iccp = b"sRGB\0\0" + zlib.compress(corpus.srgb_profile())
    data = corpus.png_with_gamma((128, 128, 128), 1.0, iccp=iccp)
    assert close_to(rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)), (128, 128, 128), 1)


def test_an_srgb_chunk_overrides_a_png_gamma_as_the_format_says() -> None:
    data = corpus.png_with_gamma((128, 60, 200), 1.0, corpus.DISPLAY_P3_PRIMARIES, srgb_chunk=True)
    assert close_to(rgb_at(opened(process(data, PNG_ONLY).outputs[0]), (32, 24)), (128, 60, 200), 1)


def test_cmyk_jpeg_becomes_an_rgb_jpeg() -> None:
    result = process(corpus.cmyk_jpeg((0, 255, 255, 0)), preset(widths=[64], formats=["jpeg", "webp"]))
    for output in result.outputs:
        img = opened(output)
        assert img.mode == "RGB"
        assert close_to(rgb_at(img, (32, 24)), (255, 0, 0), 12)


def test_a_cmyk_jpeg_is_converted_by_its_own_profile() -> None:
    profile = corpus.cmyk_profile_of_one_grey()
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        "CMYK",
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
    )
    reference = ImageCms.applyTransform(Image.new("CMYK", (1, 1), (0, 255, 255, 0)), transform)
    assert reference is not None
    grey = rgb_at(reference, (0, 0))
    assert not close_to(grey, (255, 0, 0), 100)  # so the check below can fail
    result = process(corpus.cmyk_jpeg((0, 255, 255, 0), profile=profile), PNG_ONLY)
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), grey, 3)


@pytest.mark.parametrize("name", ["adobe_rgb_jpeg", "display_p3_png", "srgb_jpeg", "jpeg_with_metadata"])
def test_outputs_carry_no_icc_profile(name: str) -> None:
    result = process(
        corpus.SAMPLES_BY_NAME[name].build(), Preset("all", widths=(64,), formats=("jpeg", "webp", "png"))
    )
    for output in result.outputs:
        assert "icc_profile" not in opened(output).info


# --------------------------------------------------------------------------
# Modes and alpha

MODE_CASES = [
    # sample, point, expected RGB(A) in a PNG output
    ("png_16bit_gray", (5, 5), (156, 156, 156, 255)),
    ("png_16bit_gray", (60, 5), (39, 39, 39, 255)),
    ("png_16bit_rgb", (5, 5), (255, 128, 0, 255)),
    ("png_palette", (5, 5), (*corpus.TOP_LEFT, 255)),
    ("png_palette_transparent", (5, 5), (None, None, None, 0)),
    ("png_palette_transparent", (60, 5), (255, 0, 0, 255)),
    ("gif_palette_transparent", (5, 5), (None, None, None, 0)),
    ("gif_palette_transparent", (60, 5), (0, 0, 255, 255)),
    ("png_la", (5, 5), (None, None, None, 0)),
    ("png_la", (60, 5), (128, 128, 128, 255)),
    ("png_rgba", (5, 5), (None, None, None, 0)),
    ("png_rgba", (60, 5), (0, 200, 0, 255)),
    ("png_gray", (5, 5), (90, 90, 90, 255)),
    ("png_gray_transparent", (5, 5), (None, None, None, 0)),
    ("png_gray_transparent", (60, 5), (200, 200, 200, 255)),
    ("png_rgb_transparent", (5, 5), (None, None, None, 0)),
    ("png_rgb_transparent", (60, 5), (0, 200, 0, 255)),
    ("png_bilevel", (5, 5), (0, 0, 0, 255)),
    ("png_bilevel", (60, 5), (255, 255, 255, 255)),
    ("png_bilevel_transparent", (5, 5), (None, None, None, 0)),
    ("png_bilevel_transparent", (60, 5), (255, 255, 255, 255)),
    ("png_16bit_gray_transparent", (5, 5), (None, None, None, 0)),
    ("png_16bit_gray_transparent", (60, 5), (156, 156, 156, 255)),
    ("tiff_int32", (5, 5), (200, 200, 200, 255)),
    ("tiff_float", (5, 5), (128, 128, 128, 255)),
    ("tiff_grey_premultiplied", (5, 5), (None, None, None, 0)),
    ("tiff_grey_premultiplied", (60, 5), (128, 128, 128, 255)),
    ("cmyk_jpeg", (5, 5), (255, 0, 0, 255)),
]


@pytest.mark.parametrize(("name", "point", "expected"), MODE_CASES)
def test_every_input_mode_becomes_sensible_8_bit_output(
    name: str, point: tuple[int, int], expected: tuple[int | None, ...]
) -> None:
    result = process(corpus.SAMPLES_BY_NAME[name].build(), Preset("m", widths=(64,), formats=("png", "jpeg")))
    png_output = opened(only(result, "w64", "png"))
    assert png_output.mode in ("RGB", "RGBA")
    pixel = png_output.convert("RGBA").getpixel(point)
    assert isinstance(pixel, tuple)
    for got, want in zip(pixel, expected, strict=True):
        if want is not None:
            assert abs(got - want) <= 12, (pixel, expected)
    jpeg_output = opened(only(result, "w64", "jpeg"))
    assert jpeg_output.mode == "RGB"


def grey_columns(data: bytes) -> list[int]:
    """The grey of each 16 px column of a ``corpus.tiff_float_columns`` TIFF
    once processed, taken at its middle."""
    (output,) = process(data, Preset("m", widths=(1024,), formats=("png",))).outputs
    grey = opened(output).convert("L")
    assert grey.size == (output.width, 16)
    return [int(cast(int, grey.getpixel((x, 8)))) for x in range(8, grey.width, 16)]


NAN = float("nan")
INF = float("inf")


def test_a_float_tiff_within_0_and_1_is_read_as_0_black_and_1_white() -> None:
    # Scaled by 255 and cut to whole levels (0.25 is 63.75, so 63), never by
    # their own brightest sample nor by a stated range: within [0, 1] floats
    # read as they always have.
    for stated in (None, (0.0, 4095.0)):
        data = corpus.tiff_float_columns([0.0, 0.25, 0.5, 1.0], stated=stated)
        assert grey_columns(data) == [0, 63, 127, 255]
        data = corpus.tiff_float_columns([0.0, 0.25, 0.5], stated=stated)
        assert grey_columns(data) == [0, 63, 127]


@pytest.mark.parametrize(
    "full", [4.0, 255.0, 65535.0, 1e30], ids=["HDR", "8-bit scale", "16-bit scale", "huge"]
)
def test_a_float_tiff_beyond_1_spans_0_to_its_brightest_sample(full: float) -> None:
    samples = [0.0, full / 4, full / 2, full]
    assert grey_columns(corpus.tiff_float_columns(samples)) == [0, 63, 127, 255]


def test_a_float_tiff_beyond_1_spans_the_range_it_states() -> None:
    data = corpus.tiff_float_columns([0.0, 1000.0, 2000.0], stated=(0.0, 4000.0))
    assert grey_columns(data) == [0, 63, 127]
    data = corpus.tiff_float_columns([100.0, 1100.0, 2100.0, 4100.0, 5000.0], stated=(100.0, 4100.0))
    assert grey_columns(data) == [0, 63, 127, 255, 255]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([NAN, 0.5, INF, -INF, 1.0], [0, 127, 255, 0, 255]),
        ([0.5, NAN, 1.0], [127, 0, 255]),
        ([0.0, 500.0, INF, 1000.0, NAN, -INF], [0, 127, 255, 255, 0, 0]),
        ([NAN, NAN], [0, 0]),
    ],
    ids=["within 0 and 1", "NaN after the first", "beyond 1", "NaN alone"],
)
def test_nan_is_black_and_infinities_the_ends_without_moving_the_scale(
    samples: list[float], expected: list[int]
) -> None:
    assert grey_columns(corpus.tiff_float_columns(samples)) == expected


def test_nan_and_infinities_are_found_in_every_part_of_a_tall_float_picture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Looked for a few rows at a time: a NaN or infinity in the last rows
    # counts as much as one in the first.
    monkeypatch.setattr(processing, "_FLOAT_PART_PIXELS", 64 * 3)
    rows = np.array([[0.0, 10.0, 20.0, 40.0]] * 9 + [[NAN, INF, -INF, 40.0]], dtype=np.float32)
    data = io.BytesIO()
    Image.fromarray(rows.repeat(16, axis=0).repeat(16, axis=1)).save(data, "TIFF")
    result = process(data.getvalue(), Preset("m", widths=(64,), formats=("png",)))
    output = opened(only(result, "w64", "png")).convert("L")
    assert [output.getpixel((x, 8)) for x in range(8, 64, 16)] == [0, 63, 127, 255]
    assert [output.getpixel((x, 152)) for x in range(8, 64, 16)] == [0, 255, 0, 255]


def test_a_signed_8_bit_tiff_spans_black_at_its_lowest_to_white_at_its_highest() -> None:
    # Stored as bytes, -1 is 255: read as unsigned the darkest samples came
    # out brightest.
    data = corpus.tiff_integer_columns([-128, -64, -1, 0, 63, 127], bits=8, signed=True)
    assert grey_columns(data) == [0, 64, 127, 128, 191, 255]


def test_a_signed_16_bit_tiff_spans_black_at_its_lowest_to_white_at_its_highest() -> None:
    data = corpus.tiff_integer_columns([-32768, -16384, -1, 0, 16384, 32767], bits=16, signed=True)
    assert grey_columns(data) == [0, 64, 127, 128, 192, 255]


def test_unsigned_integer_tiffs_keep_their_top_byte() -> None:
    data = corpus.tiff_integer_columns([0, 64, 127, 128, 255], bits=8, signed=False)
    assert grey_columns(data) == [0, 64, 127, 128, 255]
    data = corpus.tiff_integer_columns([0, 16384, 32767, 32768, 65535], bits=16, signed=False)
    assert grey_columns(data) == [0, 64, 127, 128, 255]


def test_a_32_bit_integer_tiff_of_16_bit_samples_keeps_their_top_byte() -> None:
    # Samples up to 255 are taken as they are (the corpus's tiff_int32).
    data = corpus.tiff_int32_columns([0, 16384, 32767, 32768, 65535])
    assert grey_columns(data) == [0, 64, 127, 128, 255]


@pytest.mark.parametrize(
    "name",
    [
        "png_rgba",
        "png_la",
        "png_palette_transparent",
        "webp_rgba",
        "png_bilevel_transparent",
        "png_16bit_gray_transparent",
    ],
)
def test_transparent_pixels_become_white_in_jpeg_and_stay_transparent_elsewhere(name: str) -> None:
    result = process(
        corpus.SAMPLES_BY_NAME[name].build(), Preset("a", widths=(64,), formats=("jpeg", "webp", "png"))
    )
    assert close_to(rgb_at(opened(only(result, "w64", "jpeg")), (5, 5)), (255, 255, 255), 3)
    for fmt in ("webp", "png"):
        img = opened(only(result, "w64", fmt))
        assert img.mode == "RGBA", fmt
        assert img.getchannel("A").getpixel((5, 5)) == 0
        assert img.getchannel("A").getpixel((60, 5)) == 255


def test_alpha_survives_lossy_webp() -> None:
    result = process(corpus.png_rgba(), Preset("a", widths=(64,), formats=("webp",), webp_quality=50))
    img = opened(result.outputs[0])
    assert "A" in img.getbands()
    assert img.getchannel("A").getextrema() == (0, 255)


def test_opaque_alpha_is_dropped_to_keep_files_small() -> None:
    result = process(
        corpus.png(corpus.quadrants().convert("RGBA")), Preset("a", widths=(64,), formats=("png",))
    )
    assert opened(result.outputs[0]).mode == "RGB"


def test_resizing_alpha_does_not_bleed_the_colour_of_transparent_pixels() -> None:
    # One-pixel stripes, opaque green and transparent black: halving the width
    # mixes the two in every output pixel. A premultiplied resample keeps the
    # green and halves the alpha; a straight one would also halve the green.
    stripes = Image.new("RGBA", (640, 480), (0, 200, 0, 255))
    for x in range(0, 640, 2):
        stripes.paste((0, 0, 0, 0), (x, 0, x + 1, 480))
    result = process(corpus.png(stripes), Preset("a", widths=(320,), formats=("png",)))
    img = opened(result.outputs[0])
    assert (img.mode, img.size) == ("RGBA", (320, 240))
    inside = img.crop((4, 4, 316, 236))  # away from the edges' ringing

    def extrema(band: str) -> tuple[int, int]:
        low, high = inside.getchannel(band).getextrema()
        assert isinstance(low, int)
        assert isinstance(high, int)
        return low, high

    alpha_low, alpha_high = extrema("A")
    assert 96 <= alpha_low <= alpha_high <= 160  # every pixel is a half-and-half mix
    assert extrema("G")[0] >= 190, extrema("G")
    assert extrema("R")[1] <= 8


def test_animated_gif_keeps_only_the_first_frame() -> None:
    result = process(corpus.gif_animated(), Preset("a", widths=(16,), formats=("webp", "png")))
    assert result.info.frames == 1000
    for output in result.outputs:
        img = opened(output)
        assert getattr(img, "n_frames", 1) == 1
        assert close_to(rgb_at(img, (8, 8)), (255, 0, 0), 10)


# --------------------------------------------------------------------------
# Metadata and encoding


def test_an_animated_png_shows_its_first_frame_not_its_still_for_old_viewers(
    decoded: list[tuple[str, tuple[int, int]]],
) -> None:
    data = corpus.apng_with_default_image()
    assert probe(data, max_pixels=80 * 60 * 3).frames == 3
    assert decoded == []  # the header check decodes no frame to reach the first one
    result = process(data, preset(widths=[80], formats=["png", "webp"]))
    for output in result.outputs:
        assert_upright(opened(output))


def test_an_animated_png_whose_picture_is_its_first_frame_shows_that_frame() -> None:
    result = process(corpus.apng(), preset(widths=[80], formats=["png", "webp"]))
    assert result.info.frames == 2
    for output in result.outputs:
        assert_upright(opened(output))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_an_animated_pngs_first_frame_smaller_than_its_still_shows_none_of_the_still(mode: str) -> None:
    frame = Image.new(mode, (20, 10), "blue")
    data = corpus.apng_with_first_frame(frame, (40, 30), over=True)
    result = process(data, preset(widths=[80], formats=["png", "webp", "jpeg"]))
    for output in result.outputs:
        img = opened(output).convert("RGBA")
        assert img.size == (80, 60)
        shown = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
        colour = shown.getpixel((45, 35))
        assert close_to(colour, rgb_at(frame.convert("RGB"), (0, 0)), 12), (output.format, colour)
        # Outside the frame the canvas is transparent, shown on the page's white.
        assert close_to(shown.getpixel((5, 5)), (255, 255, 255), 4), (output.format, shown.getpixel((5, 5)))
        if output.format == "png":
            assert img.getpixel((5, 5)) == (0, 0, 0, 0)  # nothing of the still is kept
        elif output.format == "webp":
            assert img.getchannel("A").getpixel((5, 5)) == 0


@pytest.mark.parametrize("frames", [1, 3])
def test_what_a_gifs_first_frame_leaves_of_its_screen_is_transparent_as_browsers_show_it(frames: int) -> None:
    frame = Image.new("P", (20, 10), 1)
    frame.putpalette([0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0])
    data = corpus.gif_first_frame_within(frame, (40, 30), frames=frames)
    assert probe(data, max_pixels=50_000_000).frames == frames
    result = process(data, preset(widths=[80], formats=["png", "webp", "jpeg"]))
    for output in result.outputs:
        img = opened(output).convert("RGBA")
        assert img.size == (80, 60)
        shown = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
        assert close_to(shown.getpixel((50, 35)), (0, 0, 255), 12), (output.format, shown.getpixel((50, 35)))
        # Neither the frame's colours nor the screen's background colour.
        assert close_to(shown.getpixel((5, 5)), (255, 255, 255), 4), (output.format, shown.getpixel((5, 5)))
        if output.format in ("png", "webp"):
            assert img.getchannel("A").getpixel((5, 5)) == 0, output.format


def test_an_animated_pngs_half_transparent_first_frame_blends_over_nothing_of_the_still() -> None:
    frame = Image.new("RGBA", (80, 60), (0, 0, 255, 128))
    data = corpus.apng_with_first_frame(frame, (0, 0), over=True)
    result = process(data, preset(widths=[80], formats=["png", "jpeg"]))
    png_output = opened(only(result, "w80", "png")).convert("RGBA")
    assert close_to(png_output.getpixel((40, 30)), (0, 0, 255, 128), 2), png_output.getpixel((40, 30))
    # JPEG: half blue on white, as a page shows it.
    assert close_to(rgb_at(opened(only(result, "w80", "jpeg")), (40, 30)), (127, 127, 255), 8)


def _decode_frame(data: bytes, frame: int) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.seek(frame)
        img.load()


@pytest.mark.parametrize("fault", ["missing", "oversized", "corrupt"])
def test_an_animated_png_whose_animation_is_broken_shows_its_whole_still(fault: str) -> None:
    data = corpus.apng_with_broken_animation(fault)
    with pytest.raises((EOFError, SyntaxError, OSError)):  # the animation is broken indeed
        _decode_frame(data, 1)
    result = process(data, preset(widths=[80], formats=["png"]))
    assert close_to(rgb_at(opened(result.outputs[0]), (40, 30)), (255, 255, 0), 2)


def test_it_strips_gps_exif_xmp_and_comments_from_every_rendition() -> None:
    source = corpus.jpeg_with_metadata()
    assert b"Camera Maker" in source
    assert b"Secret Photographer" in source
    result = process(
        source, Preset("all", widths=(80, 40), thumbnail=32, formats=("jpeg", "webp", "png", "avif"))
    )
    assert len(result.outputs) == 12
    for output in result.outputs:
        img = opened(output)
        assert len(img.getexif()) == 0, (output.name, output.format)
        assert not img.getexif().get_ifd(0x8825)  # GPS
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile"):
            assert key not in img.info, (output.name, output.format, key)
        for secret in (b"Camera Maker", b"Secret Photographer", b"private comment", b"Exif\x00"):
            assert secret not in output.data


def _erased(mode: str, size: tuple[int, int]) -> Image.Image:
    """A flat green picture whose right half was "erased" as editors do:
    made fully transparent, with what was there (a photo) still in its
    colour channels."""
    width, height = size
    img = corpus.photo(width, height).convert("RGB")
    img.paste((0, 200, 0), (0, 0, width // 2, height))
    alpha = Image.new("L", size, 255)
    alpha.paste(0, (width // 2, 0, width, height))
    img = img.convert("L") if mode == "LA" else img
    img.putalpha(alpha)
    return img


def _under_transparency(img: Image.Image) -> ImageStat.Stat:
    """The colour under the fully transparent pixels inside the erased half,
    away from its edge (where lossy codecs smear the visible half over)."""
    img = img.convert("RGBA")
    width, height = img.size
    box = (round(width * 0.65), round(height * 0.1), round(width * 0.95), round(height * 0.9))
    mask = Image.new("L", img.size, 0)
    mask.paste(img.getchannel("A").crop(box).point(lambda a: 255 if a == 0 else 0), box[:2])
    return ImageStat.Stat(img.convert("RGB"), mask=mask)


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGBA", "PNG"), ("RGBA", "WEBP"), ("LA", "PNG"), ("RGBA", "TIFF")]
)
def test_what_was_erased_to_transparency_never_reaches_a_rendition(mode: str, fmt: str) -> None:
    buffer = io.BytesIO()
    _erased(mode, (320, 240)).save(
        buffer, fmt, **({"lossless": True, "exact": True} if fmt == "WEBP" else {})
    )
    assert min(_under_transparency(Image.open(buffer)).stddev) > 30  # the photo is there

    # At the upload's own size nothing is resampled, then downscaled.
    result = process(buffer.getvalue(), preset(widths=[320, 160], formats=["png", "webp", "avif"]))
    assert len(result.outputs) == 6
    for output in result.outputs:
        hidden = _under_transparency(opened(output))
        assert hidden.count[0] > 1000, (output.name, output.format)
        if output.format == "png":  # lossless: exactly the transparent black it was given
            assert hidden.extrema == [(0, 0)] * 3, (output.name, hidden.extrema)
        else:  # lossy: black give or take a level, and flat
            assert max(hidden.mean) <= 2, (output.name, output.format, hidden.mean)
            assert max(hidden.stddev) <= 3, (output.name, output.format, hidden.stddev)


def test_jpeg_outputs_are_progressive_rgb(web_result: Result) -> None:
    # libjpeg always builds optimised Huffman tables for progressive files,
    # so "progressive" is the observable half of "progressive and optimised".
    for output in web_result.outputs:
        if output.format == "jpeg":
            img = opened(output)
            assert img.mode == "RGB"
            assert img.info.get("progressive") or img.info.get("progression")


def test_polyglot_payloads_never_reach_the_outputs() -> None:
    for name in ("gif_with_html", "jpeg_with_script"):
        result = process(corpus.SAMPLES_BY_NAME[name].build(), WEB)
        for output in result.outputs:
            assert b"<script" not in output.data
            assert b"<html" not in output.data


def test_avif_is_produced_only_when_asked_for() -> None:
    assert all(o.format != "avif" for o in process(corpus.jpeg(), WEB).outputs)
    result = process(corpus.jpeg(), Preset("a", widths=(64,), formats=("avif",)))
    img = opened(result.outputs[0])
    assert img.format == "AVIF"
    assert img.size == (64, 48)


def test_outputs_know_their_content_type_and_extension() -> None:
    result = process(corpus.jpeg(), Preset("a", widths=(64,), formats=("jpeg", "webp", "avif", "png")))
    assert [(o.content_type, o.extension) for o in result.outputs] == [
        ("image/jpeg", "jpg"),
        ("image/webp", "webp"),
        ("image/avif", "avif"),
        ("image/png", "png"),
    ]


def test_qualities_come_from_the_preset() -> None:
    formats = ("jpeg", "webp", "avif")
    low = process(
        photo_jpeg(400, 300),
        Preset("l", widths=(400,), formats=formats, jpeg_quality=30, webp_quality=30, avif_quality=30),
    )
    high = process(
        photo_jpeg(400, 300),
        Preset("h", widths=(400,), formats=formats, jpeg_quality=95, webp_quality=95, avif_quality=95),
    )
    assert [o.format for o in low.outputs] == list(formats)
    for a, b in zip(low.outputs, high.outputs, strict=True):
        assert len(a.data) < len(b.data) / 2, a.format


# --------------------------------------------------------------------------
# Placeholder and dominant colour


def test_placeholder_is_a_decodable_blurhash(web_result: Result) -> None:
    assert blurhash.is_valid_blurhash(web_result.placeholder)
    assert len(web_result.placeholder) == 28  # 4x3 components
    decoded = blurhash.decode(web_result.placeholder, 32, 24)
    assert decoded.size == (32, 24)


def test_dominant_colour_is_the_main_colour_of_a_mostly_one_colour_image() -> None:
    img = Image.new("RGB", (400, 300), (200, 40, 40))
    ImageDraw.Draw(img).rectangle((20, 20, 120, 90), fill=(20, 20, 230))
    result = process(corpus.jpeg(img), WEB)
    colour = result.dominant_color
    assert len(colour) == 7
    assert colour.startswith("#")
    assert close_to(tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5)), (200, 40, 40), 16), colour


def test_dominant_colour_of_a_transparent_image_is_taken_on_white() -> None:
    result = process(corpus.png(Image.new("RGBA", (64, 48), (0, 0, 0, 0))), Preset("a", widths=(64,)))
    assert result.dominant_color == "#ffffff"


# --------------------------------------------------------------------------
# Hostile input


@pytest.fixture
def no_global_pillow_changes() -> Iterator[None]:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
    yield
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters)) == before


def _outcome(data: bytes) -> tuple[str, ImageInfo | Result | Exception]:
    """What probe-then-process does with ``data``; any other exception escapes."""
    try:
        probe(data, max_pixels=50_000_000)
    except ImageRejected as rejected:
        return "rejected", rejected
    try:
        return "ok", process(data, WEB)
    except ProcessingError as error:
        return "error", error
    except ImageRejected as late:  # probe passed, so process must not refuse
        return "inconsistent", late


def test_every_sample_expected_to_be_refused_names_its_refusal_code() -> None:
    for sample in corpus.SAMPLES:
        assert (sample.code is not None) == (sample.expect == "rejected"), sample.name


@pytest.mark.usefixtures("no_global_pillow_changes")
@pytest.mark.parametrize("sample", corpus.SAMPLES, ids=lambda s: s.name)
def test_the_hostile_corpus_only_ever_raises_the_two_documented_errors(sample: corpus.Sample) -> None:
    data = sample.build()
    kind, detail = _outcome(data)
    assert kind == sample.expect, detail
    if isinstance(detail, ImageRejected):
        assert str(detail)
        assert detail.code == sample.code
        with pytest.raises(ImageRejected) as again:
            process(data, WEB)
        assert again.value.code == sample.code
    elif isinstance(detail, ProcessingError):
        assert str(detail)
    elif isinstance(detail, Result):
        assert detail.outputs
        for output in detail.outputs:
            opened(output)


@pytest.mark.parametrize("name", ["png_bomb", "gif_bomb", "jpeg_bomb", "gif_frame_bomb"])
def test_bombs_are_rejected_from_the_header_without_decoding(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = corpus.SAMPLES_BY_NAME[name].build()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    monkeypatch.setattr(Image.Image, "load", forbidden)
    for call in (lambda: probe(data, max_pixels=50_000_000), lambda: process(data, WEB)):
        with pytest.raises(ImageRejected) as caught:
            call()
        assert caught.value.code == "pixels"
        assert "the limit is 50000000" in str(caught.value)


def test_a_bomb_message_names_the_claimed_size_and_the_limit() -> None:
    with pytest.raises(
        ImageRejected,
        match=r"^Image has 10000000000 pixels \(100000x100000 x 1 frame\); the limit is 50000000\.$",
    ):
        probe(corpus.png_bomb(), max_pixels=50_000_000)


def test_the_pixel_limit_is_exact() -> None:
    data = corpus.png(corpus.quadrants(80, 60))
    assert probe(data, max_pixels=4800).width == 80
    with pytest.raises(ImageRejected) as caught:
        probe(data, max_pixels=4799)
    assert caught.value.code == "pixels"


def test_frames_count_towards_the_pixel_limit() -> None:
    data = corpus.gif_animated()
    assert probe(data, max_pixels=256_000).frames == 1000
    with pytest.raises(ImageRejected, match=r"16x16 x 1000 frames"):
        probe(data, max_pixels=255_999)


def test_only_the_first_page_of_a_tiff_counts_towards_the_pixel_limit() -> None:
    # Page 1 is the picture and the only page decoded; the others (here a
    # pyramid's smaller levels) are not multiplied by its size.
    pages = [Image.new("RGB", (400 >> level, 300 >> level), (200, 90, 40)) for level in range(4)]
    data = corpus._save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    info = probe(data, max_pixels=120_000)
    assert (info.width, info.height, info.frames) == (400, 300, 4)
    assert opened(only(process(data, WEB, max_pixels=120_000), "w320", "jpeg")).size == (320, 240)
    with pytest.raises(ImageRejected, match=r"^Image has 120000 pixels \(400x300 x 1 frame\)"):
        probe(data, max_pixels=119_999)


def test_a_pyramidal_tiff_is_accepted_at_the_size_of_its_full_resolution() -> None:
    pyvips = pytest.importorskip("pyvips")
    picture = pyvips.Image.black(4000, 3000).new_from_image([200, 90, 40]).cast("uchar")
    data = picture.copy(interpretation="srgb").tiffsave_buffer(tile=True, pyramid=True, compression="deflate")
    info = probe(data, max_pixels=50_000_000)
    assert (info.format, info.width, info.height) == ("TIFF", 4000, 3000)
    assert info.frames > 1


def _pages(kind: str, count: int) -> bytes:
    pages = [Image.new("L", (2, 2), i % 256) for i in range(count)]
    return corpus._save(pages[0], kind, save_all=True, append_images=pages[1:])


@pytest.mark.parametrize("kind", ["TIFF", "GIF"])
def test_frames_are_counted_no_further_than_their_limit(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    # Tiny frames stay far below the pixel limit; counting them is the cost.
    monkeypatch.setattr(processing, "MAX_FRAMES", 50)
    assert probe(_pages(kind, 50), max_pixels=10**6).frames == 50
    seeks: list[int] = []
    plugin = TiffImagePlugin.TiffImageFile if kind == "TIFF" else GifImagePlugin.GifImageFile
    walk = plugin.seek if kind == "TIFF" else plugin._seek

    def counted(img: Image.Image, frame: int, *args: Any, **kwargs: Any) -> Any:
        seeks.append(frame)
        return walk(img, frame, *args, **kwargs)

    monkeypatch.setattr(plugin, walk.__name__, counted)

    with pytest.raises(ImageRejected) as caught:
        probe(_pages(kind, 400), max_pixels=10**6)

    assert caught.value.code == "frames"
    assert str(caught.value) == "The image has more than 50 frames; the limit is 50."
    assert max(seeks) == 50  # frame 51 (index 50) shows there are more; no further


def test_a_gif_frame_past_pillows_own_limit_is_refused_with_ours() -> None:
    # A 1x1 screen whose first frame claims 20000x20000: Pillow's GIF reader
    # raises its own bomb error while opening.
    screen = struct.pack("<HHBBB", 1, 1, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, 20_000, 20_000, 0)
    data = b"GIF89a" + screen + descriptor + b"\x02\x02\x4c\x01\x00;"

    with pytest.raises(ImageRejected) as caught:
        probe(data, max_pixels=50_000_000)

    assert caught.value.code == "pixels"
    assert str(caught.value).endswith("the limit is 50000000.")


def test_a_jpeg_with_a_preview_is_a_jpeg_whose_first_picture_alone_counts() -> None:
    data = corpus.jpeg_with_preview((80, 60), (40, 30))
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.format == "MPO"  # Pillow's name for it
    info = probe(data, max_pixels=80 * 60)
    assert (info.format, info.width, info.height) == ("JPEG", 80, 60)
    with pytest.raises(ImageRejected) as refused:
        probe(data, max_pixels=80 * 60 - 1)
    assert refused.value.code == "pixels"
    result = process(data, preset(widths=[80], formats=["png"]), max_pixels=80 * 60)
    assert result.info.format == "JPEG"
    assert_upright(opened(result.outputs[0]))


def test_a_large_jpeg_with_a_preview_is_decoded_at_reduced_scale(
    decoded: list[tuple[str, tuple[int, int]]],
) -> None:
    small = preset(widths=[320], formats=["png"])
    process(corpus.jpeg(corpus.quadrants(2400, 1800)), small)
    plain, decoded[:] = list(decoded), []
    result = process(corpus.jpeg_with_preview((2400, 1800), (640, 480)), small)
    assert decoded == plain  # as the same JPEG without the preview: never at full size
    assert all(size != (2400, 1800) for _, size in decoded), decoded
    assert_upright(opened(result.outputs[0]).resize((80, 60)))


def test_a_limit_above_pillows_own_is_honoured() -> None:
    # 20000x10000 is past Pillow's built-in bomb error (2 x 89 MP); the caller's limit rules.
    before = Image.MAX_IMAGE_PIXELS
    info = probe(corpus.png_bomb(20_000, 10_000), max_pixels=300_000_000)
    assert (info.width, info.height) == (20_000, 10_000)
    assert before == Image.MAX_IMAGE_PIXELS  # Pillow's own guard left in place for everything else


@pytest.mark.parametrize(
    ("name", "words"),
    [("psd", "PSD"), ("eps", "EPS"), ("svg", "SVG"), ("html", "HTML"), ("zero_bytes", "empty")],
)
def test_refusals_say_what_the_file_looked_like(name: str, words: str) -> None:
    with pytest.raises(ImageRejected, match=words):
        probe(corpus.SAMPLES_BY_NAME[name].build(), max_pixels=50_000_000)


def test_a_drawing_after_blank_lines_is_still_called_a_drawing() -> None:
    with pytest.raises(ImageRejected, match="an SVG drawing"):
        probe(b"\n\t <svg xmlns='http://www.w3.org/2000/svg'/>", max_pixels=50_000_000)


@pytest.mark.parametrize(
    ("data", "start"),
    [
        (corpus.png_bad_header_checksum, "The PNG file is damaged or uses a variant that cannot be read."),
        *(
            (functools.partial(corpus.tiff_unreadable, kind), "The TIFF file is damaged or uses a variant")
            for kind in ("lab", "cmyk", "scrgb", "grey16")
        ),
    ],
)
def test_a_file_of_an_accepted_format_that_cannot_be_read_is_not_called_another_type(
    data: Any, start: str
) -> None:
    for call in (lambda: probe(data(), max_pixels=50_000_000), lambda: process(data(), WEB)):
        with pytest.raises(ImageRejected) as caught:
            call()
        assert caught.value.code == "corrupt"
        assert str(caught.value).startswith(start), caught.value
        assert "Unsupported" not in str(caught.value)


def test_a_readers_own_words_are_kept_for_the_log_and_left_out_of_the_message() -> None:
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.heic_rotated_p3()[:30], max_pixels=50_000_000)
    assert (str(caught.value), caught.value.code) == ("The HEIF file is truncated.", "corrupt")
    assert caught.value.detail
    assert caught.value.detail not in str(caught.value)
    assert processing.logged(caught.value) == f"The HEIF file is truncated. ({caught.value.detail})"


def test_a_file_of_no_accepted_format_is_called_an_unsupported_type() -> None:
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.garbage(), max_pixels=50_000_000)
    assert caught.value.code == "format"
    assert str(caught.value).startswith(
        "Unsupported file type (not a recognised image); allowed formats are "
    )


def test_allowed_formats_restrict_what_is_accepted() -> None:
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.bmp(), max_pixels=50_000_000, allowed_formats=("JPEG", "PNG"))
    assert caught.value.code == "format"
    assert probe(corpus.bmp(), max_pixels=50_000_000, allowed_formats=("bmp",)).format == "BMP"


def test_file_names_mean_nothing_only_content_counts() -> None:
    sample = corpus.SAMPLES_BY_NAME["png_named_jpg"]
    assert sample.filename.endswith(".jpg")
    assert probe(sample.build(), max_pixels=10_000).format == "PNG"


@pytest.mark.parametrize("kind", ["zTXt", "iTXt"])
@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_png_whose_text_unpacks_huge_is_shown_as_browsers_show_it(kind: str, after_pixels: bool) -> None:
    data = corpus.png_with_big_text(kind, after_pixels=after_pixels)  # type: ignore[arg-type]
    info = probe(data, max_pixels=10_000)
    assert (info.format, info.width, info.height) == ("PNG", 64, 48)
    result = process(data, preset(widths=[64], formats=["png"]))
    img = opened(result.outputs[0])
    assert close_to(rgb_at(img, (32, 24)), (200, 30, 30), 2)
    assert not img.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_png_of_millions_of_empty_chunks_is_refused_naming_the_limit(after_pixels: bool) -> None:
    data = corpus.png_with_many_chunks(2_000_000, after_pixels=after_pixels)
    for check in (functools.partial(probe, max_pixels=10_000), functools.partial(process, preset=WEB)):
        with pytest.raises(ImageRejected) as caught:
            check(data)
        assert caught.value.code == "chunks"
        assert str(caught.value) == (
            "The PNG has more than 10,000 chunks besides its pixel data; the limit is 10,000."
        )


def test_a_png_at_the_chunk_limit_is_read_and_one_more_is_refused() -> None:
    # IHDR and IEND count; the pixel data does not.
    data = corpus.png_with_many_chunks(processing.MAX_PNG_CHUNKS - 2)
    assert probe(data, max_pixels=10_000).format == "PNG"
    result = process(data, preset(widths=[64], formats=["png"]))
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), (200, 30, 30), 2)
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.png_with_many_chunks(processing.MAX_PNG_CHUNKS - 1), max_pixels=10_000)
    assert caught.value.code == "chunks"


def test_a_png_whose_pixel_data_is_split_into_too_many_chunks_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processing, "MAX_PNG_DATA_CHUNKS", 500)
    data = corpus.png_with_split_pixels(500)
    result = process(data, preset(widths=[64], formats=["png"]))
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), (200, 30, 30), 2)
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.png_with_split_pixels(501), max_pixels=10_000)
    assert caught.value.code == "chunks"
    assert str(caught.value) == "The PNG's pixel data is split into more than 500 chunks; the limit is 500."


def test_a_gif_of_a_million_one_byte_blocks_is_refused_naming_the_limit() -> None:
    data = corpus.gif_with_long_comment(1_000_000)
    for check in (functools.partial(probe, max_pixels=10_000), functools.partial(process, preset=WEB)):
        with pytest.raises(ImageRejected) as caught:
            check(data)
        assert caught.value.code == "chunks"
        assert (
            str(caught.value) == "The GIF is split into more than 500,000 data blocks; the limit is 500,000."
        )


def test_a_gif_of_a_million_empty_comments_is_refused_naming_the_limit() -> None:
    # No data sub-block among them, and some 5 s for the reader at 25 MB.
    data = corpus.gif_with_empty_comments(1_000_000)
    with pytest.raises(ImageRejected) as caught:
        probe(data, max_pixels=10_000)
    assert caught.value.code == "chunks"
    assert str(caught.value) == "The GIF is split into more than 500,000 data blocks; the limit is 500,000."


def test_a_gif_at_the_block_limit_is_read_and_one_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processing, "MAX_GIF_BLOCKS", 1000)
    # The comment and the picture count, and the picture's pixel data is one sub-block.
    data = corpus.gif_with_long_comment(997)
    assert probe(data, max_pixels=10_000).format == "GIF"
    result = process(data, preset(widths=[8], formats=["png"]))
    assert opened(result.outputs[0]).size == (8, 8)
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.gif_with_long_comment(998), max_pixels=10_000)
    assert caught.value.code == "chunks"


def test_a_jpeg_of_millions_of_empty_segments_is_refused_naming_the_limit() -> None:
    # Some 12 s for the reader at 24 MB, in the request that uploads it.
    data = corpus.jpeg_with_empty_comments(6_000_000)
    for check in (functools.partial(probe, max_pixels=10_000), functools.partial(process, preset=WEB)):
        with pytest.raises(ImageRejected) as caught:
            check(data)
        assert caught.value.code == "chunks"
        assert str(caught.value) == (
            "The JPEG has more than 10,000 marker segments before its image data; the limit is 10,000."
        )


def test_a_jpeg_at_the_segment_limit_is_read_and_one_more_is_refused() -> None:
    # The quadrant JPEG's own segments before its scan (APP0, DQT x2, SOF0, DHT x4) count.
    own = processing.MAX_JPEG_SEGMENTS - 8
    data = corpus.jpeg_with_empty_comments(own)
    assert probe(data, max_pixels=10_000).format == "JPEG"
    result = process(data, preset(widths=[80], formats=["png"]))
    assert close_to(rgb_at(opened(result.outputs[0]), (10, 10)), corpus.TOP_LEFT, 12)
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.jpeg_with_empty_comments(own + 1), max_pixels=10_000)
    assert caught.value.code == "chunks"


def test_a_jpeg_of_megabytes_of_fill_before_a_marker_is_refused_naming_the_limit() -> None:
    data = corpus.jpeg_with_fill(24_000_000)
    with pytest.raises(ImageRejected) as caught:
        probe(data, max_pixels=10_000)
    assert caught.value.code == "chunks"
    assert str(caught.value) == (
        "The JPEG has more than 100,000 bytes of fill or junk between its markers; the limit is 100,000."
    )
    # A few fill bytes, as encoders may write them, are read as ever.
    assert probe(corpus.jpeg_with_fill(processing.MAX_JPEG_FILL_BYTES), max_pixels=10_000).format == "JPEG"


def test_a_tiff_of_pages_of_many_tags_is_refused_naming_the_limit() -> None:
    # At 24 MB (4,000 pages of 500 tags) some 30 s for the reader, in the
    # request that uploads it; 210 such pages already pass the limit.
    data = corpus.tiff_with_many_tags(210, 500)
    for check in (functools.partial(probe, max_pixels=10_000), functools.partial(process, preset=WEB)):
        with pytest.raises(ImageRejected) as caught:
            check(data)
        assert caught.value.code == "chunks"
        assert str(caught.value) == "The TIFF's pages have more than 100,000 tags; the limit is 100,000."


def test_a_tiff_at_the_tag_limit_is_read_and_one_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processing, "MAX_TIFF_TAGS", 1000)
    data = corpus.tiff_with_many_tags(50, 20)
    assert probe(data, max_pixels=10_000).frames == 50
    assert opened(process(data, preset(widths=[8], formats=["png"])).outputs[0]).size == (1, 1)
    with pytest.raises(ImageRejected) as caught:
        probe(corpus.tiff_with_many_tags(51, 20), max_pixels=10_000)
    assert caught.value.code == "chunks"


def test_a_tiff_of_millions_of_strips_is_refused_naming_the_limit() -> None:
    data = corpus.tiff_with_many_strips(300_000)
    with pytest.raises(ImageRejected) as caught:
        probe(data, max_pixels=10_000)
    assert caught.value.code == "chunks"
    assert str(caught.value) == (
        "The TIFF's pages are split into more than 200,000 strips or tiles; the limit is 200,000."
    )
    result = process(
        corpus.tiff_with_many_strips(processing.MAX_TIFF_STRIPS), preset(widths=[8], formats=["png"])
    )
    assert opened(result.outputs[0]).getpixel((0, 0)) == (128, 128, 128)


def test_a_png_with_big_text_among_many_chunks_still_loses_its_text() -> None:
    # IHDR, zTXt and IEND, then as many private chunks as the limit leaves.
    data = corpus.png_with_many_chunks(
        processing.MAX_PNG_CHUNKS - 3, after_pixels=True, data=corpus.png_with_big_text("zTXt")
    )
    result = process(data, preset(widths=[64], formats=["png"]))
    img = opened(result.outputs[0])
    assert close_to(rgb_at(img, (32, 24)), (200, 30, 30), 2)
    assert not img.text  # type: ignore[attr-defined]


def test_a_png_with_small_text_and_a_profile_is_read_as_before() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "small", zip=True)
    info.add_itxt("Title", "small too", zip=True)
    data = corpus.png(corpus.solid((60, 180, 60)), pnginfo=info, icc_profile=corpus.adobe_rgb_profile())
    result = process(data, PNG_ONLY)
    expected = _expected((60, 180, 60), ADOBE_TO_SRGB, functools.partial(_gamma, 563 / 256))
    assert close_to(rgb_at(opened(result.outputs[0]), (32, 24)), expected, 3)


def test_a_truncated_jpeg_is_a_processing_error_not_a_crash() -> None:
    with pytest.raises(ProcessingError, match="truncated"):
        process(corpus.truncated_jpeg(), WEB)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_file_objects_work_as_sources(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(corpus.jpeg())
    with path.open("rb") as fp:
        fp.read(10)  # a consumed stream is rewound
        assert probe(fp, max_pixels=10_000).format == "JPEG"
        assert process(fp, WEB).outputs
    assert process(io.BytesIO(corpus.png()), WEB).outputs


def test_a_consumed_stream_is_held_to_every_header_limit(tmp_path: Path) -> None:
    # Pillow rewinds a stream itself: the checks before it must as well.
    path = tmp_path / "upload.bin"
    path.write_bytes(corpus.jpeg_with_fill(processing.MAX_JPEG_FILL_BYTES + 1))
    for check in (functools.partial(probe, max_pixels=10_000), functools.partial(process, preset=WEB)):
        with path.open("rb") as fp:
            fp.read()  # read to its end (hashed, say)
            with pytest.raises(ImageRejected) as caught:
                check(fp)
        assert caught.value.code == "chunks"


# --------------------------------------------------------------------------
# Presets


def test_default_presets_are_as_documented() -> None:
    assert {
        "web": Preset("web", widths=(320, 640, 1024, 1600), formats=("webp", "jpeg"), thumbnail=256),
        "icon": Preset("icon", rotate=90, size=(128, 128), formats=("jpeg",)),
        "supplier": Preset("supplier", fit=(600, 400), formats=("jpeg",)),
    } == DEFAULT_PRESETS


def test_presets_are_built_from_plain_settings() -> None:
    built = Preset.from_dict(
        "hero", {"widths": [800, 400], "formats": ["WEBP", "avif"], "thumbnail": 128, "webp_quality": 70}
    )
    assert built == Preset(
        "hero", widths=(800, 400), formats=("webp", "avif"), thumbnail=128, webp_quality=70
    )
    assert Preset.from_dict("i", {"size": [64, 64], "rotate": 270}).size == (64, 64)


@pytest.mark.parametrize(
    "data",
    [
        {"widths": [100], "formats": ["gif"]},
        {"widths": [0]},
        {"widths": [100], "rotate": 45},
        {"widths": [100], "jpeg_quality": 0},
        {"widths": [100], "colour": "red"},
        {"size": [10]},
        {},
    ],
)
def test_bad_presets_are_refused_when_built(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Preset 'bad'"):
        Preset.from_dict("bad", data)


# --------------------------------------------------------------------------
# Implementation guarantees


@pytest.mark.parametrize("size", [(800, 560), (640, 448), (333, 233), (999, 699)])
def test_banded_resampling_matches_pillow_without_a_seam(size: tuple[int, int]) -> None:
    img = corpus.photo(1000, 700)
    reference = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    difference = ImageChops.difference(processing._resample(img, size), reference).convert("L")
    assert ImageStat.Stat(difference).mean[0] < 0.5
    seam = size[1] // 2
    for y in range(seam - 3, seam + 3):
        assert ImageStat.Stat(difference.crop((0, y, size[0], y + 1))).mean[0] < 0.6, y


def test_a_large_jpeg_is_decoded_at_reduced_scale(decoded: list[tuple[str, tuple[int, int]]]) -> None:
    result = process(photo_jpeg(4000, 3000), WEB)
    # Never whole in colour: the luma alone (1 byte a pixel) at full size, for
    # detail, and the colour at 1/4 scale, half of 1600 px being all 4:2:0 keeps.
    assert set(decoded) == {("L", (4000, 3000)), ("YCbCr", (1000, 750))}
    assert only(result, "w1600", "jpeg").height == 1200


@pytest.mark.parametrize(
    ("mode", "data"),
    [
        ("L", lambda: corpus.jpeg(Image.new("L", (4000, 3000), 128))),
        ("CMYK", lambda: corpus.cmyk_jpeg(size=(4000, 3000))),
    ],
    ids=["grey", "cmyk"],
)
def test_a_large_jpeg_with_no_luma_to_take_apart_is_decoded_at_reduced_scale(
    decoded: list[tuple[str, tuple[int, int]]], mode: str, data: Callable[[], bytes]
) -> None:
    result = process(data(), WEB)
    # libjpeg's 1/2 scale: the largest reduction that leaves 1600 px.
    assert set(decoded) == {(mode, (2000, 1500))}
    assert only(result, "w1600", "jpeg").height == 1200


def test_concurrent_calls_give_identical_results() -> None:
    data = photo_jpeg(1800, 1200)
    results: list[Result] = []
    threads = [threading.Thread(target=lambda: results.append(process(data, WEB))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reference = process(data, WEB)
    assert len(results) == 3
    for result in results:
        assert [o.data for o in result.outputs] == [o.data for o in reference.outputs]
