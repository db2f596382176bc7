"""Weights as text and what every path that writes a product reads them as:
the supplier's description file, ``POST /fruits/``, the products API, the
admin, and the pattern the API's schema publishes. ``None``: refused."""

from __future__ import annotations

WEIGHTS: list[tuple[str, int | None]] = [
    ("500 lbs", 500),
    ("7 LB.", 7),
    # Digits of any script, as int() reads them: Arabic-Indic, fullwidth with
    # leading zeros, mathematical bold (past the Basic Multilingual Plane).
    ("\u0665\u0660\u0660 lbs", 500),
    ("\uff10\uff10\uff15\uff10 lbs", 50),
    ("\U0001d7d3\U0001d7ce lb", 50),
    ("500\u3000lbs", 500),  # an ideographic space
    ("2147483647", 2_147_483_647),
    # A plus sign before the digits, as int() reads it; not apart from them,
    # twice, nor a fullwidth one, which int() refuses.
    ("+5 lbs", 5),
    (" +\u0665\u0660\u0660", 500),
    ("+ 5", None),
    ("++5", None),
    ("\uff0b5", None),
    ("5+", None),
    # A minus sign, less than 1 lb.
    ("-5", None),
    ("-5 lbs", None),
    ("+-5", None),
    # Not a whole number of lbs, or too heavy.
    ("1_000", None),
    ("\u0665.\u0660", None),
    ("\u00bd lb", None),  # a fraction, a numeric character that is no digit
    ("500\ufeff", None),  # a byte order mark, a space to ECMA-262's \s alone
]
# Written as a weight is, but past the most a product holds: refused on every
# path. The schema's pattern cannot tell (its description gives the limit).
TOO_HEAVY = "2147483648 lbs"
