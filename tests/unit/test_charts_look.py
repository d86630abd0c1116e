"""What a newcomer saw wrong in the charts (walk of 2026-12): a log axis's tick labels cut at the left under its title,
the stress bars' labels cut and under the legend, and the dark theme's navy bars and faint bands. Each is checked on
the figure as built and preset (:func:`ui.charts.preset_margins`, :func:`ui.charts.for_dark`), the one the chart
element sends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import charts


def _levels(last: float = 191.0, days: int = 1300) -> pd.Series:
    dates = pd.bdate_range("2021-11-30", periods=days)
    return pd.Series(np.geomspace(100.0, last, days), index=dates)


@pytest.mark.parametrize("base", [100.0, None])  # a window rebased to 100 (5Y), and the stored levels (Max)
def test_a_log_axis_gets_the_left_margin_its_tick_labels_and_title_need(base) -> None:
    """Log scale on, the main chart kept Plotly's 10 px: "00" for 100, the axis title over the numbers. Its labels
    read like a linear axis's (100 ... 190), so its margin is the linear one's: the widest label, and the title."""
    index, benchmark = _levels(), _levels(160.0)
    log = charts.preset_margins(charts.index_vs_benchmark(index, benchmark, "^GSPC", log_scale=True, base=base))
    linear = charts.preset_margins(charts.index_vs_benchmark(index, benchmark, "^GSPC", log_scale=False, base=base))
    assert log.layout.yaxis.type == "log" and log.layout.yaxis.title.text
    widest = charts._label_px("190")
    assert log.layout.margin.l >= widest + charts._LEFT_PAD + charts._Y_TITLE
    assert (log.layout.margin.l, log.layout.margin.b) == (linear.layout.margin.l, linear.layout.margin.b)


def test_a_log_axis_margin_follows_thousands_and_ignores_what_it_cannot_draw() -> None:
    small = go.Figure([go.Scatter(x=[1, 2, 3], y=[1.0, 5.0, 9.0])])
    large = go.Figure([go.Scatter(x=[1, 2, 3], y=[0.0, -5.0, 9_000.0])])  # zero and below: not on a log axis
    for fig in (small, large):
        charts.layout(fig, "Levels")
        fig.update_yaxes(type="log")
        charts.preset_margins(fig)
    assert large.layout.margin.l > small.layout.margin.l > 10


def _covered(names: list[str]) -> pd.DataFrame:
    returns = np.linspace(-0.35, 0.04, len(names))
    return pd.DataFrame({"scenario": names, "index_return": returns, "benchmark_return": returns * 1.1})


def test_the_stress_bars_hold_their_names_their_percent_labels_and_their_legend() -> None:
    """The stress chart stood its bars on the scenario names with Plotly's 10 px margins: the percent labels cut to
    "%", the legend over the first name, the last name cut at 390 px. Lying bars: the names are row labels the left
    margin holds, the percent labels sit under the plot and the legend under them, and the right edge's label fits."""
    from ui.risk_view import _stress_figure

    names = ["2018 Q4 sell-off", "COVID crash", "2022 rate shock"]
    fig = charts.preset_margins(_stress_figure(_covered(names), "^GSPC", "price"))
    assert [t.orientation for t in fig.data] == ["h", "h"] and list(fig.data[0].y) == names
    assert fig.layout.xaxis.tickformat.endswith("%")
    margin = fig.layout.margin
    assert margin.l >= max(charts._label_px(n) for n in names) + charts._LEFT_PAD
    assert margin.b >= charts._X_LABELS + charts._LEGEND_ROW  # the value labels, then one legend row
    assert margin.r >= charts._NUMERIC_X_RIGHT
    longer = charts.preset_margins(_stress_figure(_covered([*names, "Dot-com bust 2000-02"]), None, "price"))
    assert longer.layout.margin.l > margin.l
    alone = _covered(names).assign(benchmark_return=np.nan)  # no benchmark: one trace, no legend
    assert charts.preset_margins(_stress_figure(alone, None, "price")).layout.margin.b < margin.b


def test_grouped_horizontal_bars_leave_room_for_their_legend() -> None:
    one = go.Figure([go.Bar(y=["a", "b"], x=[0.1, 0.2], orientation="h", name="Index")])
    two = go.Figure([*one.data, go.Bar(y=["a", "b"], x=[0.1, 0.3], orientation="h", name="Benchmark")])
    for fig in (one, two):
        charts.layout(fig, "Bars")
        charts.preset_margins(fig)
    assert two.layout.margin.b == one.layout.margin.b + charts._LEGEND_ROW


# ------------------------------------------------------------------------------------------------------ dark theme
def _too_dark(color: str) -> bool:
    rgb = charts._rgb(color)
    return rgb is not None and any(charts._rgb(c) == rgb for c in charts.DARK_THEME_COLORS)


def _colors(fig: go.Figure) -> list[str]:
    out = []
    for trace in fig.data:
        for part, names in (("line", ("color",)), ("marker", ("color", "colors")), (None, ("fillcolor",))):
            holder = trace if part is None else getattr(trace, part, None) if part in trace else None
            for name in names:
                value = holder[name] if holder is not None and name in holder else None
                out += [v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, str)]
    return out


def test_for_dark_swaps_fills_and_their_transparent_forms_keeping_the_transparency() -> None:
    band = charts.translucent(charts.INDEX_COLOR, 0.22)
    fig = go.Figure(
        [
            go.Scatter(y=[1, 2], fill="tonexty", fillcolor=band, line={"width": 0}),
            go.Scatter(y=[1, 2], fill="tozeroy", fillcolor=charts.INDEX_COLOR, line={"color": "rgb(31, 78, 121)"}),
            go.Bar(y=[1, 2], marker={"color": [charts.INDEX_COLOR, charts.NEUTRAL_COLOR]}),
            go.Scatter(y=[1, 2], fillcolor="rgba(10,20,30,0.5)", fill="tozeroy"),  # not a fixed colour: kept
        ]
    )
    charts.for_dark(fig)
    dark = charts.DARK_THEME_COLORS[charts.INDEX_COLOR]
    assert fig.data[0].fillcolor == charts.translucent(dark, 0.22)
    assert fig.data[1].fillcolor == dark and fig.data[1].line.color == dark
    assert list(fig.data[2].marker.color) == [dark, charts.DARK_THEME_COLORS[charts.NEUTRAL_COLOR]]
    assert fig.data[3].fillcolor == "rgba(10,20,30,0.5)"


def test_the_colours_plotly_gives_unnamed_traces_follow_the_dark_theme() -> None:
    assert charts.colorway() == list(charts.CATEGORY_COLORS)
    assert any(_too_dark(c) for c in charts.colorway())
    assert not any(_too_dark(c) for c in charts.colorway(dark=True))
    assert len(charts.colorway(dark=True)) == len(charts.CATEGORY_COLORS)


def test_the_stress_bars_and_the_monte_carlo_bands_are_light_in_the_dark_theme() -> None:
    """Dark theme: the stress chart's Index bars stayed navy on near-black, and the Monte Carlo p5-p95 band (a fixed
    Plotly blue at 15 %) and its legend swatch could hardly be seen."""
    from ui.risk_view import _fan, _stress_figure

    class View:
        basis = "price"

        @staticmethod
        def monte_carlo_table() -> pd.DataFrame:
            years = np.linspace(0, 10, 121)
            return pd.DataFrame(
                {"years": years, **{f"p{p}": 10_000 * (1 + p / 100) ** years for p in (5, 25, 50, 75, 95)}}
            )

    stress = _stress_figure(_covered(["2018 Q4 sell-off", "COVID crash"]), "^GSPC", "price")
    fan = _fan(View())  # type: ignore[arg-type]
    assert any(_too_dark(c) for c in _colors(stress)) and any(_too_dark(c) for c in _colors(fan))  # light theme
    bands = [t for t in fan.data if t.fill]
    assert [t.name for t in bands] == ["p5-p95", "p25-p75"]
    for fig in (charts.for_dark(stress), charts.for_dark(fan)):
        assert _colors(fig) and not any(_too_dark(c) for c in _colors(fig)), _colors(fig)
    for band in bands:  # the index's light stand-in, opaque enough to show on the dark background
        red, green, blue = charts._rgb(band.fillcolor) or (0, 0, 0)
        assert (red, green, blue) == charts._rgb(charts.DARK_THEME_COLORS[charts.INDEX_COLOR])
        assert float(band.fillcolor.rstrip(")").split(",")[3]) >= 0.2
