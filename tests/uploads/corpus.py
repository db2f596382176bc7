"""An odd and hostile image corpus, built in memory.

Every builder returns the raw bytes of one file. Nothing is read from disk, so
the corpus can be reused by any test (processing, API, storage) without
fixtures. ``SAMPLES`` lists the interesting items together with the file name
a client might send (names are only data: a PNG called ``photo.jpg`` stays a
PNG) and what the upload pipeline is expected to do with them.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pillow_heif
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, PngImagePlugin

RGB = tuple[int, int, int]

# Colours of the quadrant pattern used by orientation tests: each corner is
# distinct so a test can tell a rotation from a flip.
TOP_LEFT: RGB = (220, 20, 20)
TOP_RIGHT: RGB = (20, 180, 20)
BOTTOM_LEFT: RGB = (20, 20, 220)
BOTTOM_RIGHT: RGB = (235, 235, 235)


# --------------------------------------------------------------------------
# Small helpers


def _save(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def quadrants(width: int = 80, height: int = 60) -> Image.Image:
    """An RGB image whose four quadrants have the four corner colours."""
    img = Image.new("RGB", (width, height), BOTTOM_RIGHT)
    draw = ImageDraw.Draw(img)
    half_w, half_h = width // 2, height // 2
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=TOP_LEFT)
    draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=TOP_RIGHT)
    draw.rectangle((0, half_h, half_w - 1, height - 1), fill=BOTTOM_LEFT)
    return img


def solid(
    color: RGB | tuple[int, int, int, int] | int,
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
) -> Image.Image:
    return Image.new(mode, size, color)


def jpeg(img: Image.Image | None = None, *, quality: int = 90, **params: Any) -> bytes:
    return _save(img if img is not None else quadrants(), "JPEG", quality=quality, **params)


def png(img: Image.Image | None = None, **params: Any) -> bytes:
    return _save(img if img is not None else quadrants(), "PNG", **params)


def png_exif_after_pixels(orientation: int, size: tuple[int, int] = (400, 300)) -> bytes:
    """A PNG whose eXIf chunk (the orientation) comes after its pixel data,
    where the format allows it: its header alone cannot tell how it turns."""
    return with_png_chunk(png(quadrants(*size)), b"eXIf", exif_orientation_tiff(orientation), before=b"IEND")


def exif_orientation_tiff(orientation: int) -> bytes:
    """EXIF holding an Orientation tag, as an eXIf chunk holds it: from the
    TIFF header on, without the ``Exif\\0\\0`` a JPEG's APP1 starts with."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()[len(b"Exif\0\0") :]


def with_png_chunk(data: bytes, kind: bytes, body: bytes, *, before: bytes) -> bytes:
    """The PNG file ``data`` with one more chunk, put before its first ``before`` chunk."""
    chunks = _png_chunks(data)
    at = next(i for i, (each, _) in enumerate(chunks) if each == before)
    chunks.insert(at, (kind, body))
    return _PNG_SIGNATURE + b"".join(_png_chunk(each, content) for each, content in chunks)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_file(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------
# Broken, empty and not-an-image files


def zero_bytes() -> bytes:
    return b""


def truncated_jpeg() -> bytes:
    """A real photo-ish JPEG cut in the middle of its entropy-coded data."""
    data = photo_jpeg(320, 240, quality=90)
    return data[: len(data) // 2]


def garbage() -> bytes:
    return random.Random(7).randbytes(4096)


def svg() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<script>alert("svg")</script><rect width="100" height="100" fill="red"/></svg>\n'
    )


def html() -> bytes:
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"


def eps() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n"
        b"%%BoundingBox: 0 0 100 100\n"
        b"%%EndComments\n"
        b"newpath 10 10 moveto 90 90 lineto stroke\n"
        b"showpage\n%%EOF\n"
    )


def psd(width: int = 32, height: int = 24) -> bytes:
    """A minimal but valid flat RGB Photoshop file (Pillow could read it)."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers
    planes = bytes([200]) * (width * height) + bytes([40]) * (width * height) * 2
    return header + sections + struct.pack(">H", 0) + planes


# --------------------------------------------------------------------------
# Decompression bombs: only the header claims the huge size


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    return _png_file(width, height, 8, 0, zlib.compress(b"\x00" * 1024, 9))


def gif_bomb(width: int = 65_535, height: int = 65_535) -> bytes:
    """GIF sizes are 16 bit, so 65535x65535 is the biggest a header can claim."""
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    lzw = b"\x02" + b"\x02\x4c\x01" + b"\x00"
    return b"GIF89a" + screen + descriptor + lzw + b";"


def jpeg_bomb(width: int = 65_500, height: int = 65_500) -> bytes:
    """A small valid JPEG whose SOF marker was patched to claim a huge frame."""
    data = bytearray(jpeg(solid((10, 20, 30), (16, 16)), quality=50))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_frame_bomb(side: int = 1200, frames: int = 40) -> bytes:
    """Each frame is legal; together they exceed 50 MP (1200*1200*40 = 57.6 MP)."""
    images = [Image.new("P", (side, side), i % 2) for i in range(frames)]
    for img in images:
        img.putpalette([0, 0, 0, 255, 255, 255])
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False)


def png_with_big_text(
    kind: Literal["zTXt", "iTXt"] = "zTXt", *, after_pixels: bool = False, size: tuple[int, int] = (64, 48)
) -> bytes:
    """A flat red PNG carrying a compressed text chunk that unpacks to 4 MB,
    before or after its pixel data: ImageMagick's hex "Raw profile" of a
    bloated Photoshop XMP, or a bomb. Browsers never unpack it."""
    text = zlib.compress(b"0f" * (2 * 1024 * 1024), 9)
    if kind == "zTXt":
        body = b"Raw profile type xmp\0\0" + text
    else:  # keyword, compressed, method, no language, no translated keyword
        body = b"XML:com.adobe.xmp\0\1\0\0\0" + text
    data = png(solid((200, 30, 30), size))
    cut = data.rindex(b"IEND") - 4 if after_pixels else data.index(b"IDAT") - 4
    return data[:cut] + _png_chunk(kind.encode(), body) + data[cut:]


def png_with_many_chunks(
    count: int = 2_000_000, *, after_pixels: bool = False, data: bytes | None = None
) -> bytes:
    """A flat red PNG (or the PNG ``data``) carrying ``count`` empty private
    chunks before (or after) its pixel data: 12 bytes each, 2 million in
    24 MB, where a real PNG has a few dozen chunks."""
    data = data if data is not None else png(solid((200, 30, 30), (64, 48)))
    cut = data.rindex(b"IEND") - 4 if after_pixels else data.index(b"IDAT") - 4
    return data[:cut] + _png_chunk(b"prIv", b"") * count + data[cut:]


def png_with_split_pixels(count: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A flat red PNG whose pixel data is the usual zlib stream followed by
    ``count`` - 1 empty IDAT chunks, all of which a reader walks."""
    data = png(solid((200, 30, 30), size))
    cut = data.rindex(b"IEND") - 4
    return data[:cut] + _png_chunk(b"IDAT", b"") * (count - 1) + data[cut:]


def gif_with_long_comment(blocks: int) -> bytes:
    """A small GIF carrying, before its picture, a comment of ``blocks``
    one-byte sub-blocks (two bytes each), where an encoder writes 255 bytes
    to a sub-block: every one is a step for a reader."""
    data = _save(solid(1, (8, 8), "P"), "GIF")
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return data[:at] + b"!\xfe" + b"\x01c" * blocks + b"\x00" + data[at:]


def gif_with_empty_comments(count: int) -> bytes:
    """A small GIF carrying, before its picture, ``count`` comments of no
    text (three bytes each): no sub-block, yet each a step for a reader."""
    data = _save(solid(1, (8, 8), "P"), "GIF")
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return data[:at] + b"!\xfe\x00" * count + data[at:]


def jpeg_with_empty_comments(count: int) -> bytes:
    """The quadrant JPEG carrying, before its other segments, ``count``
    comments of no text (four bytes each): 6 million in 24 MB, where a real
    JPEG has a few dozen segments, each a step for a reader."""
    data = jpeg()
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def jpeg_with_fill(count: int) -> bytes:
    """The quadrant JPEG with ``count`` fill bytes (0xFF) before its first
    segment's marker, which the format allows any number of, and which a
    reader walks one by one."""
    data = jpeg()
    return data[:2] + b"\xff" * count + data[2:]


def tiff_with_many_tags(pages: int, tags: int) -> bytes:
    """A TIFF of ``pages`` grey 1x1 pages sharing one pixel, each page's
    directory carrying ``tags`` tags in all (private ones past the nine a
    picture needs), where a real page has a few dozen."""
    picture = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, 8), (277, 1), (278, 1), (279, 1)]
    entries = sorted(picture + [(40000 + i, 7) for i in range(tags - len(picture))])
    out = bytearray(b"II*\0" + struct.pack("<I", 10) + b"\x80\0")
    for page in range(pages):
        out += struct.pack("<H", len(entries))
        for tag, value in entries:
            kind = 4 if tag in (273, 279) else 3  # LONG offsets and counts, else SHORT
            out += struct.pack("<HHI", tag, kind, 1) + struct.pack(
                "<I" if kind == 4 else "<HH", value, *([0] if kind == 3 else [])
            )
        out += struct.pack("<I", len(out) + 4 if page < pages - 1 else 0)
    return bytes(out)


def tiff_with_many_strips(count: int) -> bytes:
    """A grey 1x1 TIFF whose one page lists ``count`` strips, all the same
    byte: a reader makes a tile of each."""
    tags = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1)]
    tags += [(278, 3, 1), (279, 4, 0)]
    offsets_at = 8 + 2 + 12 * len(tags) + 4
    counts_at = offsets_at + 4 * count
    pixel_at = counts_at + 4 * count
    out = bytearray(b"II*\0" + struct.pack("<IH", 8, len(tags)))
    for tag, kind, value in tags:
        if tag in (273, 279):
            out += struct.pack("<HHII", tag, kind, count, offsets_at if tag == 273 else counts_at)
        else:
            out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
    out += struct.pack("<I", 0) + struct.pack("<I", pixel_at) * count + struct.pack("<I", 1) * count
    return bytes(out + b"\x80")


# --------------------------------------------------------------------------
# Polyglots


def gif_with_html_appended() -> bytes:
    return _save(solid(1, (8, 8), "P"), "GIF") + b"<html><script>alert(1)</script></html>"


def jpeg_with_script_appended() -> bytes:
    return jpeg() + b"<script>alert('polyglot')</script>"


def png_bad_header_checksum() -> bytes:
    """A PNG whose IHDR checksum is zeroed: its signature says PNG, its reader refuses it."""
    data = png()
    return data[:29] + b"\0" * 4 + data[33:]


def tiff_unreadable(interpretation: str = "lab", size: tuple[int, int] = (64, 48)) -> bytes:
    """A TIFF made with libvips in a layout Pillow does not read: Lab,
    CMYK with alpha, float RGB or 16-bit grey with alpha."""
    import pyvips  # noqa: PLC0415 - a dev requirement, only needed here

    bands, sample, values = {
        "lab": (3, "float", [50, 20, 10]),
        "cmyk": (5, "uchar", [10, 200, 30, 0, 255]),
        "scrgb": (3, "float", [0.2, 0.5, 0.8]),
        "grey16": (2, "ushort", [30000, 65535]),
    }[interpretation]
    img = pyvips.Image.black(*size, bands=bands).new_from_image(values).cast(sample)
    return bytes(img.copy(interpretation=interpretation).tiffsave_buffer())


def html_with_gif_magic() -> bytes:
    return b"GIF89a<html><body><script>alert(1)</script></body></html>"


# --------------------------------------------------------------------------
# ICC profiles


def _mat_mul(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def _mat_vec(a: Sequence[Sequence[float]], v: Sequence[float]) -> list[float]:
    return [sum(a[i][k] * v[k] for k in range(3)) for i in range(3)]


def _mat_inv(m: Sequence[Sequence[float]]) -> list[list[float]]:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return [
        [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
        [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
        [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
    ]


def _xy_to_xyz(x: float, y: float) -> list[float]:
    return [x / y, 1.0, (1.0 - x - y) / y]


_BRADFORD = [
    [0.8951, 0.2664, -0.1614],
    [-0.7502, 1.7135, 0.0367],
    [0.0389, -0.0685, 1.0296],
]
_D50 = [0.9642, 1.0, 0.8249]
_D65_XY = (0.3127, 0.3290)


def rgb_to_xyz_d50(
    primaries: Sequence[tuple[float, float]], white: tuple[float, float] = _D65_XY
) -> list[list[float]]:
    """RGB -> XYZ matrix adapted to the D50 connection space (Bradford)."""
    cols = [_xy_to_xyz(x, y) for x, y in primaries]
    p = [[cols[j][i] for j in range(3)] for i in range(3)]
    white_xyz = _xy_to_xyz(*white)
    scale = _mat_vec(_mat_inv(p), white_xyz)
    m = [[p[i][j] * scale[j] for j in range(3)] for i in range(3)]
    src_cone = _mat_vec(_BRADFORD, white_xyz)
    dst_cone = _mat_vec(_BRADFORD, _D50)
    ratio = [[dst_cone[i] / src_cone[i] if i == j else 0.0 for j in range(3)] for i in range(3)]
    adapt = _mat_mul(_mat_inv(_BRADFORD), _mat_mul(ratio, _BRADFORD))
    return _mat_mul(adapt, m)


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in xyz)


def _gamma_tag(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _srgb_trc_tag(points: int = 1024) -> bytes:
    def decode(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    samples = [round(decode(i / (points - 1)) * 65535) for i in range(points)]
    return b"curv\0\0\0\0" + struct.pack(f">I{points}H", points, *samples)


def _desc_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text
    # Empty Unicode and ScriptCode records, as ICC v2 requires them to exist.
    return body + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67


def _text_tag(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


def _icc_profile(color_space: bytes, tags: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Serialise an ICC v2 display profile of ``color_space`` from its tags."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    data = b""
    shared: dict[bytes, int] = {}
    for signature, body in tags:
        if body in shared:  # the three TRCs may point at one curve
            table += struct.pack(">4sII", signature, shared[body], len(body))
            continue
        shared[body] = offset + len(data)
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = 128 + table_size + len(data)
    header = (
        struct.pack(">I", size)
        + b"none"
        + struct.pack(">I", 0x02100000)
        + b"mntr"
        + color_space
        + b"XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 4  # platform
        + struct.pack(">I", 0)  # flags
        + b"\0" * 8  # manufacturer, model
        + b"\0" * 8  # attributes
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(_s15f16(v) for v in _D50)
        + b"none"
        + b"\0" * 16  # profile id
        + b"\0" * 28
    )
    assert len(header) == 128
    return header + table + data


def icc_rgb_profile(
    description: str,
    primaries: Sequence[tuple[float, float]],
    trc: Literal["srgb"] | float,
    white: tuple[float, float] = _D65_XY,
) -> bytes:
    """Serialise a matrix/TRC ICC v2 display profile."""
    matrix = rgb_to_xyz_d50(primaries, white)
    curve = _srgb_trc_tag() if trc == "srgb" else _gamma_tag(trc)
    white_xyz = _xy_to_xyz(*white)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc_tag(description)),
        (b"cprt", _text_tag("No copyright, use freely")),
        (b"wtpt", _xyz_tag(white_xyz)),
        (b"rXYZ", _xyz_tag([matrix[i][0] for i in range(3)])),
        (b"gXYZ", _xyz_tag([matrix[i][1] for i in range(3)])),
        (b"bXYZ", _xyz_tag([matrix[i][2] for i in range(3)])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _icc_profile(b"RGB ", tags)


def icc_gray_profile(description: str, gamma: float) -> bytes:
    """A grey ICC v2 profile whose tone curve is a plain ``gamma``."""
    tags = [
        (b"desc", _desc_tag(description)),
        (b"cprt", _text_tag("No copyright, use freely")),
        (b"wtpt", _xyz_tag(_D50)),
        (b"kTRC", _gamma_tag(gamma)),
    ]
    return _icc_profile(b"GRAY", tags)


ADOBE_RGB_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
DISPLAY_P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))


def adobe_rgb_profile() -> bytes:
    return icc_rgb_profile("Adobe RGB (1998) compatible", ADOBE_RGB_PRIMARIES, 563 / 256)


def display_p3_profile(*, padded_to: int = 0) -> bytes:
    """Display P3; with ``padded_to``, made that many bytes long by a
    private tag, as the large tables of a printer's profile make it."""
    profile = icc_rgb_profile("Display P3 compatible", DISPLAY_P3_PRIMARIES, "srgb")
    if len(profile) >= padded_to:
        return profile
    table_end = 128 + 4 + 12 * struct.unpack(">I", profile[128:132])[0]
    # The new tag's table entry moves every other tag 12 bytes on.
    tags = [
        (profile[at : at + 4], *struct.unpack(">II", profile[at + 4 : at + 12]))
        for at in range(132, table_end, 12)
    ]
    body = profile[table_end:]
    pad = b"data\0\0\0\0\0\0\0\1" + b"\0" * (padded_to - len(profile) - 12 - 12)
    table = struct.pack(">I", len(tags) + 1) + b"".join(
        struct.pack(">4sII", sig, offset + 12, size) for sig, offset, size in tags
    )
    table += struct.pack(">4sII", b"zPad", table_end + 12 + len(body), len(pad))
    data = table + body + pad
    return struct.pack(">I", 128 + len(data)) + profile[4:128] + data


def srgb_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return profile.tobytes()


def jpeg_with_profile(color: RGB, profile: bytes, size: tuple[int, int] = (64, 48)) -> bytes:
    """A flat colour tagged with ``profile``: the pixel values are in that space."""
    return jpeg(solid(color, size), quality=95, subsampling=0, icc_profile=profile)


def png_with_profile(color: RGB, profile: bytes, size: tuple[int, int] = (64, 48)) -> bytes:
    return png(solid(color, size), icc_profile=profile)


def png_gray_with_profile(mode: str = "LA", grey: int = 128, size: tuple[int, int] = (64, 48)) -> bytes:
    """Grey ``grey`` in a linear grey space (tone curve 1.0, as scanners and
    renderers write): a browser shows it far lighter than the same value in
    sRGB. In ``LA`` the left half is fully transparent."""
    img = Image.new(mode, size, (grey, 255) if mode == "LA" else grey)
    if mode == "LA":
        img.paste((0, 0), (0, 0, size[0] // 2, size[1]))
    return png(img, icc_profile=icc_gray_profile("Linear grey", 1.0))


def png_with_gamma(
    color: RGB | int,
    gamma: float | None,
    primaries: Sequence[tuple[float, float]] | None = None,
    *,
    srgb_chunk: bool = False,
    iccp: bytes | None = None,
    size: tuple[int, int] = (64, 48),
) -> bytes:
    """A flat colour (an int: grey) described by gAMA (and cHRM with
    ``primaries``, D65 white) instead of an ICC profile, as older tools and
    renderers write; browsers colour-manage by them. No gAMA with ``gamma``
    None. An sRGB chunk, which overrides both, is added with ``srgb_chunk``,
    an iCCP chunk of body ``iccp`` (name, method, compressed profile) too."""
    img = solid(color, size, "L") if isinstance(color, int) else solid(color, size)
    chunks = b"" if gamma is None else _png_chunk(b"gAMA", struct.pack(">I", round(gamma * 100_000)))
    if primaries is not None:
        points = (_D65_XY, *primaries)
        chunks += _png_chunk(b"cHRM", struct.pack(">8I", *(round(v * 100_000) for xy in points for v in xy)))
    if srgb_chunk:
        chunks += _png_chunk(b"sRGB", b"\0")
    if iccp is not None:
        chunks += _png_chunk(b"iCCP", iccp)
    data = png(img)
    cut = data.index(b"IDAT") - 4
    return data[:cut] + chunks + data[cut:]


def cmyk_jpeg(
    color: tuple[int, int, int, int] = (0, 255, 255, 0),
    size: tuple[int, int] = (64, 48),
    profile: bytes | None = None,
) -> bytes:
    """A CMYK JPEG (pure red by default), without a profile unless given one."""
    params = {} if profile is None else {"icc_profile": profile}
    return jpeg(solid(color, size, "CMYK"), quality=95, **params)


def cmyk_profile_of_one_grey() -> bytes:
    """A CMYK profile by which every ink, and the paper, print one dark grey:
    a table of two points a side (lut16, A2B0) to XYZ, the same at every
    corner. Real printing profiles are megabytes of such tables; only a
    conversion through this one gives grey."""
    grey = [round(v * 0.2 * 32768) for v in _D50]
    table = (
        b"mft2\0\0\0\0"
        + struct.pack(">4B", 4, 3, 2, 0)  # in, out, grid points, padding
        + b"".join(_s15f16(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + struct.pack(">2H", 2, 2)  # entries of the input and output curves
        + struct.pack(">8H", *[0, 65535] * 4)
        + struct.pack(">48H", *grey * 16)
        + struct.pack(">6H", *[0, 65535] * 3)
    )
    return _icc_profile(
        b"CMYK", [(b"desc", _desc_tag("One grey")), (b"wtpt", _xyz_tag(_D50)), (b"A2B0", table)]
    )


# --------------------------------------------------------------------------
# Modes and bit depths


def png_16bit_gray(size: tuple[int, int] = (64, 48)) -> bytes:
    """Left half 40000, right half 10000 (out of 65535)."""
    # Built from raw samples: pasting an int into an I;16 image keeps only 8 bits.
    half = size[0] // 2
    row = struct.pack(f"<{size[0]}H", *([40000] * half + [10000] * (size[0] - half)))
    return png(Image.frombytes("I;16", size, row * size[1]))


def png_16bit_gray_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    """Left half 40000, transparent by tRNS; right half 39936, opaque: the
    same top byte, so only the full 16 bits tell them apart."""
    half = size[0] // 2
    row = struct.pack(f"<{size[0]}H", *([40000] * half + [39936] * (size[0] - half)))
    return png(Image.frombytes("I;16", size, row * size[1]), transparency=40000)


def png_16bit_rgb(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (65535, 32768, 0)) -> bytes:
    """Pillow cannot write 48-bit RGB PNGs, so the chunks are written by hand."""
    pixel = struct.pack(">HHH", *color)
    row = b"\x00" + pixel * size[0]
    return _png_file(size[0], size[1], 16, 2, zlib.compress(row * size[1]))


def png_16bit_gray_alpha(grey: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """Grey ``grey`` (16 bits), opaque, in a PNG of grey and alpha at 16 bits
    (colour type 4), which Pillow reads as RGBA and cannot write."""
    row = b"\x00" + struct.pack(">HH", grey, 65535) * size[0]
    return _png_file(size[0], size[1], 16, 4, zlib.compress(row * size[1]))


def png_palette_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    """Index 0 is fully transparent, the right half is opaque red (index 1)."""
    img = Image.new("P", size, 0)
    img.putpalette([0, 0, 0, 255, 0, 0])
    img.paste(1, (size[0] // 2, 0, size[0], size[1]))
    return png(img, transparency=0)


def gif_palette_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("P", size, 0)
    img.putpalette([0, 0, 0, 0, 0, 255])
    img.paste(1, (size[0] // 2, 0, size[0], size[1]))
    return _save(img, "GIF", transparency=0)


def png_palette(size: tuple[int, int] = (64, 48)) -> bytes:
    return png(quadrants(*size).convert("P", palette=Image.Palette.ADAPTIVE, colors=8))


def png_la(size: tuple[int, int] = (64, 48)) -> bytes:
    """Grey 128, left half fully transparent."""
    img = Image.new("LA", size, (128, 255))
    img.paste((0, 0), (0, 0, size[0] // 2, size[1]))
    return png(img)


def png_rgba(size: tuple[int, int] = (64, 48)) -> bytes:
    """Green, left half fully transparent (with black colour underneath)."""
    img = Image.new("RGBA", size, (0, 200, 0, 255))
    img.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return png(img)


def png_gray(size: tuple[int, int] = (64, 48)) -> bytes:
    return png(Image.new("L", size, 90))


def png_gray_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    """8-bit grey: left half 7, transparent by tRNS; right half 200, opaque."""
    img = Image.new("L", size, 7)
    img.paste(200, (size[0] // 2, 0, size[0], size[1]))
    return png(img, transparency=7)


def png_rgb_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    """Truecolour: left half red, transparent by tRNS; right half green, opaque."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 200, 0), (size[0] // 2, 0, size[0], size[1]))
    return png(img, transparency=(255, 0, 0))


def png_bilevel(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("1", size, 1)
    img.paste(0, (0, 0, size[0] // 2, size[1]))
    return png(img)


def png_bilevel_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    """1-bit: left half black, transparent by tRNS; right half white, opaque."""
    img = Image.new("1", size, 0)
    img.paste(1, (size[0] // 2, 0, size[0], size[1]))
    return png(img, transparency=0)


def tiff_int32(size: tuple[int, int] = (64, 48)) -> bytes:
    return _save(Image.new("I", size, 200), "TIFF")


def tiff_float(size: tuple[int, int] = (64, 48)) -> bytes:
    return _save(Image.new("F", size, 0.5), "TIFF")


def tiff_grey_premultiplied(size: tuple[int, int] = (64, 48)) -> bytes:
    """Grey 128, left half fully transparent, its alpha stored associated
    (premultiplied, ExtraSamples 1), which Pillow reads as mode La."""
    img = Image.new("LA", size, (128, 255))
    img.paste((0, 0), (0, 0, size[0] // 2, size[1]))
    data = _save(img, "TIFF")
    unassociated = struct.pack("<HHIH", 338, 3, 1, 2)  # ExtraSamples: one, unassociated alpha
    assert data.count(unassociated) == 1
    return data.replace(unassociated, struct.pack("<HHIH", 338, 3, 1, 1))


def tiff_float_columns(samples: Sequence[float], *, stated: tuple[float, float] | None = None) -> bytes:
    """A float grey TIFF of 16 px wide columns, one per sample, left to
    right; ``stated`` written as its SMinSampleValue and SMaxSampleValue."""
    rows = np.repeat(np.array([samples], dtype=np.float32), 16, axis=1).repeat(16, axis=0)
    tags = {} if stated is None else {340: stated[0], 341: stated[1]}
    return _save(Image.fromarray(rows), "TIFF", tiffinfo=tags)


def tiff_integer_columns(samples: Sequence[int], *, bits: Literal[8, 16], signed: bool) -> bytes:
    """An integer grey TIFF of 16 px wide columns, one per sample, left to
    right; ``signed`` written as SampleFormat 2, as scientific and medical
    tools store samples around 0."""
    dtype = {8: np.int8 if signed else np.uint8, 16: np.dtype("<i2" if signed else "<u2")}[bits]
    rows = np.repeat(np.array([samples], dtype=dtype), 16, axis=1).repeat(16, axis=0)
    mode = "L" if bits == 8 else "I;16"
    img = Image.frombytes(mode, (rows.shape[1], rows.shape[0]), rows.tobytes())
    return _save(img, "TIFF", tiffinfo={339: 2} if signed else {})


def tiff_int32_columns(samples: Sequence[int]) -> bytes:
    """A 32-bit integer grey TIFF of 16 px wide columns, one per sample,
    left to right, as Pillow writes any of its "I" pictures (signed samples,
    which here run from 0 up)."""
    rows = np.repeat(np.array([samples], dtype="<i4"), 16, axis=1).repeat(16, axis=0)
    return _save(Image.frombytes("I", (rows.shape[1], rows.shape[0]), rows.tobytes()), "TIFF")


def gif_animated(frames: int = 1000, size: tuple[int, int] = (16, 16)) -> bytes:
    """Many tiny frames; the first one is red so tests can tell it apart."""
    palette = [255, 0, 0] + [v for i in range(1, 256) for v in (0, i, 255 - i)]
    images = []
    for i in range(frames):
        img = Image.new("P", size, 0 if i == 0 else 1 + i % 255)
        img.putpalette(palette)
        images.append(img)
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)


def gif_first_frame_within(
    frame: Image.Image, at: tuple[int, int], screen: tuple[int, int] = (80, 60), *, frames: int = 1
) -> bytes:
    """A GIF whose logical screen is ``screen`` and whose first frame,
    ``frame`` (P mode, no transparency), covers just the part of it at
    ``at``, as gifsicle's --crop-transparency writes them; ``frames`` - 1
    more frames repeat it. Its background colour is red, which browsers
    ignore: what no frame covers is transparent."""
    data = _save(frame, "GIF")
    flags = data[10]
    at_descriptor = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[at_descriptor] == 0x21:  # extension blocks, up to the image descriptor
        at_descriptor += 2
        while data[at_descriptor]:
            at_descriptor += 1 + data[at_descriptor]
        at_descriptor += 1
    assert data[at_descriptor] == 0x2C, "no image descriptor"
    patched = bytearray(data)
    struct.pack_into("<HH", patched, 6, *screen)
    struct.pack_into("<HH", patched, at_descriptor + 1, *at)
    # Background: a palette entry set to red, unused by the frame.
    palette = frame.getpalette() or []
    index = len(palette) // 3 - 1
    patched[11] = index
    patched[13 + 3 * index : 13 + 3 * index + 3] = bytes((255, 0, 0))
    image_block = bytes(patched[at_descriptor:-1])  # up to the trailer
    return bytes(patched[:-1]) + image_block * (frames - 1) + b";"


def apng(size: tuple[int, int] = (80, 60)) -> bytes:
    """An animated PNG whose first frame is its picture, as most are (no
    default image): the quadrants, then black."""
    return png(quadrants(*size), save_all=True, append_images=[solid((0, 0, 0), size)], duration=500)


def apng_with_default_image(size: tuple[int, int] = (80, 60), still_colour: RGB = (255, 255, 0)) -> bytes:
    """An animated PNG whose first picture, a plain yellow (``still_colour``)
    still, is only its "default image" for viewers without animation:
    browsers start at the animation's first frame, the quadrants, then black."""
    still = solid(still_colour, size)
    frames = [quadrants(*size), solid((0, 0, 0), size)]
    return png(still, save_all=True, append_images=frames, default_image=True, duration=500)


def apng_with_first_frame(frame: Image.Image, at: tuple[int, int], *, over: bool = False) -> bytes:
    """An animated PNG whose default image, an opaque yellow still of 80x60
    in ``frame``'s mode, is no part of the animation, and whose first frame
    is ``frame`` placed at ``at``, replacing what is beneath it or, with
    ``over``, blended over it. Browsers start the animation on a transparent
    canvas: none of the still shows."""
    still = Image.new(frame.mode, (80, 60), "yellow")
    chunks = _png_chunks(
        png(still, save_all=True, append_images=[still, still], default_image=True, duration=500)
    )
    pixels = b"".join(body for kind, body in _png_chunks(png(frame)) if kind == b"IDAT")
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"fcTL")
    sequence = struct.unpack(">I", chunks[first][1][:4])[0]
    delay, dispose_op, blend_op = (1, 1), 0, int(over)
    control = struct.pack(">IIIIIHHBB", sequence, *frame.size, *at, *delay, dispose_op, blend_op)
    chunks[first] = (b"fcTL", control)
    chunks[first + 1] = (b"fdAT", chunks[first + 1][1][:4] + pixels)
    return _PNG_SIGNATURE + b"".join(_png_chunk(kind, body) for kind, body in chunks)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG file's chunks, each as its type and its data."""
    chunks: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def apng_with_broken_animation(
    fault: str, size: tuple[int, int] = (80, 60), still_colour: RGB = (255, 255, 0)
) -> bytes:
    """:func:`apng_with_default_image` whose animation is broken after its
    whole default image, the yellow still: its frames ``"missing"``, its
    first frame ``"oversized"`` (larger than the canvas) or its first
    frame's data ``"corrupt"``."""
    data = apng_with_default_image(size, still_colour)
    chunks = _png_chunks(data)
    first_frame = next(i for i, (kind, _) in enumerate(chunks) if kind == b"fcTL")
    if fault == "missing":
        chunks = [*chunks[:first_frame], chunks[-1]]
    elif fault == "oversized":
        sequence, width, height = struct.unpack(">III", chunks[first_frame][1][:12])
        body = struct.pack(">III", sequence, width * 2, height * 2) + chunks[first_frame][1][12:]
        chunks[first_frame] = (b"fcTL", body)
    elif fault == "corrupt":
        kind, body = chunks[first_frame + 1]
        chunks[first_frame + 1] = (kind, body[:4] + b"not a zlib stream" * 4)
    else:
        raise ValueError(fault)
    return data[:8] + b"".join(_png_chunk(kind, body) for kind, body in chunks)


# --------------------------------------------------------------------------
# EXIF orientation and metadata

# Where the stored picture's first row and first column are shown, per value of
# the EXIF Orientation tag (0x0112), as the EXIF standard words it: "the 0th row
# is the visual top, the 0th column is the visual left-hand side" and so on.
# Written from the standard's text, not from any transpose table, so a fixture
# and the code under test cannot share a mistake.
EXIF_ROW0_COL0: dict[int, tuple[str, str]] = {
    1: ("top", "left"),
    2: ("top", "right"),
    3: ("bottom", "right"),
    4: ("bottom", "left"),
    5: ("left", "top"),
    6: ("right", "top"),
    7: ("right", "bottom"),
    8: ("left", "bottom"),
}


def _shown_at(orientation: int, x: int, y: int, shown: tuple[int, int]) -> tuple[int, int]:
    """Where the stored pixel (x, y) appears in the displayed picture of size ``shown``."""
    width, height = shown
    row0, col0 = EXIF_ROW0_COL0[orientation]
    if row0 in ("top", "bottom"):  # rows stay rows
        across = x if col0 == "left" else width - 1 - x
        down = y if row0 == "top" else height - 1 - y
        return across, down
    # Rows become columns: stored row y is displayed column ``y`` counted from
    # row0's side; stored column x is displayed row ``x`` counted from col0's side.
    across = y if row0 == "left" else width - 1 - y
    down = x if col0 == "top" else height - 1 - x
    return across, down


def oriented_stored(orientation: int, size: tuple[int, int] = (80, 60)) -> Image.Image:
    """When displayed per its Orientation tag, the picture is ``size`` (landscape)
    with the quadrant colours in place (red top-left); the stored pixels are laid
    out pixel by pixel as the tag says a camera would have written them."""
    upright = quadrants(*size)
    swaps = EXIF_ROW0_COL0[orientation][0] in ("left", "right")
    stored = Image.new("RGB", (size[1], size[0]) if swaps else size)
    upright_px, stored_px = upright.load(), stored.load()
    assert upright_px is not None
    assert stored_px is not None
    for y in range(stored.height):
        for x in range(stored.width):
            stored_px[x, y] = upright_px[_shown_at(orientation, x, y, size)]
    return stored


def oriented_jpeg(orientation: int, size: tuple[int, int] = (80, 60)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(oriented_stored(orientation, size), quality=95, exif=exif.tobytes())


def oriented_tiff(orientation: int, compression: str = "raw", size: tuple[int, int] = (80, 60)) -> bytes:
    """``oriented_jpeg`` as a TIFF, whose Orientation is a tag of its own
    (the same number), uncompressed or LZW (which another decoder reads)."""
    return _save(
        oriented_stored(orientation, size), "TIFF", tiffinfo={0x0112: orientation}, compression=compression
    )


XMP_PACKET = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Secret Photographer"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def xmp_orientation_packet(orientation: int) -> bytes:
    return (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="'
        + str(orientation).encode()
        + b'"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def xmp_oriented(fmt: str, orientation: int = 6, size: tuple[int, int] = (80, 60)) -> bytes:
    """An upright picture (red top-left) whose only orientation is XMP's
    ``tiff:Orientation``, as an editor that dropped the EXIF but kept the XMP
    leaves it. Browsers read the EXIF tag alone: they show it as stored. The
    JPEG has EXIF (a camera maker) without an Orientation tag."""
    img = quadrants(*size)
    xmp = xmp_orientation_packet(orientation)
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x010F] = "Camera Maker"
        return jpeg(img, quality=95, exif=exif.tobytes(), xmp=xmp)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        return png(img, pnginfo=info)
    if fmt == "TIFF":
        return _save(img, fmt, tiffinfo={700: xmp})  # XMLPacket
    return _save(img, fmt, xmp=xmp, lossless=True)


def jpeg_with_metadata(size: tuple[int, int] = (80, 60)) -> bytes:
    """EXIF camera data, a GPS position, XMP, a comment and an sRGB profile."""
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[0x0131] = "Editor 2.0"  # Software
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 12.5)
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 30.1)
    return jpeg(
        quadrants(*size),
        quality=90,
        exif=exif.tobytes(),
        xmp=XMP_PACKET,
        comment=b"private comment",
        icc_profile=srgb_profile(),
    )


# --------------------------------------------------------------------------
# Real-world deliveries


def supplier_tiff(size: tuple[int, int] = (3000, 2000)) -> bytes:
    """An RGBA LZW TIFF with a transparent border, like product shots from suppliers."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.rectangle((w // 10, h // 10, w - w // 10, h - h // 10), fill=(30, 90, 200, 255))
    draw.ellipse((w // 3, h // 3, 2 * w // 3, 2 * h // 3), fill=(250, 200, 0, 255))
    return _save(img, "TIFF", compression="tiff_lzw")


def icon_tiff(side: int = 192) -> bytes:
    """A square icon stored rotated 90 degrees counter-clockwise (no extension)."""
    return _save(quadrants(side, side).transpose(Image.Transpose.ROTATE_90), "TIFF")


def bmp(size: tuple[int, int] = (80, 60)) -> bytes:
    return _save(quadrants(*size), "BMP")


def webp(size: tuple[int, int] = (80, 60), *, lossless: bool = True) -> bytes:
    return _save(quadrants(*size), "WEBP", lossless=lossless)


def webp_rgba(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("RGBA", size, (0, 0, 255, 255))
    img.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return _save(img, "WEBP", lossless=True)


def jpeg_with_preview(size: tuple[int, int] = (80, 60), preview: tuple[int, int] = (40, 30)) -> bytes:
    """A camera JPEG (the quadrants) followed by a smaller blue picture in a
    Multi-Picture Format extension, as cameras store a large preview and
    phones a depth or gain map. Browsers show the first picture; Pillow
    calls the file "MPO"."""
    return _save(
        quadrants(*size), "MPO", quality=95, save_all=True, append_images=[solid((0, 0, 255), preview)]
    )


def photo(width: int = 4000, height: int = 3000, *, seed: int = 0) -> Image.Image:
    """Smooth colour gradients with sensor-like noise and a few hard edges: close
    enough to a photograph for codecs and resamplers to do realistic work."""
    rng = random.Random(seed)
    coarse = Image.new("RGB", (8, 6))
    coarse.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48)])
    base = coarse.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(min(width, height) // 20, min(width, height) // 5)
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    noise = Image.effect_noise((width, height), 10).convert("RGB")
    return ImageChops.add(base, noise, scale=1.0, offset=-128)


def photo_jpeg(width: int = 4000, height: int = 3000, *, quality: int = 90, seed: int = 0) -> bytes:
    return jpeg(photo(width, height, seed=seed), quality=quality)


# --------------------------------------------------------------------------
# The catalogue

# What the upload pipeline does with a file: refuse it from its header
# ("rejected", with ImageRejected.code), accept it and fail to decode it
# ("error": the image ends failed, its original kept), or make its renditions.
Expectation = Literal["ok", "rejected", "error"]


@dataclass(frozen=True)
class Sample:
    name: str
    filename: str  # what a client could send; never trusted
    build: Callable[[], bytes]
    expect: Expectation
    code: str | None = None  # ImageRejected.code, required when expect == "rejected"


SAMPLES: tuple[Sample, ...] = (
    Sample("zero_bytes", "empty.jpg", zero_bytes, "rejected", "empty"),
    Sample("truncated_jpeg", "cut.jpg", truncated_jpeg, "error"),
    Sample("garbage", "noise.png", garbage, "rejected", "format"),
    Sample("svg", "logo.svg", svg, "rejected", "format"),
    Sample("svg_named_png", "logo.png", svg, "rejected", "format"),
    Sample("html", "index.html", html, "rejected", "format"),
    Sample("eps", "drawing.eps", eps, "rejected", "format"),
    Sample("psd", "layers.psd", psd, "rejected", "format"),
    Sample("png_bomb", "bomb.png", png_bomb, "rejected", "pixels"),
    Sample("gif_bomb", "bomb.gif", gif_bomb, "rejected", "pixels"),
    Sample("jpeg_bomb", "bomb.jpg", jpeg_bomb, "rejected", "pixels"),
    Sample("gif_frame_bomb", "frames.gif", gif_frame_bomb, "rejected", "pixels"),
    Sample("gif_with_html", "cat.gif", gif_with_html_appended, "ok"),
    Sample("jpeg_with_script", "cat.jpg", jpeg_with_script_appended, "ok"),
    Sample("html_with_gif_magic", "cat.gif", html_with_gif_magic, "rejected", "corrupt"),
    Sample("png_big_ztxt", "bloated.png", png_with_big_text, "ok"),
    Sample(
        "png_big_itxt_after_pixels",
        "bloated-xmp.png",
        lambda: png_with_big_text("iTXt", after_pixels=True),
        "ok",
    ),
    Sample("png_many_chunks", "chunks.png", lambda: png_with_many_chunks(20_000), "rejected", "chunks"),
    Sample(
        "jpeg_many_segments", "segments.jpg", lambda: jpeg_with_empty_comments(20_000), "rejected", "chunks"
    ),
    Sample("png_bad_header_checksum", "crc.png", png_bad_header_checksum, "rejected", "corrupt"),
    Sample("tiff_lab", "lab.tif", tiff_unreadable, "rejected", "corrupt"),
    Sample("cmyk_jpeg", "print.jpg", cmyk_jpeg, "ok"),
    Sample(
        "adobe_rgb_jpeg",
        "adobe.jpg",
        lambda: jpeg_with_profile((60, 180, 60), adobe_rgb_profile()),
        "ok",
    ),
    Sample(
        "display_p3_png",
        "p3.png",
        lambda: png_with_profile((220, 60, 40), display_p3_profile()),
        "ok",
    ),
    Sample(
        "srgb_jpeg",
        "srgb.jpg",
        lambda: jpeg_with_profile((60, 120, 180), srgb_profile()),
        "ok",
    ),
    Sample("png_16bit_gray", "deep.png", png_16bit_gray, "ok"),
    Sample("png_16bit_rgb", "deep-rgb.png", png_16bit_rgb, "ok"),
    Sample("png_16bit_gray_transparent", "deep-alpha.png", png_16bit_gray_transparent, "ok"),
    Sample("png_palette", "palette.png", png_palette, "ok"),
    Sample("png_palette_transparent", "palette-alpha.png", png_palette_transparent, "ok"),
    Sample("gif_palette_transparent", "palette-alpha.gif", gif_palette_transparent, "ok"),
    Sample("png_la", "gray-alpha.png", png_la, "ok"),
    Sample("png_rgba", "alpha.png", png_rgba, "ok"),
    Sample("png_gray", "gray.png", png_gray, "ok"),
    Sample("png_gray_transparent", "gray-keyed.png", png_gray_transparent, "ok"),
    Sample("png_rgb_transparent", "keyed.png", png_rgb_transparent, "ok"),
    Sample("png_bilevel", "bilevel.png", png_bilevel, "ok"),
    Sample("png_bilevel_transparent", "bilevel-alpha.png", png_bilevel_transparent, "ok"),
    Sample("tiff_int32", "int.tif", tiff_int32, "ok"),
    Sample("tiff_float", "float.tif", tiff_float, "ok"),
    Sample("tiff_grey_premultiplied", "grey-premultiplied.tif", tiff_grey_premultiplied, "ok"),
    Sample("gif_animated", "anim.gif", gif_animated, "ok"),
    Sample("apng_with_default_image", "anim.png", apng_with_default_image, "ok"),
    *(
        Sample(f"orientation_{o}", f"rotated-{o}.jpg", (lambda o=o: oriented_jpeg(o)), "ok")  # type: ignore[misc]
        for o in range(1, 9)
    ),
    Sample("jpeg_with_metadata", "gps.jpg", jpeg_with_metadata, "ok"),
    Sample("png_named_jpg", "photo.jpg", png, "ok"),
    Sample("jpeg_named_png", "photo.png", jpeg, "ok"),
    Sample("supplier_tiff", "SUPPLIER_0001.TIF", supplier_tiff, "ok"),
    Sample("icon_tiff", "icon", icon_tiff, "ok"),
    Sample("bmp", "paint.bmp", bmp, "ok"),
    Sample("jpeg_with_preview", "camera.jpg", jpeg_with_preview, "ok"),
    Sample("webp", "modern.webp", webp, "ok"),
    Sample("webp_rgba", "modern-alpha.webp", webp_rgba, "ok"),
)

SAMPLES_BY_NAME: dict[str, Sample] = {sample.name: sample for sample in SAMPLES}


# --------------------------------------------------------------------------
# Modern formats: HEIC (as phones write it) and AVIF, made here with
# pillow-heif and Pillow's own AVIF encoder.

# What a phone puts in a photo's EXIF besides the picture: who made it, where.
PHONE_MAKE = "Phone Maker"
PHONE_SERIAL = "SN-0042-PRIVATE"


def phone_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = PHONE_MAKE  # Make
    exif[0xA431] = PHONE_SERIAL  # BodySerialNumber
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 12.5)
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 30.1)
    return exif.tobytes()


def heic(img: Image.Image, *, quality: int = 95, **params: Any) -> bytes:

    # Saving needs the plugin; registering it again changes none of its options.
    pillow_heif.register_heif_opener()
    return _save(img, "HEIF", quality=quality, **params)


def avif(img: Image.Image, *, quality: int = 95, **params: Any) -> bytes:
    return _save(img, "AVIF", quality=quality, **params)


def _phone_photo(save: Callable[..., bytes], size: tuple[int, int]) -> bytes:
    """A photo held upright, stored as the sensor saw it (turned a quarter
    counter-clockwise) with EXIF orientation 6, as phones do; the quadrant
    colours are Display P3 values, with that profile embedded; EXIF with GPS
    and a serial number, and XMP."""
    stored = quadrants(*size).transpose(Image.Transpose.ROTATE_90)
    return save(stored, exif=phone_exif(orientation=6), icc_profile=display_p3_profile(), xmp=XMP_PACKET)


def heic_rotated_p3(size: tuple[int, int] = (96, 72)) -> bytes:
    return _phone_photo(heic, size)


def avif_rotated_p3(size: tuple[int, int] = (96, 72)) -> bytes:
    return _phone_photo(avif, size)


def _half_transparent(size: tuple[int, int]) -> Image.Image:
    """Left half fully transparent, right half opaque blue."""
    img = Image.new("RGBA", size, (0, 0, 255, 255))
    img.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return img


def heic_alpha(size: tuple[int, int] = (64, 48)) -> bytes:
    return heic(_half_transparent(size))


def avif_alpha(size: tuple[int, int] = (64, 48)) -> bytes:
    return avif(_half_transparent(size))


def heic_photo(width: int = 4000, height: int = 3000, *, quality: int = 60, seed: int = 0) -> bytes:
    """``photo`` as a phone's HEIC; x265's ``fast`` preset keeps making a 12 MP
    one to seconds rather than minutes."""
    return heic(photo(width, height, seed=seed), quality=quality, enc_params={"preset": "fast"})


# --------------------------------------------------------------------------
# Subjects away from the centre, for focal points and smart crops

SUBJECT_RED: RGB = (220, 30, 30)
MARKER_BLUE: RGB = (30, 60, 230)


def textured(size: tuple[int, int], *, seed: int = 3) -> Image.Image:
    """Greyish-brown ground with blotches, diagonal grain and fine noise: edges
    everywhere, little colour, like a table top or a wall. The same ``seed``
    gives the same ground, noise included: a test of it gets one answer."""
    width, height = size
    rng = random.Random(seed)
    coarse = (max(1, width // 16), max(1, height // 16))
    blotches = Image.new("L", coarse)
    blotches.putdata([rng.randrange(88, 168) for _ in range(coarse[0] * coarse[1])])
    blotches = blotches.resize(size, Image.Resampling.BICUBIC)
    ground = Image.merge(
        "RGB",
        [
            blotches.point(lambda v: int(v * 0.8 + 20)),
            blotches.point(lambda v: int(v * 0.75 + 15)),
            blotches.point(lambda v: int(v * 0.7 + 10)),
        ],
    )
    draw = ImageDraw.Draw(ground)
    step = max(4, width // 40)
    for x in range(-height, width, step):
        shade = 100 + rng.randrange(40)
        draw.line(
            [(x, 0), (x + height, height)], fill=(shade, shade - 8, shade - 16), width=max(1, width // 200)
        )
    grain = np.random.default_rng(seed).normal(128, 20, (height, width))
    noise = Image.fromarray(grain.clip(0, 255).astype(np.uint8)).convert("RGB")
    return ImageChops.add(ground, noise, scale=1.0, offset=-128)


def subject_off_centre(
    size: tuple[int, int] = (1200, 900),
    at: tuple[float, float] = (0.85, 0.2),
    radius: float = 0.06,
    color: RGB = SUBJECT_RED,
) -> Image.Image:
    """A disc (``radius`` a share of the shorter side) centred at ``at``
    (fractions of width and height) on a textured ground."""
    img = textured(size)
    width, height = size
    cx, cy, r = at[0] * width, at[1] * height, radius * min(width, height)
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    return img


def with_marker(img: Image.Image, at: tuple[float, float], radius: float = 0.04) -> Image.Image:
    """``img`` with a small blue square at ``at``: what a manual focal point must keep."""
    marked = img.copy()
    width, height = marked.size
    cx, cy, r = at[0] * width, at[1] * height, radius * min(width, height)
    ImageDraw.Draw(marked).rectangle((cx - r, cy - r, cx + r, cy + r), fill=MARKER_BLUE)
    return marked


# Tan and beige surfaces pass for skin; a subject stands before them.
BEIGE_WALL: RGB = (205, 185, 160)
SKIN: RGB = (238, 200, 170)


def on_floor(
    size: tuple[int, int] = (1200, 800),
    at: tuple[float, float] = (0.3, 0.62),
    radius: float = 0.07,
    color: RGB = SUBJECT_RED,
    floor_from: float = 0.55,
) -> Image.Image:
    """A disc (as in :func:`subject_off_centre`) standing on a wooden floor:
    a pale wall above, tan boards with grain across the whole width below
    ``floor_from`` (a share of the height)."""
    width, height = size
    img = Image.new("RGB", size, (226, 228, 232))
    wood = ImageOps.colorize(textured(size).convert("L"), black=(95, 62, 30), white=(240, 205, 160))
    top = int(height * floor_from)
    img.paste(wood.crop((0, top, width, height)), (0, top))
    cx, cy, r = at[0] * width, at[1] * height, radius * min(width, height)
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    return img


def face(
    size: tuple[int, int] = (1000, 800),
    at: tuple[float, float] = (0.65, 0.4),
    radius: float = 0.18,
    wall: RGB = BEIGE_WALL,
    desk: RGB | None = None,
    skin: RGB = SKIN,
) -> Image.Image:
    """A face before a wall: an oval of ``skin`` ``radius`` (a share of the
    shorter side) high and 0.8 of that wide, centred at ``at``, with hair,
    eyes and a mouth; with ``desk``, a band of that colour across the bottom
    30 per cent."""
    width, height = size
    img = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(img)
    if desk is not None:
        draw.rectangle((0, int(height * 0.7), width, height), fill=desk)
    cx, cy, r = at[0] * width, at[1] * height, radius * min(width, height)
    draw.ellipse((cx - r * 0.8, cy - r, cx + r * 0.8, cy + r), fill=skin)
    draw.chord((cx - r * 0.85, cy - r * 1.1, cx + r * 0.85, cy + r * 0.3), 180, 360, fill=(50, 40, 35))
    for eye in (-0.3, 0.3):
        draw.ellipse(
            (cx + (eye - 0.1) * r, cy + r * 0.05, cx + (eye + 0.1) * r, cy + r * 0.15), fill=(40, 30, 30)
        )
    draw.chord((cx - r * 0.3, cy + r * 0.35, cx + r * 0.3, cy + r * 0.6), 0, 180, fill=(170, 60, 60))
    return img


# Complexions from fair to dark, and backdrops that are no skin: a portrait
# studio's grey, blue, green, near-black and near-white.
COMPLEXIONS: tuple[RGB, ...] = (SKIN, (224, 172, 105), (198, 134, 90), (120, 80, 55))
BACKDROPS: tuple[RGB, ...] = (
    (150, 170, 190),
    (128, 128, 128),
    (110, 140, 110),
    (40, 45, 60),
    (235, 235, 235),
)


def close_up(
    size: tuple[int, int] = (1000, 800),
    at: tuple[float, float] = (0.35, 0.39),
    width_share: float = 0.55,
    seed: int = 0,
) -> Image.Image:
    """A :func:`face` ``width_share`` of the picture's width wide (so as high
    as 2.5 times that over the shorter side), centred at ``at``, of a
    complexion and before a backdrop the ``seed`` picks, with film grain."""
    rng = random.Random(seed)
    width, height = size
    radius = width_share * width / (1.6 * min(size))
    img = face(size, at, radius, wall=rng.choice(BACKDROPS), skin=rng.choice(COMPLEXIONS))
    grain = np.random.default_rng(seed).normal(128, 8, (height, width))
    noise = Image.fromarray(grain.clip(0, 255).astype(np.uint8)).convert("RGB")
    return ImageChops.add(img, noise, scale=1.0, offset=-128)


def heic_primary_second(size: tuple[int, int] = (80, 60)) -> bytes:
    """A HEIF holding two pictures whose primary one (the photo) comes second,
    after a plain blue one, as burst or edited photos may be stored."""

    container = pillow_heif.from_pillow(Image.new("RGB", (size[0] // 2, size[1] // 2), (0, 0, 255)))
    container.add_from_pillow(quadrants(*size))
    buffer = io.BytesIO()
    container.save(buffer, quality=95, primary_index=1)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# Fuzzed files


def fuzzed(data: bytes, *, seed: str, flips: int = 6) -> list[tuple[str, bytes]]:
    """``data`` cut short at a few points and with a few bits flipped in its
    first 400 bytes (where the headers are), each variant named; the same
    ``seed`` gives the same variants."""
    rng = random.Random(seed)
    size = len(data)
    variants = [(f"cut-{cut}", data[:cut]) for cut in (12, 30, size // 4, size // 2, size - 10)]
    for number in range(flips):
        flipped = bytearray(data)
        for _ in range(4):
            flipped[rng.randrange(8, min(size, 400))] ^= 1 << rng.randrange(8)
        variants.append((f"flip-{number}", bytes(flipped)))
    return variants


# Readers of every accepted format, each with its own words for damage.
FUZZ_BASES: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: jpeg(quadrants()),
    "png": lambda: png(quadrants()),
    "gif": lambda: gif_animated(3),
    "webp": webp,
    "tiff": lambda: oriented_tiff(1),
    "bmp": bmp,
    "heic": heic_rotated_p3,
    "avif": avif_rotated_p3,
}
