"""The supplier report: a PDF listing the products an import processed.

Built in memory with ReportLab's platypus: a title, one card per product
(``name: …`` / ``weight: N lbs`` and a thumbnail), a summary table and a bar
chart of the weights. Names in any script print through
:mod:`catalog.report_text` (a font per script, right-to-left order, shaping).
Nothing here touches the database; callers turn their products into
:class:`ReportItem` rows.
"""

from __future__ import annotations

import datetime
import io
import itertools
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from PIL import Image as PILImage
from PIL import ImageOps
from reportlab.graphics import renderPDF
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm, inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    HRFlowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Table,
    TableStyle,
)

from catalog import report_text
from catalog.report_text import Fonts, TextBlock, shorten

DEFAULT_TITLE_PREFIX = "Processed Update on"
DEFAULT_AUTHOR = "automation@example.com"
EMPTY_MESSAGE = "No products were processed."
NO_IMAGE = "(no image)"

PAGE_SIZE = A4
MARGIN = 2 * cm
# Platypus frames pad their content by 6 points on each side.
FRAME_WIDTH = PAGE_SIZE[0] - 2 * MARGIN - 12

THUMB_BOX = 1.5 * inch
# Pixels kept per thumbnail: 2x the box at 72 dpi prints sharply at 144 dpi
# while keeping a 100-product report a few MB at most.
THUMB_PIXELS = int(THUMB_BOX * 2)
CARDS_PER_ROW = 2

CHART_BARS_PER_PAGE = 30
CHART_BAR_PITCH = 16  # points of height per bar, gap included
CHART_LABEL_CHARS = 32
# Room right of the plot for the value printed after the longest bar.
CHART_RIGHT = 28
# The narrowest plot: the names beside the bars take a third of the width at most.
CHART_MIN_PLOT_WIDTH = FRAME_WIDTH * 2 / 3 - CHART_RIGHT
CHART_AXIS_LABEL_SIZE = 8
# The least space between two labels of the weight axis.
CHART_AXIS_LABEL_GAP = 4

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
ACCENT = colors.HexColor("#2f6f4e")
RULE = colors.HexColor("#cbd2d9")
ZEBRA = colors.HexColor("#f3f6f4")
TOTAL_BG = colors.HexColor("#e3ece6")

logger = logging.getLogger(__name__)

# Longer names are cut so one product can never outgrow a page.
NAME_LIMIT = 250


@dataclass(frozen=True)
class ReportItem:
    """One processed product as the report shows it."""

    name: str
    weight: int  # lbs
    thumbnail: bytes | None  # JPEG/PNG/WebP bytes of the product's image, or None


def report_title(date: datetime.date, title_prefix: str = DEFAULT_TITLE_PREFIX) -> str:
    """``Processed Update on March 01, 2023``: the day is zero-padded (``Month DD, YYYY``),
    the year too (``%Y`` writes the year 99 as ``99``)."""
    return f"{title_prefix} {date:%B %d}, {date.year:04d}"


def supplier_report_pdf(
    items: Sequence[ReportItem],
    *,
    date: datetime.date,
    title_prefix: str = DEFAULT_TITLE_PREFIX,
    author: str = DEFAULT_AUTHOR,
    more: int = 0,
    more_url: str = "",
    more_were: str = "changed that day",
) -> bytes:
    """Build the supplier report and return the PDF's bytes.

    ``more`` products left out of ``items`` (a report cut short) are said
    under the title, as ``more_were`` (what was done to them), with
    ``more_url``, where to see them, when given.
    The output depends only on the arguments: ReportLab's invariant mode drops
    the random document id and the creation date is the report's date.
    """
    fonts = report_text.fonts()
    title = report_title(date, title_prefix)
    styles = _styles(fonts)

    story: list[Flowable] = [
        TextBlock([title], size=20, leading=25, color=INK, bold=True, space_after=4),
        Paragraph(escape(_summary_line(items)), styles["subtitle"]),
        *([Paragraph(_more_note(len(items), more, more_were, more_url), styles["body"])] if more else []),
        HRFlowable(width="100%", thickness=1, color=ACCENT, spaceBefore=2, spaceAfter=14),
    ]
    if not items:
        story.append(Paragraph(EMPTY_MESSAGE, styles["body"]))
    else:
        story += _product_cards(items, styles)
        story += _summary_table(items, fonts, styles)
        story += _charts(items, fonts, styles)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=report_text.clean(title),
        author=author,
        subject="Products processed by the supplier import",
        creator="Online Fruit Store portal",
        invariant=True,
    )
    on_page = _page_decorator(fonts, title, date)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


# --- Pieces of the story --------------------------------------------------------


def _styles(fonts: Fonts) -> dict[str, ParagraphStyle]:
    """Styles of the report's own words (headings, numbers): its first font has them."""
    regular, bold = fonts.primary(bold=False), fonts.primary(bold=True)
    return {
        "subtitle": ParagraphStyle("subtitle", fontName=regular, fontSize=10, leading=14, textColor=MUTED),
        "heading": ParagraphStyle(
            "heading",
            fontName=bold,
            fontSize=13,
            leading=17,
            textColor=ACCENT,
            spaceBefore=14,
            spaceAfter=8,
        ),
        "body": ParagraphStyle("body", fontName=regular, fontSize=10, leading=14, textColor=INK),
        "note": ParagraphStyle(
            "note", fontName=regular, fontSize=8, leading=10, textColor=MUTED, alignment=TA_CENTER
        ),
        "cell_right": ParagraphStyle(
            "cell_right", fontName=regular, fontSize=9, leading=11.5, textColor=INK, alignment=TA_RIGHT
        ),
    }


def _summary_line(items: Sequence[ReportItem]) -> str:
    count = len(items)
    noun = "product" if count == 1 else "products"
    return f"{count} {noun} processed, {sum(i.weight for i in items):,} lbs in total"


def _more_note(shown: int, more: int, were: str, url: str) -> str:
    """The markup saying that ``more`` products, ``were`` (changed, processed),
    are not in a report of ``shown``."""
    those = "1 more product was" if more == 1 else f"{more:,} more products were"
    note = escape(
        f"{those} {were}: this report lists the first {shown:,} by name, and its totals count those alone."
    )
    if url:
        href = escape(url, {'"': "&quot;"})
        note += f' The admin lists the products changed that day: <a href="{href}" color="#2f6f4e">{escape(url)}</a>'
    return f"<b>{note}</b>"


def _product_cards(items: Sequence[ReportItem], styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Products as cards, two to a row: thumbnail on the left, name and weight beside it."""
    thumb_col = THUMB_BOX + 12
    text_col = FRAME_WIDTH / CARDS_PER_ROW - thumb_col
    rows: list[list[object]] = []
    for start in range(0, len(items), CARDS_PER_ROW):
        row: list[object] = []
        for item in items[start : start + CARDS_PER_ROW]:
            # The course's format: "name: Apple" over "weight: 500 lbs".
            name = report_text.isolate(shorten(item.name, NAME_LIMIT))
            lines = [f"name: {name}", f"weight: {item.weight} lbs"]
            text = TextBlock(lines, size=10, leading=15, color=INK)
            row += [_thumbnail(item.name, item.thumbnail, styles), text]
        row += [""] * (2 * CARDS_PER_ROW - len(row))
        rows.append(row)
    table = Table(rows, colWidths=[thumb_col, text_col] * CARDS_PER_ROW, hAlign="LEFT")
    commands: list[tuple[object, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (0, 0), (0, -1), "CENTER"),
        ("ALIGN", (2, 0), (2, -1), "CENTER"),
        ("LEFTPADDING", (0, 0), (-1, -1), 6),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ("LINEBELOW", (0, 0), (-1, -1), 0.5, RULE),
    ]
    table.setStyle(TableStyle(commands))
    return [Paragraph("Products", styles["heading"]), table]


def _thumbnail(name: str, data: bytes | None, styles: dict[str, ParagraphStyle]) -> Flowable:
    """The product's image fitted into a 1.5 inch box, or a "(no image)" note.

    Pillow decodes whatever the supplier sent (WebP, RGBA PNG, CMYK JPEG…) and
    ReportLab gets a small RGB JPEG, which it embeds without re-encoding.
    """
    if data:
        try:
            jpeg, width, height = _thumbnail_jpeg(data)
        except Exception as exc:  # noqa: BLE001 — Pillow raises many types on broken input; one bad image must not sink the report
            logger.warning("Report thumbnail of %r skipped: %s", name, exc)
        else:
            scale = min(THUMB_BOX / width, THUMB_BOX / height)
            return Image(io.BytesIO(jpeg), width=width * scale, height=height * scale)
    placeholder = Table(
        [[Paragraph(NO_IMAGE, styles["note"])]],
        colWidths=[THUMB_BOX],
        rowHeights=[THUMB_BOX * 0.75],
    )
    placeholder.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), ZEBRA),
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return placeholder


def _thumbnail_jpeg(data: bytes) -> tuple[bytes, int, int]:
    with warnings.catch_warnings():
        # A huge image is a warning below Pillow's bomb limit; treat it as an error.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        with PILImage.open(io.BytesIO(data)) as opened:
            # JPEG can decode straight at a reduced scale: far cheaper for big photos.
            opened.draft("RGB", (THUMB_PIXELS, THUMB_PIXELS))
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((THUMB_PIXELS, THUMB_PIXELS))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas go white (the page's colour), not black.
        rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue(), image.width, image.height


def _summary_table(
    items: Sequence[ReportItem], fonts: Fonts, styles: dict[str, ParagraphStyle]
) -> list[Flowable]:
    header = ["Name", "Weight (lbs)"]
    body = [
        [
            # One edge for the column and its heading, whatever each name's direction.
            TextBlock([shorten(i.name, NAME_LIMIT)], size=9, leading=11.5, color=INK, align="left"),
            Paragraph(f"{i.weight:,}", styles["cell_right"]),
        ]
        for i in items
    ]
    total = ["Total", f"{sum(i.weight for i in items):,}"]
    table = Table([header, *body, total], colWidths=[FRAME_WIDTH - 4 * cm, 4 * cm], repeatRows=1)
    last = len(body) + 1
    commands: list[tuple[object, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), fonts.primary(bold=False)),
        ("FONTNAME", (0, 0), (-1, 0), fonts.primary(bold=True)),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("RIGHTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("FONTNAME", (0, last), (-1, last), fonts.primary(bold=True)),
        ("BACKGROUND", (0, last), (-1, last), TOTAL_BG),
        ("LINEABOVE", (0, last), (-1, last), 1, ACCENT),
        ("BOX", (0, 0), (-1, -1), 0.5, RULE),
    ]
    commands += [("BACKGROUND", (0, row), (-1, row), ZEBRA) for row in range(2, last, 2)]
    table.setStyle(TableStyle(commands))
    # Keep the heading with the first rows rather than alone at a page's foot.
    return [CondPageBreak(4 * cm), Paragraph("Summary", styles["heading"]), table]


def _charts(items: Sequence[ReportItem], fonts: Fonts, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Bar charts of weight per product, at most one page's worth of bars each.

    Every chart shares one scale so bars compare across pages.
    """
    scale_max, step = _nice_scale(max((i.weight for i in items), default=0), fonts.primary(bold=False))
    chunks = [items[i : i + CHART_BARS_PER_PAGE] for i in range(0, len(items), CHART_BARS_PER_PAGE)]
    flowables: list[Flowable] = []
    for number, chunk in enumerate(chunks):
        first = number * CHART_BARS_PER_PAGE + 1
        heading = "Weight per product"
        if len(chunks) > 1:
            heading += f" ({first}\N{EN DASH}{first + len(chunk) - 1} of {len(items)})"
        chart = _bar_chart(chunk, fonts, scale_max, step)
        flowables.append(KeepTogether([Paragraph(heading, styles["heading"]), chart]))
    return flowables


class BarChart(Flowable):  # type: ignore[misc]  # ReportLab has no type hints
    """A chart drawing with the product names beside its bars.

    The names are drawn by :mod:`catalog.report_text` rather than as the
    axis's labels, which ReportLab prints in one font and left to right.
    """

    def __init__(self, drawing: Drawing, labels: list[tuple[report_text.Line, float, float]]) -> None:
        super().__init__()
        self.drawing = drawing
        self.labels = labels  # each name's line, right edge and baseline

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.drawing.width, self.drawing.height

    def draw(self) -> None:
        renderPDF.draw(self.drawing, self.canv, 0, 0)
        self.canv.setFillColor(INK)
        for line, right, baseline in self.labels:
            line.draw(self.canv, right - line.width, baseline)


def _bar_chart(chunk: Sequence[ReportItem], fonts: Fonts, scale_max: float, step: float) -> BarChart:
    label_size = 8 if len(chunk) <= 20 else 7
    regular, bold = fonts.primary(bold=False), fonts.primary(bold=True)
    # Names get what they need, up to a third of the width (cut to fit it:
    # wide letters fill it in fewer characters); the bars get the rest.
    room = FRAME_WIDTH / 3 - 12
    labels = [report_text.fit(shorten(i.name, CHART_LABEL_CHARS), size=label_size, width=room) for i in chunk]
    label_width = max(label.width for label in labels)
    left = label_width + 12
    bottom, top, right = 40, 16, CHART_RIGHT
    plot_height = CHART_BAR_PITCH * len(chunk)
    drawing = Drawing(FRAME_WIDTH, bottom + plot_height + top)

    chart = HorizontalBarChart()
    chart.x, chart.y = left, bottom
    chart.width, chart.height = FRAME_WIDTH - left - right, plot_height
    chart.data = [[i.weight for i in chunk]]
    chart.bars[0].fillColor = ACCENT
    chart.bars[0].strokeColor = None
    chart.barSpacing = 0
    chart.groupSpacing = 5
    chart.barLabelFormat = _thousands
    chart.barLabels.fontName = regular
    chart.barLabels.fontSize = label_size
    chart.barLabels.fillColor = MUTED
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3

    chart.categoryAxis.categoryNames = [""] * len(chunk)  # drawn by BarChart
    chart.categoryAxis.reverseDirection = True  # first product on top, like the table
    chart.categoryAxis.strokeColor = MUTED
    chart.categoryAxis.tickLeft = 0

    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = scale_max
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = regular
    chart.valueAxis.labels.fontSize = CHART_AXIS_LABEL_SIZE
    chart.valueAxis.labelTextFormat = _thousands
    chart.valueAxis.strokeColor = MUTED
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = RULE
    chart.valueAxis.gridStrokeWidth = 0.5
    drawing.add(chart)

    drawing.add(
        String(
            left + chart.width / 2,
            8,
            "Weight (lbs)",
            fontName=bold,
            fontSize=9,
            fillColor=INK,
            textAnchor="middle",
        )
    )
    drawing.add(
        String(
            left - 4,
            bottom + plot_height + 2,
            "Product",
            fontName=bold,
            fontSize=9,
            fillColor=INK,
            textAnchor="end",
        )
    )
    # Each name right-aligned 4 points left of the axis, centred on its bar
    # (categories split the plot's height evenly, the first on top).
    pitch = plot_height / len(chunk)
    placed = [
        (label, left - 4, bottom + plot_height - (n + 0.5) * pitch - 0.35 * label_size)
        for n, label in enumerate(labels)
    ]
    return BarChart(drawing, placed)


def _nice_scale(maximum: int, font: str) -> tuple[float, float]:
    """An axis end and step of 1, 2, 2.5 or 5 x 10ⁿ giving about five
    gridlines: fewer where the labels in ``font`` of five would run into each
    other on the narrowest plot (long names), as billions of pounds do."""
    if maximum <= 0:
        return 1, 1
    raw = maximum / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (m * magnitude * 10**k for k in itertools.count() for m in (1, 2, 2.5, 5))
    for candidate in steps:
        if candidate < raw:
            continue
        step = max(candidate, 1)  # weights are whole pounds
        # Headroom so the value printed after the longest bar stays inside the plot.
        end = math.ceil(maximum * 1.08 / step) * step
        # The widest label is the end's, centred on its tick as each is.
        widest = pdfmetrics.stringWidth(_thousands(end), font, CHART_AXIS_LABEL_SIZE)
        if CHART_MIN_PLOT_WIDTH * step / end >= widest + CHART_AXIS_LABEL_GAP:
            return end, step
    raise AssertionError("unreachable: one step is the whole axis")  # pragma: no cover


def _thousands(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _page_decorator(fonts: Fonts, title: str, date: datetime.date) -> Callable[[Canvas, object], None]:
    """Draw the footer of every page and pin the PDF's dates to the report's date."""
    stamp = f"D:{date.year:04d}{date:%m%d}000000+00'00'"  # four digits of year, as a PDF date has
    footer = report_text.line(f"Online Fruit Store \N{EM DASH} {report_text.isolate(title)}", size=8)

    def decorate(canvas: Canvas, doc: object) -> None:
        canvas.setDateFormatter(lambda *_: stamp)
        canvas.saveState()
        left, right = MARGIN + 6, PAGE_SIZE[0] - MARGIN - 6  # line up with the frame's content
        y = MARGIN - 0.9 * cm
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(left, y + 11, right, y + 11)
        canvas.setFillColor(MUTED)
        footer.draw(canvas, left, y)
        canvas.setFont(fonts.primary(bold=False), 8)
        canvas.drawRightString(right, y, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    return decorate
