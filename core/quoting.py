"""How a refusal quotes a value it was given."""

from __future__ import annotations

import unicodedata

# How much of a refused value an error quotes: a line of a megabyte quoted
# whole made an error as long, on the page and in the log.
QUOTED = 60


def quoted(value: object) -> str:
    """``value`` as an error quotes it (its repr), cut to ``QUOTED``
    characters with the length it had: a text's own characters, or those of
    the repr of anything else (a list or mapping of a JSON body). The cut is
    marked, so that nobody takes the start of what they sent for all of it."""
    if isinstance(value, str):
        if len(value) > QUOTED:
            return f"{value[:QUOTED]!r}… ({len(value):,} characters)"
        return repr(value)
    shown = repr(value)
    if len(shown) > QUOTED:
        return f"{shown[:QUOTED]}… ({len(shown):,} characters)"
    return shown


# What a line of output would not show as it is: a control character (a
# terminal's escape, a line break), a line or paragraph separator, and a
# lone surrogate, which no UTF-8 output holds.
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp", "Cs"})


def printed(text: str) -> str:
    """``text`` as a line of a command's output or a log shows it: those of
    its characters a terminal would act on, or that would start a line that
    reads as another, escaped (``\\x1b``, ``\\n``, ``\\u2028``), the others
    as they are."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _UNPRINTABLE else ch
        for ch in text
    )
