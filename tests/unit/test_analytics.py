"""Periods and the performance view (pure parts, hand-computed answers; no database)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.errors import ValidationFailed
from core.quant import periods, risk
from core.services import analytics as A

D = dt.date


# --------------------------------------------------------------------------- period_bounds
@pytest.mark.parametrize(
    "period, expected",
    [
        ("MTD", D(2026, 10, 31)),
        ("QTD", D(2026, 9, 30)),
        ("YTD", D(2025, 12, 31)),
        ("1Y", D(2025, 11, 26)),
        ("3Y", D(2023, 11, 26)),
        ("5Y", D(2021, 11, 26)),
        ("max", D(2020, 1, 2)),
    ],
)
def test_period_bounds_hand_computed(period, expected):
    assert periods.period_bounds(period, D(2026, 11, 26), D(2020, 1, 2)) == (expected, D(2026, 11, 26))


def test_qtd_in_first_quarter_and_mtd_in_january():
    assert periods.period_bounds("QTD", D(2026, 2, 10), D(2020, 1, 1))[0] == D(2025, 12, 31)
    assert periods.period_bounds("MTD", D(2026, 1, 15), D(2020, 1, 1))[0] == D(2025, 12, 31)
    assert periods.period_bounds("1Y", D(2024, 2, 29), D(2020, 1, 1))[0] == D(2023, 2, 28)  # month arithmetic


def test_period_reaching_before_the_data_is_refused_naming_period():
    with pytest.raises(ValidationFailed) as err:
        periods.period_bounds("5Y", D(2026, 11, 26), D(2023, 11, 27))
    assert set(err.value.errors) == {"period"}
    assert "2023-11-27" in err.value.errors["period"]


@pytest.mark.parametrize(
    "start, end, field, words",
    [
        (None, D(2025, 1, 1), "start", "required"),
        (D(2025, 1, 1), None, "end", "required"),
        ("2025-13-01", D(2025, 2, 1), "start", "not a date"),
        (D(2025, 6, 1), D(2025, 1, 1), "start", "before the end"),
        (D(2025, 1, 1), D(2025, 1, 1), "start", "before the end"),
        (D(2019, 1, 1), D(2025, 1, 1), "start", "first date"),
        (D(2025, 1, 1), D(2027, 1, 1), "end", "last date"),
    ],
)
def test_custom_range_validation_names_the_field(start, end, field, words):
    with pytest.raises(ValidationFailed) as err:
        periods.period_bounds("custom", D(2026, 11, 26), D(2020, 1, 2), start, end)
    assert field in err.value.errors
    assert words in err.value.errors[field]


def test_custom_range_accepts_strings_and_unknown_period_is_refused():
    assert periods.period_bounds("custom", D(2026, 11, 26), D(2020, 1, 2), "2024-01-01", "2024-06-30") == (
        D(2024, 1, 1),
        D(2024, 6, 30),
    )
    with pytest.raises(ValidationFailed) as err:
        periods.period_bounds("2W", D(2026, 11, 26), D(2020, 1, 2))
    assert "period" in err.value.errors


# --------------------------------------------------------------------------- period_series / period_return
def _levels(n: int = 600, seed: int = 3, start: str = "2023-01-02") -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, name="date")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(3e-4, 0.01, n))), index=idx)


def test_period_series_starts_at_the_last_level_on_or_before_start():
    v = _levels()
    seg = periods.period_series(v, D(2023, 12, 31), D(2024, 3, 31))  # a Sunday: base is Friday 29 Dec
    assert seg.index[0] == pd.Timestamp("2023-12-29")
    assert seg.index[-1] == pd.Timestamp("2024-03-29")
    assert periods.period_series(v, D(2022, 1, 1), D(2022, 6, 1)).empty


def test_period_returns_equal_the_trailing_returns():
    v = _levels()
    trailing = periods.trailing_returns(v)
    assert periods.period_return(v, "YTD") == pytest.approx(trailing["YTD"], abs=1e-15)
    assert periods.period_return(v, "1Y") == pytest.approx(trailing["1Y"], abs=1e-15)
    assert periods.period_return(v, "5Y") is None


# --------------------------------------------------------------------------- drifted weights
def test_drifted_weights_buy_and_hold_by_hand():
    dates = pd.bdate_range("2024-01-01", periods=4)
    prices = pd.DataFrame({"A": [10.0, 20.0, 20.0, 10.0], "B": [10.0, 10.0, 10.0, 10.0]}, index=dates)
    alloc = pd.DataFrame({"A": [0.5, 0.25], "B": [0.5, 0.25]}, index=dates[[0, 2]])
    daily, pre = A.drifted_weights(alloc, prices, dates)
    # Day 1: A doubled -> holdings 1.0 and 0.5 -> weights 2/3, 1/3.
    assert daily.iloc[1].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert pre.iloc[1].tolist() == pytest.approx([2 / 3, 1 / 3])  # before the second rebalance
    # After the second rebalance half is cash: A halves -> 0.125 / (0.125 + 0.25 + 0.5).
    assert daily.iloc[3].tolist() == pytest.approx([0.125 / 0.875, 0.25 / 0.875])
    assert daily.iloc[0].tolist() == pytest.approx([0.5, 0.5])


# --------------------------------------------------------------------------- the view (pure)
def _inputs(costs: float = 0.0) -> A.ViewInputs:
    """Two assets held 60/40 from the first day, rebalanced monthly; levels built exactly like the engine."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2023-01-02", periods=400, name="date")
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(2e-4, 0.012, (400, 2)), axis=0)), index=dates, columns=["AAA", "BBB"]
    )
    month_ends = dates[:-1][dates.month[:-1] != dates.month[1:]]
    reb = dates[:1].append(month_ends)
    target = np.array([0.6, 0.4])
    values = np.empty(len(dates))
    hold = None
    level = 100.0
    turnover, cost = {}, {}
    for i, d in enumerate(dates):
        if hold is not None:
            hold = hold * (prices.iloc[i].to_numpy() / prices.iloc[i - 1].to_numpy())
            level = float(hold.sum())
        if d in reb:
            pre = hold / level if hold is not None else np.zeros(2)
            t = float(np.abs(target - pre).sum())
            c = costs / 1e4 * t
            level = level * (1 - c)
            hold = target * level
            turnover[d], cost[d] = t, c
        values[i] = level
    index = pd.Series(values, index=dates, name="index")
    bench = (prices.mean(axis=1) * 1.0).rename("BM")
    alloc = pd.DataFrame([target] * len(reb), index=pd.DatetimeIndex(reb, name="date"), columns=["AAA", "BBB"])
    assets = pd.DataFrame(
        {
            "name": ["Aaa Inc.", "Bbb Corp."],
            "sector": ["Tech", "Energy"],
            "asset_class": ["equity", "equity"],
            "source": ["demo", "demo"],
        },
        index=pd.Index(["AAA", "BBB"], name="symbol"),
    )
    rebalances = pd.DataFrame({"turnover": turnover, "cost": cost})
    return A.ViewInputs(
        config_id=1,
        config_name="Test",
        config_version=2,
        params={},
        computed_at=None,
        index=index,
        benchmark=bench,
        benchmark_symbol="BM",
        allocations=alloc,
        rebalances=rebalances,
        prices=prices,
        assets=assets,
        sources=["demo"],
    )


def test_view_metrics_are_risk_metrics_of_the_period_slice():
    inputs = _inputs()
    view = A.build_performance_view(inputs, D(2023, 6, 30), D(2024, 3, 29))
    seg = periods.period_series(inputs.index, D(2023, 6, 30), D(2024, 3, 29))
    expected = risk.risk_metrics(seg, inputs.benchmark.reindex(seg.index))
    for key in risk.METRIC_DEFINITIONS:
        assert view.metrics[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15)
    assert view.index.iloc[0] == 100.0 and view.benchmark.iloc[0] == 100.0
    assert view.index.iloc[-1] / 100 - 1 == pytest.approx(view.total_return, rel=1e-12)
    assert view.config_label == "Test v2" and view.demo


def test_contributions_add_up_to_the_return_before_costs():
    view = A.build_performance_view(_inputs(costs=25.0), D(2023, 3, 31), D(2024, 6, 28))
    att = view.attribution
    assert att["cost_drag"] > 0
    assert abs(att["residual"]) < 1e-12
    assert att["assets"] - att["cost_drag"] == pytest.approx(view.total_return, abs=1e-12)
    assert view.sector_contribution["contribution"].sum() == pytest.approx(att["assets"], abs=1e-15)
    assert set(view.sector_contribution["sector"]) == {"Tech", "Energy"}


def test_trades_weights_and_tables():
    view = A.build_performance_view(_inputs(costs=10.0), D(2023, 3, 31), D(2023, 12, 29))
    assert len(view.rebalances) == 9  # month ends Apr .. Dec
    assert (view.rebalances["buys"] + view.rebalances["sells"] <= 2).all()
    first = view.rebalances.iloc[0]
    day = view.trades[view.trades["date"] == first["date"]]
    assert day["trade"].abs().sum() == pytest.approx(first["turnover"], rel=1e-9)
    assert view.weights_history.index[0] == pd.Timestamp("2023-03-31")  # in force at the start
    assert view.weights_now["weight"].sum() == pytest.approx(1.0)
    assert len(view.worst_days) == A.WORST_N
    assert view.worst_days["index"].is_monotonic_increasing
    assert len(view.stress) == A.STRESS_MONTHS
    assert view.stress["benchmark"].is_monotonic_increasing
    assert list(view.correlation.columns[:2]) == ["Index", "BM"]
    assert view.correlation.loc["Index", "Index"] == pytest.approx(1.0)
    assert view.rolling.index[0] > pd.Timestamp("2023-03-31")
    assert {"vol_63", "sharpe_252", "beta_63", "excess_252"} <= set(view.rolling.columns)


def test_view_refuses_a_period_without_trading_days():
    with pytest.raises(ValidationFailed) as err:
        A.build_performance_view(_inputs(), D(2023, 1, 7), D(2023, 1, 8))  # a weekend
    assert "end" in err.value.errors


# --------------------------------------------------------------------------- the sections, one by one
def test_the_view_is_its_sections_composed():
    """Every field of the view comes from exactly one section builder (or the header), with the same values."""
    import dataclasses

    inputs = _inputs(costs=10.0)
    start, end = D(2023, 3, 31), D(2024, 3, 29)
    view = A.build_performance_view(inputs, start, end)
    cut = A.period_slice(inputs, start, end)
    held = A._holdings(inputs, cut)
    series = A.series_section(cut)
    holdings = A.holdings_section(inputs, cut, held)
    trades = A.trades_section(inputs, cut, held)
    sections = [
        A.summary_section(cut),
        series,
        A.trailing_section(cut),
        A.drawdown_section(cut),
        A.calendar_section(cut),
        A.rolling_section(cut),
        holdings,
        trades,
        A.attribution_section(inputs, cut, held, trades["rebalances"]),
        A.benchmark_section(inputs, cut, holdings["weights_now"], series["returns"]),
    ]
    owned = [key for section in sections for key in section]
    assert len(owned) == len(set(owned))  # no field built twice
    header = {
        "config_id",
        "config_label",
        "config_name",
        "config_version",
        "params",
        "start",
        "end",
        "base_date",
        "end_date",
        "benchmark_symbol",
        "sources",
        "demo",
        "warnings",
    }
    assert set(owned) | header == {f.name for f in dataclasses.fields(A.PerformanceView)}
    for section in sections:
        for key, value in section.items():
            got = getattr(view, key)
            if isinstance(value, pd.DataFrame):
                pd.testing.assert_frame_equal(got, value)
            elif isinstance(value, pd.Series):
                pd.testing.assert_series_equal(got, value)
            elif key in ("metrics", "benchmark_metrics"):
                assert got.keys() == value.keys()
            else:
                assert got == value


def test_period_slice_cuts_at_the_base_and_warns_about_benchmark_gaps():
    inputs = _inputs()
    cut = A.period_slice(inputs, D(2023, 6, 30), D(2024, 3, 29))
    assert cut.base_ts == pd.Timestamp("2023-06-30") and cut.end_ts == pd.Timestamp("2024-03-29")
    assert cut.benchmark is not None and cut.warnings == []
    gappy = inputs.benchmark.copy()
    gappy.loc["2023-08-01":"2023-08-10"] = np.nan
    import dataclasses

    cut = A.period_slice(dataclasses.replace(inputs, benchmark=gappy), D(2023, 6, 30), D(2024, 3, 29))
    assert len(cut.warnings) == 1 and "some dates" in cut.warnings[0]
    late = inputs.benchmark.loc["2024-06-01":]
    cut = A.period_slice(dataclasses.replace(inputs, benchmark=late), D(2023, 6, 30), D(2024, 3, 29))
    assert cut.benchmark is None and "no prices in this period" in cut.warnings[0]


def test_series_section_rebases_to_100_and_returns_are_daily_changes():
    cut = A.period_slice(_inputs(), D(2023, 6, 30), D(2023, 12, 29))
    s = A.series_section(cut)
    assert s["index"].iloc[0] == 100.0 and s["benchmark"].iloc[0] == 100.0
    np.testing.assert_allclose(s["index"].to_numpy(), cut.level.to_numpy() / cut.level.iloc[0] * 100, rtol=1e-15)
    lv = cut.level.to_numpy()
    np.testing.assert_allclose(s["returns"]["index"].to_numpy(), lv[1:] / lv[:-1] - 1, rtol=1e-12)
    assert s["returns"].index[0] > cut.base_ts  # the base day has no return of its own


def test_calendar_and_trailing_sections_use_the_period_math():
    from core.quant import periods

    cut = A.period_slice(_inputs(), D(2023, 3, 31), D(2024, 3, 29))
    cal = A.calendar_section(cut)
    pd.testing.assert_frame_equal(cal["monthly_returns"], periods.monthly_returns(cut.level))
    yearly = cal["yearly_returns"]
    np.testing.assert_allclose(yearly["excess"], yearly["index"] - yearly["benchmark"])
    months = cal["monthly_returns"].to_numpy(dtype=float)
    np.testing.assert_allclose(np.nanprod(1 + months, axis=1) - 1, yearly["index"].to_numpy(), rtol=1e-12)
    trailing = A.trailing_section(cut)["trailing"]
    expected = periods.trailing_returns(cut.full, as_of=cut.end_ts)
    assert trailing["index"].to_dict() == pytest.approx(
        {k: (np.nan if v is None else v) for k, v in expected.items()}, nan_ok=True
    )


def test_holdings_and_benchmark_sections_by_hand():
    inputs = _inputs()
    cut = A.period_slice(inputs, D(2023, 6, 30), D(2023, 7, 31))
    held = A._holdings(inputs, cut)
    h = A.holdings_section(inputs, cut, held)
    assert h["weights_now"]["weight"].sum() == pytest.approx(1.0)
    assert list(h["sector_weights"]["sector"]) == list(h["weights_now"]["sector"])  # one asset per sector
    assert list(h["weights_history"].index) == [pd.Timestamp("2023-06-30"), pd.Timestamp("2023-07-31")]
    series = A.series_section(cut)
    b = A.benchmark_section(inputs, cut, h["weights_now"], series["returns"])
    worst = series["returns"]["index"].nsmallest(A.WORST_N)
    assert b["worst_days"]["index"].tolist() == worst.tolist()
    # the worst week by hand: Friday closes (and the last, partial week), the first week from the base (a Friday)
    closes = cut.level[(cut.level.index.day_of_week == 4) | (cut.level.index == cut.end_ts)]
    weekly = (closes / closes.shift(1) - 1).iloc[1:]
    assert len(b["worst_weeks"]) == len(weekly) == 5
    assert b["worst_weeks"]["index"].iloc[0] == pytest.approx(weekly.min(), rel=1e-12)
