"""One rule, one answer (issue 13): on the same stored data the Dashboard, the reports, Diagnostics and the compute
give the same benchmark, the same period bounds and the same freshness, on SQLite and PostgreSQL.

The data is built to catch a screen with its own rule: ``^GSPC`` is a benchmark asset but *inactive*, beside an
active benchmark ``^STOXX`` (which sorts after it, so neither "prefer ^GSPC" nor "first by symbol" over all
benchmarks finds it); ``^STOXX`` last traded on Wednesday while ``^GSPC`` and the constituents traded on Friday; and
"today" is a Saturday (a clock-based period or a calendar-day staleness would differ from the business-day rule).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

UTC = dt.timezone.utc
FRIDAY = dt.date(2026, 3, 13)
WEDNESDAY = dt.date(2026, 3, 11)
SATURDAY = dt.datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
ACTIVE_BENCHMARK = "^STOXX"
#: Business days stale on Saturday: ^STOXX misses Thursday and Friday; Friday's closes are complete.
STALE_ON_SATURDAY = {ACTIVE_BENCHMARK: 2, "^GSPC": 0}
KPI_PERIODS = ("MTD", "YTD", "1Y")


@pytest.fixture
def market(db):
    """Demo prices to Friday, ^GSPC made inactive, an active benchmark ^STOXX to Wednesday; the default config
    computed (by the compute service) over it."""
    from sqlalchemy import update

    from core.db import unit_of_work
    from core.models import Asset, Price
    from core.services import compute, strategies
    from core.services.bootstrap import seed_demo

    seed_demo(years=2.5, end=FRIDAY)
    days = pd.bdate_range(FRIDAY - dt.timedelta(days=int(365.25 * 2.5)), WEDNESDAY)
    closes = 4000.0 * np.exp(np.cumsum(np.random.default_rng(13).normal(2e-4, 0.009, len(days))))
    with unit_of_work() as session:
        session.execute(update(Asset).where(Asset.symbol == "^GSPC").values(is_active=False))
        stoxx = Asset(
            symbol=ACTIVE_BENCHMARK,
            name="Stoxx 600",
            asset_class="index",
            is_benchmark=True,
            is_active=True,
            source="demo",
        )
        session.add(stoxx)
        session.flush()
        session.add_all([Price(asset_id=stoxx.id, date=d.date(), close=float(c)) for d, c in zip(days, closes)])
        session.commit()
    config = strategies.ensure_default_config()
    compute.compute_config(config.id, actor="test")
    return config.id


def test_one_benchmark_everywhere(market):
    from core import health
    from core.db import unit_of_work
    from core.services import analytics, compute, dashboard
    from core.services.market import benchmark_symbol, load_market_inputs
    from core.services.reporting.content import build_document

    config_id = market
    with unit_of_work() as session:
        inputs = load_market_inputs(session)
        assert benchmark_symbol(session) == ACTIVE_BENCHMARK
    run = compute.run_backtest(_params(config_id), inputs)
    board = dashboard.dashboard_data(config_id)
    view_inputs = analytics.load_view_inputs(config_id)
    view = analytics.build_performance_view(view_inputs, *analytics.resolve_period(view_inputs, "YTD"))
    document = build_document("performance", "YTD", view, generated_by="test", generated_at=SATURDAY)
    card = health.run_checks(now=SATURDAY, only=("freshness",)).check("freshness")

    chosen = {
        "compute": inputs.benchmark_symbol,
        "dashboard": board.benchmark_symbol,
        "report inputs": view_inputs.benchmark_symbol,
        "report view": view.benchmark_symbol,
        "report document": document.benchmark_symbol,
        "diagnostics": card.facts.get("benchmark"),
    }
    assert chosen == {where: ACTIVE_BENCHMARK for where in chosen}

    # and the same series: the compute's benchmark, the Dashboard's (rebased) and the reports' are one price series
    bench_compute = run.benchmark.dropna()
    bench_report = view_inputs.benchmark.reindex(bench_compute.index)
    np.testing.assert_allclose(bench_report.to_numpy(), bench_compute.to_numpy(), rtol=1e-12)
    board_bench = board.benchmark.reindex(bench_compute.index).dropna()
    ratio = board_bench / bench_compute.reindex(board_bench.index)
    np.testing.assert_allclose(ratio.to_numpy(), ratio.iloc[0], rtol=1e-12)  # rebased, same shape
    assert bench_compute.index[-1].date() == FRIDAY  # Wednesday's close carried forward


def _params(config_id: int) -> dict:
    from core.db import unit_of_work
    from core.models import StrategyConfigRow

    with unit_of_work() as session:
        return dict(session.get(StrategyConfigRow, config_id).params)


def test_one_period_rule_everywhere(market):
    """The Dashboard's KPIs, the reports' periods (bounds, total return, trailing table) and the compute's stored
    index and metrics agree; all end on the last stored date (Friday), not on the clock (Saturday)."""
    from core.db import unit_of_work
    from core.quant import periods
    from core.services import analytics, compute, dashboard
    from core.services.market import load_market_inputs

    config_id = market
    board = dashboard.dashboard_data(config_id)
    inputs = analytics.load_view_inputs(config_id)
    stored = compute.stored_index(config_id)
    with unit_of_work() as session:
        run = compute.run_backtest(_params(config_id), load_market_inputs(session))
    assert list(run.values.index) == list(stored.index)  # stored dates: the compute's
    np.testing.assert_allclose(run.values.to_numpy(), stored.to_numpy(), rtol=1e-12)
    assert board.as_of == inputs.as_of == stored.index[-1].date() == FRIDAY

    for period in KPI_PERIODS:
        start, end = analytics.resolve_period(inputs, period)
        assert end == FRIDAY
        assert start == periods.base_date(period, FRIDAY)
        view = analytics.build_performance_view(inputs, start, end)
        base = periods.base_level(stored, start)
        assert base is not None and view.base_date == base[1].date()
        # the Dashboard's KPI is the report's period return, index and benchmark
        assert board.kpis.loc[period, "index"] == pytest.approx(view.total_return, rel=1e-12, abs=1e-15)
        assert board.kpis.loc[period, "benchmark"] == pytest.approx(
            view.benchmark_metrics["total_return"], rel=1e-9, abs=1e-12
        )
        # ... and the reports' trailing table where it has the period
        if period in view.trailing.index:
            assert view.trailing.loc[period, "index"] == pytest.approx(view.total_return, rel=1e-12, abs=1e-15)

    # since inception: the report's max period is the compute's stored metrics, over the same bounds
    start, end = analytics.resolve_period(inputs, "max")
    assert (start, end) == (stored.index[0].date(), FRIDAY)
    full = analytics.build_performance_view(inputs, start, end)
    metrics = compute.stored_metrics(config_id)
    for key in ("total_return", "cagr", "volatility", "max_drawdown", "beta"):
        assert full.metrics[key] == pytest.approx(metrics[key][0], rel=1e-9)
        assert run.metrics[key] == pytest.approx(metrics[key][0], rel=1e-9)
    # the Dashboard's calendar table is the period math over its chart series
    pd.testing.assert_series_equal(board.yearly_returns, periods.yearly_returns(board.chart_index))


def test_one_freshness_rule_everywhere(market):
    """On Saturday the Dashboard, the Data screen and Diagnostics count the same business days stale, for the
    benchmark the one rule chooses and for every asset."""
    from core import health
    from core.services import dashboard, universe

    on_dashboard = dashboard.freshness(today=SATURDAY).set_index("symbol")["stale_days"]
    on_data = universe.list_assets(today=SATURDAY).set_index("symbol")["stale_days"]
    card = health.run_checks(now=SATURDAY, only=("freshness",)).check("freshness")
    on_diagnostics = card.tables["freshness"].set_index("symbol")["stale_days"]

    for symbol, stale in STALE_ON_SATURDAY.items():
        assert int(on_dashboard[symbol]) == int(on_data[symbol]) == int(on_diagnostics[symbol]) == stale
    assert card.facts["benchmark"] == ACTIVE_BENCHMARK
    assert card.facts["benchmark_stale_days"] == STALE_ON_SATURDAY[ACTIVE_BENCHMARK]
    symbols = sorted(on_dashboard.index)
    assert sorted(on_diagnostics.index) == sorted(on_data.index) == symbols
    for symbol in symbols:
        assert int(on_dashboard[symbol]) == int(on_data[symbol]) == int(on_diagnostics[symbol])
    assert int(on_dashboard.drop(list(STALE_ON_SATURDAY)).max()) == 0  # the constituents traded on Friday
