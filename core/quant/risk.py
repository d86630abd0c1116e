"""Risk analytics of an index level series: docs/methodology.md "Metric definitions", exactly.

Pure functions (no database, clock, network or Streamlit); inputs are never
modified. Conventions shared by every function:

* ``values`` / ``benchmark`` are *level* series (index points or prices) on a
  DatetimeIndex. NaN levels are dropped; with a benchmark both are aligned on
  their common dates first. Returns are daily simple returns ``r_t = V_t / V_{t-1} - 1``.
* ``PERIODS_PER_YEAR = 252``; ``rf`` is an annual rate, converted to daily as
  ``rf_d = (1 + rf) ** (1 / 252) - 1``.
* Results are fractions (0.1 = 10 %) or ratios. A value that is undefined (too
  little data, zero variance, no drawdown ...) is ``None`` in :func:`risk_metrics`
  (with the reason in ``result["missing"]``) and NaN in frames/series - never 0 or inf.
* Empty or too-short inputs never raise.

Reference for the formulas: docs/methodology.md; conventions match empyrical / quantstats where
those use the same definitions (ddof=1 standard deviations, linear quantiles).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# Period and calendar returns live in core.quant.periods (the one period math), not here.
from core.quant.periods import DAYS_PER_YEAR, finite_levels

__all__ = [
    "PERIODS_PER_YEAR",
    "DAYS_PER_YEAR",
    "METRIC_DEFINITIONS",
    "daily_rf",
    "risk_metrics",
    "rolling_metrics",
    "drawdown_series",
    "drawdown_table",
    "correlation_matrix",
]

#: Trading periods per year used to annualise daily figures.
PERIODS_PER_YEAR = 252
#: A standard deviation this small relative to the data is rounding noise of a constant series.
_ZERO_STD = 1e-12

#: key -> (label, formula, unit) for UI hover texts and reports. Unit is "fraction" or "ratio".
METRIC_DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "total_return": ("Total return", "V_end / V_start - 1", "fraction"),
    "cagr": ("CAGR", "(V_end / V_start)^(365.25 / calendar days) - 1", "fraction"),
    "volatility": ("Volatility", "std(r, ddof=1) * sqrt(252)", "fraction"),
    "sharpe": ("Sharpe ratio", "mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(252)", "ratio"),
    "sortino": ("Sortino ratio", "mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0)^2)) * sqrt(252)", "ratio"),
    "max_drawdown": ("Max drawdown", "min(V / cummax(V) - 1)", "fraction"),
    "current_drawdown": ("Current drawdown", "last value of V / cummax(V) - 1", "fraction"),
    "calmar": ("Calmar ratio", "CAGR / |max drawdown|", "ratio"),
    "var_95": ("VaR 95% (1 day)", "5% quantile of r (linear interpolation)", "fraction"),
    "cvar_95": ("CVaR 95% (1 day)", "mean of r where r <= VaR 95%", "fraction"),
    "var_99": ("VaR 99% (1 day)", "1% quantile of r (linear interpolation)", "fraction"),
    "cvar_99": ("CVaR 99% (1 day)", "mean of r where r <= VaR 99%", "fraction"),
    "beta": ("Beta", "cov(r, b) / var(b), ddof=1", "ratio"),
    "alpha": ("Alpha (annual)", "(mean(r - rf_d) - beta * mean(b - rf_d)) * 252", "fraction"),
    "correlation": ("Correlation", "Pearson correlation of r and b", "ratio"),
    "tracking_error": ("Tracking error", "std(r - b, ddof=1) * sqrt(252)", "fraction"),
    "information_ratio": ("Information ratio", "mean(r - b) * 252 / tracking error", "ratio"),
    "up_capture": ("Up capture", "CAGR of r on days b > 0 / CAGR of b on those days (252/n annualised)", "ratio"),
    "down_capture": ("Down capture", "CAGR of r on days b < 0 / CAGR of b on those days (252/n annualised)", "ratio"),
}

_BENCHMARK_KEYS = ("beta", "alpha", "correlation", "tracking_error", "information_ratio", "up_capture", "down_capture")


def daily_rf(rf: float) -> float:
    """Annual rate ``rf`` as a daily rate: ``(1 + rf)^(1/252) - 1``."""
    # float ** float is typed Any (a negative base gives a complex number)
    rate: float = (1.0 + rf) ** (1.0 / PERIODS_PER_YEAR) - 1.0
    return rate


_levels = finite_levels


def _returns(levels: np.ndarray) -> np.ndarray:
    return levels[1:] / levels[:-1] - 1.0 if levels.size > 1 else np.empty(0)


def _is_zero_std(std: float, x: np.ndarray) -> bool:
    scale = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return not std > _ZERO_STD * max(scale, 1e-300)


# --- scalar building blocks (also the definitions the rolling versions are checked against) ---


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1))


def _volatility(r: np.ndarray) -> float:
    """std(r, ddof=1) * sqrt(252); NaN with fewer than 2 returns."""
    return _std(r) * math.sqrt(PERIODS_PER_YEAR) if r.size >= 2 else math.nan


def _sharpe(r: np.ndarray, rf_d: float) -> float:
    """mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(252); NaN when undefined."""
    if r.size < 2:
        return math.nan
    ex = r - rf_d
    sd = _std(ex)
    return math.nan if _is_zero_std(sd, ex) else float(ex.mean()) / sd * math.sqrt(PERIODS_PER_YEAR)


def _beta(r: np.ndarray, b: np.ndarray) -> float:
    """cov(r, b) / var(b), ddof=1 both; NaN when var(b) is zero or fewer than 2 returns."""
    if r.size < 2:
        return math.nan
    vb = float(np.var(b, ddof=1))
    if _is_zero_std(math.sqrt(vb), b):
        return math.nan
    cov = float(((r - r.mean()) * (b - b.mean())).sum()) / (r.size - 1)
    return cov / vb


def _annualised_growth(x: np.ndarray) -> float:
    """(prod(1 + x))^(252 / n) - 1 over the n returns x."""
    growth = float(np.prod(1.0 + x))
    if growth <= 0:
        return math.nan
    annualised: float = growth ** (PERIODS_PER_YEAR / x.size) - 1.0
    return annualised


def _cagr(v_start: float, v_end: float, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    days = (end - start).days
    if days <= 0 or v_start <= 0 or v_end / v_start <= 0:
        return None
    cagr: float = (v_end / v_start) ** (DAYS_PER_YEAR / days) - 1.0
    return cagr


def risk_metrics(values: pd.Series, benchmark: pd.Series | None = None, rf: float = 0.0) -> dict[str, Any]:
    """Every risk metric of docs/methodology.md for ``values`` (and against ``benchmark``).

    Formulas (r: daily returns of values, b: of the benchmark, rf_d = (1+rf)^(1/252)-1):

    * total_return = V_end / V_start - 1; cagr = (V_end/V_start)^(365.25/calendar days) - 1
    * volatility = std(r, ddof=1)·√252; sharpe = mean(r-rf_d)/std(r-rf_d, ddof=1)·√252
    * sortino = mean(r-rf_d)/sqrt(mean(min(r-rf_d, 0)²))·√252
    * max_drawdown = min(V/cummax(V) - 1); current_drawdown = its last value;
      calmar = cagr/|max_drawdown|
    * var_q = (1-q) quantile of r (``np.quantile``, linear); cvar_q = mean(r[r <= var_q]), q ∈ {0.95, 0.99}
      (both are returns, so a loss is negative)
    * beta = cov(r,b)/var(b); alpha = (mean(r-rf_d) - beta·mean(b-rf_d))·252; correlation = Pearson
    * tracking_error = std(r-b, ddof=1)·√252; information_ratio = mean(r-b)·252/tracking_error
    * up_capture / down_capture = ((∏(1+r))^(252/n) - 1) / ((∏(1+b))^(252/n) - 1) over the n days
      with b > 0 (b < 0)

    With a benchmark, both series are first aligned on their common dates (after dropping
    NaN), so every metric uses the same period. Also returned: ``start``, ``end`` (first
    and last date used), ``days`` (number of returns) and ``missing`` (key -> reason) for
    every metric that is ``None``. Benchmark keys are absent without a benchmark.
    """
    v = _levels(values)
    bench = None
    if benchmark is not None:
        b_lv = _levels(benchmark)
        common = v.index.intersection(b_lv.index)
        v = v.loc[common]
        bench = b_lv.loc[common]
    lv = v.to_numpy()
    r = _returns(lv)
    rf_d = daily_rf(rf)
    out: dict[str, Any] = {
        "start": v.index[0] if len(v) else None,
        "end": v.index[-1] if len(v) else None,
        "days": int(r.size),
    }
    missing: dict[str, str] = {}

    def put(key: str, value: float | None, reason: str) -> None:
        if value is None or not math.isfinite(value):
            out[key] = None
            missing[key] = reason
        else:
            out[key] = float(value)

    few = "fewer than 2 returns"
    if r.size >= 1 and lv[0] > 0:
        put("total_return", lv[-1] / lv[0] - 1.0, "")
        cagr = _cagr(lv[0], lv[-1], v.index[0], v.index[-1]) if isinstance(v.index, pd.DatetimeIndex) else None
        put("cagr", cagr, "less than one calendar day of history or non-positive level")
    else:
        put("total_return", None, "fewer than 2 values")
        put("cagr", None, "fewer than 2 values")
        cagr = None

    if r.size >= 2:
        put("volatility", _volatility(r), "")
        ex = r - rf_d
        put("sharpe", _sharpe(r, rf_d), "zero variance")
        downside = math.sqrt(float(np.mean(np.minimum(ex, 0.0) ** 2)))
        put(
            "sortino",
            float(ex.mean()) / downside * math.sqrt(PERIODS_PER_YEAR) if downside > 0 else None,
            "no return below the risk-free rate",
        )
        for q, key in ((0.95, "95"), (0.99, "99")):
            var = float(np.quantile(r, 1.0 - q, method="linear"))
            put(f"var_{key}", var, "")
            put(f"cvar_{key}", float(r[r <= var].mean()), "")
    else:
        for key in ("volatility", "sharpe", "sortino", "var_95", "cvar_95", "var_99", "cvar_99"):
            put(key, None, few)

    if r.size >= 1:
        dd = lv / np.maximum.accumulate(lv) - 1.0
        mdd = float(dd.min())
        put("max_drawdown", mdd, "")
        put("current_drawdown", float(dd[-1]), "")
        if cagr is None:
            put("calmar", None, "CAGR undefined")
        else:
            put("calmar", cagr / abs(mdd) if mdd < 0 else None, "no drawdown")
    else:
        for key in ("max_drawdown", "current_drawdown", "calmar"):
            put(key, None, "fewer than 2 values")

    if bench is not None:
        b = _returns(bench.to_numpy())
        if r.size < 2:
            for key in _BENCHMARK_KEYS:
                put(key, None, few + " on common dates")
        else:
            beta = _beta(r, b)
            put("beta", beta, "benchmark has zero variance")
            put(
                "alpha",
                (float((r - rf_d).mean()) - beta * float((b - rf_d).mean())) * PERIODS_PER_YEAR
                if math.isfinite(beta)
                else None,
                "beta undefined",
            )
            sr, sb = _std(r), _std(b)
            corr = None
            if not (_is_zero_std(sr, r) or _is_zero_std(sb, b)):
                corr = float(((r - r.mean()) * (b - b.mean())).sum()) / (r.size - 1) / (sr * sb)
            put("correlation", corr, "zero variance")
            active = r - b
            te = _std(active) * math.sqrt(PERIODS_PER_YEAR)
            put("tracking_error", te, "")
            put(
                "information_ratio",
                None if _is_zero_std(te, active) else float(active.mean()) * PERIODS_PER_YEAR / te,
                "zero tracking error",
            )
            for key, days, label in (("up_capture", b > 0, "up"), ("down_capture", b < 0, "down")):
                if not days.any():
                    put(key, None, f"no benchmark {label} days")
                    continue
                denom = _annualised_growth(b[days])
                num = _annualised_growth(r[days])
                put(
                    key,
                    num / denom if denom and math.isfinite(denom) and math.isfinite(num) else None,
                    "benchmark growth undefined on those days",
                )
    out["missing"] = missing
    return out


def rolling_metrics(
    values: pd.Series, benchmark: pd.Series | None = None, windows: tuple[int, ...] = (63, 252), rf: float = 0.0
) -> pd.DataFrame:
    """Rolling volatility, Sharpe and (with a benchmark) beta over ``windows`` returns.

    Columns ``vol_{w}``, ``sharpe_{w}``, ``beta_{w}``; indexed by the (aligned) dates of
    ``values``; the row at date t uses the w returns ending at t, with the same formulas
    as :func:`risk_metrics` (volatility, sharpe, beta). NaN until w returns exist, and
    where the window has zero variance.
    """
    v = _levels(values)
    b_lv = None
    if benchmark is not None:
        b_lv = _levels(benchmark)
        common = v.index.intersection(b_lv.index)
        v, b_lv = v.loc[common], b_lv.loc[common]
    r = v.pct_change()
    ex = r - daily_rf(rf)
    out = pd.DataFrame(index=v.index)
    root = math.sqrt(PERIODS_PER_YEAR)
    for w in windows:
        roll_r = r.rolling(w, min_periods=w)
        std_r = roll_r.std(ddof=1)
        out[f"vol_{w}"] = std_r * root
        roll_ex = ex.rolling(w, min_periods=w)
        std_ex = roll_ex.std(ddof=1)
        rms_ex = np.sqrt((ex * ex).rolling(w, min_periods=w).mean())
        sharpe = roll_ex.mean() / std_ex * root
        out[f"sharpe_{w}"] = sharpe.where(std_ex > _ZERO_STD * rms_ex)
        if b_lv is not None:
            b = b_lv.pct_change()
            var_b = b.rolling(w, min_periods=w).var(ddof=1)
            rms_b = np.sqrt((b * b).rolling(w, min_periods=w).mean())
            beta = r.rolling(w, min_periods=w).cov(b, ddof=1) / var_b
            out[f"beta_{w}"] = beta.where(np.sqrt(var_b) > _ZERO_STD * rms_b)
    return out


def drawdown_series(values: pd.Series) -> pd.Series:
    """``V / cummax(V) - 1`` on every date (0 at new highs, negative below); empty for empty input."""
    v = _levels(values)
    return (v / v.cummax() - 1.0).rename("drawdown")


def drawdown_table(values: pd.Series, top: int = 10) -> pd.DataFrame:
    """The ``top`` deepest drawdown episodes, deepest first.

    An episode starts at the last high before the level falls below it (``start``), reaches
    its lowest point at ``trough`` and ends at ``recovery``, the first date the level is back
    at or above the starting high (NaT while not recovered). ``depth`` = trough/high - 1
    (negative fraction); ``length`` = trading days (rows) from start to recovery, or to the
    last date when not recovered; ``duration_to_trough`` = rows from start to trough.
    """
    columns = ["start", "trough", "recovery", "depth", "length", "duration_to_trough"]
    v = _levels(values)
    lv = v.to_numpy()
    if lv.size < 2:
        return pd.DataFrame(columns=columns)
    dd = lv / np.maximum.accumulate(lv) - 1.0
    under = dd < 0
    rows = []
    i = 0
    n = lv.size
    while i < n:
        if not under[i]:
            i += 1
            continue
        start = i - 1
        j = i
        while j < n and under[j]:
            j += 1
        trough = i + int(np.argmin(dd[i:j]))
        recovered = j < n
        end = j if recovered else n - 1
        rows.append(
            {
                "start": v.index[start],
                "trough": v.index[trough],
                "recovery": v.index[j] if recovered else pd.NaT,
                "depth": float(dd[trough]),
                "length": end - start,
                "duration_to_trough": trough - start,
            }
        )
        i = j
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    table = table.sort_values("depth", kind="stable").head(top).reset_index(drop=True)
    table["recovery"] = pd.to_datetime(table["recovery"])
    return table


def correlation_matrix(prices: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of the constituents' daily simple returns (pairwise complete days).

    Returns are ``P_t / P_{t-1} - 1`` without filling gaps; NaN where a pair has fewer than 2
    common returns or zero variance.
    """
    if not isinstance(prices, pd.DataFrame) or prices.empty:
        return pd.DataFrame()
    returns = prices.apply(pd.to_numeric, errors="coerce").pct_change(fill_method=None)
    return returns.corr(method="pearson", min_periods=2)


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or inf (how results are stored)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
