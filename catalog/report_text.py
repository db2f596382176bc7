"""Text in any script for the supplier report: a font per run, bidi, shaping.

ReportLab alone draws a string in one font, character by character and left
to right: Chinese, Japanese and Korean print as empty boxes (DejaVu Sans has
no ideographs), Arabic letters do not join, Devanagari vowel signs do not
move before their consonant, and Hebrew or Arabic words run the wrong way.
Its own right-to-left support needs rlbidi, which is not on PyPI, and its
paragraph shaping takes one font per word. So the report lays out the text
it prints itself:

1. python-bidi's implementation of the Unicode bidirectional algorithm gives
   every character its embedding level (the paragraph's direction comes from
   its first strong letter);
2. every character gets the first installed font of the chain that has it
   (DejaVu Sans, then Noto Sans UI per Indic and South-East Asian script,
   then WenQuanYi Micro Hei for CJK, then Symbola for symbols), loaded the
   first time one needs it; an emoji (a character shown as emoji by default
   or asked for with U+FE0F, with its skin tone, flag pair, keycap or
   zero-width-joined parts) takes Noto Color Emoji instead;
3. HarfBuzz (uharfbuzz) shapes each run of one font and one level;
4. lines are broken in logical order, at spaces or between ideographs (not
   before a closing mark nor after an opening one, the Japanese and Chinese
   rule), each line's runs are put in visual order (rule L2), and a
   right-to-left paragraph's lines start at the right;
5. the glyphs are drawn through ReportLab's shaped strings, so ReportLab
   still subsets and embeds the fonts; a glyph that no character maps to
   (a conjunct, a ligature) is given the text it stands for in the font's
   ToUnicode map, so the PDF's text can be copied and searched;
6. a PDF font cannot carry the colour emoji font's bitmaps, so each colour
   glyph (one for a whole sequence) is drawn as its PNG from the font, over
   its characters written as invisible text, which copy and search as such.

A missing font file is logged once with the Debian package that installs it
and its script prints as boxes; with no font at all the report falls back to
Helvetica, which prints Latin-1 and replaces the rest with ``?``.
"""

from __future__ import annotations

import bisect
import functools
import io
import itertools
import logging
import re
import threading
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uharfbuzz
from bidi import algorithm as bidi_algorithm
from PIL import Image as PILImage
from reportlab.lib.colors import Color
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import ShapeData, ShapedStr, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable

logger = logging.getLogger(__name__)

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
NOTO_DIR = Path("/usr/share/fonts/truetype/noto")
WQY_DIR = Path("/usr/share/fonts/truetype/wqy")
SYMBOLA_DIR = Path("/usr/share/fonts/truetype/ancient-scripts")
COLOR_EMOJI_DIR = Path("/usr/share/fonts/truetype/noto")

ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Characters the bidi algorithm drops (rule X9): they take their neighbour's level.
_X9_REMOVED = frozenset(bidi_algorithm.X9_REMOVED)
_JOINERS = frozenset("\u200c\u200d\u034f")
FSI, PDI = "\u2068", "\u2069"
# python-bidi implements the algorithm before isolates (Unicode 6.3): the
# layout resolves them itself, one level deep, and drops the marks.
_ISOLATE_MARKS = re.compile("[\u2066-\u2069]")
_ISOLATED = re.compile("\u2068([^\u2069]*)\u2069?")


@dataclass(frozen=True)
class FontFile:
    """One font of the chain and the Debian package that installs it."""

    package: str
    scripts: str  # what prints as boxes without it, for the log line
    regular: Path
    bold: Path | None = None  # None: the regular face serves bold text too
    color: bool = False  # bitmaps drawn as images: emoji sequences only
    without: str = ""  # what happens without it, when not boxes

    @property
    def missing(self) -> str:
        return self.without or f"{self.scripts} text prints as boxes"


def _noto_ui(script: str) -> FontFile:
    return FontFile(
        "fonts-noto-ui-core",
        script,
        NOTO_DIR / f"NotoSans{script}UI-Regular.ttf",
        NOTO_DIR / f"NotoSans{script}UI-Bold.ttf",
    )


def font_chain() -> list[FontFile]:
    """The fonts tried for each character, in order (read at call time, so a
    test can point the folders elsewhere)."""
    return [
        FontFile(
            "fonts-dejavu-core",
            "Latin, Greek, Cyrillic, Arabic, Hebrew",
            DEJAVU_DIR / "DejaVuSans.ttf",
            DEJAVU_DIR / "DejaVuSans-Bold.ttf",
        ),
        *(
            _noto_ui(script)
            for script in (
                "Devanagari",
                "Bengali",
                "Gujarati",
                "Gurmukhi",
                "Oriya",
                "Tamil",
                "Telugu",
                "Kannada",
                "Malayalam",
                "Sinhala",
                "Thai",
                "Lao",
                "Khmer",
                "Myanmar",
            )
        ),
        # Chinese (simplified and traditional), Japanese kana and Korean hangul
        # in 5 MB; Noto Sans CJK would be 90 MB.
        FontFile("fonts-wqy-microhei", "Chinese, Japanese, Korean", WQY_DIR / "wqy-microhei.ttc"),
        # Emoji as a phone shows them, up to Unicode 15: a PNG per glyph.
        FontFile(
            "fonts-noto-color-emoji",
            "colour emoji",
            COLOR_EMOJI_DIR / "NotoColorEmoji.ttf",
            color=True,
            without="emoji print as Symbola's outlines in the text's colour, up to Unicode 9",
        ),
        # Symbols, and emoji without the colour font, as outlines in the text's colour.
        FontFile("fonts-symbola", "emoji and symbols", SYMBOLA_DIR / "Symbola_hint.ttf"),
    ]


# --- Fonts ------------------------------------------------------------------------


class _ShapingFont(TTFont):
    """A TrueType font whose shaped glyphs keep the text they stand for.

    ReportLab subsets by character: a glyph that no character maps to gets a
    private-use code point here (as ReportLab's own shaping does), and the
    PDF's ToUnicode map says which text that code stands for instead of the
    meaningless private code.
    """

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, str(path))
        data = path.read_bytes()
        self.hb_font = uharfbuzz.Font(uharfbuzz.Face(uharfbuzz.Blob(data), 0))
        self.covered = frozenset(self.face.charToGlyph)
        self.blank = self.face.charToGlyph.get(32, 0)  # a space's glyph: drawn for invisible characters
        self._private: dict[int, int] = {}  # glyph id -> private code point
        self._next_private = 0xE000
        self.stands_for: dict[int, str] = {}  # private code point -> text
        self._invisible: dict[tuple[str, float], int] = {}  # text and width -> private code point
        self._made_up = threading.Lock()

    def code_for(self, glyph: int, text: str) -> int:
        """A character that ReportLab maps to ``glyph``, made up when the font
        has none; ``text`` is what the glyph shows, for copying."""
        with self._made_up:  # a glyph keeps one code, and no two share one
            code = self._private.get(glyph)
            if code is None:
                chars = self.face.glyphToChar.get(glyph)
                if chars:  # a presentation form, a mirrored bracket: copied as such
                    return int(chars[0])
                code = self._next_private
                while code in self.face.charToGlyph:
                    code += 1
                self._next_private = code + 1
                self._private[glyph] = code
                self.face.charToGlyph[code] = glyph
                self.face.glyphToChar.setdefault(glyph, []).append(code)
                self.face.charWidths[code] = self.face._pdfScale(self.hb_font.get_glyph_h_advance(glyph))
            if text and not self.stands_for.get(code):
                self.stands_for[code] = text
            return code

    def invisible_code(self, text: str, width: float) -> int:
        """A made-up character ``width`` wide (thousandths of the size) that
        copies as ``text``: written as invisible text under a colour emoji's
        picture, as wide as it, so that the emoji copies as itself."""
        with self._made_up:  # one code a text, however many reports are drawn at once
            code = self._invisible.get((text, width))
            if code is None:
                code = self._next_private
                while code in self.face.charToGlyph:
                    code += 1
                self._next_private = code + 1
                self._invisible[text, width] = code
                self.face.charToGlyph[code] = self.blank
                self.face.charWidths[code] = width
                self.stands_for[code] = text
        return code

    def addObjects(self, doc: Any) -> None:
        state = self.state.get(doc)
        if state is None:
            super().addObjects(doc)
            return
        internal = [self.getSubsetInternalName(n, doc)[1:] for n in range(len(state.subsets))]
        subsets = [list(subset) for subset in state.subsets]
        super().addObjects(doc)
        # ReportLab's map writes each code's own character, as four hex digits:
        # wrong for made-up codes and for characters past U+FFFF.
        pdf_fonts = doc.idToObject["BasicFonts"].dict
        for name, subset in zip(internal, subsets, strict=True):
            base_font = pdf_fonts[name].BaseFont
            stream = doc.idToObject["toUnicodeCMap:" + base_font]
            stream.content = _to_unicode_cmap(base_font, [self.stands_for.get(c, chr(c)) for c in subset])


def _to_unicode_cmap(name: str, texts: Sequence[str]) -> str:
    entries = [
        f"<{code:02X}> <{text.encode('utf-16-be').hex().upper()}>" for code, text in enumerate(texts) if text
    ]
    blocks = []
    for start in range(0, len(entries), 100):  # at most 100 per block (PDF 1.7, 9.10.3)
        chunk = entries[start : start + 100]
        blocks += [f"{len(chunk)} beginbfchar", *chunk, "endbfchar"]
    return "\n".join(
        [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            f"/CIDSystemInfo << /Registry ({name}) /Ordering ({name}) /Supplement 0 >> def",
            f"/CMapName /{name} def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            f"<00> <{len(texts) - 1:02X}>",
            "endcodespacerange",
            *blocks,
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
    )


@dataclass(frozen=True)
class _Picture:
    """A colour glyph's PNG and where it sits: from the pen on the baseline, in ems."""

    image: ImageReader
    left: float
    bottom: float
    width: float
    height: float


class _ColorFont:
    """A colour emoji font (CBDT/CBLC): HarfBuzz shapes it and hands each
    glyph's PNG over; ReportLab never sees it."""

    def __init__(self, path: Path) -> None:
        face = uharfbuzz.Face(uharfbuzz.Blob(path.read_bytes()), 0)
        if not face.has_color_png:
            raise ValueError("the font has no colour bitmaps (CBDT)")
        self.hb_font = uharfbuzz.Font(face)
        self.upem = face.upem
        self.covered = frozenset(face.unicodes)
        self._pictures: dict[int, _Picture | None] = {}
        self._lock = threading.Lock()

    def is_emoji(self, char: str) -> bool:
        """Whether ``char`` can start an emoji of this font (digits, ``#`` and
        ``*`` only as a keycap; joiners and selectors never)."""
        return ord(char) in self.covered and ord(char) > 0x7F and char not in _EMOJI_PARTS

    def picture(self, glyph: int) -> _Picture | None:
        """Glyph ``glyph``'s image, decoded once (None: the glyph has none)."""
        if glyph in self._pictures:
            return self._pictures[glyph]
        with self._lock:
            if glyph not in self._pictures:
                self._pictures[glyph] = self._decode(glyph)
        return self._pictures[glyph]

    def _decode(self, glyph: int) -> _Picture | None:
        png = self.hb_font.get_glyph_color_png(glyph)
        extents = self.hb_font.get_glyph_extents(glyph)
        if png is None or not png.data or extents is None or not extents.width:
            return None
        try:
            with PILImage.open(io.BytesIO(png.data)) as decoded:
                image = ImageReader(decoded.convert("RGBA"))
        except (OSError, ValueError) as exc:
            logger.warning("Colour emoji glyph %d has no readable PNG (%s): it is left out", glyph, exc)
            return None
        image.getRGBData()  # decoded here, once, rather than by each report
        em = self.upem
        return _Picture(
            image,
            left=extents.x_bearing / em,
            bottom=(extents.y_bearing + extents.height) / em,  # height runs downwards
            width=extents.width / em,
            height=-extents.height / em,
        )


@dataclass(eq=False)
class _Face:
    """A font as the layout uses it: a shaping TrueType font, Helvetica, or a
    colour emoji font whose characters are written invisibly in ``ttf``."""

    name: str
    ttf: _ShapingFont | None = None
    color: _ColorFont | None = None

    @property
    def pdf_font(self) -> str:
        """The font the run's text is written in."""
        if self.color is not None and self.ttf is not None:
            return self.ttf.fontName
        return self.name

    def covers(self, char: str) -> bool:
        if self.color is not None:
            return False  # emoji sequences only, found by the paragraph
        if self.ttf is not None:
            return ord(char) in self.ttf.covered
        return char.encode("cp1252", "ignore") != b""


@dataclass
class _Chain:
    """The fonts of one weight, loaded the first time a character needs them."""

    weight: str  # "regular" or "bold"
    pending: list[FontFile]
    faces: list[_Face] = field(default_factory=list)
    uncovered: set[str] = field(default_factory=set)

    def load_next(self) -> bool:
        """Load the next installed font of the chain; False when none is left."""
        while self.pending:
            if self._add(self.pending.pop(0)):
                return True
        return False

    def _add(self, spec: FontFile) -> bool:
        path = spec.bold if self.weight == "bold" and spec.bold is not None else spec.regular
        face = _load(path, spec)
        if face is None:
            return False
        if face.color is not None:
            text = self.faces[0].ttf if self.faces else None
            if text is None:  # nothing to write the emoji's text in
                return False
            face = _Face(face.name, text, face.color)
        self.faces.append(face)
        return True

    def color_face(self) -> _Face | None:
        """The colour emoji font, loaded now if the chain has one installed."""
        for face in self.faces:
            if face.color is not None:
                return face
        with _loading:
            for spec in [spec for spec in self.pending if spec.color]:
                self.pending.remove(spec)
                if self._add(spec):
                    return self.faces[-1]
        return None

    def face_for(self, char: str) -> _Face | None:
        for face in self.faces:
            if face.covers(char):
                return face
        with _loading:  # the embedded server builds reports on several threads
            for face in self.faces:
                if face.covers(char):
                    return face
            while self.load_next():
                if self.faces[-1].covers(char):
                    return self.faces[-1]
        if char not in self.uncovered and not char.isspace():
            self.uncovered.add(char)
            logger.warning(
                "No report font has U+%04X %s: it prints as a box",
                ord(char),
                unicodedata.name(char, "(unnamed)"),
            )
        return None


_loading = threading.Lock()


@functools.cache
def _load(path: Path, spec: FontFile) -> _Face | None:
    if not path.is_file():
        logger.warning(
            "Report font %s is missing (install the Debian package %s): %s",
            path,
            spec.package,
            spec.missing,
        )
        return None
    name = f"Report-{path.stem}"
    try:
        if spec.color:
            return _Face(name, color=_ColorFont(path))
        font = _ShapingFont(name, path)
        pdfmetrics.registerFont(font)
    except Exception as exc:  # noqa: BLE001 — a damaged font file raises anything; the report goes on without it
        logger.warning(
            "Cannot use report font %s (%s): %s: %s",
            path,
            spec.package,
            spec.missing,
            exc,
        )
        return None
    return _Face(name, font)


@dataclass
class Fonts:
    regular: _Chain
    bold: _Chain
    helvetica: bool = False

    @property
    def unicode(self) -> bool:
        """Whether a TrueType font prints (else Helvetica's Latin-1 only)."""
        return not self.helvetica

    def chain(self, bold: bool) -> _Chain:
        return self.bold if bold else self.regular

    def primary(self, bold: bool) -> str:
        """The font of the text that needs no fallback (headings, numbers)."""
        return self.chain(bold).faces[0].name


@functools.cache
def fonts() -> Fonts:
    """The report's font chains, the first installed font of each loaded."""
    regular, bold = _Chain("regular", font_chain()), _Chain("bold", font_chain())
    if regular.load_next():
        if not bold.load_next():
            bold.faces.append(regular.faces[0])
        return Fonts(regular, bold)
    logger.warning("No report font is installed: the report prints Latin-1 text in Helvetica only")
    return Fonts(
        _Chain("regular", [], [_Face("Helvetica")]),
        _Chain("bold", [], [_Face("Helvetica-Bold")]),
        helvetica=True,
    )


def clean(text: str) -> str:
    """Control characters (tabs, escapes) print as spaces."""
    return _CONTROL.sub(" ", text)


def isolate(text: str) -> str:
    """``text`` marked to take its own direction inside a longer line, as a
    first-strong isolate (FSI … PDI): ``name: תפוח (ירוק)`` keeps the name's
    parentheses with the name instead of sending the last one to the line's end."""
    return FSI + _ISOLATE_MARKS.sub("", text) + PDI


# --- Emoji ------------------------------------------------------------------------

# Emoji_Presentation=Yes (Unicode 15.0 emoji-data.txt, ranges merged): shown
# as emoji without U+FE0F. Python 3.11's unicodedata (Unicode 14) knows
# neither the property nor Unicode 15's emoji.
_EMOJI_PRESENTATION = (
    (0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3), (0x25FD, 0x25FE),
    (0x2614, 0x2615), (0x2648, 0x2653), (0x267F, 0x267F), (0x2693, 0x2693), (0x26A1, 0x26A1),
    (0x26AA, 0x26AB), (0x26BD, 0x26BE), (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4),
    (0x26EA, 0x26EA), (0x26F2, 0x26F3), (0x26F5, 0x26F5), (0x26FA, 0x26FA), (0x26FD, 0x26FD),
    (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C), (0x274E, 0x274E),
    (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797), (0x27B0, 0x27B0), (0x27BF, 0x27BF),
    (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0x1F004, 0x1F004), (0x1F0CF, 0x1F0CF),
    (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1E6, 0x1F1FF), (0x1F201, 0x1F201),
    (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F236), (0x1F238, 0x1F23A),
    (0x1F250, 0x1F251), (0x1F300, 0x1F320), (0x1F32D, 0x1F335), (0x1F337, 0x1F37C),
    (0x1F37E, 0x1F393), (0x1F3A0, 0x1F3CA), (0x1F3CF, 0x1F3D3), (0x1F3E0, 0x1F3F0),
    (0x1F3F4, 0x1F3F4), (0x1F3F8, 0x1F43E), (0x1F440, 0x1F440), (0x1F442, 0x1F4FC),
    (0x1F4FF, 0x1F53D), (0x1F54B, 0x1F54E), (0x1F550, 0x1F567), (0x1F57A, 0x1F57A),
    (0x1F595, 0x1F596), (0x1F5A4, 0x1F5A4), (0x1F5FB, 0x1F64F), (0x1F680, 0x1F6C5),
    (0x1F6CC, 0x1F6CC), (0x1F6D0, 0x1F6D2), (0x1F6D5, 0x1F6D7), (0x1F6DC, 0x1F6DF),
    (0x1F6EB, 0x1F6EC), (0x1F6F4, 0x1F6FC), (0x1F7E0, 0x1F7EB), (0x1F7F0, 0x1F7F0),
    (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1F9FF), (0x1FA70, 0x1FA7C),
    (0x1FA80, 0x1FA88), (0x1FA90, 0x1FABD), (0x1FABF, 0x1FAC5), (0x1FACE, 0x1FADB),
    (0x1FAE0, 0x1FAE8), (0x1FAF0, 0x1FAF8),
)  # fmt: skip
_PRESENTATION_STARTS = [start for start, _ in _EMOJI_PRESENTATION]
_ZWJ, _TEXT_STYLE, _EMOJI_STYLE, _KEYCAP = "\u200d", "\ufe0e", "\ufe0f", "\u20e3"
_CANCEL_TAG = "\U000e007f"
_EMOJI_PARTS = frozenset((_ZWJ, _TEXT_STYLE, _EMOJI_STYLE, _KEYCAP))
_KEYCAP_BASES = frozenset("0123456789#*")


def _emoji_presentation(char: str) -> bool:
    code = ord(char)
    i = bisect.bisect_right(_PRESENTATION_STARTS, code) - 1
    return i >= 0 and code <= _EMOJI_PRESENTATION[i][1]


def _regional(char: str) -> bool:
    """A regional indicator: two of them are a flag."""
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _modifier(char: str) -> bool:
    """A skin tone, part of the emoji before it."""
    return "\U0001f3fb" <= char <= "\U0001f3ff"


def _tag(char: str) -> bool:
    """A tag character: a subdivision flag's letters and its end."""
    return "\U000e0020" <= char <= _CANCEL_TAG


def _may_hold_emoji(text: str) -> bool:
    return any(_emoji_presentation(char) or char in (_EMOJI_STYLE, _KEYCAP) for char in text)


def _emoji_element(text: str, i: int, font: _ColorFont) -> tuple[int, bool] | None:
    """The end of the emoji element at ``text[i]`` (a flag pair, a keycap, or an
    emoji with its style, skin tone or tags) and whether it shows as emoji."""
    n, char = len(text), text[i]
    if _regional(char):
        return (i + 2 if i + 1 < n and _regional(text[i + 1]) else i + 1), True
    if char in _KEYCAP_BASES:
        end = i + 1 + (i + 1 < n and text[i + 1] == _EMOJI_STYLE)
        return (end + 1, True) if end < n and text[end] == _KEYCAP else None
    if not font.is_emoji(char):
        return None
    end, shown = i + 1, _emoji_presentation(char)
    if end < n and text[end] == _TEXT_STYLE:
        return end + 1, False
    if end < n and (text[end] == _EMOJI_STYLE or _modifier(text[end])):
        end, shown = end + 1, True
    while end < n and _tag(text[end]):
        end, shown = end + 1, True
    return end, shown


def _emoji_ends(text: str, font: _ColorFont) -> dict[int, int]:
    """Where each emoji sequence of ``text`` starts, and where it ends: its
    elements joined by U+200D ZERO WIDTH JOINER (emoji ZWJ sequences)."""
    ends: dict[int, int] = {}
    i = 0
    while i < len(text):
        element = _emoji_element(text, i, font)
        if element is None:
            i += 1
            continue
        end, shown = element
        while end + 1 < len(text) and text[end] == _ZWJ:
            joined = _emoji_element(text, end + 1, font)
            if joined is None:
                break
            end, shown = joined[0], True
        if shown:
            ends[i] = end
        i = end
    return ends


# --- Layout -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """A colour glyph's picture, ``x`` points right of its run's start."""

    x: float
    picture: _Picture


@dataclass
class _Run:
    face: _Face
    level: int
    text: str  # in visual order: ShapedStr for a TrueType face
    width: float  # points
    pictures: list[_Placed] = field(default_factory=list)  # a colour face's glyphs


@dataclass
class Line:
    """One line of text, its runs in visual order, ready to draw."""

    runs: list[_Run]
    size: float
    rtl: bool = False  # its paragraph's direction: where its lines start

    @property
    def width(self) -> float:
        return sum(run.width for run in self.runs)

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)

    def draw(self, canvas: Canvas, x: float, y: float) -> None:
        # One text object: readers copy the line as one, not a line per run.
        text = canvas.beginText(x, y)
        pictures: list[tuple[float, _Picture]] = []
        start = x
        for run in self.runs:
            text.setFont(run.face.pdf_font, self.size)
            if run.face.color is not None:
                # The emoji's characters, invisible (mode 3), under their pictures.
                text.setTextRenderMode(3)
                text.textOut(run.text)
                text.setTextRenderMode(0)
                pictures += [(start + placed.x, placed.picture) for placed in run.pictures]
            else:
                text.textOut(run.text)
            start += run.width
        canvas.drawText(text)
        size = self.size
        with _drawn_lock:
            drawn = _drawn_pictures.setdefault(canvas, {})
        page = canvas.getPageNumber()
        for left, picture in pictures:
            place = (
                left + picture.left * size,
                y + picture.bottom * size,
                picture.width * size,
                picture.height * size,
            )
            earlier = drawn.get(picture)
            if earlier is not None and earlier[0] == page:
                # Drawn on this page already: the same image again, where
                # drawImage would hash its pixels once more to find it. (Its
                # first use on a page goes through drawImage, which marks the
                # page as one with images.)
                canvas.saveState()
                canvas.transform(place[2], 0, 0, place[3], place[0], place[1])
                canvas.doForm(earlier[1])
                canvas.restoreState()
                continue
            found: dict[str, Any] = {"name": None}
            canvas.drawImage(picture.image, *place, mask="auto", extraReturn=found)
            drawn[picture] = (page, found["name"])


# The image name each canvas gave a colour glyph's picture, and the page it
# was first drawn on there.
_drawn_pictures: weakref.WeakKeyDictionary[Canvas, dict[_Picture, tuple[int, str]]] = (
    weakref.WeakKeyDictionary()
)
_drawn_lock = threading.Lock()


def _resolve(text: str) -> tuple[str, tuple[int, ...], int]:
    """``text`` without isolate marks, each character's embedding level, and
    the paragraph's (0 left to right, 1 right to left).

    An isolate counts as one neutral character in the text around it (rule
    X5c) and inside is a paragraph of its own, raised to the next level of
    its direction above the outer paragraph's."""
    if FSI not in text:
        text = _ISOLATE_MARKS.sub("", text)
        return text, _levels(text), bidi_algorithm.get_base_level(text)
    outer = _ISOLATED.sub("\N{OBJECT REPLACEMENT CHARACTER}", text)
    outer = _ISOLATE_MARKS.sub("", outer)
    outer_levels = iter(_levels(outer))
    base = bidi_algorithm.get_base_level(outer)
    chars: list[str] = []
    levels: list[int] = []
    position = 0
    for match in _ISOLATED.finditer(text):
        before = _ISOLATE_MARKS.sub("", text[position : match.start()])
        chars.append(before)
        levels += [next(outer_levels) for _ in before]
        next(outer_levels)  # the isolate's stand-in
        inner = _ISOLATE_MARKS.sub("", match.group(1))
        inner_base = bidi_algorithm.get_base_level(inner)
        raised = (base + 1) | 1 if inner_base else (base + 2) & ~1
        chars.append(inner)
        levels += [level - inner_base + raised for level in _levels(inner)]
        position = match.end()
    after = _ISOLATE_MARKS.sub("", text[position:])
    chars.append(after)
    levels += [next(outer_levels) for _ in after]
    return "".join(chars), tuple(levels), base


@functools.lru_cache(maxsize=4096)
def _levels(text: str) -> tuple[int, ...]:
    """Each character's resolved embedding level (rules P2 to I2)."""
    storage = bidi_algorithm.get_empty_storage()
    base = bidi_algorithm.get_base_level(text)
    storage["base_level"] = base
    storage["base_dir"] = "LR"[base]
    bidi_algorithm.get_embedding_levels(text, storage)
    bidi_algorithm.explicit_embed_and_overrides(storage)
    bidi_algorithm.resolve_weak_types(storage)
    bidi_algorithm.resolve_neutral_types(storage, False)
    bidi_algorithm.resolve_implicit_levels(storage, False)
    resolved = iter(char["level"] for char in storage["chars"])
    levels, previous = [], base
    for char in text:
        if unicodedata.bidirectional(char) not in _X9_REMOVED:
            previous = next(resolved, previous)
        levels.append(previous)
    return tuple(levels)


def _continues(char: str) -> bool:
    """A mark or joiner, drawn in its base character's font if it can be."""
    return unicodedata.category(char)[0] == "M" or char in _JOINERS


class _Paragraph:
    """One paragraph in one size and weight: fonts chosen, levels resolved."""

    def __init__(self, text: str, size: float, bold: bool) -> None:
        self.text, self.levels, self.base_level = _resolve(clean(text))
        self.size = size
        chain = fonts().chain(bold)
        self.faces: list[_Face] = []
        color = chain.color_face() if _may_hold_emoji(self.text) else None
        emoji = _emoji_ends(self.text, color.color) if color is not None and color.color is not None else {}
        current = chain.faces[0]
        i = 0
        while i < len(self.text):
            end = emoji.get(i)
            if end is not None and color is not None:
                current = color
                self.faces += [current] * (end - i)
                i = end
                continue
            char = self.text[i]
            # Marks, spaces, digits and punctuation stay in the run's font when it has them.
            neutral = _continues(char) or not unicodedata.category(char).startswith("L")
            if i == 0 or not (neutral and current.covers(char)):
                current = chain.face_for(char) or current
            self.faces.append(current)
            i += 1
        if fonts().helvetica:
            self.text = self.text.encode("cp1252", "replace").decode("cp1252")

    def runs(self, start: int, end: int) -> list[tuple[int, int]]:
        """Spans of one font and one level within [start, end), in logical order."""
        spans: list[tuple[int, int]] = []
        for i in range(start, end):
            if spans and self.faces[i] is self.faces[i - 1] and self.levels[i] == self.levels[i - 1]:
                spans[-1] = (spans[-1][0], i + 1)
            else:
                spans.append((i, i + 1))
        return spans

    def shape(self, start: int, end: int) -> _Run:
        """The span [start, end) of one font and level, shaped (glyphs in visual order)."""
        face, level = self.faces[start], self.levels[start]
        if face.ttf is None:
            text = self.text[start:end]
            if level % 2:
                text = text[::-1]
            return _Run(face, level, text, pdfmetrics.stringWidth(text, face.name, self.size))
        if face.color is not None:
            return self._shape_color(start, end, face, face.ttf, face.color)
        font = face.ttf
        glyphs = self._glyphs(font.hb_font, start, end, level)
        # What each cluster shows: its characters not drawn by a glyph of their own.
        starts = sorted({info.cluster for info, _ in glyphs} | {end})
        leftover = {a: list(self.text[a:b]) for a, b in itertools.pairwise(starts)}
        own: list[int | None] = []  # the cluster's character a glyph is the usual glyph of
        for info, _ in glyphs:
            mapped = font.face.glyphToChar.get(info.codepoint, ())
            code = next((c for c in mapped if chr(c) in leftover[info.cluster]), None)
            if code is not None:
                leftover[info.cluster].remove(chr(code))
            own.append(code)
        chars, shape_data = [], []
        scale = font.face._pdfScale
        for (info, pos), usual in zip(glyphs, own, strict=True):
            if info.codepoint == 0:
                # No glyph: ReportLab draws the font's box for a character it lacks.
                code = ord(self.text[info.cluster])
                width = scale(pos.x_advance)
            else:
                shown = "".join(leftover[info.cluster])
                if usual is not None:
                    code = usual
                elif info.codepoint == font.blank and shown and not shown.isspace():
                    # HarfBuzz's blank for a joiner or a variation selector:
                    # copied as it, where the blank's own character is a space.
                    code = font.invisible_code(shown, scale(pos.x_advance))
                    leftover[info.cluster] = []
                else:  # a conjunct, ligature or contextual form: its cluster's rest
                    code = font.code_for(info.codepoint, shown)
                    leftover[info.cluster] = []
                width = font.face.charWidths[code]
            chars.append(chr(code))
            shape_data.append(
                ShapeData(
                    info.cluster,
                    scale(pos.x_advance),
                    scale(pos.y_advance),
                    scale(pos.x_offset),
                    scale(pos.y_offset),
                    width,
                )
            )
        shaped = ShapedStr("".join(chars), shapeData=shape_data)
        width = sum(data.x_advance for data in shape_data) * self.size / 1000
        return _Run(face, level, shaped, width)

    def _glyphs(
        self, hb_font: Any, start: int, end: int, level: int, *, characters: bool = False
    ) -> list[tuple[Any, Any]]:
        """HarfBuzz's glyphs of the run, with their positions. The whole
        paragraph is the context: Arabic joins and marks attach across runs.
        With ``characters``, a glyph's cluster is its own character's unless
        a ligature took in more, rather than its whole grapheme's (which
        HarfBuzz merges when it turns an emoji round in right-to-left text)."""
        buffer = uharfbuzz.Buffer()
        buffer.add_str(self.text, start, end - start)
        buffer.direction = "rtl" if level % 2 else "ltr"
        buffer.guess_segment_properties()
        if characters:
            buffer.cluster_level = uharfbuzz.BufferClusterLevel.CHARACTERS
        uharfbuzz.shape(hb_font, buffer, {})
        return list(zip(buffer.glyph_infos, buffer.glyph_positions, strict=True))

    def _shape_color(self, start: int, end: int, face: _Face, text: _ShapingFont, color: _ColorFont) -> _Run:
        """Emoji sequences shaped in the colour font (one glyph each, joined by
        its ligatures), their pictures placed and their characters written in
        ``text`` as blank glyphs of the same advances."""
        level = self.levels[start]
        # A sequence the font has no picture for (a woman joined to an apple)
        # is its parts' pictures, each copying as its own characters.
        glyphs = self._glyphs(color.hb_font, start, end, level, characters=True)
        starts = sorted({info.cluster for info, _ in glyphs} | {end})
        shows = {a: self.text[a:b] for a, b in itertools.pairwise(starts)}
        to_points = self.size / color.upem
        chars, shape_data, pictures = [], [], []
        pen = 0.0
        for info, pos in glyphs:
            advance = pos.x_advance * 1000 / color.upem
            # A second glyph of one cluster copies as a zero width space.
            chars.append(chr(text.invisible_code(shows.pop(info.cluster, "") or "\u200b", advance)))
            shape_data.append(ShapeData(info.cluster, advance, 0, 0, 0, advance))
            picture = color.picture(info.codepoint)
            if picture is not None:
                pictures.append(_Placed(pen + pos.x_offset * to_points, picture))
            pen += pos.x_advance * to_points
        return _Run(face, level, ShapedStr("".join(chars), shapeData=shape_data), pen, pictures)

    def line(self, start: int, end: int) -> Line:
        """The characters [start, end) as one line, runs in visual order."""
        while end > start and self.text[end - 1].isspace():
            end -= 1  # trailing spaces are not drawn (rule L1)
        runs: list[_Run] = []
        for run in _visual_order([self.shape(a, b) for a, b in self.runs(start, end)]):
            if runs and runs[-1].face is run.face:  # "name: " and a name, both Latin
                last = runs[-1]
                pictures = last.pictures + [_Placed(last.width + p.x, p.picture) for p in run.pictures]
                runs[-1] = _Run(run.face, last.level, last.text + run.text, last.width + run.width, pictures)
            else:
                runs.append(run)
        return Line(runs, self.size, rtl=bool(self.base_level))

    def advances(self) -> list[float]:
        """Each character's share of the width, its cluster's advance on its first one."""
        widths = [0.0] * len(self.text)
        for a, b in self.runs(0, len(self.text)):
            run = self.shape(a, b)
            data = getattr(run.text, "__shapeData__", None)
            if data is None:  # Helvetica
                for i in range(a, b):
                    widths[i] = pdfmetrics.stringWidth(self.text[i], run.face.name, self.size)
                continue
            for glyph in data:
                widths[glyph.cluster] += glyph.x_advance * self.size / 1000
        return widths


def _visual_order(runs: list[_Run]) -> list[_Run]:
    """Rule L2: from the highest level down to the lowest odd one, reverse
    every sequence of runs at that level or higher."""
    if not runs:
        return runs
    levels = [run.level for run in runs]
    odd = [level for level in levels if level % 2]
    if not odd:
        return runs
    ordered = list(runs)
    for level in range(max(levels), min(odd) - 1, -1):
        i = 0
        while i < len(ordered):
            if ordered[i].level < level:
                i += 1
                continue
            j = i
            while j < len(ordered) and ordered[j].level >= level:
                j += 1
            ordered[i:j] = ordered[i:j][::-1]
            i = j
    return ordered


# Kinsoku: what a line of Japanese or Chinese never starts with (closing
# marks, small kana, the length mark, iteration marks) and never ends with
# (opening marks), as JIS X 4051 has it.
_NO_LINE_START = frozenset(
    "、。，．・：；？！‼⁇⁈⁉ー～…‥〜゠"
    "」』）］｝〕〉》】〙〗〟’”｠»"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "々〻ゝゞヽヾ"
    ",.:;?!)]}%"
)
_NO_LINE_END = frozenset("「『（［｛〔〈《【〘〖〝‘“｟«([{")


def _break_before(text: str, i: int) -> bool:
    """Whether a line may start at ``text[i]``: after a space, or next to an
    ideograph, kana, hangul or emoji, which break anywhere, but never before
    a closing mark nor after an opening one, nor inside a character."""
    before, char = text[i - 1], text[i]
    if char.isspace() or not _grapheme_start(text, i):
        return False
    if before.isspace():
        return True
    if char in _NO_LINE_START or before in _NO_LINE_END:
        return False
    wide = unicodedata.east_asian_width
    if wide(char) in "WF" and (unicodedata.category(char).startswith("L") or char in _NO_LINE_END):
        return True
    return wide(before) in "WF" and not unicodedata.category(char).startswith("P")


def _grapheme_start(text: str, i: int) -> bool:
    """Whether an overlong word may be cut before ``text[i]``: not inside a
    character's marks, nor after a joiner or a virama (a conjunct), nor
    inside an emoji (its skin tone, its tags, a flag's pair of letters)."""
    char, before = text[i], text[i - 1]
    if _continues(char) or before in _JOINERS or unicodedata.combining(before) == 9:
        return False
    if _modifier(char) or _tag(char):
        return False
    if _regional(char) and _regional(before):
        # Flags pair up from the first letter: cut only after an even count.
        count = 0
        while i - count - 1 >= 0 and _regional(text[i - count - 1]):
            count += 1
        return count % 2 == 0
    return True


def wrap(text: str, *, size: float, width: float, bold: bool = False) -> list[Line]:
    """``text`` broken into lines no wider than ``width`` points: at spaces or
    between ideographs, and a word wider than a line between its characters."""
    paragraph = _Paragraph(text, size, bold)
    chars, count = paragraph.text, len(paragraph.text)
    advances = paragraph.advances()
    lines: list[Line] = []
    start = 0
    while True:
        while start < count and chars[start].isspace():
            start += 1
        if start >= count:
            break
        used = drawn = 0.0  # width of chars[start:i], and without its trailing spaces
        best_break = best_cut = None
        i = start
        while i < count:
            if i > start:
                if drawn > width:
                    break
                if _break_before(chars, i):
                    best_break = i
                if _grapheme_start(chars, i):
                    best_cut = i
            used += advances[i]
            if not chars[i].isspace():
                drawn = used
            i += 1
        if i == count and drawn <= width:
            lines.append(paragraph.line(start, count))
            break
        stop = best_break or best_cut or _next_cut(chars, start)
        lines.append(paragraph.line(start, stop))
        start = stop
    return lines or [paragraph.line(0, 0)]


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis, before a
    whole character: a cut inside an emoji sequence would show another emoji
    (a woman for a woman scientist, a letter for half a flag)."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    while cut > 0 and not _grapheme_start(text, cut):
        cut -= 1
    return text[: cut or limit - 1].rstrip() + ELLIPSIS


def _next_cut(chars: str, start: int) -> int:
    """The end of the character (with its marks) at ``start``."""
    return next((i for i in range(start + 1, len(chars)) if _grapheme_start(chars, i)), len(chars))


def line(text: str, *, size: float, bold: bool = False) -> Line:
    """``text`` on one line, however long."""
    paragraph = _Paragraph(text, size, bold)
    return paragraph.line(0, len(paragraph.text))


def fit(text: str, *, size: float, width: float, bold: bool = False) -> Line:
    """``text`` on one line, cut with an ellipsis until it is no wider than ``width``."""
    whole = line(text, size=size, bold=bold)
    if whole.width <= width:
        return whole
    paragraph = _Paragraph(text, size, bold)
    chars = paragraph.text
    cuts = [i for i in range(1, len(chars)) if _grapheme_start(chars, i)]
    low, high, best = 0, len(cuts) - 1, None
    while low <= high:  # the longest cut that fits
        middle = (low + high) // 2
        candidate = line(chars[: cuts[middle]].rstrip() + ELLIPSIS, size=size, bold=bold)
        if candidate.width <= width:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best or line(chars[: _next_cut(chars, 0)] + ELLIPSIS, size=size, bold=bold)


# --- Flowable ---------------------------------------------------------------------


class TextBlock(Flowable):  # type: ignore[misc]  # ReportLab has no type hints
    """Paragraphs of any script, wrapped to the width the frame or cell gives."""

    def __init__(
        self,
        paragraphs: Sequence[str],
        *,
        size: float,
        leading: float,
        color: Color,
        bold: bool = False,
        align: str = "start",
        space_after: float = 0,
    ) -> None:
        super().__init__()
        self.paragraphs = list(paragraphs)
        self.size, self.leading, self.color = size, leading, color
        self.bold, self.align = bold, align
        self.spaceAfter = space_after
        self._lines: list[Line] = []
        self._wrapped_for: float | None = None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if self._wrapped_for != availWidth:
            self._lines = [
                line
                for paragraph in self.paragraphs
                for line in wrap(paragraph, size=self.size, width=availWidth, bold=self.bold)
            ]
            self._wrapped_for = availWidth
        self.width = availWidth
        self.height = self.leading * len(self._lines)
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        canvas.setFillColor(self.color)
        # The first baseline sits where a Paragraph of this leading puts it.
        y = self.height - self.size
        for text_line in self._lines:
            x = 0.0
            # "start": where the paragraph's direction starts its lines.
            if self.align == "right" or (self.align == "start" and text_line.rtl):
                x = self.width - text_line.width
            elif self.align == "center":
                x = (self.width - text_line.width) / 2
            text_line.draw(canvas, x, y)
            y -= self.leading
