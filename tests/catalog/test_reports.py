"""The supplier report PDF: its text, pages, images and how it renders."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader
from pypdf.generic import DictionaryObject
from reportlab.pdfbase import pdfmetrics

from catalog import report_text, reports
from catalog.reports import ReportItem, report_title, supplier_report_pdf

DATE = dt.date(2026, 11, 21)


def picture(color: tuple[int, ...], *, size: tuple[int, int] = (400, 300), fmt: str = "JPEG") -> bytes:
    """A small picture: a coloured field with a white disc, in ``fmt``."""
    mode = "RGBA" if len(color) == 4 else "RGB"
    image = Image.new(mode, size, color)
    inset = min(size) // 5
    ImageDraw.Draw(image).ellipse((inset, inset, size[0] - inset, size[1] - inset), fill="white")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def fruits() -> list[ReportItem]:
    return [
        ReportItem("Apple", 500, picture((200, 30, 40))),
        ReportItem("Avocado", 210, picture((60, 120, 40), size=(300, 450))),
        ReportItem("Blackberry", 1200, picture((60, 20, 90))),
    ]


def text_of(pdf: bytes) -> str:
    """All the PDF's text with runs of whitespace (line breaks too) as one space."""
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def image_count(pdf: bytes) -> int:
    """Image XObjects drawn on the pages (each page's resources, summed)."""
    count = 0
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = page.get("/Resources")
        if resources is None:
            continue
        xobjects = resources.get_object().get("/XObject")
        if xobjects is None:
            continue
        for ref in xobjects.get_object().values():
            obj = ref.get_object()
            if isinstance(obj, DictionaryObject) and obj.get("/Subtype") == "/Image":
                count += 1
    return count


# --- Title ---------------------------------------------------------------------


def test_the_title_names_the_month_and_a_zero_padded_day() -> None:
    assert report_title(DATE) == "Processed Update on November 21, 2026"
    assert report_title(dt.date(2023, 3, 1)) == "Processed Update on March 01, 2023"
    assert report_title(dt.date(2023, 3, 1), "Weekly Update on") == "Weekly Update on March 01, 2023"


def test_the_pdf_opens_and_shows_the_title_and_every_product() -> None:
    pdf = supplier_report_pdf(fruits(), date=DATE)

    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    assert "Processed Update on November 21, 2026" in text
    for line in ("name: Apple", "weight: 500 lbs", "name: Avocado", "weight: 210 lbs"):
        assert line in text
    assert "name: Blackberry" in text
    assert "weight: 1200 lbs" in text
    # The summary table and the chart.
    assert "Weight (lbs)" in text
    assert "Total" in text
    assert "1,910" in text


def test_a_zero_padded_date_appears_in_the_pdf() -> None:
    text = text_of(supplier_report_pdf(fruits(), date=dt.date(2023, 3, 1)))
    assert "Processed Update on March 01, 2023" in text


def test_the_metadata_carries_title_and_author() -> None:
    meta = PdfReader(io.BytesIO(supplier_report_pdf(fruits(), date=DATE))).metadata
    assert meta is not None
    assert meta.title == "Processed Update on November 21, 2026"
    assert meta.author == "automation@example.com"

    other = supplier_report_pdf(fruits(), date=DATE, author="Online Fruit Store")
    meta = PdfReader(io.BytesIO(other)).metadata
    assert meta is not None
    assert meta.author == "Online Fruit Store"


@pytest.mark.parametrize("day", [dt.date(99, 3, 4), dt.date(1, 1, 1), dt.date(9999, 12, 31)])
def test_a_year_of_fewer_than_four_digits_is_written_with_four_in_the_title_and_the_dates(
    day: dt.date,
) -> None:
    """The admin's day report takes any date: ``0099-03-04`` was titled
    "March 04, 99", and its PDF dates (``D:990304…``) read as no date."""
    pdf = supplier_report_pdf(fruits(), date=day)
    title = f"Processed Update on {day:%B %d}, {day.year:04d}"
    assert report_title(day) == title
    assert title in text_of(pdf)
    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None
    assert meta.title == title
    assert meta.creation_date is not None
    assert meta.creation_date.date() == day
    assert meta.modification_date is not None
    assert meta.modification_date.date() == day


def test_the_same_input_gives_the_same_bytes() -> None:
    assert supplier_report_pdf(fruits(), date=DATE) == supplier_report_pdf(fruits(), date=DATE)


# --- Sizes ---------------------------------------------------------------------


def test_an_empty_report_is_one_page_saying_so() -> None:
    pdf = supplier_report_pdf([], date=DATE)
    assert page_count(pdf) == 1
    text = text_of(pdf)
    assert "Processed Update on November 21, 2026" in text
    assert "No products were processed." in text
    assert "name:" not in text


def test_three_products_fit_on_a_page_or_two() -> None:
    assert 1 <= page_count(supplier_report_pdf(fruits(), date=DATE)) <= 2


def test_a_hundred_and_twenty_products_paginate_cards_table_and_chart() -> None:
    thumb = picture((90, 140, 200), size=(120, 90))
    items = [ReportItem(f"Fruit {n:03d}", n * 7 + 1, thumb if n % 2 else None) for n in range(120)]

    pdf = supplier_report_pdf(items, date=DATE)

    pages = page_count(pdf)
    assert 8 <= pages <= 40
    text = text_of(pdf)
    for n in (0, 59, 119):
        assert f"name: Fruit {n:03d}" in text
        assert f"weight: {n * 7 + 1} lbs" in text
    # The chart is split over pages of at most 30 bars.
    for part in ("1–30 of 120", "31–60 of 120", "61–90 of 120", "91–120 of 120"):
        assert f"Weight per product ({part})" in text


# --- Thumbnails ----------------------------------------------------------------


def test_every_thumbnail_is_embedded() -> None:
    assert image_count(supplier_report_pdf(fruits(), date=DATE)) >= 3


def test_a_broken_or_missing_thumbnail_is_noted_not_fatal() -> None:
    items = [
        ReportItem("Broken", 5, b"\xff\xd8\xff\xe0 not really a jpeg"),
        ReportItem("Truncated", 6, picture((10, 200, 10))[:200]),
        ReportItem("Missing", 7, None),
        ReportItem("Fine", 8, picture((10, 10, 200))),
    ]
    pdf = supplier_report_pdf(items, date=DATE)

    text = text_of(pdf)
    assert text.count("(no image)") == 3
    for name in ("Broken", "Truncated", "Missing", "Fine"):
        assert f"name: {name}" in text
    assert image_count(pdf) == 1


@pytest.mark.parametrize(
    ("color", "size", "fmt"),
    [
        pytest.param((30, 80, 160), (400, 300), "WEBP", id="webp"),
        pytest.param((200, 0, 0, 90), (400, 300), "PNG", id="rgba-png"),
        pytest.param((200, 0, 0, 90), (400, 300), "WEBP", id="rgba-webp"),
        pytest.param((0, 0, 0), (20, 900), "PNG", id="very-tall"),
    ],
)
def test_webp_and_transparent_thumbnails_are_embedded(
    color: tuple[int, ...], size: tuple[int, int], fmt: str
) -> None:
    thumbnail = picture(color, size=size, fmt=fmt)
    pdf = supplier_report_pdf([ReportItem("Plum", 40, thumbnail)], date=DATE)
    assert image_count(pdf) == 1
    assert "(no image)" not in text_of(pdf)


# --- Text ----------------------------------------------------------------------


def test_unicode_names_print() -> None:
    items = [
        ReportItem("Crème brûlée ’n’ Café", 12, None),
        ReportItem("Äpfel & <Birnen>", 3, None),
        ReportItem("Груша 梨", 4, None),
    ]
    text = text_of(supplier_report_pdf(items, date=DATE))
    assert "name: Crème brûlée ’n’ Café" in text
    assert "name: Äpfel & <Birnen>" in text
    assert "name: Груша 梨" in text


@pytest.fixture
def fonts_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Makes the named font folders empty, as on a machine without their packages."""

    def missing(*folders: str) -> None:
        for folder in folders:
            monkeypatch.setattr(report_text, folder, tmp_path)
        report_text.fonts.cache_clear()

    yield missing
    report_text.fonts.cache_clear()


@pytest.fixture
def helvetica_only(fonts_missing: Callable[..., None]) -> None:
    """The report's fonts chosen on a machine without any of its fonts."""
    fonts_missing("DEJAVU_DIR", "NOTO_DIR", "WQY_DIR", "SYMBOLA_DIR")


@pytest.mark.usefixtures("helvetica_only")
def test_without_any_font_helvetica_prints_what_it_can(caplog: pytest.LogCaptureFixture) -> None:
    items = [ReportItem("Crème brûlée ’n’ Café", 12, None), ReportItem("Груша 梨", 4, None)]
    pdf = supplier_report_pdf(items, date=DATE)

    messages = [record.getMessage() for record in caplog.records]
    assert any("fonts-dejavu-core" in m for m in messages), messages
    assert "No report font is installed: the report prints Latin-1 text in Helvetica only" in messages

    resources = cast(DictionaryObject, PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"].get_object())
    fonts = cast(DictionaryObject, resources["/Font"].get_object())
    base_fonts = {cast(DictionaryObject, f.get_object())["/BaseFont"] for f in fonts.values()}
    assert base_fonts <= {"/Helvetica", "/Helvetica-Bold"}
    text = text_of(pdf)
    assert "name: Crème brûlée ’n’ Café" in text
    assert "weight: 4 lbs" in text


def test_control_characters_and_very_long_names_do_not_break_the_layout() -> None:
    items = [
        ReportItem("Tab\there\x00and\x1bthere", 1, None),
        ReportItem("X" * 5000, 2, None),
        ReportItem("word " * 1000, 3, None),
    ]
    pdf = supplier_report_pdf(items, date=DATE)
    assert "name: Tab here and there" in text_of(pdf)
    assert page_count(pdf) <= 4


@pytest.mark.parametrize("name", ["W" * 200, "GOLDEN DELICIOUS APPLES WASHINGTON STATE"])
def test_chart_labels_are_cut_to_the_room_they_have(name: str) -> None:
    fonts = report_text.fonts()
    flowable = reports._bar_chart([ReportItem(name, 5, None), ReportItem("Fig", 2, None)], fonts, 10, 2)
    [chart] = [shape for shape in flowable.drawing.contents if hasattr(shape, "categoryAxis")]
    labels = [label.text for label, _, _ in flowable.labels]
    # Right-aligned 4 pt left of the axis: every label starts inside the frame.
    for label, right, _ in flowable.labels:
        assert right == chart.x - 4
        assert right - label.width >= 0
    assert chart.x <= reports.FRAME_WIDTH / 3
    assert labels[1] == "Fig"
    assert labels[0].endswith("\N{HORIZONTAL ELLIPSIS}") or labels[0] == name


# --- Scripts -------------------------------------------------------------------

PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("梨子 Pear", id="chinese"),
        pytest.param("りんご", id="japanese"),
        pytest.param("사과 배", id="korean"),
        pytest.param("תפוח עץ", id="hebrew"),
        pytest.param("केला", id="devanagari"),
        pytest.param("มะม่วง", id="thai"),
        pytest.param("\N{RED APPLE} Apple", id="emoji"),
    ],
)
def test_names_in_every_script_are_embedded_glyphs_that_copy_as_text(name: str) -> None:
    pdf = supplier_report_pdf([ReportItem(name, 7, None)], date=DATE)
    # pypdf reads a mark placed back over its letter (Devanagari, Thai) as a gap.
    text = re.sub(r"\s", "", text_of(pdf))
    # A character the fonts lack is drawn as the box at code 0, which copies
    # as U+0000 rather than as itself.
    for word in name.split():
        assert text.count(word) == 3, text  # card, table, chart
    assert "\x00" not in text
    for font in fonts_of(pdf):
        descriptor = cast(DictionaryObject, font["/FontDescriptor"].get_object())
        assert "/FontFile2" in descriptor, f"{font['/BaseFont']} is not embedded"


def test_arabic_names_print_joined_and_copy_as_their_letters() -> None:
    pdf = supplier_report_pdf([ReportItem("تفاح أحمر", 7, None)], date=DATE)
    text = text_of(pdf)
    # The joined (contextual) forms are presentation forms: the letters
    # printed one by one would copy back unchanged.
    assert re.search("[\ufe70-\ufeff]{3}", text)
    assert unicodedata.normalize("NFKC", text).count("تفاح") == 3


def test_devanagari_signs_are_placed_and_conjuncts_copy_as_their_letters() -> None:
    pdf = supplier_report_pdf([ReportItem("किशमिश क्षीर", 7, None)], date=DATE)
    text = re.sub(r"\s", "", text_of(pdf))
    # The i sign is drawn before its consonant (copied in drawing order), and
    # the conjunct, one glyph of no character, copies as its three letters.
    assert "िकश" in text
    assert "क्ष" in text
    assert not PRIVATE_USE.search(text)


def test_a_title_prefix_in_any_script_prints_too() -> None:
    pdf = supplier_report_pdf(fruits(), date=DATE, title_prefix="梨 Update on")
    assert "梨 Update on November 21, 2026" in text_of(pdf)
    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None
    assert meta.title == "梨 Update on November 21, 2026"


def test_a_missing_cjk_font_is_logged_and_the_rest_still_prints(
    fonts_missing: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    fonts_missing("WQY_DIR")
    pdf = supplier_report_pdf([ReportItem("梨 Pear", 7, None), ReportItem("सेब", 3, None)], date=DATE)

    text = text_of(pdf)
    assert "Pear" in text
    assert "सेब" in text
    assert "梨" not in text
    messages = [record.getMessage() for record in caplog.records]
    assert any("fonts-wqy-microhei" in m and "Chinese, Japanese, Korean" in m for m in messages), messages
    assert any("U+68A8" in m for m in messages), messages


def test_a_damaged_font_file_is_logged_and_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "wqy-microhei.ttc").write_bytes(b"ttcf" + bytes(range(256)) * 4)
    monkeypatch.setattr(report_text, "WQY_DIR", tmp_path)
    report_text.fonts.cache_clear()
    try:
        pdf = supplier_report_pdf([ReportItem("梨 Pear", 7, None)], date=DATE)
    finally:
        report_text.fonts.cache_clear()

    assert "Pear" in text_of(pdf)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith(f"Cannot use report font {tmp_path}") for m in messages), messages


def fonts_of(pdf: bytes) -> list[DictionaryObject]:
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        for ref in cast(DictionaryObject, resources["/Font"].get_object()).values():
            font = cast(DictionaryObject, ref.get_object())
            if font["/Subtype"] == "/TrueType":
                found.append(font)
    assert found
    return found


# --- Rendering -----------------------------------------------------------------


def pdftoppm() -> str:
    path = shutil.which("pdftoppm")
    if path is None:
        pytest.fail("pdftoppm is not installed: install poppler-utils (make test does) to render the report")
    return path


def render_first_page(pdf: bytes, out_dir: Path, *, dpi: int = 60) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / "supplier-report.pdf"
    pdf_path.write_bytes(pdf)
    prefix = out_dir / "supplier-report-page"
    subprocess.run(
        [pdftoppm(), "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", str(pdf_path), str(prefix)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return prefix.with_suffix(".png")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("梨子", "苹果", id="chinese"),
        pytest.param("りんご", "みかん", id="japanese"),
        pytest.param("사과", "포도", id="korean"),
        pytest.param("تفاح", "رمان", id="arabic"),
        pytest.param("תאנה", "תפוח", id="hebrew"),
        pytest.param("केला", "अनार", id="devanagari"),
        pytest.param("มะม่วง", "มะละกอ", id="thai"),
    ],
)
def test_two_names_in_a_script_render_differently_not_as_the_same_boxes(
    first: str, second: str, tmp_path: Path
) -> None:
    # Same number of characters: drawn as missing-glyph boxes, both reports
    # would be the same picture.
    pixels = []
    for name in (first, second):
        png = render_first_page(supplier_report_pdf([ReportItem(name, 7, None)], date=DATE), tmp_path / name)
        with Image.open(png) as image:
            pixels.append(image.convert("L").tobytes())
    assert pixels[0] != pixels[1]


def test_the_first_page_renders_to_a_picture(artifacts: Path) -> None:
    items = [
        *fruits(),
        ReportItem("Crème brûlée ’n’ Café", 75, picture((220, 160, 40), fmt="WEBP")),
        ReportItem("梨子 Pear りんご 사과", 20, None),
        ReportItem("تفاح أحمر", 30, picture((160, 30, 40))),
        ReportItem("תפוח עץ (ירוק)", 40, None),
        ReportItem("किशमिश क्षीर", 50, None),
    ]
    # Kept as an artifact to look at: every script above should read right.
    png = render_first_page(supplier_report_pdf(items, date=DATE), artifacts / "reports")
    assert png.stat().st_size > 5_000
    with Image.open(png) as image:
        # A4 at 60 dpi is 496 x 702.
        assert image.size == pytest.approx((496, 702), abs=2)
        histogram = image.convert("L").histogram()
    dark = sum(histogram[:100])
    assert dark > 1_000, "the rendered page is (nearly) blank"


# --- Colour emoji --------------------------------------------------------------

SCIENTIST = "\N{WOMAN}\N{ZERO WIDTH JOINER}\N{MICROSCOPE}"
EMOJI_NAME = (
    "Mango \N{MANGO} Blueberries \N{BLUEBERRIES} Scientist "
    + SCIENTIST
    + " Thumbs \N{THUMBS UP SIGN}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}"
    + " Japan \N{REGIONAL INDICATOR SYMBOL LETTER J}\N{REGIONAL INDICATOR SYMBOL LETTER P}"
)
EMOJI_WORDS = [word for word in EMOJI_NAME.split() if not word.isascii()]


def has_emoji(word: str) -> bool:
    """Whether ``word`` holds a character past the punctuation (an ellipsis)."""
    return any(ord(char) >= 0x2100 for char in word)


def word_boxes(pdf_path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Each word pdftotext reads on the first page, with its box in points."""
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf_path), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [
        (word, (float(x0), float(y0), float(x1), float(y1)))
        for x0, y0, x1, y1, word in re.findall(pattern, html)
    ]


def coloured_share(image: Image.Image, box: tuple[float, float, float, float], dpi: int) -> float:
    """The share of the pixels in ``box`` (points) that are vivid: saturated and
    not dark, which neither text-coloured outlines nor grey boxes are."""
    scale = dpi / 72
    region = image.crop(tuple(round(v * scale) for v in box)).convert("HSV").tobytes()
    saturations, values = region[1::3], region[2::3]
    vivid = sum(1 for s, v in zip(saturations, values, strict=True) if s > 90 and v > 110)
    return vivid / len(values)


def test_emoji_of_any_version_print_in_colour_and_copy_as_themselves(artifacts: Path) -> None:
    pdf = supplier_report_pdf([ReportItem(EMOJI_NAME, 7, None)], date=DATE)
    dpi = 100
    png = render_first_page(pdf, artifacts / "reports-emoji", dpi=dpi)
    boxes = word_boxes(png.with_name("supplier-report.pdf"))

    with Image.open(png) as page:
        for word, box in boxes:
            # Where pdftotext finds an emoji (or a part of one), it is in colour.
            if has_emoji(word):
                assert coloured_share(page, box, dpi) > 0.1, word
            # The text around them: dark letters, not colour.
            if word in ("Mango", "Japan"):
                assert coloured_share(page, box, dpi) < 0.02, word
    # pdftotext reads each emoji back, sequences whole: card and table, in order.
    found = [word for word, _ in boxes if has_emoji(word)]
    assert found[:10] == EMOJI_WORDS * 2, found
    # The words around the emoji still lay out: the table's row reads whole.
    text = text_of(pdf)
    assert EMOJI_NAME in text


def test_a_joined_emoji_sequence_is_one_picture_not_its_parts() -> None:
    pdf = supplier_report_pdf([ReportItem(f"Lab {SCIENTIST}", 7, None)], date=DATE)
    # Drawn in the card, the table and the chart: one image, its picture.
    assert image_count(pdf) == 1
    assert text_of(pdf).count(SCIENTIST) == 3


@pytest.mark.parametrize(
    "emoji",
    [
        pytest.param(SCIENTIST, id="joined"),
        pytest.param("\N{THUMBS UP SIGN}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}", id="skin-tone"),
        pytest.param(
            "\N{REGIONAL INDICATOR SYMBOL LETTER J}\N{REGIONAL INDICATOR SYMBOL LETTER P}", id="flag"
        ),
        pytest.param(
            "\N{WAVING BLACK FLAG}\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", id="tags"
        ),
        pytest.param("1\ufe0f\N{COMBINING ENCLOSING KEYCAP}", id="keycap"),
    ],
)
def test_a_chart_label_is_cut_before_an_emoji_not_inside_it(emoji: str, artifacts: Path) -> None:
    # The label keeps 31 characters: the 31st is the emoji's first part.
    before = "Lab " + "i" * 26  # narrow: the label fits its room
    pdf = supplier_report_pdf([ReportItem(f"{before}{emoji} and more", 7, None)], date=DATE)
    render_first_page(pdf, artifacts / "reports-emoji-cut", dpi=80)
    text = text_of(pdf)
    assert f"{before}\N{HORIZONTAL ELLIPSIS}" in text  # the chart's label, without a part of it
    assert text.count(emoji) == 2  # whole in the card and the table
    # One picture: the emoji's, not another one that its first part shows.
    assert image_count(pdf) == 1


@pytest.mark.parametrize("heaviest", [7, 1_200, 98_765, 4_321_000, 1_000_000_000, 2_147_483_647])
def test_the_weight_axis_labels_never_overlap_however_heavy_the_products(heaviest: int) -> None:
    fonts = report_text.fonts()
    items = [ReportItem("W" * 200, heaviest, None), ReportItem("Fig", 1, None)]
    scale_max, step = reports._nice_scale(heaviest, fonts.primary(bold=False))
    flowable = reports._bar_chart(items, fonts, scale_max, step)
    [chart] = [shape for shape in flowable.drawing.contents if hasattr(shape, "valueAxis")]
    ticks = [step * n for n in range(int(scale_max / step) + 1)]
    assert ticks[-1] == scale_max
    size = chart.valueAxis.labels.fontSize
    spacing = chart.width * step / scale_max
    for low, high in itertools.pairwise(ticks):
        # Each label is centred on its tick: half of each between two ticks.
        low_half = pdfmetrics.stringWidth(reports._thousands(low), fonts.primary(bold=False), size) / 2
        high_half = pdfmetrics.stringWidth(reports._thousands(high), fonts.primary(bold=False), size) / 2
        assert low_half + high_half + 2 <= spacing, (low, high)
    assert scale_max >= heaviest * 1.08  # room for the value printed after the longest bar
