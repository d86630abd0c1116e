"""The rules behind the charts (issue 12, item 7), with hand-computed answers: partial-year labels, the
heatmap's year total, one colour per sector, and range windows rebased at their base."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.quant.periods import YEAR_TOTAL, monthly_with_year_total, period_return, year_labels
from core.services.palette import EXTRA_COLORS, OTHER_COLOR, SECTOR_COLORS, sector_color


def test_partial_years_are_marked() -> None:
    dates = pd.bdate_range("2018-03-02", "2026-11-27")
    labels = year_labels(dates)
    assert labels[2018] == "2018 (from 03-02)"
    assert labels[2019] == "2019" and labels[2025] == "2025"
    assert labels[2026] == "2026 (YTD)"
    assert year_labels(dates, to_date=False)[2026] == "2026 (to 11-27)"
    # a series that ends on the year's last weekday is complete at the end (31 Dec 2022 is a Saturday)
    assert year_labels(pd.bdate_range("2021-12-31", "2022-12-30"))[2022] == "2022"
    assert year_labels(pd.bdate_range("2024-03-01", "2024-06-28"))[2024] == "2024 (03-01 to 06-28)"
    assert year_labels(pd.DatetimeIndex([])) == {}


def test_the_year_total_is_the_compounded_months() -> None:
    # Levels at month ends: base 100 on 2020-11-30, then +10 % (Dec), -10 % and +20 % (Jan, Feb 2021).
    levels = pd.Series(
        [100.0, 110.0, 99.0, 118.8], index=pd.DatetimeIndex(["2020-11-30", "2020-12-31", "2021-01-29", "2021-02-26"])
    )
    table = monthly_with_year_total(levels)
    assert table.loc[2020, 12] == pytest.approx(0.10)
    assert table.loc[2021, 1] == pytest.approx(-0.10) and table.loc[2021, 2] == pytest.approx(0.20)
    assert table.loc[2021, YEAR_TOTAL] == pytest.approx(118.8 / 110.0 - 1.0)  # 0.08
    assert table.loc[2021, YEAR_TOTAL] == pytest.approx(0.9 * 1.2 - 1.0)
    months = table.drop(columns=[YEAR_TOTAL]).to_numpy(dtype=float)
    np.testing.assert_allclose(np.nanprod(1 + months, axis=1) - 1, table[YEAR_TOTAL].to_numpy())


def test_one_colour_per_sector_whatever_else_is_shown() -> None:
    assert sector_color("Information Technology") == SECTOR_COLORS["information technology"]
    assert sector_color("information technology ") == sector_color("Information Technology")
    assert sector_color(None) == sector_color("Other") == sector_color("") == OTHER_COLOR
    unknown = sector_color("Crypto Assets")
    assert unknown in EXTRA_COLORS and sector_color("crypto assets") == unknown
    # the colour depends on the name only, not on the other sectors or their order
    from ui.charts import allocation_area, allocation_pie

    a = allocation_pie(
        pd.DataFrame({"sector": ["Energy", "Crypto Assets"], "weight": [0.6, 0.4]}),
        "sector",
        "x",
        color_of=sector_color,
    )
    b = allocation_area(
        pd.DataFrame(
            {"Crypto Assets": [0.5], "Health Care": [0.2], "Energy": [0.3]}, index=pd.DatetimeIndex(["2024-01-31"])
        ),
        "y",
        color_of=sector_color,
    )
    pie = dict(zip(a.data[0].labels, a.data[0].marker.colors))
    area = {t.name: t.line.color for t in b.data}
    assert pie["Energy"] == area["Energy"] and pie["Crypto Assets"] == area["Crypto Assets"]


def test_a_window_is_rebased_at_the_analytics_base() -> None:
    from ui.charts import clip_range, range_start, rebased

    index = pd.bdate_range("2023-01-02", "2025-06-30")
    values = pd.Series(np.linspace(100.0, 150.0, len(index)), index=index)
    start = range_start(values.index, "1Y")
    assert start == pd.Timestamp("2024-06-30")  # a Sunday: the base is the Friday before
    window = rebased(clip_range(values, start))
    assert window.index[0] == pd.Timestamp("2024-06-28") and window.iloc[0] == 100.0
    assert window.iloc[-1] == pytest.approx(100.0 * (1.0 + period_return(values, "1Y")), rel=1e-12)
    assert range_start(values.index, "YTD") == pd.Timestamp("2024-12-31")
    assert clip_range(values, None) is values
    assert dt.date(2024, 6, 28) == window.index[0].date()


# --------------------------------------------------------------------------- margins preset for the labels (issue 17)
def _line_figure(values, names=("Index",), tickformat=None, title=None):  # type: ignore[no-untyped-def]
    import plotly.graph_objects as go

    from ui import charts

    dates = pd.bdate_range("2024-01-01", periods=len(values))
    fig = go.Figure(
        [go.Scatter(x=dates, y=np.asarray(values, dtype=float) * (i + 1), name=n) for i, n in enumerate(names)]
    )
    charts.layout(fig, "A chart")
    fig.update_yaxes(tickformat=tickformat, title=title)
    return fig


def test_preset_margins_grow_with_the_labels_legend_and_axis_title_and_never_shrink():
    from ui import charts

    def margins(fig):  # type: ignore[no-untyped-def]
        charts.preset_margins(fig)
        return fig.layout.margin.l, fig.layout.margin.b

    small = margins(_line_figure([1, 2, 3]))
    wide = margins(_line_figure([1, 2_000, 3_000_000], tickformat=",.0f"))
    assert wide[0] > small[0] and wide[1] == small[1]
    titled = margins(_line_figure([1, 2, 3], title="Level"))
    assert titled[0] > small[0]
    two = margins(_line_figure([1, 2, 3], names=("Index", "SPY")))
    assert two[1] > small[1]  # a legend row under the plot
    many = margins(_line_figure([1, 2, 3], names=tuple(f"A rather long series name {i}" for i in range(12))))
    assert many[1] > two[1]  # the legend wraps onto more rows
    negative = margins(_line_figure([-0.35, -0.1, 0.0], tickformat=".0%"))
    positive = margins(_line_figure([0.35, 0.1, 0.0], tickformat=".0%"))
    assert negative[0] > positive[0]  # the minus sign
    roomy = _line_figure([1, 2, 3])
    roomy.update_layout(margin={"l": 300, "b": 200})
    assert margins(roomy) == (300, 200)


def test_preset_margins_leave_what_they_cannot_estimate_to_plotly():
    import plotly.graph_objects as go

    from ui import charts

    standing = go.Figure([go.Bar(x=["a", "b"], y=[1, 2])])
    pie = go.Figure([go.Pie(labels=["a", "b"], values=[1, 2])])
    wide_heatmap = go.Figure([go.Heatmap(z=np.eye(20), x=[f"S{i}" for i in range(20)], y=[f"S{i}" for i in range(20)])])
    unknown_bar = go.Figure([go.Heatmap(z=np.eye(2), x=["a", "b"], y=["a", "b"])])  # its colour bar's size is Plotly's
    empty = go.Figure()
    words = go.Figure([go.Scatter(x=[1, 2], y=["low", "high"])])
    nothing = go.Figure([go.Scatter(x=[1, 2], y=[float("nan"), None])])
    for fig in (standing, pie, wide_heatmap, unknown_bar, empty, words, nothing):
        charts.layout(fig, "A chart")
        before = (fig.layout.margin.l, fig.layout.margin.b)
        charts.preset_margins(fig)
        assert (fig.layout.margin.l, fig.layout.margin.b) == before
    rows = go.Figure([go.Bar(y=["AAPL", "A much longer name"], x=[0.5, 0.5], orientation="h")])
    charts.layout(rows, "Bars")
    charts.preset_margins(rows)
    short = go.Figure([go.Bar(y=["AAPL"], x=[0.5], orientation="h")])
    charts.layout(short, "Bars")
    charts.preset_margins(short)
    assert rows.layout.margin.l > short.layout.margin.l > 10


def test_preset_margins_hold_a_histogram_an_x_title_and_a_numeric_x_axis():
    import plotly.graph_objects as go

    from ui import charts

    counts = go.Figure([go.Bar(x=[-0.3, -0.2, -0.1], y=[12, 480, 7])])  # bars standing on a numeric x: a histogram
    charts.layout(counts, "Paths")
    few = go.Figure([go.Bar(x=[-0.3, -0.2, -0.1], y=[1, 4, 7])])
    charts.layout(few, "Paths")
    charts.preset_margins(counts)
    charts.preset_margins(few)
    assert counts.layout.margin.l > few.layout.margin.l > 10  # "480" is wider than "7"
    assert counts.layout.margin.r == 10  # bars: the last bar is inside the range, no label on the edge
    fan = go.Figure([go.Scatter(x=[0.0, 5.0, 10.0], y=[100, 150, 200], name="median")])
    charts.layout(fan, "Projection")
    plain = go.Figure(fan)
    fan.update_layout(xaxis_title="years")
    charts.preset_margins(fan)
    charts.preset_margins(plain)
    assert fan.layout.margin.b > plain.layout.margin.b  # the x-axis title's row
    assert fan.layout.margin.r > 10 and plain.layout.margin.r > 10  # "10" on the right edge sticks out


def test_the_correlation_heatmap_is_preset_whatever_its_width():
    from ui import charts

    def matrix(names):  # type: ignore[no-untyped-def]
        return pd.DataFrame(np.eye(len(names)), index=names, columns=names)

    small = charts.preset_margins(charts.correlation_heatmap(matrix(["AAPL", "MSFT", "SPY"])))
    assert small.layout.xaxis.tickangle is None  # few short labels lie flat
    names = [f"SYN{i:04d}" for i in range(12)]
    turned = charts.preset_margins(charts.correlation_heatmap(matrix(names)))
    longer = charts.preset_margins(charts.correlation_heatmap(matrix([n + "-LONGER" for n in names])))
    assert turned.layout.xaxis.tickangle == -45  # turned at any width, so the margin under them is known
    assert longer.layout.margin.b > turned.layout.margin.b > small.layout.margin.b
    # the colour bar's thickness and ticks are set by the builder, so its room on the right is preset
    assert turned.layout.margin.r == small.layout.margin.r > 10 + charts.COLORBAR_THICKNESS
    assert turned.layout.margin.l > small.layout.margin.l  # SYN0000 is longer than AAPL
