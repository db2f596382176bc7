"""How a refusal quotes a value it was given."""

from __future__ import annotations

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
