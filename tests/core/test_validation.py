"""Which characters text refuses (core.validation.validate_text): the
control characters at either end of their ranges, C0, DEL and C1, in text of
one line and of several; the tab and the line breaks LF and CR alone kept in
text of several lines. And the text a model composes, but for a field
left out of its cleaning. The pages, the API and the imports that show these
refusals are tested where they are (tests/catalog, tests/uploads)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Person
from core.validation import validate_text, validate_text_lines

# The ends of each range of control characters, and one within.
CONTROLS = ["\x00", "\x01", "\x07", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
# In text of several lines: those above, and the ends of the ranges around the tab, LF and CR.
CONTROLS_OF_LINES = [*CONTROLS, "\x08", "\x0b", "\x0c", "\x0e"]


@pytest.mark.parametrize("control", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_a_line_holding_a_control_character_is_refused_naming_it(control: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_text(f"Ann{control}Lee")
    assert refused.value.messages == [f"The text cannot contain the control character U+{ord(control):04X}."]


@pytest.mark.parametrize("control", CONTROLS_OF_LINES, ids=[f"U+{ord(c):04X}" for c in CONTROLS_OF_LINES])
def test_text_of_lines_holding_a_control_character_is_refused_naming_it(control: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_text_lines(f"Fine{control} and dandy.")
    assert refused.value.messages == [
        f"The text cannot contain the control character U+{ord(control):04X} "
        "(tabs and the line breaks LF and CR are allowed)."
    ]


def test_text_of_lines_keeps_its_tabs_and_its_line_breaks() -> None:
    validate_text_lines("Fine\tand\ndandy.\r\nReally.\r")


@pytest.mark.parametrize("space", ["\t", "\n", "\r"])
def test_a_line_refuses_the_tab_and_the_line_breaks_text_of_lines_keeps(space: str) -> None:
    with pytest.raises(ValidationError, match=f"control character U\\+{ord(space):04X}"):
        validate_text(f"Ann{space}Lee")


def test_a_field_left_out_of_the_cleaning_is_left_as_it_is() -> None:
    """A row kept from before stays writable by a change of another field."""
    person = Person(name="Jose\u0301", role="Che\u0301f", username="jose")
    person.compose_text(exclude=["name"])
    assert (person.name, person.role) == ("Jose\u0301", "Chéf")
