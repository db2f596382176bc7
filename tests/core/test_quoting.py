"""How a refusal quotes the value it was given (core.quoting)."""

from __future__ import annotations

from core.quoting import QUOTED, printed, quoted


def test_a_text_of_the_quoted_length_is_quoted_whole_and_one_longer_is_cut() -> None:
    """The cut is marked only where something was cut: a text of exactly
    ``QUOTED`` characters is all of what was sent."""
    assert quoted("x" * QUOTED) == repr("x" * QUOTED)
    assert quoted("x" * (QUOTED + 1)) == f"{'x' * QUOTED!r}… ({QUOTED + 1:,} characters)"


def test_a_value_of_no_text_whose_repr_is_the_quoted_length_is_quoted_whole() -> None:
    whole = [1] * 20  # "[1, 1, …, 1]"
    assert len(repr(whole)) == QUOTED
    assert quoted(whole) == repr(whole)
    longer = [*whole, 1]
    assert quoted(longer) == f"{repr(longer)[:QUOTED]}… ({len(repr(longer)):,} characters)"


def test_a_line_or_paragraph_separator_is_printed_escaped() -> None:
    """Either starts a new line in a terminal or a log viewer."""
    assert printed("gh\u2028x\u2029y") == "gh\\u2028x\\u2029y"
