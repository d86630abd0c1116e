"""Factor series: import (CSV ``date, factor, value``), storage and reading (issue 15).

A *factor set* is a named group of daily factor series (e.g. Fama-French ``Mkt-RF, SMB, HML, RF``), stored in
``factor_values``. Values are daily returns as **fractions**; a file in percent (as Kenneth French publishes them)
is imported with ``unit="percent"`` (divided by 100). A column ``RF`` is the daily risk-free rate: the regression
subtracts it instead of a regressor (core.quant.factors). Importing a set replaces every stored row of that set in
one transaction, so a refused file leaves the database unchanged. The demo ships a synthetic set named
:data:`~core.infra.providers.demo.DEMO_FACTOR_SET`, flagged ``is_demo`` and labelled demo wherever it shows.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Integer, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.errors import ImportValidationError, RowProblem, ValidationFailed
from core.models import FactorValue
from core.services import app_settings, audit
from core.services.access import ADMIN_ONLY, resolve

__all__ = [
    "FactorSet",
    "MAX_FACTOR_ROWS",
    "import_factors",
    "list_factor_sets",
    "load_factors",
    "parse_factor_csv",
    "store_factors",
]

#: Largest file accepted, rows.
MAX_FACTOR_ROWS = 2_000_000
#: A daily factor return beyond this (as a fraction) is refused: it is a percent file imported as fractions.
MAX_DAILY_VALUE = 1.0
SET_NAME_MAX = 64
FACTOR_NAME_MAX = 32


@dataclass(frozen=True)
class FactorSet:
    """A stored factor set: its name, factors, dates and whether it is the synthetic demo set."""

    name: str
    factors: tuple[str, ...]
    first: Any
    last: Any
    rows: int
    is_demo: bool

    @property
    def label(self) -> str:
        return f"{self.name} (demo)" if self.is_demo and "demo" not in self.name.lower() else self.name


def parse_factor_csv(
    content: bytes, filename: str = "factors.csv", *, unit: Literal["fraction", "percent"] = "fraction"
) -> pd.DataFrame:
    """Parse a long CSV ``date, factor, value`` into a frame [date, factor, value] (fractions).

    Raises ImportValidationError listing every offending row (1-based, the header is row 1): a missing column,
    a date that is not ISO ``YYYY-MM-DD`` (or ``YYYYMMDD``), a factor name that is empty or too long, a value that
    is not a finite number or (as a fraction) beyond +-100 % a day, a (date, factor) given twice.
    """
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ImportValidationError([RowProblem(None, None, f"not a readable CSV file: {exc}")], filename) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("date", "factor", "value") if c not in frame.columns]
    if missing:
        raise ImportValidationError(
            [RowProblem(1, c, "missing column (need date, factor, value)") for c in missing], filename
        )
    if len(frame) > MAX_FACTOR_ROWS:
        raise ImportValidationError([RowProblem(None, None, f"more than {MAX_FACTOR_ROWS:,} rows")], filename)
    if frame.empty:
        raise ImportValidationError([RowProblem(None, None, "no rows")], filename)
    problems: list[RowProblem] = []
    text = frame["date"].str.strip()
    compact = text.str.fullmatch(r"\d{8}")
    dates = pd.to_datetime(
        text.where(~compact, text.str[:4] + "-" + text.str[4:6] + "-" + text.str[6:]),
        format="%Y-%m-%d",
        errors="coerce",
    )
    values = pd.to_numeric(frame["value"].str.strip(), errors="coerce")
    factors = frame["factor"].str.strip()
    scale = 0.01 if unit == "percent" else 1.0
    for i in range(len(frame)):
        row = i + 2
        if pd.isna(dates.iloc[i]):
            problems.append(RowProblem(row, "date", "not a date (YYYY-MM-DD)", text.iloc[i]))
        name = factors.iloc[i]
        if not name or len(name) > FACTOR_NAME_MAX:
            problems.append(RowProblem(row, "factor", f"a factor name of 1 to {FACTOR_NAME_MAX} characters", name))
        v = values.iloc[i]
        if pd.isna(v) or not math.isfinite(float(v)):
            problems.append(RowProblem(row, "value", "not a finite number", frame["value"].iloc[i]))
        elif abs(float(v) * scale) > MAX_DAILY_VALUE:
            problems.append(
                RowProblem(
                    row,
                    "value",
                    "beyond +-100 % a day: is the file in percent? import it as percent (--percent)",
                    frame["value"].iloc[i],
                )
            )
        if len(problems) > 200:
            break
    out = pd.DataFrame({"date": dates, "factor": factors, "value": values * scale})
    dup = out.duplicated(["date", "factor"], keep="first") & out["date"].notna()
    for i in np.flatnonzero(dup.to_numpy())[:20]:
        problems.append(RowProblem(int(i) + 2, "date", "this date and factor appear twice", text.iloc[i]))
    if problems:
        raise ImportValidationError(problems, filename)
    return out.sort_values(["factor", "date"]).reset_index(drop=True)


def store_factors(session: Session, set_name: str, frame: pd.DataFrame, *, is_demo: bool = False) -> int:
    """Replace the factor set ``set_name`` by ``frame`` [date, factor, value] inside the caller's transaction; the
    data version moves with it (the Risk section's factor regression changes, and the UI caches key on it)."""
    session.execute(delete(FactorValue).where(FactorValue.factor_set == set_name))
    app_settings.bump_data_version(session)
    rows = [
        {
            "factor_set": set_name,
            "factor": str(f),
            "date": pd.Timestamp(d).date(),
            "value": float(v),
            "is_demo": is_demo,
        }
        for d, f, v in frame[["date", "factor", "value"]].itertuples(index=False)
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(FactorValue), rows[start : start + 5000])
    return len(rows)


def import_factors(
    content: bytes, filename: str, set_name: str, *, actor: Any, unit: Literal["fraction", "percent"] = "fraction"
) -> dict[str, object]:
    """Import a factor CSV as the set ``set_name`` (admins; the set's rows are replaced, all or nothing)."""
    name = (set_name or "").strip()
    if not name or len(name) > SET_NAME_MAX:
        raise ValidationFailed({"set_name": f"a name of 1 to {SET_NAME_MAX} characters"})
    if "demo" in name.lower():
        raise ValidationFailed({"set_name": "'demo' is reserved for the synthetic demo set"})
    if unit not in ("fraction", "percent"):
        raise ValidationFailed({"unit": "fraction or percent"})
    frame = parse_factor_csv(content, filename, unit=unit)
    with unit_of_work() as session:
        who = resolve(session, actor, ADMIN_ONLY, action="importing factor series", lock=True)
        count = store_factors(session, name, frame)
        audit.record(session, who.username, "factors.import", name, {"rows": count, "file": filename[:200]})
        session.commit()
    return {
        "set": name,
        "rows": count,
        "factors": sorted(frame["factor"].unique().tolist()),
        "first": str(frame["date"].min().date()),
        "last": str(frame["date"].max().date()),
    }


def list_factor_sets(session: Session) -> list[FactorSet]:
    """Every stored factor set, imported sets first, then by name."""
    rows = session.execute(
        select(
            FactorValue.factor_set,
            FactorValue.factor,
            func.min(FactorValue.date),
            func.max(FactorValue.date),
            func.count(),
            func.max(cast(FactorValue.is_demo, Integer)),
        ).group_by(FactorValue.factor_set, FactorValue.factor)
    ).all()
    sets: dict[str, dict[str, Any]] = {}
    for name, factor, first, last, count, demo in rows:
        entry = sets.setdefault(name, {"factors": [], "first": first, "last": last, "rows": 0, "demo": bool(demo)})
        entry["factors"].append(factor)
        entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
        entry["rows"] += int(count)
    out = [
        FactorSet(n, tuple(sorted(e["factors"])), e["first"], e["last"], e["rows"], e["demo"]) for n, e in sets.items()
    ]
    return sorted(out, key=lambda s: (s.is_demo, s.name))


def load_factors(session: Session, set_name: str) -> pd.DataFrame:
    """The set as a frame dates x factors (fractions); empty when the set does not exist."""
    rows = session.execute(
        select(FactorValue.date, FactorValue.factor, FactorValue.value).where(FactorValue.factor_set == set_name)
    ).all()
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["date", "factor", "value"])
    wide = frame.pivot(index="date", columns="factor", values="value").sort_index()
    wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index), name="date")
    return wide
