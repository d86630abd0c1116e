"""Parameter sweeps: the grid over config fields, what a sweep request carries, and sweeps as they leave the services.

A **grid** is a list of axes; the variants are their Cartesian product, in order (the last axis changes fastest),
numbered from 0. An axis is

* a config field with a list of values: ``momentum_lookback=21,63,126``, ``rebalance=monthly,quarterly``,
  ``top_n=none,10,20`` (``none`` is "no limit"), or a range ``momentum_lookback=21:252:21`` (start:stop:step,
  stop included when on the step);
* ``sleeves``, mixes of the four sleeve weights on a simplex step: ``sleeves=0.25`` (every mix of the four sleeves
  in steps of 0.25 that sums to 1: 35 mixes) or ``sleeves=equal+momentum:0.1`` (two sleeves, the others 0: 11).

Values are checked against the config schema one variant at a time: a variant the schema refuses is kept as a row
with its error, never dropped. What is refused before anything runs (ValidationFailed naming ``param``): a name that
is no config field, a field swept twice, an empty list, a bad range or simplex step, and more than
:data:`MAX_VARIANTS` variants (the message gives the count).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationFailed
from core.schemas.strategy import SLEEVES, StrategyConfig

#: Most variants one sweep may have.
MAX_VARIANTS = 10_000
#: The axis name of sleeve mixes.
SLEEVE_AXIS = "sleeves"
#: The metrics of every variant, keyed as in the reports' Summary sheet, plus turnover (per year) and costs.
METRIC_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
    "costs",
)
#: The config fields a grid may sweep (``base_value`` only rescales the index: not a methodology choice).
SWEEPABLE: tuple[str, ...] = tuple(name for name in StrategyConfig.model_fields if name != "base_value")
SWEEP_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")


class Axis(BaseModel):
    """One swept field (or ``sleeves``) and its values; for ``sleeves`` each value is a ``{sleeve: weight}`` mix."""

    model_config = ConfigDict(extra="forbid")

    name: str
    values: list[Any]

    @property
    def fields(self) -> list[str]:
        """The config fields this axis sets (the four sleeves for ``sleeves``)."""
        return list(SLEEVES) if self.name == SLEEVE_AXIS else [self.name]

    def overrides(self, index: int) -> dict[str, Any]:
        value = self.values[index]
        return dict(value) if self.name == SLEEVE_AXIS else {self.name: value}


class Grid(BaseModel):
    """The axes of a sweep; :meth:`check` before use (the services do)."""

    model_config = ConfigDict(extra="forbid")

    axes: list[Axis]

    @property
    def count(self) -> int:
        return math.prod(len(a.values) for a in self.axes) if self.axes else 0

    @property
    def columns(self) -> list[str]:
        """The swept config fields, in axis order (one CSV column each)."""
        return [f for a in self.axes for f in a.fields]

    def check(self) -> Grid:
        """Refuse an unusable grid (module docstring); return it."""
        if not self.axes:
            raise ValidationFailed({"param": "choose at least one field to sweep"})
        seen: set[str] = set()
        for axis in self.axes:
            if axis.name != SLEEVE_AXIS and axis.name not in SWEEPABLE:
                raise ValidationFailed(
                    {
                        "param": f"{axis.name!r} is not a config field; choose from "
                        f"{', '.join(SWEEPABLE)} or {SLEEVE_AXIS}"
                    }
                )
            if not axis.values:
                raise ValidationFailed({"param": f"{axis.name}: give at least one value"})
            _check_values(axis)
            for field in axis.fields:
                if field in seen:
                    raise ValidationFailed(
                        {
                            "param": f"{field} is swept twice"
                            + (" (sleeves sets every sleeve weight)" if SLEEVE_AXIS in (axis.name, *seen) else "")
                        }
                    )
                seen.add(field)
            if axis.name == SLEEVE_AXIS:
                seen.add(SLEEVE_AXIS)
        if self.count > MAX_VARIANTS:
            raise ValidationFailed(
                {
                    "param": f"the grid has {self.count:,} variants; at most {MAX_VARIANTS:,} are "
                    "allowed: sweep fewer values or split the grid"
                }
            )
        return self

    def variant(self, number: int) -> dict[str, Any]:
        """The overrides of variant ``number`` (0-based, the product's order: the last axis fastest)."""
        overrides: dict[str, Any] = {}
        rest = number
        for axis in reversed(self.axes):
            rest, index = divmod(rest, len(axis.values))
            overrides.update(axis.overrides(index))
        return {f: overrides[f] for f in self.columns}

    def variants(self, start: int = 0, stop: int | None = None) -> Iterable[tuple[int, dict[str, Any]]]:
        for number in range(start, self.count if stop is None else min(stop, self.count)):
            yield number, self.variant(number)


def _value_key(value: Any) -> Any:
    """What makes two values of an axis the same variant (3 and 3.0 are; True and 1 are not)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return ("value", value)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _check_values(axis: Axis) -> None:
    """Every value of ``axis`` is finite and listed once (a grid given to the services as data, not parsed)."""
    seen: set[Any] = set()
    for value in axis.values:
        if not _finite(value):
            raise ValidationFailed({"param": f"{axis.name}: values must be finite numbers; got {value!r}"})
        key = _value_key(value)
        if key in seen:
            raise ValidationFailed({"param": f"{axis.name}: the value {value!r} is listed twice"})
        seen.add(key)


# --------------------------------------------------------------------------- parsing text (CLI, forms)
def parse_value(text: str) -> Any:
    """``none`` -> None, ``true``/``false`` -> bool, integers, decimals, otherwise the text itself."""
    word = text.strip()
    low = word.lower()
    if low in ("none", "null", ""):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(word)
    except ValueError:
        pass
    try:
        number = float(word)
    except ValueError:
        return word
    return number if math.isfinite(number) else word


def _range(name: str, text: str) -> list[Any]:
    parts = [parse_value(p) for p in text.split(":")]
    if len(parts) != 3 or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
        raise ValidationFailed({"param": f"{name}: a range is start:stop:step with three numbers; got {text!r}"})
    start, stop, step = parts
    if step <= 0 or stop < start:
        raise ValidationFailed({"param": f"{name}: a range needs start <= stop and a positive step; got {text!r}"})
    span = (stop - start) / step
    if not math.isfinite(span) or span >= MAX_VARIANTS:  # 0:1e308:1e-308 counts to inf
        raise ValidationFailed(
            {
                "param": f"{name}: the range {text!r} has more than {MAX_VARIANTS:,} values; at most "
                f"{MAX_VARIANTS:,} variants are allowed"
            }
        )
    n = int(math.floor(span + 1e-9)) + 1
    if n > MAX_VARIANTS:
        raise ValidationFailed(
            {"param": f"{name}: the range {text!r} has {n:,} values; at most {MAX_VARIANTS:,} variants are allowed"}
        )
    if all(isinstance(p, int) for p in parts):
        return [start + i * step for i in range(n)]
    values = [round(start + i * step, 12) for i in range(n)]
    if len(set(values)) != len(values):  # a step below the 12 decimals kept: the same value twice
        raise ValidationFailed({"param": f"{name}: the step of {text!r} is finer than 12 decimals; values repeat"})
    return values


def simplex(sleeves: Sequence[str], step: float) -> list[dict[str, float]]:
    """Every mix of ``sleeves`` in multiples of ``step`` summing to 1 (the other sleeves 0), in lexicographic order
    of the weights, largest first."""
    units = round(1.0 / step) if step > 0 else 0
    if units < 1 or abs(units * step - 1.0) > 1e-9:
        raise ValidationFailed({"param": f"sleeves: the step must divide 1 (0.5, 0.25, 0.2, 0.1 ...); got {step:g}"})
    unknown = [s for s in sleeves if s not in SLEEVES]
    if unknown or not sleeves or len(set(sleeves)) != len(sleeves):
        raise ValidationFailed(
            {
                "param": f"sleeves: name distinct sleeves among {', '.join(SLEEVES)} "
                f"(e.g. sleeves=equal+momentum:0.1); got {'+'.join(sleeves) or 'none'}"
            }
        )
    count = math.comb(units + len(sleeves) - 1, len(sleeves) - 1)
    if count > MAX_VARIANTS:
        raise ValidationFailed(
            {"param": f"sleeves: step {step:g} gives {count:,} mixes; at most {MAX_VARIANTS:,} variants are allowed"}
        )

    def parts(total: int, k: int) -> Iterable[tuple[int, ...]]:
        if k == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in parts(total - first, k - 1):
                yield (first, *rest)

    mixes = []
    for combo in parts(units, len(sleeves)):
        mix = {s: 0.0 for s in SLEEVES}
        mix.update({s: round(u / units, 12) for s, u in zip(sleeves, combo)})
        mixes.append(mix)
    return mixes


def parse_param(text: str) -> Axis:
    """One ``--param`` (module docstring) as an :class:`Axis`; ValidationFailed names what is wrong."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValidationFailed({"param": f"write NAME=V1,V2,... (or NAME=start:stop:step); got {text!r}"})
    if name == SLEEVE_AXIS:
        which, colon, step_text = values.rpartition(":")
        step = parse_value(step_text)
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            raise ValidationFailed({"param": f"sleeves: write sleeves=STEP or sleeves=a+b:STEP; got {values!r}"})
        chosen = [s.strip() for s in which.split("+")] if colon else list(SLEEVES)
        return Axis(name=name, values=simplex(chosen, float(step)))
    if ":" in values and "," not in values:
        return Axis(name=name, values=_range(name, values))
    items = [parse_value(v) for v in values.split(",")]
    if values.strip() == "":
        items = []
    unique: list[Any] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return Axis(name=name, values=unique)


def parse_grid(params: Sequence[str]) -> Grid:
    """``--param`` texts as a checked :class:`Grid`."""
    return Grid(axes=[parse_param(p) for p in params]).check()


# --------------------------------------------------------------------------- requests and results
class WalkForward(BaseModel):
    """Rolling windows: train ``train_years``, test ``test_months``, step ``step_months`` (default the test)."""

    model_config = ConfigDict(extra="forbid")

    train_years: float = Field(ge=0.5, le=30)
    test_months: int = Field(ge=1, le=120)
    step_months: int | None = Field(default=None, ge=1, le=120)


class SweepOut(BaseModel):
    """A sweep as the services return it (``progress`` 0..1: stored variants over all)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    owner: str
    config_id: int | None
    config_label: str
    base_params: dict[str, Any]
    grid: dict[str, Any]
    split_date: dt.date | None
    walk_forward: dict[str, Any] | None
    n_variants: int
    n_chunks: int
    status: str
    task_run_id: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None
    summary: dict[str, Any] | None
    done_variants: int = 0

    @property
    def columns(self) -> list[str]:
        return Grid.model_validate(self.grid).columns

    @property
    def progress(self) -> float:
        return self.done_variants / self.n_variants if self.n_variants else 1.0

    @property
    def has_split(self) -> bool:
        return self.split_date is not None or self.walk_forward is not None
