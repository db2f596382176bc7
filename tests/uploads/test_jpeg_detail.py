"""A colour JPEG reduced by less than twice what libjpeg's reduced-scale
decode takes off (12 MP to 1600 px) keeps the detail of a full decode: its
luma is decoded with headroom, its colour at the usual reduced scale."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat

from tests.uploads import corpus
from uploads import processing
from uploads.processing import DEFAULT_PRESETS, Output, Result, process

WEB = DEFAULT_PRESETS["web"]
SIZE = (3300, 2200)  # 1600 px wide is under half of it: libjpeg would decode at 1/2
WORK = (1600, 1067)


def only(result: Result, name: str, fmt: str) -> Output:
    return next(o for o in result.outputs if o.name == name and o.format == fmt)


def mean_difference(a: Image.Image, b: Image.Image, mode: str = "L") -> float:
    return float(
        sum(ImageStat.Stat(ImageChops.difference(a.convert(mode), b.convert(mode))).mean) / len(mode)
    )


def full_decode_resized(data: bytes, size: tuple[int, int]) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def assert_quadrants(output: Output) -> None:
    """``output`` shows ``corpus.quadrants`` upright, each in its colour."""
    with Image.open(io.BytesIO(output.data)) as img:
        shown = img.convert("RGB")
    for (fx, fy), color in (
        ((0.25, 0.25), corpus.TOP_LEFT),
        ((0.75, 0.25), corpus.TOP_RIGHT),
        ((0.25, 0.75), corpus.BOTTOM_LEFT),
        ((0.75, 0.75), corpus.BOTTOM_RIGHT),
    ):
        pixel = shown.getpixel((int(fx * shown.width), int(fy * shown.height)))
        assert isinstance(pixel, tuple)
        assert max(abs(p - c) for p, c in zip(pixel, color, strict=True)) <= 12, (fx, fy, pixel)


def test_the_working_picture_has_the_detail_of_a_full_decode() -> None:
    data = corpus.photo_jpeg(*SIZE)
    reference = full_decode_resized(data, WORK)
    with Image.open(io.BytesIO(data)) as img:
        work = processing._jpeg_luma_apart(img, WORK)
    assert work is not None
    assert work.size == WORK
    assert work.mode == "RGB"
    # A decode at 1/2 scale then Lanczos is off by about 2 levels on average.
    assert mean_difference(work, reference) < 1.0
    assert mean_difference(work, reference, "RGB") < 1.2


def test_the_largest_rendition_is_as_close_to_a_full_decode_as_its_codec_allows() -> None:
    data = corpus.photo_jpeg(*SIZE)
    reference = full_decode_resized(data, WORK)
    buffer = io.BytesIO()
    reference.save(buffer, "WEBP", quality=WEB.webp_quality, method=4)
    with Image.open(buffer) as encoded:
        codec_alone = mean_difference(encoded, reference)
    rendition = only(process(data, WEB), "w1600", "webp")
    assert (rendition.width, rendition.height) == WORK
    with Image.open(io.BytesIO(rendition.data)) as img:
        # From a 1/2-scale decode it was 0.3 further off.
        assert mean_difference(img, reference) <= codec_alone + 0.15


def test_a_small_reduction_decodes_once_as_before() -> None:
    data = corpus.photo_jpeg(1800, 1200)  # to 1600 px: no reduced-scale decode at all
    with Image.open(io.BytesIO(data)) as img:
        assert processing._jpeg_luma_apart(img, (1600, 1067)) is None


def test_a_profile_is_honoured_on_the_sharp_path() -> None:
    color = (40, 200, 90)
    small = process(corpus.jpeg_with_profile(color, corpus.display_p3_profile(), size=(400, 300)), WEB)
    large = process(corpus.jpeg_with_profile(color, corpus.display_p3_profile(), size=SIZE), WEB)
    with (
        Image.open(io.BytesIO(only(small, "w320", "webp").data)) as a,
        Image.open(io.BytesIO(only(large, "w1600", "webp").data)) as b,
    ):
        expected, got = a.convert("RGB").getpixel((10, 10)), b.convert("RGB").getpixel((800, 500))
    assert isinstance(expected, tuple)
    assert isinstance(got, tuple)
    assert expected != color  # the conversion to sRGB did something
    assert max(abs(e - g) for e, g in zip(expected, got, strict=True)) <= 3


def test_exif_orientation_is_applied_on_the_sharp_path() -> None:
    upright = corpus.quadrants(*SIZE)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter, shown upright
    data = corpus.jpeg(upright.transpose(Image.Transpose.ROTATE_90), quality=95, exif=exif.tobytes())
    rendition = only(process(data, WEB), "w1600", "jpeg")
    assert (rendition.width, rendition.height) == WORK
    assert_quadrants(rendition)


def test_a_jpeg_coded_in_rgb_keeps_its_colours_where_the_luma_would_go_apart() -> None:
    # An Adobe marker of transform 0 (Photoshop's, Pillow's keep_rgb) says
    # the samples are red, green and blue: there is no luma to decode apart.
    picture = corpus.quadrants(*SIZE)
    data = corpus.jpeg(picture, quality=95, keep_rgb=True)
    with Image.open(io.BytesIO(data)) as img:
        assert (img.mode, img.info.get("adobe_transform")) == ("RGB", 0)
    rendition = only(process(data, WEB), "w1600", "jpeg")
    assert (rendition.width, rendition.height) == WORK
    assert_quadrants(rendition)


def test_a_file_object_gives_the_same_renditions_as_bytes() -> None:
    data = corpus.photo_jpeg(*SIZE, seed=5)
    from_bytes = process(data, WEB)
    with io.BufferedReader(io.BytesIO(data)) as stream:  # not a BytesIO: read, not shared
        from_file = process(stream, WEB)
        assert not stream.closed  # the caller's file is left open
    assert [o.data for o in from_file.outputs] == [o.data for o in from_bytes.outputs]


def test_a_progressive_jpeg_is_decoded_once_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its decoder holds every coefficient of the picture whatever the scale:
    # two at once would double that.
    active, most = [0], [0]
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        if not self.tile:  # decoded already: resize() and split() call load() too
            return real_load(self)
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.05)  # long enough for a second decode to start meanwhile
            return real_load(self)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    data = corpus.jpeg(corpus.photo(*SIZE), quality=90, progressive=True)
    rendition = only(process(data, WEB), "w1600", "jpeg")
    assert (rendition.width, rendition.height) == WORK
    assert most[0] == 1


def decodes_counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, int]]]:
    """Every JPEG decode from here on, as (mode, size decoded at)."""
    seen: list[tuple[str, tuple[int, int]]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        if self.tile and self.format == "JPEG":  # not yet decoded: this load decodes
            seen.append((self.mode, self.size))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return seen


# 1800 px to 400: libjpeg alone would decode at 1/4 (450 px), the headroom
# asks for 1/2 (900 px), where the picture is small enough to decode once.
DEEP = processing.Preset("deep", widths=(400,), formats=("jpeg",))


@pytest.mark.parametrize(
    ("size", "work", "decodes"),
    [
        # Decoded at 1/2 for its headroom: small enough to decode once,
        # colour included.
        ((1800, 1200), (400, 267), [("YCbCr", (900, 600))]),
        # 3000 px to 1600: libjpeg decodes whole either way and 1.9x is left
        # to Lanczos. Resampled as RGB, that is four bytes a pixel instead of
        # one; the colour comes from a second, reduced-scale decode.
        ((3000, 2000), (1600, 1067), [("L", (3000, 2000)), ("YCbCr", (1500, 1000))]),
    ],
)
def test_the_luma_is_resampled_apart_with_the_fewest_decodes(
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    work: tuple[int, int],
    decodes: list[tuple[str, tuple[int, int]]],
) -> None:
    data = corpus.photo_jpeg(*size, seed=3)
    reference = full_decode_resized(data, work)
    seen = decodes_counted(monkeypatch)
    with Image.open(io.BytesIO(data)) as img:
        picture = processing._jpeg_luma_apart(img, work)
    assert sorted(seen) == decodes
    assert picture is not None
    assert picture.size == work
    assert mean_difference(picture, reference) < 1.0
    assert mean_difference(picture, reference, "RGB") < 1.2


def test_a_deep_reduction_of_a_progressive_jpeg_decodes_luma_and_colour_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = corpus.jpeg(corpus.photo(1800, 1200), quality=90, progressive=True)
    seen = decodes_counted(monkeypatch)
    rendition = only(process(data, DEEP), "w400", "jpeg")
    assert (rendition.width, rendition.height) == (400, 267)
    # No whole colour picture beside the coefficients its decoder holds.
    assert sorted(seen) == [("L", (900, 600)), ("YCbCr", (225, 150))]


def test_the_working_picture_is_the_largest_rendition_when_scaling_would_round_a_pixel_over() -> None:
    # 1600 / 8660 of 5773 is 1066.6, rounded to 1067; scaling 8660 by
    # 1067 / 5773 instead gives 1600.6: the working picture is the rendition.
    display, _, work = processing._plan((8660, 5773), 1, WEB)
    assert display == (8660, 5773)
    assert work == (1600, 1067)
    # Turned by its EXIF orientation, in the stored picture's own axes.
    assert processing._plan((5773, 8660), 6, WEB)[2] == (1067, 1600)
