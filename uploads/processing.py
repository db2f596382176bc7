"""Turn an uploaded image into web renditions, with Pillow only.

The module is deliberately free of Django so it can run anywhere (a view, a
worker, a management command) and be tested and benchmarked in isolation.

Safety model: :func:`probe` looks at the header only and refuses anything that
is not one of the allowed formats or that would decode into too many pixels.
:func:`process` probes first, then decodes once, at the smallest scale the
largest rendition needs, and derives every smaller rendition from the previous
one. Outputs are re-encoded from pixels, so nothing from the upload except the
picture itself (metadata, appended payloads, profiles) reaches them.

Cropped renditions (the square thumbnail, a preset with ``crop``) keep the
image's focal point in frame: the one given, else an estimate of where the eye
goes (:func:`estimate_focal_point`), made from the smallest rendition at hand.
Focal points are fractions (0..1) of the image as displayed: EXIF orientation
applied, before any rotation a preset asks for.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, BinaryIO, Final, Literal, cast

import blurhash
import pillow_heif
from PIL import (
    Image,
    ImageChops,
    ImageCms,
    ImageDraw,
    ImageFile,
    ImageFilter,
    ImageMath,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
)

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_PRESETS",
    "FocalPoint",
    "ImageInfo",
    "ImageRejected",
    "Output",
    "Preset",
    "ProcessingError",
    "Result",
    "content_type",
    "crop_box",
    "estimate_focal_point",
    "extension",
    "logged",
    "probe",
    "process",
]

# HEIC/HEIF (what phones write by default) is read by pillow-heif, registered
# here once for every process that imports this module (web, workers, the
# decoding sandbox). Embedded thumbnails, depth maps and auxiliary images are
# never used: not loading them saves memory. AVIF is Pillow's own plugin.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# AVIF before HEIF: both are ISO-BMFF files and some AVIF files carry the
# generic ``mif1`` brand that the HEIF plugin also claims.
ALLOWED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF", "HEIF")

OUTPUT_FORMATS: Final = ("jpeg", "webp", "avif", "png")
# Every format the portal reads or writes, by Pillow's name in lower case:
# its content type and the file extension its objects are stored under.
FORMAT_FILES: Final = {
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
    "webp": ("image/webp", "webp"),
    "avif": ("image/avif", "avif"),
    "gif": ("image/gif", "gif"),
    "tiff": ("image/tiff", "tif"),
    "bmp": ("image/bmp", "bmp"),
    # Every HEIF that can be decoded here is HEVC-coded: a phone's HEIC.
    "heif": ("image/heic", "heic"),
}


def content_type(image_format: str) -> str:
    """``"JPEG"`` or ``"jpeg"`` → ``image/jpeg``; unknown formats are plain bytes."""
    return FORMAT_FILES.get(image_format.lower(), ("application/octet-stream", "bin"))[0]


def extension(image_format: str) -> str:
    """``"JPEG"`` or ``"jpeg"`` → ``jpg``."""
    return FORMAT_FILES.get(image_format.lower(), ("application/octet-stream", "bin"))[1]


_ENCODE_COST: Final = {"avif": 3, "webp": 2, "png": 1, "jpeg": 0}

# Only the first frame is used, but every frame's header is read to count
# it against the pixel limit: the count itself is bounded too.
MAX_FRAMES: Final = 5_000

_ORIENTATION_TAG: Final = 0x0112
# A TIFF header, either byte order; and what Pillow puts before a PNG's EXIF.
_TIFF_HEADERS: Final = (b"II*\0", b"MM\0*")
_PNG_EXIF_PREFIX: Final = b"Exif\0\0"
_SWAPS_AXES: Final = frozenset({5, 6, 7, 8})
_EXIF_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow's ROTATE_* constants turn counter-clockwise; presets speak clockwise.
_CLOCKWISE: Final[dict[int, Image.Transpose]] = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}

# Magic numbers of things people upload by mistake, only to word the refusal.
_KNOWN_SIGNATURES: Final = (
    (b"8BPS", "a Photoshop document (PSD)"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "PostScript/EPS"),
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "XML (SVG?)"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
)


class ImageRejected(Exception):
    """The upload was refused from its header, before any pixel was decoded.

    ``code`` is one of ``"empty"``, ``"format"``, ``"pixels"``,
    ``"frames"``, ``"chunks"``, ``"dimensions"`` or ``"corrupt"``.
    ``message`` is a fixed reason, fit for the uploader; ``detail`` is the
    reader's own words (offsets, buffers, codecs), for the log only.
    """

    def __init__(self, message: str, *, code: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail


class ProcessingError(Exception):
    """The header looked fine but the image could not be decoded or rendered.

    Its message is a fixed reason; ``detail`` is the decoder's own words,
    for the log only.
    """

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def logged(exc: BaseException) -> str:
    """``exc`` as the log shows it: its message, and the reader's own words
    where it kept them (an answer or a stored reason has the message alone)."""
    detail = getattr(exc, "detail", "")
    return f"{exc} ({detail})" if detail else str(exc)


def _detail(exc: BaseException) -> str:
    """A reader's exception as the log shows it."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _truncated(exc: BaseException) -> bool:
    """Whether a reader failed for the file ending early, which its own
    words say in as many ways as there are readers."""
    text = str(exc).lower()
    return isinstance(exc, EOFError) or any(
        words in text for words in ("truncated", "end of file", "too small", "premature end")
    )


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # display size: EXIF orientation applied
    height: int
    frames: int
    mode: str


@dataclass(frozen=True)
class Preset:
    name: str
    widths: tuple[int, ...] = ()
    formats: tuple[str, ...] = ("jpeg",)
    thumbnail: int | None = None
    fit: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    # With ``size``: fill it, cropping around the focal point, instead of
    # stretching the picture to it (the course's icons are stretched).
    crop: bool = False
    rotate: int = 0
    jpeg_quality: int = 82
    webp_quality: int = 80
    avif_quality: int = 60

    def __post_init__(self) -> None:
        if not self.formats or any(f not in OUTPUT_FORMATS for f in self.formats):
            raise ValueError(
                f"Preset {self.name!r}: formats must be among {OUTPUT_FORMATS}, got {self.formats}."
            )
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"Preset {self.name!r}: duplicate format in {self.formats}.")
        if any(w <= 0 for w in self.widths) or len(set(self.widths)) != len(self.widths):
            raise ValueError(f"Preset {self.name!r}: widths must be distinct positive integers.")
        if self.thumbnail is not None and self.thumbnail <= 0:
            raise ValueError(f"Preset {self.name!r}: thumbnail must be positive.")
        for label, box in (("fit", self.fit), ("size", self.size)):
            if box is not None and (len(box) != 2 or min(box) <= 0):
                raise ValueError(f"Preset {self.name!r}: {label} must be two positive integers.")
        if self.crop and self.size is None:
            raise ValueError(f"Preset {self.name!r}: crop needs a size to fill.")
        if self.rotate % 90:
            # Arbitrary angles would need a background colour and change sizes;
            # nobody has asked for them.
            raise ValueError(f"Preset {self.name!r}: rotate must be a multiple of 90 degrees.")
        for label, quality in (
            ("jpeg", self.jpeg_quality),
            ("webp", self.webp_quality),
            ("avif", self.avif_quality),
        ):
            if not 1 <= quality <= 100:
                raise ValueError(f"Preset {self.name!r}: {label}_quality must be within 1..100.")
        if not (self.widths or self.thumbnail or self.fit or self.size):
            raise ValueError(f"Preset {self.name!r} produces nothing: give widths, thumbnail, fit or size.")

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Preset:
        """Build a preset from settings, which only have dicts, lists and scalars."""
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"Preset {name!r}: unknown keys {sorted(unknown)}; known keys are {sorted(known)}."
            )
        kwargs: dict[str, Any] = dict(data)
        if "widths" in kwargs:
            kwargs["widths"] = tuple(int(w) for w in kwargs["widths"])
        if "formats" in kwargs:
            formats = kwargs["formats"]
            kwargs["formats"] = (
                (formats.lower(),) if isinstance(formats, str) else tuple(f.lower() for f in formats)
            )
        for key in ("fit", "size"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(int(v) for v in kwargs[key])
        for key in ("thumbnail",):
            if kwargs.get(key) is not None:
                kwargs[key] = int(kwargs[key])
        for key in ("rotate", "jpeg_quality", "webp_quality", "avif_quality"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if "crop" in kwargs:
            kwargs["crop"] = bool(kwargs["crop"])
        return cls(name=name, **kwargs)

    @property
    def crop_names(self) -> tuple[str, ...]:
        """The renditions cut around the focal point: remade when it moves."""
        return (("thumb",) if self.thumbnail else ()) + (("icon",) if self.crop else ())


DEFAULT_PRESETS: dict[str, Preset] = {
    "web": Preset("web", widths=(320, 640, 1024, 1600), formats=("webp", "jpeg"), thumbnail=256),
    "icon": Preset("icon", rotate=90, size=(128, 128), formats=("jpeg",)),
    "supplier": Preset("supplier", fit=(600, 400), formats=("jpeg",)),
}


@dataclass(frozen=True)
class FocalPoint:
    """Where the subject is: ``x``, ``y`` as fractions (0..1) of the displayed
    image's width and height; ``radius`` (optional) as a fraction of its
    shorter side. Crops keep the whole circle in frame when it fits."""

    x: float
    y: float
    radius: float | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"A focal point lies within 0..1 on both axes, got ({self.x}, {self.y}).")
        if self.radius is not None and not 0.0 < self.radius <= 1.0:
            raise ValueError(f"A focal radius lies within 0..1 (exclusive of 0), got {self.radius}.")

    def rotated(self, clockwise: int) -> FocalPoint:
        """The same point once the picture is turned ``clockwise`` degrees."""
        turns = (clockwise // 90) % 4
        x, y = self.x, self.y
        for _ in range(turns):
            x, y = 1.0 - y, x
        return FocalPoint(x, y, self.radius)


@dataclass(frozen=True)
class Output:
    name: str
    format: str
    width: int
    height: int
    data: bytes

    @property
    def content_type(self) -> str:
        return content_type(self.format)

    @property
    def extension(self) -> str:
        return extension(self.format)


@dataclass(frozen=True)
class Result:
    info: ImageInfo
    outputs: list[Output]
    placeholder: str
    dominant_color: str
    # Where the eye goes, estimated from the pixels (whatever focal point the
    # crops were given): the image's automatic focal point.
    focal_point: FocalPoint = FocalPoint(0.5, 0.5)


# --------------------------------------------------------------------------
# Opening and probing


class _Borrowed:
    """The caller's file, minus ``close()``: Pillow closes the files it reads."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def close(self) -> None:
        pass


def _as_stream(source: bytes | BinaryIO) -> BinaryIO:
    """The whole stream is the image: it is read from its start, whatever its position."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    try:
        source.seek(0)
    except (AttributeError, OSError, ValueError):
        return io.BytesIO(source.read())
    return cast(BinaryIO, _Borrowed(source))


_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS: Final = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_DATA_CHUNKS: Final = frozenset({b"IDAT", b"fdAT"})
# A real PNG has a few dozen chunks besides its pixel data (an animated one,
# one more per frame), and an encoder splits the pixel data into chunks of
# kilobytes. Every chunk is a step in Python, in the walk below and in
# Pillow's reader: 22 MB of empty chunks took seconds to read.
MAX_PNG_CHUNKS: Final = 10_000
MAX_PNG_DATA_CHUNKS: Final = 100_000


# libpng's default for what a chunk may unpack to: a profile up to this size
# is honoured, as browsers do, one larger is ignored, as they do.
MAX_PNG_PROFILE_BYTES: Final = 8_000_000


def _png_profile(body: bytes) -> tuple[bool, bytes | None]:
    """Whether Pillow would refuse this iCCP chunk's data (a profile that
    unpacks past its 1 MB limit for text, an unknown compression method,
    no name before it), and the profile browsers would use in its place
    (None: none)."""
    name_end = body.find(b"\0")
    if name_end < 0 or name_end + 1 >= len(body) or body[name_end + 1] != 0:
        return True, None
    unpacker = zlib.decompressobj()
    try:
        profile = unpacker.decompress(body[name_end + 2 :], MAX_PNG_PROFILE_BYTES)
    except zlib.error:
        return False, None  # Pillow takes it for no profile
    if len(profile) <= PngImagePlugin.MAX_TEXT_CHUNK and not unpacker.unconsumed_tail:
        return False, None
    return True, None if unpacker.unconsumed_tail else profile


def _png_cleaned(fp: BinaryIO) -> tuple[BinaryIO, bytes | None]:
    """A PNG minus its text chunks (comments, XMP, ImageMagick's raw
    profiles) when one of them is compressed, and minus a colour profile
    (iCCP) Pillow would refuse or browsers ignore (all but the first, any
    after the pixel data); else ``fp`` itself, nothing copied. And the
    profile so taken out, when browsers would use it.

    Pillow refuses a PNG whose text unpacks past 1 MB (a bomb, or the
    notorious bloated Photoshop XMP that ImageMagick hex-encodes), after
    the pixels as well as before them, where browsers show the picture and
    never unpack the text. None of it reaches a rendition anyway. It
    refuses a profile past 1 MB as well (a printer's, of large tables),
    which libpng reads up to MAX_PNG_PROFILE_BYTES and otherwise ignores,
    as it ignores a profile of an unknown compression, showing the picture
    either way. Only the chunk headers (and a profile's data) are read to
    find out; a damaged chunk table ends the search and is left for the
    reader to judge. A PNG of more chunks than MAX_PNG_CHUNKS besides its
    pixel data, or MAX_PNG_DATA_CHUNKS of pixel data, is refused on the way.
    """
    fp.seek(len(_PNG_SIGNATURE))
    text_spans: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []
    profile: bytes | None = None
    compressed = profile_seen = False
    others = data_chunks = 0
    while True:
        start = fp.tell()
        header = fp.read(8)
        if len(header) < 8:
            break
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        end = start + 12 + length  # length, type, data, CRC
        if kind in _PNG_DATA_CHUNKS:
            data_chunks += 1
            if data_chunks > MAX_PNG_DATA_CHUNKS:
                raise ImageRejected(
                    f"The PNG's pixel data is split into more than {MAX_PNG_DATA_CHUNKS:,} chunks; "
                    f"the limit is {MAX_PNG_DATA_CHUNKS:,}.",
                    code="chunks",
                )
        else:
            others += 1
            if others > MAX_PNG_CHUNKS:
                raise ImageRejected(
                    f"The PNG has more than {MAX_PNG_CHUNKS:,} chunks besides its pixel data; "
                    f"the limit is {MAX_PNG_CHUNKS:,}.",
                    code="chunks",
                )
        if kind in _PNG_TEXT_CHUNKS:
            text_spans.append((start, end))
            compressed = compressed or kind != b"tEXt"
        elif kind == b"iCCP":
            if data_chunks or profile_seen:
                # libpng ignores a profile after the pixel data and all but
                # the first ("too many profiles"); Pillow would use the last
                # and unpack each, a step of up to 8 MB per 8 KB chunk.
                spans.append((start, end))
            else:
                refused, profile = _png_profile(fp.read(length))
                if refused:
                    spans.append((start, end))
            profile_seen = True
        if kind == b"IEND":
            break
        fp.seek(end)
    fp.seek(0)
    spans = sorted(spans + (text_spans if compressed else []))
    if not spans:
        return fp, None
    data = fp.read()
    kept: list[bytes] = []
    at = 0
    for start, end in spans:
        kept.append(data[at:start])
        at = end
    kept.append(data[at:])
    return io.BytesIO(b"".join(kept)), profile


_JPEG_SIGNATURE: Final = b"\xff\xd8\xff"
# A real JPEG has a few dozen marker segments before its first scan (a few
# hundred with a large ICC profile or XMP split over many), and encoders put
# at most a handful of fill bytes (0xFF) before a marker. Pillow reads each
# segment, and each byte of fill or of junk between segments, in a step of
# Python: 24 MB of empty comments, or of fill, took 9 to 14 s to open.
MAX_JPEG_SEGMENTS: Final = 10_000
MAX_JPEG_FILL_BYTES: Final = 100_000
# Markers that stand alone, with no length after them, as Pillow reads them.
_JPEG_STANDALONE: Final = frozenset({0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)})
_JPEG_START_OF_SCAN: Final = 0xDA
_JPEG_FILL: Final = re.compile(rb"\xff+")


def _check_jpeg_markers(fp: BinaryIO) -> None:
    """Refuse a JPEG of more than MAX_JPEG_SEGMENTS marker segments before
    its first scan, or of more than MAX_JPEG_FILL_BYTES bytes of fill and
    junk between them, walked as Pillow's reader walks them; a marker the
    reader would not take ends the walk and is left for it to judge."""
    fp.seek(0)
    data = fp.getvalue() if isinstance(fp, io.BytesIO) else fp.read()
    fp.seek(0)
    at = len(b"\xff\xd8")
    segments = skipped = 0
    while at < len(data):
        if data[at] != 0xFF:
            # Junk before the next marker, skipped a byte at a time.
            found = data.find(b"\xff", at)
            end = found if found >= 0 else len(data)
            skipped += end - at
            at = end
        else:
            fill = _JPEG_FILL.match(data, at)
            end = fill.end() if fill else at + 1
            skipped += end - at - 1  # every 0xFF but the marker's own
            at = end - 1
            if at + 1 >= len(data):
                return
            code = data[at + 1]
            if code == _JPEG_START_OF_SCAN:
                return
            if code == 0x00:  # a stuffed 0xFF: junk too
                skipped += 2
                at += 2
            elif code in _JPEG_STANDALONE:
                segments += 1
                at += 2
            elif code >= 0xC0:
                segments += 1
                at += 2 + max(2, int.from_bytes(data[at + 2 : at + 4], "big"))
            else:
                return
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageRejected(
                f"The JPEG has more than {MAX_JPEG_SEGMENTS:,} marker segments before its image data; "
                f"the limit is {MAX_JPEG_SEGMENTS:,}.",
                code="chunks",
            )
        if skipped > MAX_JPEG_FILL_BYTES:
            raise ImageRejected(
                f"The JPEG has more than {MAX_JPEG_FILL_BYTES:,} bytes of fill or junk between its "
                f"markers; the limit is {MAX_JPEG_FILL_BYTES:,}.",
                code="chunks",
            )


_TIFF_BIG_HEADERS: Final = (b"II+\0", b"MM\0+")
# A real TIFF page has a few dozen tags, and its picture a few thousand
# strips or tiles at most (one row a strip, or 256 px tiles, at 50 MP).
# Pillow reads every tag of every page it walks (each a step of Python)
# and makes a tile for every strip of each: 24 MB of pages of tags took
# 30 s to open, and of strips over 100 MB of memory.
MAX_TIFF_TAGS: Final = 100_000
MAX_TIFF_STRIPS: Final = 200_000
_TIFF_STRIP_OFFSETS: Final = 273
_TIFF_TILE_OFFSETS: Final = 324


def _check_tiff_directories(fp: BinaryIO) -> None:
    """Refuse a TIFF whose pages (as many as _count_frames walks) hold
    more than MAX_TIFF_TAGS tags, or more than MAX_TIFF_STRIPS strips or
    tiles, counted from its directories alone; a damaged chain of them
    ends the count and is left for the reader to judge."""
    fp.seek(0)
    data = fp.getvalue() if isinstance(fp, io.BytesIO) else fp.read()
    fp.seek(0)
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
    prefix = "<" if order == "little" else ">"
    if data[:4] in _TIFF_BIG_HEADERS:  # BigTIFF: 8-byte counts and offsets
        count_size, offset_size, entry = 8, 8, struct.Struct(prefix + "HHQ8x")
    else:
        count_size, offset_size, entry = 2, 4, struct.Struct(prefix + "HHL4x")
    offset = int.from_bytes(data[offset_size : 2 * offset_size], order)
    seen: set[int] = set()
    tags = strips = 0
    while offset and offset not in seen and len(seen) <= MAX_FRAMES:
        seen.add(offset)
        start = offset + count_size
        claimed = int.from_bytes(data[offset:start], order)
        count = min(claimed, max(0, len(data) - start) // entry.size)
        tags += count
        if tags > MAX_TIFF_TAGS:
            raise ImageRejected(
                f"The TIFF's pages have more than {MAX_TIFF_TAGS:,} tags; the limit is {MAX_TIFF_TAGS:,}.",
                code="chunks",
            )
        end = start + count * entry.size
        for tag, _kind, values in entry.iter_unpack(data[start:end]):
            if tag in (_TIFF_STRIP_OFFSETS, _TIFF_TILE_OFFSETS):
                strips += values
        if strips > MAX_TIFF_STRIPS:
            raise ImageRejected(
                f"The TIFF's pages are split into more than {MAX_TIFF_STRIPS:,} strips or tiles; "
                f"the limit is {MAX_TIFF_STRIPS:,}.",
                code="chunks",
            )
        if count < claimed:
            return
        offset = int.from_bytes(data[end : end + offset_size], order)


_GIF_SIGNATURES: Final = (b"GIF87a", b"GIF89a")
# A GIF's pixel data and extensions come in sub-blocks of up to 255 bytes,
# which encoders fill: 25 MB of them is some 100,000. Pillow reads each one
# in a step of Python: 24 MB of one-byte blocks (a comment) took 10 s to open.
MAX_GIF_BLOCKS: Final = 500_000


def _check_gif_blocks(fp: BinaryIO) -> None:
    """Refuse a GIF of more than MAX_GIF_BLOCKS blocks (extensions and
    images, each a step for a reader even with no data, and their
    sub-blocks), counted from its block structure alone; a damaged
    structure ends the count and is left for the reader to judge."""
    fp.seek(0)
    data = fp.read()
    fp.seek(0)
    flags = data[10] if len(data) > 10 else 0
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    blocks = 0
    with contextlib.suppress(IndexError):
        while True:
            kind = data[at]
            if kind == 0x21:  # an extension: its label, then its sub-blocks
                at += 2
            elif kind == 0x2C:  # an image: descriptor, local palette, code size, sub-blocks
                flags = data[at + 9]
                at += 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            else:  # the trailer, or damage
                return
            blocks += 1
            while True:
                if blocks > MAX_GIF_BLOCKS:
                    raise ImageRejected(
                        f"The GIF is split into more than {MAX_GIF_BLOCKS:,} data blocks; "
                        f"the limit is {MAX_GIF_BLOCKS:,}.",
                        code="chunks",
                    )
                if not (size := data[at]):
                    break
                at += size + 1
                blocks += 1
            at += 1


def _formats(allowed_formats: Sequence[str]) -> tuple[str, ...]:
    Image.init()  # registers every plugin once, so an allowed format is never missed
    return tuple(f.upper() for f in allowed_formats if f.upper() in Image.OPEN)


def _describe_unknown(head: bytes) -> str:
    lowered = head.lstrip().lower()
    for signature, label in _KNOWN_SIGNATURES:
        if lowered.startswith(signature.lower()):
            return label
    return "not a recognised image"


def _unreadable_format(
    fp: BinaryIO, head: bytes, formats: Sequence[str]
) -> tuple[str, Exception | None] | None:
    """The accepted format whose signature the file starts with, although it
    could not be opened, and what that format's reader raised."""
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        claimed = accept(head[:16]) if accept is not None else False
        if not claimed or isinstance(claimed, str):
            continue
        fp.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                factory(fp, "").close()
        except Exception as exc:  # noqa: BLE001 - only what it says is wanted
            return fmt, exc
        return fmt, None
    return None


def _claimed_format(head: bytes, formats: Sequence[str]) -> str | None:
    """The accepted format whose signature the file starts with."""
    for fmt in formats:
        accept = Image.OPEN[fmt][1]
        if accept is not None and accept(head[:16]) is True:
            return fmt
    return None


def _open_without_pillow_limit(fp: BinaryIO, formats: Sequence[str], max_pixels: int) -> Image.Image:
    """Identify the file like ``Image.open`` does, minus its global pixel limit.

    Only used after ``Image.open`` refused a file as a decompression bomb, to
    learn the claimed size (for the message) and to honour a caller's
    ``max_pixels`` that is larger than Pillow's own default.
    """
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and accept(prefix) is not True:
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except Image.DecompressionBombError:
            # A plugin that checks on its own (GIF, for a frame larger than
            # its screen): past Pillow's error threshold, twice its warning.
            bomb = 2 * (Image.MAX_IMAGE_PIXELS or 0)
            raise ImageRejected(
                f"Image has more than {bomb} pixels in a frame; the limit is {max_pixels}.", code="pixels"
            ) from None
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError):
            continue
    raise UnidentifiedImageError("cannot identify image file")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation browsers apply, asked before any pixel data is
    decoded. A PNG's eXIf chunk counts only before the first IDAT chunk (the
    PNG specification, HTML's image presentation, Chromium): a picture on
    screen does not turn once drawn. Pillow has read exactly those chunks
    when it opens the file; one after the pixel data would reach ``info``
    only as it decodes (an animated PNG's hidden still, when it seeks past
    it), and is not looked for.
    """
    if img.format == "TIFF":
        # Pillow's TIFF reader applies the Orientation tag itself: the size
        # from the header, the pixels as it decodes them.
        return 1
    try:
        value = _exif_orientation(img)
    except Exception:  # noqa: BLE001 - broken EXIF must not sink a fine image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_orientation(img: Image.Image) -> object:
    """The EXIF Orientation tag, and nothing else: Pillow's ``getexif()``
    falls back on XMP's ``tiff:Orientation``, which no browser applies, so a
    picture whose only orientation is a stale XMP one (an editor turned the
    pixels and dropped the EXIF) would be turned again."""
    data = img.info.get("exif")
    if not isinstance(data, bytes):
        return 1
    if img.format == "PNG" and not data.startswith(_TIFF_HEADERS, len(_PNG_EXIF_PREFIX)):
        # An eXIf chunk holds EXIF from its TIFF header on. Pillow puts the
        # "Exif\0\0" of a JPEG's APP1 segment in front of it, and reads one
        # the file itself starts with so (written as a JPEG's would be) just
        # the same: Chromium finds no EXIF there and shows the PNG as stored.
        return 1
    exif = Image.Exif()
    exif.load(data)
    return exif.get(_ORIENTATION_TAG, 1)


def _pixels_message(width: int, height: int, frames: int, max_pixels: int) -> str:
    noun = "frame" if frames == 1 else "frames"
    return f"Image has {width * height * frames} pixels ({width}x{height} x {frames} {noun}); the limit is {max_pixels}."


def _count_frames(img: Image.Image) -> int:
    """How many frames the image has, counted no further than MAX_FRAMES + 1.

    GIF and TIFF only know by walking every frame's header (TIFF's walk in
    Pillow slows with each page: 100,000 tiny pages in 11 MB took minutes),
    so the walk stops past the limit; other formats state the count.
    """
    if img.format == "GIF":
        # What Pillow's own n_frames does: to the next frame's header
        # without decoding the one before it.
        step: Callable[[int], object] = functools.partial(img._seek, update_image=False)  # type: ignore[attr-defined]
    elif img.format == "TIFF":
        step = img.seek
    else:
        return max(1, int(getattr(img, "n_frames", 1)))
    count = 1
    with contextlib.suppress(EOFError):
        while count <= MAX_FRAMES:
            step(count)
            count += 1
    return count


def _open_checked(
    source: bytes | BinaryIO, max_pixels: int, allowed_formats: Sequence[str]
) -> tuple[Image.Image, ImageInfo]:
    """Open ``source`` lazily and apply every header check; the caller closes the image."""
    fp = _as_stream(source)
    head = fp.read(64)
    if not head:
        raise ImageRejected("The file is empty.", code="empty")
    profile = None
    if head.startswith(_PNG_SIGNATURE):
        fp, profile = _png_cleaned(fp)
    elif head.startswith(_GIF_SIGNATURES):
        _check_gif_blocks(fp)
    elif head.startswith(_JPEG_SIGNATURE):
        _check_jpeg_markers(fp)
    elif head.startswith(_TIFF_HEADERS + _TIFF_BIG_HEADERS):
        _check_tiff_directories(fp)
    formats = _formats(allowed_formats)
    allowed_text = ", ".join(formats)
    try:
        with warnings.catch_warnings():
            # The explicit max_pixels check below is the real limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img: Image.Image = Image.open(fp, formats=formats)
            except Image.DecompressionBombError:
                img = _open_without_pillow_limit(fp, formats, max_pixels)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        unreadable = _unreadable_format(fp, head, formats)
        if unreadable is not None:
            fmt, error = unreadable
            if error is not None and _truncated(error):
                raise ImageRejected(
                    f"The {fmt} file is truncated.", code="corrupt", detail=_detail(error)
                ) from None
            raise ImageRejected(
                f"The {fmt} file is damaged or uses a variant that cannot be read.",
                code="corrupt",
                detail=_detail(error) if error is not None else "",
            ) from None
        raise ImageRejected(
            f"Unsupported file type ({_describe_unknown(head)}); allowed formats are {allowed_text}.",
            code="format",
        ) from None
    except Exception as exc:  # noqa: BLE001 - plugins raise all sorts on bad headers
        fmt = _claimed_format(head, formats) or "image"
        damage = "is truncated" if _truncated(exc) else "has a damaged header"
        raise ImageRejected(f"The {fmt} file {damage}.", code="corrupt", detail=_detail(exc)) from None

    if profile is not None:
        img.info["icc_profile"] = profile
    try:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageRejected(f"Image has invalid dimensions {width}x{height}.", code="dimensions")
        if width * height > max_pixels:
            raise ImageRejected(_pixels_message(width, height, 1, max_pixels), code="pixels")
        try:
            frames = _count_frames(img)
            # The first frame is the picture; a HEIF container opens on its
            # primary image instead, which need not come first.
            if frames > 1 and img.format != "HEIF":
                img.seek(0)
        except Exception as exc:  # noqa: BLE001 - same as for the header
            damage = "is truncated" if _truncated(exc) else "has damaged frames"
            raise ImageRejected(
                f"The {img.format or 'image'} file {damage}.", code="corrupt", detail=_detail(exc)
            ) from None
        if frames > MAX_FRAMES:
            raise ImageRejected(
                f"The image has more than {MAX_FRAMES:,} frames; the limit is {MAX_FRAMES:,}.", code="frames"
            )
        # Animation frames (GIF, WebP, APNG) share the first frame's canvas
        # and all count; of a TIFF's pages (a pyramid's smaller levels, a
        # scan's other sheets) and of a multi-picture JPEG's pictures (a
        # camera's preview, a phone's depth or gain map) only the first is
        # ever decoded, checked above.
        if img.format not in ("TIFF", "MPO") and width * height * frames > max_pixels:
            raise ImageRejected(_pixels_message(width, height, frames, max_pixels), code="pixels")
        if _orientation(img) in _SWAPS_AXES:
            width, height = height, width
        # Pillow calls a JPEG with a Multi-Picture extension "MPO"; it is a
        # JPEG to browsers, to its owner and here (stored, named, filtered).
        fmt = "JPEG" if img.format == "MPO" else img.format or "UNKNOWN"
        info = ImageInfo(format=fmt, width=width, height=height, frames=frames, mode=img.mode)
    except BaseException:
        img.close()
        raise
    return img, info


def probe(
    source: bytes | BinaryIO,
    *,
    max_pixels: int,
    allowed_formats: Sequence[str] = ALLOWED_FORMATS,
) -> ImageInfo:
    """Identify an upload from its header alone, refusing what must not be decoded.

    Raises only :class:`ImageRejected`.
    """
    try:
        img, info = _open_checked(source, max_pixels, allowed_formats)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract is "ImageRejected only"
        raise ImageRejected(
            "The image header could not be read.", code="corrupt", detail=_detail(exc)
        ) from None
    img.close()
    return info


# --------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class _Target:
    name: str
    width: int
    height: int
    # Filled: cut to its aspect ratio around the focal point, then scaled.
    crop: bool = False

    def scale(self, display: tuple[int, int]) -> float:
        """How much of the display resolution this rendition needs (a crop
        covers the display's shorter side, a plain rendition the longer)."""
        dw, dh = display
        return max(self.width / dw, self.height / dh)


# The longest side each format's renditions may have (measured with Pillow
# 13): libwebp's limit, libjpeg's JPEG_MAX_DIMENSION, and libavif's default
# decoding limit (its encoder goes to 65536, but nothing could read that back);
# PNG has no practical limit.
_MAX_SIDE: Final = {"webp": 16383, "jpeg": 65500, "avif": 32768}


def _max_side(formats: Sequence[str]) -> int | None:
    """The longest side a rendition encoded in every one of ``formats`` may have."""
    limits = [_MAX_SIDE[f] for f in formats if f in _MAX_SIDE]
    return min(limits) if limits else None


def _within(size: tuple[int, int], limit: int | None) -> tuple[int, int]:
    """``size``, scaled down with its aspect ratio until its longer side is at most ``limit``."""
    width, height = size
    if limit is None or max(width, height) <= limit:
        return size
    if width >= height:
        return limit, max(1, min(limit, round(height * limit / width)))
    return max(1, min(limit, round(width * limit / height))), limit


def _targets(preset: Preset, display: tuple[int, int]) -> list[_Target]:
    """Renditions in output order: widths as listed, then thumb, fit, icon.

    No rendition is larger than the preset's encoders accept: a width whose
    height would be too tall for them is made at the largest size that fits,
    named after the width it then has (like the one rendition of an image
    narrower than every width), and made once if several widths come to it.
    """
    dw, dh = display
    limit = _max_side(preset.formats)
    targets: list[_Target] = []
    fitting = [w for w in preset.widths if w <= dw]
    sizes = [(dw, dh)] if preset.widths and not fitting else []
    sizes += [(w, max(1, round(dh * w / dw))) for w in fitting]
    for size in sizes:
        # From the display size, not the rounded width, so the aspect stays true.
        width, height = size if _within(size, limit) == size else _within(display, limit)
        if all(t.name != f"w{width}" for t in targets):
            targets.append(_Target(f"w{width}", width, height))
    if preset.thumbnail:
        side = min(preset.thumbnail, dw, dh)  # never upscaled
        side = min(side, limit) if limit else side
        targets.append(_Target("thumb", side, side, crop=True))
    if preset.fit:
        scale = min(preset.fit[0] / dw, preset.fit[1] / dh, 1.0)
        fit = (max(1, round(dw * scale)), max(1, round(dh * scale)))
        targets.append(_Target("fit", *_within(fit, limit)))
    if preset.size:
        targets.append(_Target("icon", *_within(preset.size, limit), crop=preset.crop))
    return targets


def crop_box(
    size: tuple[int, int], aspect: tuple[int, int], focal_point: FocalPoint | None = None
) -> tuple[float, float, float, float]:
    """The largest box of ``aspect`` (width, height) inside an image of
    ``size``, centred on the focal point as far as the image's edges allow
    (on the centre without one): what a filled rendition shows.

    Centring then sliding back inside the image keeps a focal circle that is
    no larger than the box wholly in it.
    """
    w, h = size
    box_w = min(float(w), h * aspect[0] / aspect[1])
    box_h = min(float(h), box_w * aspect[1] / aspect[0])
    fx, fy = (focal_point.x, focal_point.y) if focal_point else (0.5, 0.5)
    left = min(max(fx * w - box_w / 2, 0.0), w - box_w)
    top = min(max(fy * h - box_h / 2, 0.0), h - box_h)
    return (left, top, left + box_w, top + box_h)


# --------------------------------------------------------------------------
# Where the eye goes

# Side of the map the estimate works on: enough to place a crop within a
# couple of per cent, small enough to cost well under a millisecond or two.
_ATTENTION_SIDE: Final = 64


def _band_mask(channel: Image.Image, low: int, high: int) -> Image.Image:
    return channel.point([255 if low <= v <= high else 0 for v in range(256)])


def _above_mean(channel: Image.Image) -> Image.Image:
    """What stands out of a map: its excess over the map's own mean, so a
    texture or a colour spread over the whole picture weighs nothing."""
    histogram = channel.histogram()
    total = sum(histogram) or 1
    mean = sum(i * n for i, n in enumerate(histogram)) / total
    return channel.point([max(0, round(v - mean)) for v in range(256)])


def _without_spans(channel: Image.Image) -> Image.Image:
    """``channel`` less the rows and columns where it lights up more than
    half of the picture's width or height: a table top, a floor, a wall or
    the line of a horizon spans the frame, a subject does not."""
    width, height = channel.size
    lit = channel.point([255 if v else 0 for v in range(256)])
    most = [255 if v > 127 else 0 for v in range(256)]
    rows = lit.resize((1, height), Image.Resampling.BOX).point(most)
    columns = lit.resize((width, 1), Image.Resampling.BOX).point(most)
    spans = ImageChops.lighter(
        rows.resize((width, height), Image.Resampling.NEAREST),
        columns.resize((width, height), Image.Resampling.NEAREST),
    )
    return ImageChops.subtract(channel, spans)


# Lookup tables: any value at all, and more than half of full scale.
_LIT: Final = [255 if v else 0 for v in range(256)]
_MOST: Final = [255 if v > 127 else 0 for v in range(256)]


def _row_spans(lit: Image.Image) -> tuple[Image.Image, Image.Image, Image.Image]:
    """For each row of a 0/255 map (a one pixel wide column of them): whether
    it is lit over more than half of its length, at its start, at its end.
    Either of the two outermost pixels makes an end, so that a frame's soft
    or dark last pixel does not hide a side."""
    width, height = lit.size
    box = Image.Resampling.BOX
    return (
        lit.resize((1, height), box).point(_MOST),
        lit.crop((0, 0, 2, height)).resize((1, height), box),
        lit.crop((width - 2, 0, width, height)).resize((1, height), box),
    )


def _without_surfaces(channel: Image.Image) -> Image.Image:
    """``channel`` less the rows and columns where it lights up more than
    half of the picture's width or height and runs across it: a table top, a
    floor, a wall or the line of a horizon does; a subject, even a face that
    fills most of the frame, stops short of one side at least.

    A line runs across when it reaches both sides, or one side along which
    a span runs the other way: the wall beside a person's shoulders reaches
    only the top, where the wall spans the frame from side to side.
    """
    width, height = channel.size
    lit = channel.point(_LIT)
    rows, left, right = _row_spans(lit)
    columns, top, bottom = _row_spans(lit.transpose(Image.Transpose.TRANSPOSE))
    across = ImageChops.darker(rows, ImageChops.darker(left, right))
    down = ImageChops.darker(columns, ImageChops.darker(top, bottom))

    def spanned(line: Image.Image, *, start: bool) -> bool:
        ends = line.tobytes()
        return any(ends[:2] if start else ends[-2:])

    reach_across, reach_down = across, down
    for side, spans_along in ((left, spanned(down, start=True)), (right, spanned(down, start=False))):
        if spans_along:
            reach_across = ImageChops.lighter(reach_across, ImageChops.darker(rows, side))
    for side, spans_along in ((top, spanned(across, start=True)), (bottom, spanned(across, start=False))):
        if spans_along:
            reach_down = ImageChops.lighter(reach_down, ImageChops.darker(columns, side))
    spans = ImageChops.lighter(
        reach_across.resize((width, height), Image.Resampling.NEAREST),
        reach_down.transpose(Image.Transpose.TRANSPOSE).resize((width, height), Image.Resampling.NEAREST),
    ).point(_LIT)
    return ImageChops.subtract(channel, spans)


def estimate_focal_point(img: Image.Image) -> FocalPoint:
    """Guess the subject's position, like libvips' ``attention`` smart crop:
    on a small copy, add edge energy (a Laplacian of the luminance),
    saturation (chroma, against its surroundings) and skin-like hues, each
    counted where it rises above its own average, edges and skin only where
    they do not run across the frame (a close-up face wider than half of it
    still counts); blur the sum into blobs and take the weighted centroid of
    the strongest. A featureless picture gives its centre.
    """
    small = img
    if max(small.size) > _ATTENTION_SIDE:
        small = small.copy()
        small.thumbnail((_ATTENTION_SIDE, _ATTENTION_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    # What lies under full transparency is no subject: a picture with alpha
    # (grey, a palette's too) is seen on white, as an RGBA one is.
    small = _flatten(small.convert("RGBA")) if small.has_transparency_data else small.convert("RGB")
    width, height = small.size

    edges = small.convert("L").filter(ImageFilter.FIND_EDGES)
    # Pillow leaves the outermost pixels of a 3x3 filter unfiltered: they are
    # no edges.
    ImageDraw.Draw(edges).rectangle((0, 0, width - 1, height - 1), outline=0)
    red, green, blue = small.split()
    chroma = ImageChops.subtract(
        ImageChops.lighter(ImageChops.lighter(red, green), blue),
        ImageChops.darker(ImageChops.darker(red, green), blue),
    )
    # Colour counts as it differs from its surroundings: a tan table or a
    # gradient backdrop is as colourful as the fruit or the face before it.
    chroma = ImageChops.difference(chroma, chroma.filter(ImageFilter.GaussianBlur(min(width, height) / 2)))
    hue, saturation, value = small.convert("HSV").split()
    # Skin of any complexion: red to orange hues (Pillow's hue runs 0..255),
    # moderately saturated, not dark.
    skin = ImageChops.multiply(
        ImageChops.lighter(_band_mask(hue, 0, 35), _band_mask(hue, 245, 255)),
        ImageChops.multiply(_band_mask(saturation, 40, 175), _band_mask(value, 70, 255)),
    )
    # Skin-like hues across the frame are a surface (a wooden floor, a beige
    # wall), and edges across it the line where two surfaces meet: only what
    # stays of them once such spans are taken out can be a subject. A face
    # close up is as wide, but stops short of a side: its skin stays.
    # Halves, so three full-strength maps cannot clip at 255 when added.
    attention = ImageChops.add(
        ImageChops.add(_without_spans(_above_mean(edges)), _above_mean(chroma), scale=2.0),
        _above_mean(_without_surfaces(skin)).point(lambda v: v // 2),
    )
    attention = attention.filter(ImageFilter.GaussianBlur(max(1.0, min(width, height) / 12)))

    values = attention.tobytes()
    peak = max(values) if values else 0
    if peak == 0:
        return FocalPoint(0.5, 0.5)
    # The centroid of the strongest blobs: one subject is found where it is,
    # and two of equal weight get a crop centred between them rather than
    # one chosen by scan order.
    floor = peak - peak // 4
    total = sx = sy = 0.0
    for y in range(height):
        row = y * width
        for x in range(width):
            v = values[row + x]
            if v >= floor:
                total += v
                sx += v * x
                sy += v * y
    return FocalPoint(
        min(1.0, max(0.0, (sx / total + 0.5) / width)),
        min(1.0, max(0.0, (sy / total + 0.5) / height)),
    )


# --------------------------------------------------------------------------
# Pixels


def _to_basic_mode(img: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB, RGBA or CMYK (8 bits per channel)."""
    mode = img.mode
    signed = _signed_sample_bits(img)
    if signed == 8 and mode == "L":
        # Pillow reads signed bytes as they are stored: -1 as 255, so the
        # darkest half came out brightest. Flipping the top bit puts
        # -128..127 at 0..255 in order.
        return img.point(lambda v: v ^ 0x80)
    if signed == 16 and mode == "I":
        # Read signed: -32768..32767 spans black to white, 0 mid grey, by
        # its top byte as unsigned 16-bit samples are.
        return img.point(lambda v: v * (1 / 256) + 128).convert("L")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        if mode in ("L", "RGB") and img.has_transparency_data:
            return img.convert("LA" if mode == "L" else "RGBA")
        return img
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or img.has_transparency_data else "RGB")
    if mode == "1":
        return img.convert("LA" if img.has_transparency_data else "L")
    if mode.startswith("I;16"):
        # 16-bit samples: keep the top byte rather than clipping at 255.
        wide = img.convert("I")
        grey = wide.point(lambda v: v * (1 / 256)).convert("L")
        key = img.info.get("transparency")
        if isinstance(key, int):
            # The transparent sample (tRNS) is matched on all 16 bits; Pillow's
            # own conversion to LA compares it with the value clipped to 8.
            above = wide.point(lambda v: (v - key) * 255).convert("L")
            below = wide.point(lambda v: (key - v) * 255).convert("L")
            grey.putalpha(ImageChops.lighter(above, below))
        return grey
    if mode == "I":
        _low, high = img.getextrema()
        if isinstance(high, (int, float)) and high > 255:
            return img.point(lambda v: v * (1 / 256)).convert("L")
        return img.convert("L")
    if mode == "F":
        return _float_to_grey(img, _stated_sample_range(img))
    if mode in ("La", "RGBa"):
        return img.convert(mode.upper())
    return img.convert("RGBA" if "A" in mode else "RGB")


def _signed_sample_bits(img: Image.Image) -> int | None:
    """The bits per sample of a TIFF whose samples are signed integers of 8
    or 16 bits (SampleFormat 2; Pillow reads them as grey only). Signed
    32-bit samples are what Pillow writes for any of its own "I" pictures,
    whose samples run from 0 up: they stay read as other 32-bit ones."""
    if not isinstance(img, TiffImagePlugin.TiffImageFile):
        return None
    sample_format = img.tag_v2.get(TiffImagePlugin.SAMPLEFORMAT, (1,))
    bits = img.tag_v2.get(TiffImagePlugin.BITSPERSAMPLE, (1,))
    if not (isinstance(sample_format, tuple) and isinstance(bits, tuple) and sample_format and bits):
        return None
    if set(sample_format) != {2} or not isinstance(bits[0], int) or bits[0] not in (8, 16):
        return None
    return bits[0]


# An IEEE 754 single's exponent bits: all set, the value is an infinity or NaN.
_FLOAT_EXPONENT: Final = 0x7F800000
# SMinSampleValue and SMaxSampleValue: the range a TIFF states its samples span.
_TIFF_SMIN_SAMPLE_VALUE: Final = 340
_TIFF_SMAX_SAMPLE_VALUE: Final = 341
# Samples looked at together for NaN and infinities: each part costs a few
# integer copies of itself (some 16 MB), not of the whole picture.
_FLOAT_PART_PIXELS: Final = 1 << 20


def _float_to_grey(img: Image.Image, stated: tuple[float, float] | None) -> Image.Image:
    """Bring 32-bit float samples (mode F) to 8 bits.

    Floats in [0, 1] are the convention GIMP and ImageMagick read them by:
    0 black, 1 white. Files beyond it follow none (linear HDR, or 0..255
    and 0..65535 as tools that keep integer scales write): they span the
    range the file states, if it does, else 0 up to their own brightest
    sample. Black stays black, and none comes out all white or all black.
    NaN (no data) is black, infinities black or white; none of them
    counts towards the scale.
    """
    mean = img.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    # A single NaN or infinity makes the mean one: one cheap pass tells
    # whether the samples need looking at one by one.
    finite = isinstance(mean, float) and math.isfinite(mean)
    if finite:
        high = _brightest(img)
    else:
        high = max((_brightest(part) for _, part, _ in _finite_parts(img)), default=0.0)
    scale, offset = 255.0, 0.0
    if high > 1.0:
        low, top = stated if stated is not None else (0.0, high)
        scale = 255 / (top - low)
        offset = -low * scale
    if finite:
        return img.point(lambda v: v * scale + offset).convert("L")
    grey = Image.new("L", img.size)
    for corner, part, infinite in _finite_parts(img):
        piece = part.point(lambda v: v * scale + offset).convert("L")
        piece.paste(255, mask=infinite)
        grey.paste(piece, corner)
    return grey


def _brightest(img: Image.Image) -> float:
    high = img.getextrema()[1]
    return float(high) if isinstance(high, (int, float)) else 0.0


def _finite_parts(img: Image.Image) -> Iterator[tuple[tuple[int, int], Image.Image, Image.Image]]:
    """Bands of rows of ``img`` (mode F), each with where it starts, its NaN
    and infinities at 0, and a mask of its positive infinities."""
    rows = max(1, _FLOAT_PART_PIXELS // img.width)
    for top in range(0, img.height, rows):
        part = img.crop((0, top, img.width, min(img.height, top + rows)))
        bits = Image.frombytes("I", part.size, part.tobytes())  # the same 32 bits, as integers
        special = ImageMath.lambda_eval(
            lambda e: ((e["a"] & _FLOAT_EXPONENT) == _FLOAT_EXPONENT) * 255, a=bits
        )
        infinite = ImageMath.lambda_eval(lambda e: (e["a"] == _FLOAT_EXPONENT) * 255, a=bits)
        part.paste(0.0, mask=special.convert("L"))
        yield (0, top), part, infinite.convert("L")


def _stated_sample_range(img: Image.Image) -> tuple[float, float] | None:
    """The range a TIFF says its float samples span, when it says one that
    can scale them (the tags hold one value per sample: grey has one)."""
    if not isinstance(img, TiffImagePlugin.TiffImageFile) or _TIFF_SMAX_SAMPLE_VALUE not in img.tag_v2:
        return None

    def first(value: object) -> float:
        value = value[0] if isinstance(value, tuple) and value else value
        return float(value) if isinstance(value, (int, float)) else math.nan

    low = first(img.tag_v2.get(_TIFF_SMIN_SAMPLE_VALUE, 0.0))
    high = first(img.tag_v2[_TIFF_SMAX_SAMPLE_VALUE])
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        return None
    return low, high


# Built once: profiles are read-only once made and cheap to share between threads.
_SRGB: Final = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


_PROFILE_SPACE_FOR_MODE: Final = {
    "RGB": "RGB ",
    "RGBA": "RGB ",
    "CMYK": "CMYK",
    "L": "GRAY",
}


_BRADFORD: Final = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))
_D50: Final = (0.9642, 1.0, 0.8249)
_SRGB_CHROMATICITY: Final = (0.3127, 0.3290, 0.64, 0.33, 0.30, 0.60, 0.15, 0.06)

Matrix = Sequence[Sequence[float]]


def _mul(a: Matrix, b: Matrix) -> list[list[float]]:
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def _inverse(m: Matrix) -> list[list[float]]:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    cofactors = [
        [e * i - f * h, c * h - b * i, b * f - c * e],
        [f * g - d * i, a * i - c * g, c * d - a * f],
        [d * h - e * g, b * g - a * h, a * e - b * d],
    ]
    return [[v / det for v in row] for row in cofactors]


def _png_profile_applies(icc: object, *, grey: bool) -> bool:
    """Whether a PNG's iCCP profile is one browsers go by: readable, and of
    the PNG's colour space (a grey profile on colour pixels, or a colour one
    on grey pixels, is dropped by libpng as the PNG specification says)."""
    if not isinstance(icc, bytes):
        return False
    try:
        space = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space
    except (OSError, ValueError, TypeError):
        return False
    return bool(space == ("GRAY" if grey else "RGB "))


def _icc_from_png_chunks(info: Mapping[Any, Any], grey: bool) -> bytes | None:
    """An ICC profile made of a PNG's gAMA and cHRM chunks, which describe
    its colours where it has no readable profile (iCCP) and no sRGB chunk
    (either overrides them): browsers colour-manage by gAMA, as a pure power curve,
    with cHRM's primaries or, without cHRM or with one that makes no sense,
    sRGB's. A cHRM without gAMA is ignored, and so is a gAMA alone close to
    1/2.2 (libpng's test: within 5 % once multiplied by 2.2), the way sRGB
    was written before the sRGB chunk. None where there is nothing to go by
    or the values make no sense."""
    if "srgb" in info or "gamma" not in info:
        return None
    try:
        gamma = float(info["gamma"])
        if not 0.01 <= gamma <= 10:
            return None
        if "chromaticity" not in info and 0.95 <= gamma * 2.2 <= 1.05:
            return None
        # A power curve: v -> v ** (1 / gamma), the exponent in 8.8 fixed point.
        curve = b"curv\0\0\0\0" + (1).to_bytes(4, "big") + round(256 / gamma).to_bytes(2, "big") + b"\0\0"
    except (ArithmeticError, TypeError, ValueError):
        return None
    if grey:
        return _icc(b"GRAY", [(b"wtpt", _xyz(_D50)), (b"kTRC", curve)])
    try:
        colorants = _colorants(info.get("chromaticity", _SRGB_CHROMATICITY))
    except (ArithmeticError, TypeError, ValueError):  # a white or primary at y = 0, absurd values
        # The gamma still holds: browsers take sRGB's primaries in place of
        # chromaticities that make no sense.
        colorants = _colorants(_SRGB_CHROMATICITY)
    return _icc(
        b"RGB ", [(b"wtpt", _xyz(_D50)), *colorants, (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    )


def _colorants(chromaticity: Sequence[Any]) -> list[tuple[bytes, bytes]]:
    """The rXYZ, gXYZ and bXYZ tags of a white point and three primaries
    (x, y each); ArithmeticError or ValueError when they make no sense."""
    wx, wy, *primaries = (float(v) for v in chromaticity)
    columns = [[x / y, 1.0, (1 - x - y) / y] for x, y in zip(primaries[::2], primaries[1::2], strict=True)]
    rgb = [[columns[j][i] for j in range(3)] for i in range(3)]
    white = [wx / wy, 1.0, (1 - wx - wy) / wy]
    scale = [sum(row[k] * white[k] for k in range(3)) for row in _inverse(rgb)]
    to_xyz = [[rgb[i][j] * scale[j] for j in range(3)] for i in range(3)]
    # Bradford-adapted from the PNG's white to D50, as ICC v2 colorants are.
    cone = [[sum(row[k] * v[k] for k in range(3)) for row in _BRADFORD] for v in (white, _D50)]
    ratio = [[cone[1][i] / cone[0][i] if i == j else 0.0 for j in range(3)] for i in range(3)]
    to_d50 = _mul(_mul(_inverse(_BRADFORD), _mul(ratio, _BRADFORD)), to_xyz)
    return [
        (tag, _xyz([to_d50[i][j] for i in range(3)])) for j, tag in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))
    ]


def _s15f16(value: float) -> bytes:
    return round(value * 65536).to_bytes(4, "big", signed=True)


def _xyz(values: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in values)


def _icc(space: bytes, tags: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 display profile of ``space`` (LittleCMS needs no more)."""
    table = len(tags).to_bytes(4, "big")
    data = b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        table += signature + (offset + len(data)).to_bytes(4, "big") + len(body).to_bytes(4, "big")
        data += body + b"\0" * (-len(body) % 4)
    size = 128 + len(table) + len(data)
    header = (
        size.to_bytes(4, "big")
        + b"\0" * 4
        + (0x02100000).to_bytes(4, "big")
        + b"mntr"
        + space
        + b"XYZ "
        + b"\0" * 12  # date
        + b"acsp"
        + b"\0" * 28  # platform, flags, device, attributes, intent
        + b"".join(_s15f16(v) for v in _D50)  # the connection space's white
        + b"\0" * 48  # creator, profile id, reserved
    )
    return header + table + data


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert to sRGB RGB/RGBA, honouring the embedded profile when it fits the pixels."""
    if icc and img.mode == "LA":
        # Grey with alpha and a grey profile (a scanner's or a renderer's
        # PNG): LittleCMS takes no alpha from grey to colour, so the grey is
        # converted alone and the alpha put back.
        grey = _to_srgb(img.getchannel("L"), icc)
        grey.putalpha(img.getchannel("A"))
        return grey
    out_mode = "RGBA" if img.mode in ("RGBA", "LA") else "RGB"
    if icc and img.mode in _PROFILE_SPACE_FOR_MODE:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            space = profile.profile.xcolor_space
        except (OSError, ValueError, TypeError):
            # An unreadable profile is treated as absent: the pixels are still
            # worth publishing, most likely they are sRGB anyway.
            profile, space = None, ""
        if profile is not None and space == _PROFILE_SPACE_FOR_MODE[img.mode]:
            try:
                transform = ImageCms.buildTransform(
                    profile,
                    _SRGB,
                    img.mode,
                    out_mode,
                    renderingIntent=ImageCms.Intent.PERCEPTUAL,
                )
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
                # Parsed, but not usable for a conversion (a damaged tag
                # table, a named-colour profile): absent, as above.
                transform = None
            if transform is not None:
                converted = ImageCms.applyTransform(img, transform)
                if converted is None:  # only happens with inPlace=True
                    raise ProcessingError("Colour conversion to sRGB failed.")
                return converted
    return img if img.mode == out_mode else img.convert(out_mode)


def _drop_opaque_alpha(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA" and img.getchannel("A").getextrema() == (255, 255):
        return img.convert("RGB")
    return img


def _clear_hidden_colour(img: Image.Image) -> Image.Image:
    """``img`` with its fully transparent pixels made transparent black.

    Editors "erase" by making pixels transparent and keep their colour; no
    viewer shows it, but encoders store it as it is (lossy WebP and AVIF
    roughly, PNG exactly). A resampled rendition loses it (Pillow resamples
    premultiplied), one at the upload's own size would hand it out whole.
    """
    if img.mode not in ("RGBA", "LA"):
        return img
    alpha = img.getchannel("A")
    if alpha.getextrema()[0] != 0:
        return img
    img.paste(0, mask=alpha.point(lambda a: 255 if a == 0 else 0))
    return img


def _flatten(img: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite onto white, which is what pages sit on."""
    if img.mode != "RGBA":
        return img
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


def _encode(img: Image.Image, fmt: str, preset: Preset) -> bytes:
    # Image.save() stores its options on the image object, so two threads
    # saving one image would swap qualities: each encode gets its own object,
    # sharing the (read-only) pixels rather than copying them.
    img = _flatten(img) if fmt == "jpeg" and img.mode == "RGBA" else img._new(img.im)
    buffer = io.BytesIO()
    if fmt == "jpeg":
        # Progressive implies optimised Huffman tables in libjpeg, so
        # optimize=True costs nothing extra; 4:2:0 chroma like cameras and pyvips.
        img.save(
            buffer, "JPEG", quality=preset.jpeg_quality, optimize=True, progressive=True, subsampling="4:2:0"
        )
    elif fmt == "webp":
        img.save(buffer, "WEBP", quality=preset.webp_quality, method=4)
    elif fmt == "avif":
        img.save(buffer, "AVIF", quality=preset.avif_quality, speed=8)
    else:
        img.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _placeholder(img: Image.Image) -> tuple[str, str]:
    """Blurhash and dominant colour, both from a 32 px copy."""
    tiny = img.copy()
    tiny.thumbnail((32, 32), Image.Resampling.BOX)
    tiny = _flatten(tiny)
    quantised = tiny.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    counts: list[tuple[int, int]] = quantised.getcolors() or [(1, 0)]  # type: ignore[assignment]
    index = max(counts)[1]
    palette = quantised.getpalette() or [0, 0, 0]
    r, g, b = palette[3 * index : 3 * index + 3]
    x_components, y_components = (4, 3) if tiny.width >= tiny.height else (3, 4)
    # blurhash.encode closes the image it is given, so it goes last.
    placeholder = blurhash.encode(tiny, x_components, y_components)
    return placeholder, f"#{r:02x}{g:02x}{b:02x}"


# One small shared pool: Pillow releases the GIL while encoding and
# resampling, so a thread per core keeps both busy without oversubscribing the
# machine when several uploads are processed at once. Threads start lazily.
_POOL: Final = ThreadPoolExecutor(
    max_workers=max(2, min(4, os.cpu_count() or 2)), thread_name_prefix="images"
)


def _pool() -> ThreadPoolExecutor:
    return _POOL


def _plan(
    stored: tuple[int, int], orientation: int, preset: Preset, *, crops_only: bool = False
) -> tuple[tuple[int, int], list[_Target], tuple[int, int]]:
    """Display size, renditions, and the size (in stored orientation) of the one
    working image every rendition can be derived from without upscaling."""
    swap = (orientation in _SWAPS_AXES) != (preset.rotate % 180 == 90)
    display = (stored[1], stored[0]) if swap else stored
    targets = _targets(preset, display)
    if crops_only:
        targets = [t for t in targets if t.crop]
        if not targets:
            raise ValueError(f"Preset {preset.name!r} makes no cropped rendition.")
    largest = max(targets, key=lambda t: t.scale(display))
    scale = min(1.0, largest.scale(display))
    if scale < 1.0 and not largest.crop:
        # The largest rendition itself: scaling the display by one factor
        # can round a side a pixel over (8660x5773 at 1600x1067 would give
        # 1601 wide), and shaving that pixel off would cost a second pass.
        work = (largest.width, largest.height)
    else:
        work = (max(1, round(display[0] * scale)), max(1, round(display[1] * scale)))
    return display, targets, ((work[1], work[0]) if swap else work)


def _render(
    img: Image.Image, info: ImageInfo, preset: Preset, focal_point: FocalPoint | None, crops_only: bool
) -> Result:
    # Before any pixel data is decoded: a PNG's EXIF read later does not count.
    orientation = _orientation(img)
    grey_alpha = _png_grey_alpha_as_rgba(img)
    frame_box = None
    if img.format == "PNG" and info.frames > 1 and img.info.get("default_image"):
        # An animated PNG may start with a still for viewers without
        # animation (its "default image"), which browsers never show: they
        # start at the animation's first frame. Reaching it decodes the
        # still, so it is done here, never in a header check.
        icc = img.info.get("icc_profile")
        frame_box = _to_first_animation_frame(img)
        if icc is not None:
            # Going back to the still forgets a profile set aside on opening.
            img.info["icc_profile"] = icc
    elif img.format == "GIF":
        frame_box = _gif_first_frame_box(img)
    _, targets, work_stored = _plan(img.size, orientation, preset, crops_only=crops_only)
    if info.format == "JPEG":
        sharp = _jpeg_luma_apart(img, work_stored)
        if sharp is not None:
            return _finish(
                sharp,
                info=info,
                preset=preset,
                orientation=orientation,
                targets=targets,
                work_stored=work_stored,
                focal_point=focal_point,
            )
        # libjpeg decodes straight at 1/2, 1/4 or 1/8 scale: the biggest saving.
        img.draft(img.mode, work_stored)
    if img.format == "TIFF":
        # Pillow's TIFF reader turns the pixels as it decodes them by the
        # orientation it finds, XMP's included (see _exif_orientation): the
        # XMP goes first. None of it would reach a rendition anyway.
        img.info.pop("xmp", None)
    img.load()
    return _finish(
        img,
        info=info,
        preset=preset,
        orientation=orientation,
        targets=targets,
        work_stored=work_stored,
        focal_point=focal_point,
        frame_box=frame_box,
        grey_alpha=grey_alpha,
    )


def _png_grey_alpha_as_rgba(img: Image.Image) -> bool:
    """Whether ``img``, not yet decoded, is a PNG of grey and alpha at 16
    bits (colour type 4), which Pillow decodes as RGBA: grey all the same
    to libpng and browsers, which take a grey profile for it, never a
    colour one."""
    return (
        isinstance(img, ImageFile.ImageFile)
        and img.format == "PNG"
        and any(t[3] == "LA;16B" for t in img.tile)
    )


def _gif_first_frame_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    """The box a GIF's first frame covers on its screen, not yet decoded;
    None where it covers the whole screen.

    What the first frame leaves uncovered is transparent in browsers,
    whatever the file's background colour; Pillow fills it with the
    palette's first colour (or the frame's transparent one, if any).
    """
    extents = img.tile[0].extents if isinstance(img, ImageFile.ImageFile) and len(img.tile) == 1 else None
    if extents is None:
        return None
    x0, y0, x1, y1 = extents
    box = (max(0, x0), max(0, y0), min(img.width, x1), min(img.height, y1))
    return None if box == (0, 0, img.width, img.height) else box


def _to_first_animation_frame(img: Image.Image) -> tuple[int, int, int, int] | None:
    """Decode an animated PNG's first animation frame, past its default
    image, and return the box it covers on the canvas: the rest of the
    canvas is transparent. When the animation is broken (a frame missing,
    cut short or larger than the canvas), decode the default image instead,
    as a viewer without animation shows it: the picture is still whole
    (None).

    The default image is no part of the animation: browsers start the
    first frame on a transparent canvas, so nothing of the still may show
    around that frame or through its transparent pixels. Pillow draws the
    frame over the still: the frame's own pixels are taken as they are
    (blending over nothing leaves a pixel as it is; Pillow's blending would
    square a half-transparent pixel's alpha), and the caller clears the
    canvas around them, in a mode with alpha where the file has none.
    """
    try:
        img.seek(1)
        img.blend_op = PngImagePlugin.Blend.OP_SOURCE  # type: ignore[attr-defined]
        img.load()
    except (EOFError, SyntaxError, OSError, ValueError):
        img.seek(0)
        return None
    x0, y0, x1, y1 = img.info["bbox"]
    return (int(x0), int(y0), int(x1), int(y1))


def _transparent_outside(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """``img`` (L, LA, RGB or RGBA) with every pixel outside ``box``
    transparent black: nothing of what was there is kept."""
    if box == (0, 0, img.width, img.height):
        return img
    canvas = Image.new("LA" if img.mode in ("L", "LA") else "RGBA", img.size)
    canvas.paste(img.crop(box).convert(canvas.mode), box[:2])
    return canvas


def _ycbcr_coded(img: Image.Image) -> bool:
    """Whether libjpeg will take this three-component JPEG for YCbCr (its own
    rules: a JFIF marker, else the Adobe transform, else the component ids),
    so that it can hand out the luma alone."""
    if "jfif" in img.info:
        return True
    if "adobe" in img.info:
        return img.info.get("adobe_transform") in (1, 2)
    layers = getattr(img, "layer", [])
    return len(layers) == 3 and [layer[0] for layer in layers] != [ord("R"), ord("G"), ord("B")]


def _dct_scale(size: tuple[int, int], wanted: tuple[int, int]) -> int:
    """The reduction libjpeg decodes at for ``draft(mode, wanted)``, as Pillow picks it."""
    fits = min(size[0] // max(1, wanted[0]), size[1] // max(1, wanted[1]))
    return next(s for s in (8, 4, 2, 1) if fits >= s or s == 1)


def _jpeg_luma_apart(img: Image.Image, work: tuple[int, int]) -> Image.Image | None:
    """A colour JPEG at ``work`` size with its luma as sharp as a full decode
    gives, in the memory a reduced-scale decode takes; None where not needed.

    libjpeg's reduced-scale decode truncates each 8x8 block's spectrum, which
    leaves block edges a Lanczos pass cannot smooth when less than a factor
    of 2 remains to it (12 MP to 1600 px: 2000 px wide, then 1.25x): the
    largest renditions came out measurably softer than libvips' (SSIM 0.009
    lower), which never scales the decode by more than half the reduction.
    Doing the same for the whole picture would decode a 12 MP photo at full
    size, 48 MB of RGB. But the eye, SSIM and every output (JPEG 4:2:0,
    lossy WebP) keep colour at half resolution: so the luma alone (1 byte a
    pixel) is decoded with that headroom, the colour at no less than half of
    ``work``, each resampled to ``work``, and the two merged. Where the
    headroom itself is a reduced-scale decode (50 MP to 1600 px: at 1/2),
    that one decode gives luma and colour both: the file is read once. And
    where the usual decode would do (6 MP to 1600 px: whole, then 1.9x), the
    luma still goes apart when much resampling is left: one byte a pixel to
    resample instead of Pillow's four for RGB, and less memory.
    """
    if img.mode != "RGB" or not _ycbcr_coded(img):
        return None
    headroom = (round(work[0] * _REDUCING_GAP), round(work[1] * _REDUCING_GAP))
    usual = _dct_scale(img.size, work)
    if _dct_scale(img.size, headroom) == usual:
        # The usual decode already leaves the resampler its factor of 2.
        # Still, resampling the luma alone (one byte a pixel where Pillow's
        # RGB takes four) saves more than reading the file again for the
        # colour costs, unless little resampling is left to do.
        left = min(img.size[0] / usual / work[0], img.size[1] / usual / work[1])
        if left < _APART_FROM_FACTOR:
            return None
    stream = img.fp if isinstance(img, ImageFile.ImageFile) else None
    if stream is None:
        return None
    # Two decodes at once need two streams over the same bytes (a BytesIO
    # made from bytes shares them rather than copying).
    stream.seek(0)
    data = stream.getvalue() if isinstance(stream, io.BytesIO) else stream.read()
    icc = img.info.get("icc_profile")

    def decode(mode: str, size: tuple[int, int]) -> Image.Image:
        part = Image.open(io.BytesIO(data), formats=["JPEG"])
        part.draft(mode, size)
        part.load()
        return part

    def to_work(band: Image.Image) -> Image.Image:
        # Half of ``work`` is all the colour a 4:2:0 output keeps: a box
        # reduction towards it, then a bilinear pass (what libjpeg's own
        # upsampling does) brings the band to ``work``.
        factor = int(min(band.width / work[0], band.height / work[1]))
        band = band.reduce(factor) if factor > 1 else band
        return band.resize(work, Image.Resampling.BILINEAR)

    def chroma() -> tuple[Image.Image, Image.Image]:
        # libjpeg reaches half of ``work`` by a deeper (cheaper) reduction.
        colour = decode("YCbCr", ((work[0] + 1) // 2, (work[1] + 1) // 2))
        _, cb, cr = (to_work(band) for band in colour.split())
        colour.close()
        return cb, cr

    # A progressive JPEG's decoder holds every coefficient of the picture
    # (36 MB at 12 MP) whatever the scale: one such decode at a time, and
    # none beside a whole colour picture.
    progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    if _dct_scale(img.size, headroom) > 1 and not progressive:
        # Decoded at reduced scale anyway (50 MP to 1600 px: at 1/2), the
        # picture is small enough to decode once, colour included: reading
        # the file (Huffman decoding, most of the time at that size) is then
        # done once instead of twice. The bands are taken out one by one so
        # that no two whole copies of the picture are held at once.
        colour = decode("YCbCr", headroom)
        luma = colour.getchannel(0)
        colour_done: Future[tuple[Image.Image, Image.Image]] | None = _pool().submit(
            lambda: (to_work(colour.getchannel(1)), to_work(colour.getchannel(2)))
        )
    else:
        # The colour on the pool (Pillow decodes without the GIL) while this
        # thread decodes the luma: the encoders have not started yet.
        colour = None
        colour_done = None if progressive else _pool().submit(chroma)
        luma = decode("L", headroom)
    luma = _resample(luma, work) if luma.size != work else luma
    cb, cr = colour_done.result() if colour_done is not None else chroma()
    if colour is not None:
        colour.close()
    merged = Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")
    if isinstance(icc, bytes):
        merged.info["icc_profile"] = icc
    return merged


def _finish(
    img: Image.Image,
    *,
    info: ImageInfo,
    preset: Preset,
    orientation: int,
    targets: list[_Target],
    work_stored: tuple[int, int],
    focal_point: FocalPoint | None,
    frame_box: tuple[int, int, int, int] | None = None,
    grey_alpha: bool = False,
) -> Result:
    icc = img.info.get("icc_profile")
    work = _to_basic_mode(img)
    if grey_alpha and work.mode == "RGBA":
        work = work.convert("LA")  # its three channels alike: no sample changes
    if frame_box is not None:
        work = _transparent_outside(work, frame_box)
    grey = work.mode in ("L", "LA")
    if img.format == "PNG" and not _png_profile_applies(icc, grey=grey):
        # A profile that cannot be read (damaged, not compressed right) or is
        # of the other colour space is skipped by browsers for what gAMA and
        # cHRM say.
        icc = _icc_from_png_chunks(img.info, grey=grey)
    if work.size != work_stored:
        work = _resample(work, work_stored)
    if work is not img:
        img.close()  # release the full decode as early as possible
    work = _clear_hidden_colour(_drop_opaque_alpha(_to_srgb(work, icc if isinstance(icc, bytes) else None)))
    if orientation in _EXIF_TRANSPOSE:
        work = work.transpose(_EXIF_TRANSPOSE[orientation])
    if preset.rotate % 360:
        work = work.transpose(_CLOCKWISE[preset.rotate % 360])
    work.info = {}  # nothing of the upload's metadata may reach an encoder

    pool = _pool()
    encodes: dict[tuple[str, str], Future[bytes]] = {}
    sizes: dict[str, tuple[int, int]] = {}

    def encode(target: _Target, rendition: Image.Image) -> None:
        rendition.info = {}
        sizes[target.name] = rendition.size
        # Slowest codec first: the pool is FIFO and the big WebP is the long pole.
        for fmt in sorted(preset.formats, key=_ENCODE_COST.__getitem__, reverse=True):
            encodes[(target.name, fmt)] = pool.submit(_encode, rendition, fmt, preset)

    def by_area(target: _Target) -> int:
        return target.width * target.height

    # Whole pictures first, largest first, each from the smallest image already
    # made that is big enough: the resampling cost then shrinks along the
    # ladder, and the smallest whole picture is at hand for the estimate of
    # the focal point (and the placeholder) before any crop is cut.
    available: list[Image.Image] = [work]
    smallest = work
    for target in sorted((t for t in targets if not t.crop), key=by_area, reverse=True):
        rendition = _resize(_pick_source(available, target), target, None)
        encode(target, rendition)
        if rendition is not work:
            available.append(rendition)
        if rendition.width * rendition.height <= smallest.width * smallest.height:
            smallest = rendition
    # Estimated in the preset's rotated frame, stored in the displayed one.
    turned = preset.rotate % 360
    estimate = estimate_focal_point(smallest)
    focus = focal_point.rotated(turned) if focal_point is not None else estimate
    for target in sorted((t for t in targets if t.crop), key=by_area, reverse=True):
        encode(target, _resize(_pick_source(available, target), target, focus))
    placeholder, dominant = _placeholder(smallest)

    outputs: list[Output] = []
    for target in targets:
        for fmt in preset.formats:
            data = encodes[(target.name, fmt)].result()
            width, height = sizes[target.name]
            outputs.append(Output(name=target.name, format=fmt, width=width, height=height, data=data))
    return Result(
        info=info,
        outputs=outputs,
        placeholder=placeholder,
        dominant_color=dominant,
        focal_point=estimate.rotated(-turned),
    )


def _pick_source(available: list[Image.Image], target: _Target) -> Image.Image:
    # A crop of the target's aspect is as large as the target exactly when
    # the source is at least as wide and as tall: one test for both kinds.
    candidates = [img for img in available if img.width >= target.width and img.height >= target.height]
    return min(candidates, key=lambda img: img.width * img.height) if candidates else available[0]


def _resize(source: Image.Image, target: _Target, focal_point: FocalPoint | None) -> Image.Image:
    size = (target.width, target.height)
    if not target.crop:
        return source if source.size == size else _resample(source, size)
    box = crop_box(source.size, size, focal_point)
    if source.size == size:
        return source
    return _resample(source, size, box)


# Like Pillow's advice for reducing_gap: a cheap integer box reduction first,
# then Lanczos over the remaining factor of 2 or less. pyvips does the same.
_REDUCING_GAP: Final = 2.0
# From this much resampling on, the luma is resampled apart from the colour.
_APART_FROM_FACTOR: Final = 1.5
# Below this many output pixels a second thread costs more than it saves.
_SPLIT_MIN_PIXELS: Final = 300_000


def _resample(
    img: Image.Image,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """``img.resize(size, LANCZOS, box=box, reducing_gap=2.0)``, with the Lanczos
    pass run as two horizontal bands on two threads.

    Pillow's resampler reads neighbours across the band edge from the whole
    image, so the bands join without a seam. Same filter and geometry; only the
    8-bit rounding between Pillow's two passes can differ, by a level or so on
    average, evenly over the image.
    """
    lanczos = Image.Resampling.LANCZOS
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(img.width), float(img.height))
    factor_x = max(1, int((x1 - x0) / size[0] / _REDUCING_GAP))
    factor_y = max(1, int((y1 - y0) / size[1] / _REDUCING_GAP))
    if factor_x > 1 or factor_y > 1:
        if box is not None:  # only thumbnails of huge images get here; rare
            return img.resize(size, lanczos, box=box, reducing_gap=_REDUCING_GAP)
        img = img.reduce((factor_x, factor_y))
        x1, y1 = x1 / factor_x, y1 / factor_y
    if size[0] * size[1] < _SPLIT_MIN_PIXELS:
        return img.resize(size, lanczos, box=(x0, y0, x1, y1))
    middle = size[1] // 2
    y_middle = y0 + (y1 - y0) * middle / size[1]
    bottom_size = (size[0], size[1] - middle)
    bottom_box = (x0, y_middle, x1, y1)
    pending = _pool().submit(img.resize, bottom_size, lanczos, box=bottom_box)
    top = img.resize((size[0], middle), lanczos, box=(x0, y0, x1, y_middle))
    # If the pool is still busy encoding, do not wait for it: do it here.
    bottom = img.resize(bottom_size, lanczos, box=bottom_box) if pending.cancel() else pending.result()
    out = Image.new(top.mode, size)
    out.paste(top, (0, 0))
    out.paste(bottom, (0, middle))
    return out


def process(
    source: bytes | BinaryIO,
    preset: Preset,
    *,
    max_pixels: int = 50_000_000,
    allowed_formats: Sequence[str] = ALLOWED_FORMATS,
    focal_point: FocalPoint | None = None,
    crops_only: bool = False,
) -> Result:
    """Probe, decode once and render every output of ``preset``.

    Crops are cut around ``focal_point``, else around the estimate (which the
    result carries either way). ``crops_only`` renders just the cropped
    renditions (``preset.crop_names``), at the scale they need: what a moved
    focal point changes.

    Raises :class:`ImageRejected` (from the header) or :class:`ProcessingError`.
    """
    if crops_only and not preset.crop_names:
        raise ValueError(f"Preset {preset.name!r} makes no cropped rendition.")
    img, info = _open_checked(source, max_pixels, allowed_formats)
    try:
        with warnings.catch_warnings():
            # A GIF can still describe an oversized disposal area per frame.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # blurhash-python still calls Image.getdata, deprecated in Pillow 13.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="blurhash")
            return _render(img, info, preset, focal_point, crops_only)
    except (ImageRejected, ProcessingError):
        raise
    except Exception as exc:
        damage = "is truncated" if _truncated(exc) else "has damaged pixel data"
        raise ProcessingError(
            f"The image could not be decoded: the {info.format} file {damage}.", detail=_detail(exc)
        ) from exc
    finally:
        img.close()
