"""The report's text layout: fonts per script, right-to-left order, shaping, wrapping."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.colors import black
from reportlab.pdfgen.canvas import Canvas

from catalog import report_text
from catalog.report_text import isolate, line, wrap


def faces(text: str) -> list[str]:
    return [run.face.name for run in line(text, size=10).runs]


# --- Fonts ---------------------------------------------------------------------


def test_each_script_gets_a_font_that_has_it() -> None:
    assert faces("Apple") == ["Report-DejaVuSans"]
    assert faces("梨") == ["Report-wqy-microhei"]
    assert faces("사과") == ["Report-wqy-microhei"]
    assert faces("सेब") == ["Report-NotoSansDevanagariUI-Regular"]
    assert faces("มะม่วง") == ["Report-NotoSansThaiUI-Regular"]
    # One run per font, spaces and digits staying with the run they are in.
    assert faces("Pear 梨子 2") == ["Report-DejaVuSans", "Report-wqy-microhei"]


def test_bold_text_takes_the_bold_face_and_ideographs_the_only_one() -> None:
    runs = line("Pear 梨", size=10, bold=True).runs
    assert [run.face.name for run in runs] == ["Report-DejaVuSans-Bold", "Report-wqy-microhei"]


def test_emoji_take_the_colour_font_and_the_text_around_them_stays() -> None:
    assert faces("Apple \N{RED APPLE} crisp") == [
        "Report-DejaVuSans",
        "Report-NotoColorEmoji",
        "Report-DejaVuSans",
    ]
    assert faces("\N{BANANA}\N{GRAPES}") == ["Report-NotoColorEmoji"]
    # Shown as text by default, or asked for as text (U+FE0E): an outline.
    assert faces("\N{HOT PEPPER}") == ["Report-Symbola_hint"]
    assert faces("\N{UMBRELLA WITH RAIN DROPS}\ufe0e") == ["Report-DejaVuSans"]
    # Asked for as emoji (U+FE0F), or shown so by default: in colour.
    assert faces("\N{HOT PEPPER}\ufe0f") == ["Report-NotoColorEmoji"]
    assert faces("\N{UMBRELLA WITH RAIN DROPS}") == ["Report-NotoColorEmoji"]


# Unicode 11, 13, a zero-width-joined sequence (woman, scientist), a skin
# tone, a flag (two regional indicators) and a keycap.
MANGO, BLUEBERRIES = "\N{MANGO}", "\N{BLUEBERRIES}"
SCIENTIST = "\N{WOMAN}\N{ZERO WIDTH JOINER}\N{MICROSCOPE}"
THUMBS_UP = "\N{THUMBS UP SIGN}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}"
JAPAN = "\N{REGIONAL INDICATOR SYMBOL LETTER J}\N{REGIONAL INDICATOR SYMBOL LETTER P}"
KEYCAP_ONE = "1\ufe0f\N{COMBINING ENCLOSING KEYCAP}"
EMOJI = [MANGO, BLUEBERRIES, SCIENTIST, THUMBS_UP, JAPAN, KEYCAP_ONE]


@pytest.mark.parametrize("emoji", EMOJI)
def test_an_emoji_sequence_is_one_colour_picture_as_wide_as_the_font_says(emoji: str) -> None:
    [run] = line(emoji, size=10).runs
    assert run.face.name == "Report-NotoColorEmoji"
    assert len(run.pictures) == 1
    [placed] = run.pictures
    # Noto Color Emoji: 2550 of 2048 units a glyph, its picture as wide.
    assert run.width == pytest.approx(10 * 2550 / 2048)
    assert placed.picture.width * 10 == pytest.approx(run.width, abs=0.1)


def test_an_emoji_in_a_right_to_left_paragraph_sits_between_its_words() -> None:
    text_line = line(f"תפוח {MANGO} עץ", size=10)
    assert text_line.rtl
    assert [run.face.name for run in text_line.runs] == [
        "Report-DejaVuSans",
        "Report-NotoColorEmoji",
        "Report-DejaVuSans",
    ]
    # The first word is drawn last (rightmost).
    assert text_line.runs[2].text.endswith("חופת")


@pytest.mark.parametrize("width", range(20, 90, 5))
def test_lines_break_between_emoji_never_inside_one(width: int) -> None:
    text = "".join(EMOJI * 3)
    lines = wrap(text, size=10, width=width)
    assert len(lines) > 1
    copied = []
    for text_line in lines:
        [run] = text_line.runs
        font = run.face.ttf
        assert font is not None
        # Each glyph's invisible text is a whole sequence.
        copied += [font.stands_for[ord(glyph)] for glyph in run.text]
        assert text_line.width <= max(width, 10 * 2550 / 2048 + 0.01)
    assert copied == EMOJI * 3


@pytest.mark.parametrize(
    "sequence",
    [
        pytest.param("\N{WOMAN}\N{ZERO WIDTH JOINER}\N{RED APPLE}", id="joined"),
        pytest.param("\N{RED APPLE}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}", id="skin-tone"),
    ],
)
@pytest.mark.parametrize("around", ["{} crisp", "תפוח {} עץ"], ids=["ltr", "rtl"])
def test_a_sequence_the_font_draws_as_its_parts_copies_as_itself(sequence: str, around: str) -> None:
    [run] = [run for run in line(around.format(sequence), size=10).runs if run.face.color is not None]
    assert len(run.pictures) == 2
    font = run.face.ttf
    assert font is not None
    # Each picture copies as its own characters, and nothing more.
    assert "".join(font.stands_for[ord(glyph)] for glyph in run.text) == sequence


def test_an_emoji_drawn_again_on_a_page_reuses_its_image(monkeypatch: pytest.MonkeyPatch) -> None:
    # drawImage hashes the pixels each time it is called to find the image:
    # for a page of emoji, most of the report's time.
    looked_up: list[int] = []
    draw_image = Canvas.drawImage

    def counting(canvas: Canvas, *args: object, **kwargs: object) -> object:
        looked_up.append(canvas.getPageNumber())
        return draw_image(canvas, *args, **kwargs)

    monkeypatch.setattr(Canvas, "drawImage", counting)
    out = io.BytesIO()
    canvas = Canvas(out)
    mangoes = line(MANGO * 40, size=10)
    mangoes.draw(canvas, 10, 700)
    mangoes.draw(canvas, 10, 680)
    canvas.showPage()
    mangoes.draw(canvas, 10, 700)
    canvas.save()
    assert looked_up == [1, 2]  # once a page
    # Every mango is still drawn, each page naming the one image it uses.
    draws, images = [], []
    for page in PdfReader(io.BytesIO(out.getvalue())).pages:
        contents = page.get_contents()
        assert contents is not None
        draws.append(contents.get_data().count(b" Do"))
        images.append(len(page.images))
    assert (draws, images) == ([80, 40], [1, 1])


def test_fit_cuts_after_a_whole_emoji() -> None:
    for width in range(15, 60, 3):
        fitted = report_text.fit(SCIENTIST * 6, size=10, width=width)
        emoji_run = fitted.runs[0]
        assert emoji_run.face.name == "Report-NotoColorEmoji"
        font = emoji_run.face.ttf
        assert font is not None
        assert {font.stands_for[ord(glyph)] for glyph in emoji_run.text} == {SCIENTIST}


def test_without_the_colour_font_emoji_print_in_symbola_and_it_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(report_text, "COLOR_EMOJI_DIR", tmp_path)
    report_text.fonts.cache_clear()
    try:
        assert faces("\N{RED APPLE} crisp") == ["Report-Symbola_hint", "Report-DejaVuSans"]
        assert faces("\N{BANANA}") == ["Report-Symbola_hint"]
    finally:
        report_text.fonts.cache_clear()
    messages = [r.getMessage() for r in caplog.records if "fonts-noto-color-emoji" in r.getMessage()]
    assert messages == [
        f"Report font {tmp_path / 'NotoColorEmoji.ttf'} is missing (install the Debian package "
        "fonts-noto-color-emoji): emoji print as Symbola's outlines in the text's colour, up to Unicode 9"
    ]


def test_a_character_no_font_has_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    report_text.fonts.cache_clear()  # a chain that has not met the character yet
    # Symbols for Legacy Computing (Unicode 13): in none of the fonts.
    line("\N{BLOCK SEXTANT-1} one", size=10)
    line("\N{BLOCK SEXTANT-1} two", size=10)
    warnings = [r.getMessage() for r in caplog.records if "U+1FB00" in r.getMessage()]
    assert warnings == ["No report font has U+1FB00 BLOCK SEXTANT-1: it prints as a box"]


# --- Direction -----------------------------------------------------------------


def test_hebrew_runs_right_to_left_inside_latin() -> None:
    assert line("abc שלום def", size=10).text == "abc םולש def"


def test_a_hebrew_paragraph_puts_its_first_word_on_the_right() -> None:
    # Right-to-left paragraph: the number, a left-to-right run, comes after
    # (left of) the first word.
    assert line("שלום 123", size=10).text == "123 םולש"


def test_an_isolated_name_keeps_its_parentheses() -> None:
    name = "תפוח (ירוק)"
    assert line(f"name: {isolate(name)}", size=10).text == "name: (קורי) חופת"
    # Not isolated, the closing parenthesis follows the left-to-right line.
    assert line(f"name: {name}", size=10).text == "name: קורי) חופת)"


def test_an_isolate_mark_inside_a_name_is_dropped() -> None:
    assert line(f"x {isolate('a' + report_text.PDI + 'b' + report_text.FSI)}", size=10).text == "x ab"


# --- Shaping -------------------------------------------------------------------


def test_arabic_letters_take_their_joined_forms() -> None:
    text = line("تفاح", size=10).text
    # Final, medial, medial, initial forms (U+FExx), drawn right to left.
    assert [f"{ord(c):04X}" for c in text] == ["062D", "FE8E", "FED4", "FE97"]


def test_the_devanagari_i_sign_is_drawn_before_its_consonant() -> None:
    run = line("कि", size=10).runs[0]
    font = run.face.ttf
    assert font is not None
    # The sign's glyph comes first, the consonant second.
    assert run.text[1] == "क"
    assert font.stands_for.get(ord(run.text[0]), run.text[0]) == "ि"


def test_a_conjunct_glyph_stands_for_its_letters() -> None:
    run = line("क्ष", size=10).runs[0]
    font = run.face.ttf
    assert font is not None
    assert len(run.text) == 1  # one glyph for three characters
    glyph = run.text[0]
    assert 0xE000 <= ord(glyph) <= 0xF8FF
    assert font.stands_for[ord(glyph)] == "क्ष"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", id="persian-zwnj"),
        pytest.param("Rain \N{UMBRELLA WITH RAIN DROPS}\ufe0e now", id="text-style"),
        pytest.param("a\ufe0fb", id="selector-on-a-letter"),
    ],
)
def test_an_invisible_character_copies_as_itself_not_as_a_space(text: str) -> None:
    [run] = line(text, size=10).runs
    font = run.face.ttf
    assert font is not None
    copied = "".join(font.stands_for.get(ord(glyph), glyph) for glyph in run.text)
    # The words stay whole: the joiner or selector is there, no space is added.
    assert copied.count(" ") == text.count(" ")
    assert [char for char in copied if char in "\u200c\ufe0e\ufe0f"] == [
        char for char in text if char in "\u200c\ufe0e\ufe0f"
    ]


# --- Lines ---------------------------------------------------------------------


def test_ideographs_wrap_without_spaces() -> None:
    text = "苹果香蕉梨子葡萄西瓜草莓樱桃芒果菠萝柠檬橙子桃子"
    lines = wrap(text, size=12, width=100)
    assert len(lines) >= 3
    assert all(text_line.width <= 100 for text_line in lines)
    assert "".join(text_line.text for text_line in lines) == text


def test_words_wrap_at_spaces_and_an_overlong_word_between_letters() -> None:
    lines = wrap("Golden Delicious " + "X" * 40, size=10, width=80)
    texts = [text_line.text for text_line in lines]
    assert texts[0] == "Golden"
    assert texts[1] == "Delicious"
    assert "".join(texts[2:]) == "X" * 40
    assert all(text_line.width <= 80 for text_line in lines)


def test_a_right_to_left_paragraph_starts_on_the_first_line() -> None:
    words = ["אחד", "שתיים", "שלוש", "ארבע", "חמש", "שש", "שבע"]
    lines = wrap(" ".join(words), size=10, width=60)
    assert len(lines) > 1
    # Each line reads right to left: its first word is drawn last (rightmost).
    assert lines[0].text.endswith(words[0][::-1])
    assert lines[-1].text.startswith(words[-1][::-1])


def test_a_conjunct_is_not_cut_when_a_word_is_too_long() -> None:
    lines = wrap("क्ष" * 30, size=10, width=40)
    assert len(lines) > 1
    for text_line in lines:
        font = text_line.runs[0].face.ttf
        assert font is not None
        # Every glyph is a whole conjunct: no bare virama at a line's end.
        assert {font.stands_for.get(ord(glyph)) for glyph in text_line.text} == {"क्ष"}


def test_fit_cuts_with_an_ellipsis_at_the_end_of_the_reading() -> None:
    fitted = report_text.fit("תפוח עץ ירוק גדול מאוד", size=10, width=60)
    assert fitted.width <= 60
    # Right to left, the text's end (and so the ellipsis) is on the left.
    assert fitted.text.startswith(report_text.ELLIPSIS)
    assert fitted.text.endswith("חופת")


def test_a_latin_word_after_ideographs_moves_whole_to_the_next_line() -> None:
    ideographs = "苹果香蕉梨子葡萄西瓜"
    room = line(ideographs + "Ap", size=10).width + 0.5
    assert [text_line.text for text_line in wrap(ideographs + "Apple", size=10, width=room)] == [
        ideographs,
        "Apple",
    ]


def test_fit_does_not_cut_a_vowel_sign_off_its_letter() -> None:
    for width in range(20, 60, 2):
        fitted = report_text.fit("कि" * 12, size=10, width=width)
        assert fitted.text.endswith(report_text.ELLIPSIS)
        shown = fitted.text[:-1]
        # Each letter is drawn with its sign (a glyph of its own, before it).
        assert shown.count("क") * 2 == len(shown), width


# Japanese and Chinese: what a line may not start or end with.
KINSOKU_TEXT = "りんごを買いました。「とても美味しい」と言っていました。ちょっと、ーっと待って！"


# From four characters a line: narrower, "と、ーっ" is cut as an overlong word is.
@pytest.mark.parametrize("width", range(50, 130, 6))
def test_no_line_starts_with_a_closing_mark_or_ends_with_an_opening_one(width: int) -> None:
    lines = [text_line.text for text_line in wrap(KINSOKU_TEXT, size=12, width=width)]
    assert "".join(lines) == KINSOKU_TEXT
    for text_line in lines[1:]:
        assert text_line[0] not in "、。」！ーょっ", lines
    for text_line in lines[:-1]:
        assert text_line[-1] != "「", lines


def test_an_opening_mark_after_ideographs_may_start_a_line() -> None:
    before = "美味しいりんご"
    room = line(before + "「と", size=12).width - 0.5
    lines = [text_line.text for text_line in wrap(before + "「とても」", size=12, width=room)]
    assert lines[0] == before


def drawn_at(block: report_text.TextBlock, width: float) -> list[float]:
    """Where each line of ``block`` starts, drawn in a frame ``width`` wide."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(width, 200))
    block.wrapOn(canvas, width, 200)
    block.drawOn(canvas, 0, 0)
    canvas.save()
    starts: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            starts.append(round(tm[4], 1))

    PdfReader(io.BytesIO(out.getvalue())).pages[0].extract_text(visitor_text=visit)
    return starts


def test_a_right_to_left_paragraph_starts_at_the_right_and_a_left_to_right_one_at_the_left() -> None:
    hebrew = report_text.TextBlock(["עדכון מעובד"], size=12, leading=15, color=black)
    english = report_text.TextBlock(["Processed Update"], size=12, leading=15, color=black)
    width = 300.0
    assert drawn_at(english, width) == [0.0]
    [start] = drawn_at(hebrew, width)
    assert start == pytest.approx(width - line("עדכון מעובד", size=12).width, abs=0.5)
    assert start > width / 2
