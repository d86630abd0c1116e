"""Issue 15, item 7: the price basis is shown on every chart title. Every chart of every Dashboard section, and every
chart of every report type (the titles the HTML and PDF renderers draw), ends with the version's basis ("price
return" or "total return"), for a price-return version and a total-return one; the report cover says it too."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.app.conftest import ANALYST, make_app, plotly_figures

REPORT_TYPES = ("performance", "allocation", "risk", "benchmark")


@pytest.fixture(scope="module")
def versions(app_db) -> dict[str, int]:
    """The demo's active version (price return) and a computed total-return version (not activated)."""
    from core.services import compute, strategies

    total = strategies.save_version(
        "Total return test", {"equal": 1.0, "rebalance": "monthly", "basis": "total_return"}, note="basis titles"
    )
    compute.compute_config(total.id, actor="test")
    price = strategies.active_version()
    assert price.params.get("basis", "price") == "price"
    return {"price return": price.id, "total return": total.id}


@pytest.mark.parametrize("label", ["price return", "total return"])
def test_every_dashboard_chart_title_names_the_basis(app_db, versions, label: str) -> None:
    from ui.dashboard_view import SECTIONS

    at = make_app(ANALYST[0])
    at.selectbox(key="sidebar_config_id").set_value(versions[label]).run()
    assert not at.exception
    titles: list[str] = []
    for section in SECTIONS:
        at.segmented_control(key="dash_section").set_value(section).run()
        assert not at.exception, at.exception
        titles += list(plotly_figures(at))  # a chart without a title is keyed by its element id: it fails below
    other = "total return" if label == "price return" else "price return"
    assert len(titles) >= 12, titles  # main, performance, allocation, risk and the issue-15 risk panels
    assert any(t.startswith("Monte Carlo projection") for t in titles), titles
    for title in titles:
        assert title.endswith(f" · {label}"), title
        assert other not in title, title


@pytest.mark.parametrize("label", ["price return", "total return"])
def test_every_report_chart_title_and_the_cover_name_the_basis(app_db, versions, label: str) -> None:
    from core.services import analytics
    from core.services.reporting.content import build_document
    from core.services.reporting.html import figure

    inputs = analytics.load_view_inputs(versions[label])
    view = analytics.build_performance_view(inputs, *analytics.resolve_period(inputs, "max"))
    other = "total return" if label == "price return" else "price return"
    for report_type in REPORT_TYPES:
        doc = build_document(
            report_type,
            "max",
            view,
            generated_by="tester",
            generated_at=dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc),
        )
        assert doc.config_label.endswith(f" · {label}")
        charts = doc.charts()
        assert charts, report_type
        for chart in charts:
            assert chart.title.endswith(f" · {label}") and other not in chart.title, (report_type, chart.title)
            assert figure(chart)["layout"]["title"]["text"] == chart.title  # what the HTML draws (PDF: the same)
        if report_type == "risk":
            assert any(c.title.startswith("Monte Carlo fan") for c in charts)
