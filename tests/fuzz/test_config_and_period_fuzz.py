"""Generated configs with extreme numbers, and report periods, never produce a traceback (issue 11, cases 13, 14).

Configs: every field, with 1e308, -1e308, 5e-324, -0.0, nan, +/-inf, huge integers, the bounds and just past
them, text and None, through the schema; where valid, through the engine on small price frames (including a
1e308 bad tick, prices near 1e-300, a flat market and wild swings). Each case is either refused with errors
keyed by field (a number outside its bounds says "<field> must be between <low> and <high>; got ..."), or a
valid config whose backtest is finite with levels within 10^-6..10^6 of the base, or a DegenerateResultError
(a domain error naming what is wrong). Nothing else.

Report periods: custom dates far in the past and future, reversed, on the same day, dates as text, garbage,
through the report request schema (reports._validate) and periods.period_bounds (also with raw input):
either a ValidationFailed naming a field, or a period inside the data.

No database is needed: these are pure functions. The counts print at the end of the run (``count_case``).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.quant.engine import LEVEL_RATIO_MAX, LEVEL_RATIO_MIN, DegenerateResultError, backtest
from core.schemas.strategy import BOUNDS, SLEEVES, StrategyConfig, validate_config


def _fuzz(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


FIELDS = list(StrategyConfig.model_fields)
INT_FIELDS = {n for n, f in StrategyConfig.model_fields.items() if f.annotation in (int, int | None)}
EXTREMES = [
    1e308,
    -1e308,
    5e-324,
    -5e-324,
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    10**30,
    -(10**30),
    2**63,
    10**400,
    1,
    -1,
    0.5,
    2.5,
    True,
    None,
    "",
    "1e308",
    "nan",
    "abc",
    [1],
    {"x": 1},
]


def _edges(name: str) -> list[object]:
    low, high = BOUNDS[name]
    step = 1 if name in INT_FIELDS else max(abs(high), 1) * 1e-9
    return [low, high, low - step, high + step, (low + high) / 2]


EDGE_VALUES = st.sampled_from(sorted(BOUNDS)).flatmap(lambda n: st.tuples(st.just(n), st.sampled_from(_edges(n))))
ANY_VALUE = st.one_of(
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=8),
)


def _in_bounds(name: str) -> st.SearchStrategy:
    low, high = BOUNDS[name]
    if name in INT_FIELDS:
        return st.integers(int(low), int(min(high, 300)))  # longer windows than the frame just leave it flat
    return st.one_of(st.floats(low, high, allow_nan=False), st.sampled_from([low, high]))


@st.composite
def valid_ish_config(draw) -> dict:
    """Every field drawn within (or at) its bounds, sleeves normalised: mostly valid configs for the engine."""
    raw = [draw(st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 5e-324])) for _ in SLEEVES]
    total = sum(raw) or 1.0
    data: dict = {s: (w / total if sum(raw) else (1.0 if s == "equal" else 0.0)) for s, w in zip(SLEEVES, raw)}
    data["equal"] += 1.0 - math.fsum(data[s] for s in SLEEVES)
    for name in BOUNDS:
        if name in SLEEVES:
            continue
        optional = StrategyConfig.model_fields[name].default is None or name in ("return_clip",)
        if optional and draw(st.booleans()):
            data[name] = None
        else:
            data[name] = draw(_in_bounds(name))
    data["rebalance"] = draw(st.sampled_from(["daily", "weekly", "monthly", "quarterly", "yearly"]))
    data["market_cap_sqrt"] = draw(st.booleans())
    if data.get("top_n") is not None and data.get("max_weight") is not None and data["top_n"] * data["max_weight"] < 1:
        data["max_weight"] = None
    # issue 15's cross-field rules (min weight / holdings against the cap and top_n)
    if (
        data.get("min_weight") is not None
        and data.get("max_weight") is not None
        and data["min_weight"] > data["max_weight"]
    ):
        data["min_weight"] = None
    if data.get("min_holdings") is not None and data.get("top_n") is not None and data["min_holdings"] > data["top_n"]:
        data["min_holdings"] = None
    if (
        data.get("min_holdings") is not None
        and data.get("min_weight") is not None
        and data["min_holdings"] * data["min_weight"] > 1
    ):
        data["min_weight"] = None
    return data


def _frames() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2023-01-02", periods=90)
    walk = 50 * np.cumprod(1 + rng.normal(0.0005, 0.02, (90, 5)), axis=0)
    base = pd.DataFrame(walk, index=dates, columns=[f"S{i}" for i in range(5)])
    holes = base.mask(rng.random(base.shape) < 0.05)
    holes.iloc[:20, 0] = np.nan  # a late listing
    holes.iloc[70:, 4] = np.nan  # a delisting
    tick = base.copy()
    tick.iloc[40, 1] = 1e308
    tiny = base * 1e-300
    flat = pd.DataFrame(7.0, index=dates, columns=base.columns)
    wild = base.copy()
    wild.iloc[::2, :] *= 10.0  # +900 % / -90 % every day
    caps = base * rng.uniform(1e9, 1e12, 5)
    return {
        name: (frame, caps)
        for name, frame in {
            "walk": base,
            "holes": holes,
            "bad tick": tick,
            "tiny": tiny,
            "flat": flat,
            "wild": wild,
        }.items()
    }


FRAMES = _frames()


def _check_errors(data: object, errors: dict[str, str]) -> None:
    assert errors, "a refused config has at least one error"
    for key, message in errors.items():
        assert key in FIELDS or key == "config" or key not in FIELDS and isinstance(data, dict) and key in data, key
        assert isinstance(message, str) and message.strip(), (key, message)


def _run_engine(cfg: StrategyConfig, frame_name: str) -> None:
    prices, caps = FRAMES[frame_name]
    try:
        res = backtest(prices, cfg, market_caps=caps)
    except DegenerateResultError as exc:
        event(f"engine: refused ({frame_name})")
        assert set(exc.errors) <= {"index", "weights", "turnover", "costs", "contribution"}
        assert all(m.strip() for m in exc.errors.values())
        return
    event(f"engine: finite ({frame_name})")
    values = res.values.to_numpy()
    assert np.isfinite(values).all()
    ratio = values / cfg.base_value
    assert (ratio >= LEVEL_RATIO_MIN).all() and (ratio <= LEVEL_RATIO_MAX).all()
    w = res.weights.to_numpy()
    assert np.isfinite(w).all() and (w >= -1e-9).all() and (w.sum(axis=1) <= 1 + 1e-9).all()
    for series in (res.turnover, res.costs, res.contribution, res.cash):
        assert np.isfinite(series.to_numpy()).all()


@_fuzz(700)
@given(data=st.dictionaries(st.sampled_from(FIELDS + ["bogus"]), ANY_VALUE, max_size=8))
def test_random_configs_are_refused_by_field_or_valid(count_case, data):
    count_case()
    cfg, errors = validate_config(data)
    if cfg is None:
        _check_errors(data, errors)
    else:
        assert errors == {}
        _run_engine(cfg, "walk")


@_fuzz(700)
@given(field=st.sampled_from(FIELDS), value=st.sampled_from(EXTREMES), frame=st.sampled_from(sorted(FRAMES)))
def test_one_extreme_value_in_a_good_config(count_case, field, value, frame):
    count_case()
    data = {
        "momentum": 0.5,
        "risk_parity": 0.5,
        "min_history": 5,
        "momentum_lookback": 10,
        "risk_parity_lookback": 10,
        field: value,
    }
    cfg, errors = validate_config(data)
    if cfg is None:
        _check_errors(data, errors)
        assert field in errors or field in SLEEVES, (field, value, errors)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300
        if field in BOUNDS and field not in INT_FIELDS and numeric:
            low, high = BOUNDS[field]
            if not low <= value <= high:  # nan compares False too
                assert errors[field].startswith(f"{field} must be between "), errors[field]
    else:
        _run_engine(cfg, frame)


@_fuzz(250)
@given(edge=EDGE_VALUES, frame=st.sampled_from(sorted(FRAMES)))
def test_bounds_and_just_past_them(count_case, edge, frame):
    count_case()
    name, value = edge
    data = {"equal": 1.0, "min_history": 5, name: int(value) if name in INT_FIELDS else value}
    if name in SLEEVES and isinstance(value, float) and 0 <= value <= 1:
        data["equal" if name != "equal" else "momentum"] = 1.0 - value
        data[name] = value
    low, high = BOUNDS[name]
    cfg, errors = validate_config(data)
    if low <= data[name] <= high:
        assert name not in errors, (name, value, errors)
    else:
        assert errors[name].startswith(f"{name} must be between "), errors
    if cfg is not None:
        _run_engine(cfg, frame)


@_fuzz(700)
@given(data=valid_ish_config(), frame=st.sampled_from(sorted(FRAMES)))
def test_valid_configs_give_finite_results_or_a_domain_error(count_case, data, frame):
    count_case()
    cfg, errors = validate_config(data)
    assert errors == {}, (data, errors)
    _run_engine(cfg, frame)


# --------------------------------------------------------------------------- report periods
FIRST, AS_OF = dt.date(2021, 1, 4), dt.date(2024, 6, 28)
INDEX = pd.Series(np.linspace(100, 130, len(pd.bdate_range(FIRST, AS_OF))), index=pd.bdate_range(FIRST, AS_OF))
PERIOD_NAMES = ["MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom"]
NEAR = st.dates(min_value=FIRST - dt.timedelta(days=40), max_value=AS_OF + dt.timedelta(days=40))
DATEISH = st.one_of(
    st.none(),
    st.just(""),
    NEAR,
    NEAR.map(str),
    NEAR.map(lambda d: f" {d} "),
    NEAR.map(lambda d: f"{d}T12:30:00"),
    st.dates(),
    st.dates().map(str),
    st.sampled_from(
        [
            dt.date.min,
            dt.date.max,
            "0001-01-01",
            "9999-12-31",
            "2024-02-30",
            "2024-13-01",
            "24-01-02",
            "today",
            "0",
            "1e308",
            "NaT",
            "nan",
            "\x00",
            "2024-06-28\n",
        ]
    ),
    st.datetimes(),
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=True),
)


def _period_ok(s: object, e: object, period: str) -> None:
    assert isinstance(s, dt.date) and isinstance(e, dt.date)
    assert FIRST <= s < e <= AS_OF
    if period != "custom":
        assert e == AS_OF
    from core.quant.periods import period_series

    assert len(period_series(INDEX, s, e)) >= 1


@_fuzz(400)
@given(
    report_type=st.one_of(st.sampled_from(["performance", "allocation", "risk", "benchmark"]), st.text(max_size=6)),
    period=st.one_of(st.sampled_from(PERIOD_NAMES), st.text(max_size=6)),
    fmt=st.one_of(st.sampled_from(["html", "pdf", "xlsx", "csv"]), st.text(max_size=6)),
    start=DATEISH,
    end=DATEISH,
    same_day=st.booleans(),
    reverse=st.booleans(),
)
def test_report_request_periods(count_case, report_type, period, fmt, start, end, same_day, reverse):
    from core.quant import periods
    from core.services import reports

    count_case()
    if same_day:
        end = start
    elif reverse:
        start, end = end, start
    try:
        request = reports._validate(report_type, period, fmt, None, start, end)
    except ValidationFailed as exc:
        assert exc.errors and all(k and v for k, v in exc.errors.items())
        assert set(exc.errors) <= {"type", "period", "format", "config_id", "start", "end", "report"}, exc.errors
        return
    try:
        s, e = periods.period_bounds(request.period, AS_OF, FIRST, request.start, request.end)
    except ValidationFailed as exc:
        assert set(exc.errors) <= {"period", "start", "end"}, exc.errors
        return
    _period_ok(s, e, request.period)


@_fuzz(400)
@given(
    period=st.sampled_from(PERIOD_NAMES + ["", "ytd", "10Y"]),
    start=DATEISH,
    end=DATEISH,
    as_of=st.one_of(st.just(AS_OF), st.dates(min_value=dt.date(1900, 3, 1)), st.just(dt.date.max)),
    span=st.integers(0, 20000),
)
def test_period_bounds_with_raw_input(count_case, period, start, end, as_of, span):
    """period_bounds as the dashboard calls it: raw dates, and stored data anywhere in the calendar."""
    from core.quant import periods

    count_case()
    first = max(dt.date.min, as_of - dt.timedelta(days=span))
    try:
        s, e = periods.period_bounds(period, as_of, first, start, end)
    except ValidationFailed as exc:
        assert exc.errors and set(exc.errors) <= {"period", "start", "end", "config_id"}, exc.errors
        return
    assert first <= s < e <= as_of
