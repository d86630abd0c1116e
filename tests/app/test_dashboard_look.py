"""AppTest: the Dashboard's charts tell the analytics' numbers (issue 12, item 7): a range window rebases index and
benchmark to 100 at its start and ends at 100 x (1 + the analytics' period return); charts start at the first
allocation; the monthly heatmap's year column is the yearly return; partial years are marked; one colour per
sector; the risk table shows the benchmark beside the index, from the same risk function."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from tests.app.conftest import ADMIN, ANALYST, make_app, plotly_figures


def _array(value) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A plotly array, whether sent as a list or as a base64 typed array (with its shape for 2-D data)."""
    if isinstance(value, dict) and "bdata" in value:
        shape = value.get("shape", -1)
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).reshape(shape)
    return np.asarray(value, dtype=object)


@pytest.fixture(scope="module")
def data(app_db):  # type: ignore[no-untyped-def]
    from core.services import dashboard, strategies

    return dashboard.dashboard_data(strategies.active_version().id)


@pytest.mark.parametrize("window", ["1Y", "3Y", "YTD"])
def test_a_window_rebases_both_lines_to_100_at_its_start(app_db, data, window: str) -> None:
    from core.quant.periods import period_return

    at = make_app(ADMIN[0])
    at.segmented_control(key="dash_range").set_value(window).run()
    assert not at.exception
    figure = plotly_figures(at)["Index vs benchmark · price return"]
    index_y = _array(figure["data"][0]["y"]).astype(float)
    bench_y = _array(figure["data"][1]["y"]).astype(float)
    assert index_y[0] == pytest.approx(100.0) and bench_y[0] == pytest.approx(100.0)
    expected = period_return(data.index, window)
    assert index_y[-1] == pytest.approx(100.0 * (1.0 + expected), rel=1e-12)
    assert bench_y[-1] == pytest.approx(100.0 * (1.0 + period_return(data.benchmark, window)), rel=1e-12)
    assert figure["layout"]["yaxis"]["title"]["text"].startswith("Rebased to 100 on ")
    # the KPIs of the same windows say the same
    if window in ("YTD", "1Y"):
        assert data.kpis.loc[window, "index"] == pytest.approx(expected, rel=1e-12)


def test_charts_start_at_the_first_allocation(app_db, data) -> None:
    from core.services import compute

    first = compute.stored_allocations(data.config_id).index[0]
    assert data.index.index[0] == first  # the stored index itself starts at the first allocation (compute.run_backtest)
    at = make_app(ANALYST[0])
    figures = plotly_figures(at)
    x = figures["Index vs benchmark · price return"]["data"][0]["x"]
    assert pd.Timestamp(x[0]) == first
    assert data.drawdown.index[0] == first and data.rolling.index[0] == first
    # rolling figures exist only once a full window of real returns does (none are diluted by the flat stretch)
    assert data.rolling["vol_63"].first_valid_index() == data.index.loc[first:].index[63]


def test_heatmap_year_column_is_the_yearly_return_and_partial_years_are_marked(app_db, data) -> None:
    from core.quant import periods
    from core.quant.periods import year_labels

    at = make_app(ADMIN[0])
    figure = plotly_figures(at)["Monthly returns · price return"]
    heat = figure["data"][0]
    assert list(heat["x"])[-1] == "Year"
    z = (
        _array(heat["z"]).astype(float)
        if isinstance(heat["z"], dict)
        else np.asarray([[np.nan if v is None else float(v) for v in row] for row in heat["z"]])
    )
    shown = data.index.loc[pd.Timestamp(data.first_allocation) :]
    yearly = periods.yearly_returns(shown)
    np.testing.assert_allclose(z[:, -1], yearly.to_numpy(), rtol=1e-12)
    compounded = np.nanprod(1.0 + z[:, :12], axis=1) - 1.0
    np.testing.assert_allclose(compounded, yearly.to_numpy(), rtol=1e-9)
    labels = list(heat["y"])
    first = pd.Timestamp(data.first_allocation)
    assert labels[0] == f"{first.year} (from {first:%m-%d})"
    assert labels == list(year_labels(shown.index).values())
    assert all(label.isdigit() for label in labels[1:-1])


def test_one_colour_per_sector_in_the_donut_and_the_area(app_db, data) -> None:
    from core.services.palette import sector_color

    at = make_app(ADMIN[0])
    at.segmented_control(key="dash_section").set_value("Allocation").run()
    figures = plotly_figures(at)
    pie = figures["Allocation now by sector · price return"]["data"][0]
    pie_colors = dict(zip(pie["labels"], pie["marker"]["colors"]))
    area = figures["Allocation over time (by sector) · price return"]
    area_colors = {t["name"]: t["line"]["color"] for t in area["data"]}
    assert pie_colors and area_colors
    for sector, color in {**pie_colors, **area_colors}.items():
        assert color == sector_color(sector), sector
    for sector in set(pie_colors) & set(area_colors):
        assert pie_colors[sector] == area_colors[sector]


def test_the_risk_table_shows_the_benchmark_beside_the_index(app_db, data) -> None:
    from core.quant import risk
    from ui.format import metric_value

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Risk").run()
    table = next(m.value for m in at.markdown if "autoindex-metrics" in m.value)
    assert f"<th>Index</th><th>{data.benchmark_symbol}</th>" in table
    expected = risk.risk_metrics(data.benchmark, None, rf=0.0)
    rows = data.metrics.set_index("key")
    for key in ("total_return", "cagr", "volatility", "sharpe", "max_drawdown", "var_95"):
        unit = rows.loc[key, "unit"]
        assert rows.loc[key, "benchmark"] == pytest.approx(expected[key], rel=1e-12)
        cells = (
            f'<td style="text-align:right">{metric_value(rows.loc[key, "value"], unit)}</td>'
            f'<td style="text-align:right">{metric_value(expected[key], unit)}</td>'
        )
        assert cells in table, key
    assert rows.loc["beta", "benchmark"] is None or pd.isna(rows.loc["beta", "benchmark"])


def test_long_lines_are_sent_at_screen_resolution_keeping_ends_and_extremes() -> None:
    """ui.charts.for_screen (tsdownsample's MinMaxLTTB): at most SCREEN_POINTS real points, the first and the last
    among them, and the series' minimum and maximum; a short series is sent whole."""
    from ui.charts import SCREEN_POINTS, for_screen

    rng = np.random.default_rng(17)
    dates = pd.bdate_range("2015-01-01", periods=2600)
    series = pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates)))), index=dates)
    shown = for_screen(series)
    assert len(shown) <= SCREEN_POINTS < len(series)
    assert shown.index.is_monotonic_increasing and shown.index.isin(series.index).all()
    np.testing.assert_array_equal(shown.to_numpy(), series.loc[shown.index].to_numpy())  # real points, unchanged
    assert shown.index[0] == series.index[0] and shown.index[-1] == series.index[-1]
    assert series.idxmax() in shown.index and series.idxmin() in shown.index
    short = series.iloc[:SCREEN_POINTS]
    pd.testing.assert_series_equal(for_screen(short), short)


def test_rolling_charts_send_their_dates_as_days_at_screen_resolution() -> None:
    """SCREEN_POINTS real points per line, ends and extremes kept, and the x values are the points' own days as
    YYYY-MM-DD (what Plotly reads as dates; half the bytes of the timestamps Plotly writes)."""
    from ui.charts import SCREEN_POINTS, rolling

    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2015-01-01", periods=2600)
    walk = 0.2 * np.exp(np.cumsum(rng.normal(0, 0.02, len(dates))))  # a rolling volatility moves smoothly
    frame = pd.DataFrame({"vol_63": walk}, index=dates)
    trace = rolling(frame, "vol").data[0]
    x, y = list(trace.x), np.asarray(trace.y, dtype=float)
    assert len(x) <= SCREEN_POINTS < len(dates)
    assert all(isinstance(d, str) and len(d) == 10 for d in x)
    days = pd.to_datetime(x)
    np.testing.assert_array_equal(y, frame["vol_63"].loc[days].to_numpy())
    assert days[0] == dates[0] and days[-1] == dates[-1]
    assert frame["vol_63"].idxmax() in days and frame["vol_63"].idxmin() in days


def test_a_long_weights_history_is_stacked_on_real_rows_at_screen_resolution() -> None:
    """ui.charts.allocation_area sends at most AREA_POINTS dates, every trace on the same dates (a stack needs
    them), the first and the last among them, each weight the history's own; a short history is sent whole."""
    from ui.charts import AREA_POINTS, allocation_area

    rng = np.random.default_rng(11)
    dates = pd.date_range("2015-01-02", periods=520, freq="W-FRI")
    raw = rng.dirichlet(np.ones(4), size=len(dates))
    history = pd.DataFrame(raw, index=dates, columns=["Energy", "Financials", "Health Care", "Other"])
    fig = allocation_area(history, "weights")
    xs = [tuple(t.x) for t in fig.data]
    assert len(set(xs)) == 1 and AREA_POINTS // 2 < len(xs[0]) <= AREA_POINTS < len(dates)
    days = pd.DatetimeIndex(pd.to_datetime(list(xs[0])))
    assert days.is_monotonic_increasing and days[0] == dates[0] and days[-1] == dates[-1]
    for trace in fig.data:
        np.testing.assert_array_equal(np.asarray(trace.y, dtype=float), history[trace.name].loc[days].to_numpy())
    # evenly spread: no gap between two kept dates is more than twice the average gap
    gaps = np.diff(days.asi8)
    assert gaps.max() <= 2 * gaps.mean()
    short = history.iloc[:AREA_POINTS]
    assert len(allocation_area(short, "weights").data[0].x) == AREA_POINTS


def test_the_main_chart_draws_real_points_with_the_index_extremes(app_db, data) -> None:
    at = make_app(ADMIN[0])
    assert not at.exception
    trace = plotly_figures(at)["Index vs benchmark · price return"]["data"][0]
    x = pd.DatetimeIndex(pd.to_datetime(list(trace["x"])))
    y = _array(trace["y"]).astype(float)
    chart = data.chart_index
    np.testing.assert_allclose(y, chart.loc[x].to_numpy(), rtol=1e-12)
    assert y.max() == pytest.approx(chart.max(), rel=1e-12) and y.min() == pytest.approx(chart.min(), rel=1e-12)
    assert x[-1] == chart.index[-1] and y[-1] == pytest.approx(chart.iloc[-1], rel=1e-12)


def test_allocation_over_time_by_sector_or_top_holdings(app_db, data) -> None:
    """The Allocation section's view selector: by sector (the default) stacks the sectors' weights, "Top holdings"
    the largest holdings and Other, each with the dashboard service's own columns and weights."""
    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Allocation").run()
    assert not at.exception

    def stacked(view: str, history: pd.DataFrame) -> None:
        fig = plotly_figures(at)[f"Allocation over time ({view}) · price return"]
        names = [t["name"] for t in fig["data"]]
        assert names == [str(c) for c in history.columns], names
        for trace in fig["data"]:  # each point is the stored weight of that column on that date
            dates = pd.to_datetime(list(trace["x"]))
            expected = history[trace["name"]].reindex(dates).to_numpy(dtype=float)
            assert np.allclose(_array(trace["y"]), expected, equal_nan=True)

    stacked("by sector", data.allocation_history_sectors)
    at.radio(key="dash_alloc_view").set_value("Top holdings").run()
    assert not at.exception
    stacked("top holdings", data.allocation_history_assets)
    assert "Allocation over time (by sector) · price return" not in plotly_figures(at)
