"""Issue 15 on SQLite and PostgreSQL: risk-free rate, per-version benchmark, constraints and total return through
the stored compute; dividends and the demo factor set; the risk views; factor import (all or nothing, admins);
the risk report's "Monte Carlo", "Stress scenarios" and "Factor regression" sections in every format."""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.errors import ImportValidationError, PermissionDenied, ValidationFailed

RATE = 0.03
ADMIN = SimpleNamespace(username="root")
ANALYST = SimpleNamespace(username="anna")


def _setup(monkeypatch, params: dict | None = None) -> int:
    from core.config import reset_settings_cache
    from core.services import compute, strategies, users
    from core.services.bootstrap import seed_demo

    monkeypatch.setenv("RISK_FREE_RATE", str(RATE))
    reset_settings_cache()
    seed_demo(years=3)
    users.create_user("root", "Root", "root's long password 1", role="admin")
    users.create_user("anna", "Anna", "anna's long password 1", role="analyst")
    cfg = strategies.save_version("Issue 15", params or {"equal": 1.0, "rebalance": "monthly"}, activate=True)
    compute.compute_config(cfg.id)
    return cfg.id


def _sharpe(levels: pd.Series, rate: float) -> float:
    r = levels.pct_change().dropna().to_numpy()
    ex = r - ((1 + rate) ** (1 / 252) - 1)
    return float(ex.mean() / ex.std(ddof=1) * math.sqrt(252))


PARAMS = {
    "equal": 0.5,
    "risk_parity": 0.5,
    "rebalance": "monthly",
    "basis": "total_return",
    "benchmark_blend": {"^GSPC": 0.6, "IEF": 0.4},
    "comparisons": ["GLD"],
    "sector_caps": {"Information Technology": 0.3},
    "min_weight": 0.01,
    "exclusions": ["TSLA"],
}


def test_stored_compute_uses_rate_basis_blend_and_caps(db, monkeypatch):
    from core.db import unit_of_work
    from core.quant.engine import fixed_weight_blend
    from core.quant.risk import risk_metrics
    from core.services import analytics, compute, market
    from core.services import prices as price_store

    cid = _setup(monkeypatch, PARAMS)
    with unit_of_work() as session:
        divs = price_store.load_dividends(session)
        assert not divs.empty and "^GSPC" not in divs.columns and divs.notna().sum().sum() > 20
        inputs = market.load_market_inputs(session, config=compute.parse_params(PARAMS))
        assert market.risk_free(session).rate == RATE
    levels = compute.stored_index(cid)
    stored = compute.stored_metrics(cid)
    bench = fixed_weight_blend(market._levels(inputs, ["^GSPC", "IEF"], "total_return"), {"^GSPC": 0.6, "IEF": 0.4})
    expected = risk_metrics(levels, bench.reindex(levels.index).ffill(), rf=RATE)
    assert stored["sharpe"][0] == pytest.approx(_sharpe(levels, RATE), rel=1e-9)
    assert stored["alpha"][0] == pytest.approx(expected["alpha"], rel=1e-9)
    allocations = compute.stored_allocations(cid)
    assert "TSLA" not in allocations.columns or (allocations["TSLA"] == 0).all()
    sectors = inputs.asset_info["sector"]
    tech = [s for s in allocations.columns if sectors.get(s) == "Information Technology"]
    assert tech and (allocations[tech].sum(axis=1) <= 0.3 + 1e-9).all()
    # total return beats price return for the same rules (dividends reinvested)
    price_run = compute.run_backtest({**PARAMS, "basis": "price"}, inputs)
    assert float(levels.iloc[-1]) > float(price_run.values.iloc[-1])
    # the dashboard/report view: the version's blend, the configured rate, Sharpe from its own levels
    inputs_v = analytics.load_view_inputs(cid)
    assert inputs_v.benchmark_symbol == "60% ^GSPC / 40% IEF" and inputs_v.risk_free == RATE
    view = analytics.build_performance_view(inputs_v, *analytics.resolve_period(inputs_v, "max"))
    assert view.metrics["sharpe"] == pytest.approx(_sharpe(view.index_level, RATE), rel=1e-9)
    assert "3.00 %" in view.risk_free_label


def test_a_chosen_benchmark_without_prices_is_named(db, monkeypatch):
    from core.services import compute

    cid = _setup(monkeypatch)
    from core.db import unit_of_work
    from core.services import market

    with unit_of_work() as session:
        inputs = market.load_market_inputs(session)
    with pytest.raises(ValidationFailed) as err:
        compute.run_backtest({"equal": 1.0, "benchmark": "NOPE"}, inputs)
    assert "NOPE" in err.value.errors["benchmark"]
    assert cid


def test_risk_view_monte_carlo_stress_and_demo_factors(db, monkeypatch):
    from core.quant.stress import Shock
    from core.services import compute
    from core.services.risk_views import MonteCarloParams, risk_view

    cid = _setup(monkeypatch)
    view = risk_view(
        cid,
        actor=ANALYST,
        monte_carlo=MonteCarloParams(years=2, n_paths=500, seed=1),
        shocks=[Shock("asset_class", "equity", -0.3), Shock("asset_class", "bond", 0.05)],
    )
    assert list(view.monte_carlo_table().columns) == ["step", "years", "p5", "p25", "p50", "p75", "p95"]
    assert len(view.monte_carlo_table()) == 24
    stress = view.stress_table()
    assert list(stress.columns[:6]) == ["scenario", "start", "end", "index_return", "benchmark_return", "covered"]
    by_name = stress.set_index("scenario")
    assert not by_name.loc["Global financial crisis", "covered"]  # 3 years of demo data do not reach 2007
    assert view.weights.sum() == pytest.approx(1.0, abs=1e-9)
    total, applied = view.hypothetical
    assert total == pytest.approx(float((view.weights * applied.reindex(view.weights.index)).sum()))
    assert view.factor_set is not None and view.factor_set.is_demo and "demo" in view.factor_set.label
    table = view.factor_table()
    assert list(table["factor"])[:2] == ["alpha (daily)", "HML"] and table["factor"].iloc[-1] == "R²"
    assert 0 < view.factor.r2 < 1
    levels = compute.stored_index(cid)
    assert view.factor.nobs <= len(levels) - 1
    with pytest.raises(ValidationFailed) as err:
        risk_view(cid, actor=ANALYST, monte_carlo=MonteCarloParams(years=31))
    assert "years" in err.value.errors


def test_factor_import_is_all_or_nothing_and_for_admins(db, monkeypatch):
    from core.db import unit_of_work
    from core.services import factors

    _setup(monkeypatch)
    good = b"date,factor,value\n2024-01-02,Mkt-RF,0.51\n2024-01-02,SMB,-0.1\n2024-01-03,Mkt-RF,0.2\n"
    with pytest.raises(PermissionDenied):
        factors.import_factors(good, "ff.csv", "FF3", actor=ANALYST, unit="percent")
    bad = b"date,factor,value\n2024-01-02,Mkt-RF,0.51\n2024-13-02,SMB,x\n"
    with pytest.raises(ImportValidationError) as err:
        factors.import_factors(bad, "ff.csv", "FF3", actor=ADMIN)
    assert {(p.row, p.column) for p in err.value.rows} >= {(3, "date"), (3, "value")}
    with pytest.raises(ImportValidationError, match="percent"):
        factors.import_factors(good.replace(b"0.51", b"51"), "ff.csv", "FF3", actor=ADMIN)
    with unit_of_work() as session:
        assert [s.name for s in factors.list_factor_sets(session) if not s.is_demo] == []
    out = factors.import_factors(good, "ff.csv", "FF3", actor=ADMIN, unit="percent")
    assert out["rows"] == 3
    with unit_of_work() as session:
        sets = factors.list_factor_sets(session)
        assert sets[0].name == "FF3" and not sets[0].is_demo  # imported sets come before the demo set
        frame = factors.load_factors(session, "FF3")
    assert frame.loc["2024-01-02", "Mkt-RF"] == pytest.approx(0.0051)
    assert np.isnan(frame.loc["2024-01-03", "SMB"])


def test_risk_report_sections_in_every_format(sqlite_db, monkeypatch):
    import openpyxl
    from pypdf import PdfReader

    from core.services.reports import build_report_bytes

    cid = _setup(monkeypatch)
    _, xlsx = build_report_bytes("risk", "max", "xlsx", cid)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert {"Monte Carlo", "Stress scenarios", "Factor regression"} <= set(wb.sheetnames)
    mc = [c.value for c in wb["Monte Carlo"][1]]
    assert mc[2:7] == ["p5", "p25", "p50", "p75", "p95"] and wb["Monte Carlo"].max_row == 10 * 12 + 1
    assert [c.value for c in wb["Stress scenarios"][1]][:6] == [
        "scenario",
        "start",
        "end",
        "index_return",
        "benchmark_return",
        "covered",
    ]
    factor_rows = list(wb["Factor regression"].iter_rows(values_only=True))
    assert factor_rows[0][:3] == ("factor", "beta", "t_stat") and factor_rows[-1][0] == "R²"
    # the Summary sheet's Sharpe is the definition on the Series sheet's levels at the configured rate
    summary = {row[0]: row[2] for row in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    series = pd.Series([r[1] for r in wb["Series"].iter_rows(min_row=2, values_only=True)])
    assert summary["sharpe"] == pytest.approx(_sharpe(series, RATE), rel=1e-9)
    assert summary["sharpe"] != pytest.approx(_sharpe(series, 0.0), rel=1e-6)
    _, html = build_report_bytes("risk", "max", "html", cid)
    text = html.decode()
    assert all(name in text for name in ("Monte Carlo", "Stress scenarios", "Factor regression"))
    assert "risk-free rate 3.00 %" in text and "price return" in text
    _, pdf = build_report_bytes("risk", "max", "pdf", cid)
    pdf_text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert all(name in pdf_text for name in ("Monte Carlo", "Stress scenarios", "Factor regression"))
    _, csv_zip = build_report_bytes("risk", "max", "csv", cid)
    names = zipfile.ZipFile(io.BytesIO(csv_zip)).namelist()
    assert {"monte_carlo.csv", "stress_scenarios.csv", "factor_regression.csv"} <= set(names)


def test_infeasible_caps_unknown_symbols_and_exclusions_are_refused_beside_the_field(db, monkeypatch):
    from core.db import unit_of_work
    from core.models import StrategyConfigRow
    from core.services import strategies

    _setup(monkeypatch)
    with unit_of_work() as session:
        before = session.query(StrategyConfigRow).count()
    classes = {"equity": 0.3, "etf": 0.1, "commodity": 0.1, "bond": 0.1}  # every class capped: 60 % at most
    cases = [
        ({"asset_class_caps": classes}, "asset_class_caps", "infeasible"),
        ({"exclusions": ["ZZZZ"]}, "exclusions", "ZZZZ"),
        ({"benchmark": "NOPE"}, "benchmark", "NOPE"),
        ({"benchmark_blend": {"^GSPC": 0.5, "NOPE": 0.5}}, "benchmark_blend", "NOPE"),
        ({"sector_caps": {"Retail": 0.2}}, "sector_caps", "Retail"),
    ]
    for extra, field, words in cases:
        params = {"equal": 1.0, **extra}
        assert words in strategies.config_errors(params)[field]
        with pytest.raises(ValidationFailed) as err:
            strategies.save_version("Bad", params, actor=ANALYST)
        assert words in err.value.errors[field]
    with unit_of_work() as session:
        assert session.query(StrategyConfigRow).count() == before
    assert strategies.config_errors({"equal": 1.0, "asset_class_caps": {**classes, "equity": 0.8}}) == {}


def test_imported_dividends_and_a_yield_series_as_the_risk_free_rate(db, monkeypatch):
    from core.config import reset_settings_cache
    from core.db import unit_of_work
    from core.services import market
    from core.services import prices as price_store
    from core.services.refresh import import_price_file

    _setup(monkeypatch)
    csv = (
        b"date,symbol,close,dividend\n2024-03-01,DIVCO,50,\n2024-03-04,DIVCO,49.5,0.5\n"
        b"2024-03-05,DIVCO,49.6,0\n2024-03-01,^IRX,5.0,\n2024-03-04,^IRX,5.5,\n"
    )
    import_price_file(csv, "divs.csv", actor=ADMIN, allow_new_symbols=True)
    monkeypatch.setenv("RISK_FREE_SYMBOL", "^IRX")
    reset_settings_cache()
    with unit_of_work() as session:
        divs = price_store.load_dividends(session, ["DIVCO"])
        assert divs["DIVCO"].dropna().to_dict() == {pd.Timestamp("2024-03-04"): 0.5}
        rf = market.risk_free(session, None, None)
        assert rf.source == "^IRX" and "^IRX" in rf.label
        assert rf.rate == pytest.approx(market.yield_to_annual_rate(pd.Series([5.0, 5.5])), rel=1e-12)
        no_data = market.risk_free(session, dt.date(2000, 1, 1), dt.date(2000, 2, 1))
        assert no_data.source == "RISK_FREE_RATE" and no_data.rate == RATE  # the series does not reach: the setting
    # a refused dividend cell refuses the file, and nothing is written
    with pytest.raises(ImportValidationError):
        import_price_file(b"date,symbol,close,dividend\n2024-03-06,DIVCO,49,-1\n", "bad.csv", actor=ADMIN)
    with unit_of_work() as session:
        assert len(price_store.load_dividends(session, ["DIVCO"]).dropna(how="all")) == 1


def test_the_benchmark_report_shows_the_comparison_series(sqlite_db, monkeypatch):
    import openpyxl

    from core.quant.risk import risk_metrics
    from core.services.reports import build_report_bytes

    cid = _setup(monkeypatch, {"equal": 1.0, "comparisons": ["GLD", "TLT"]})
    _, xlsx = build_report_bytes("benchmark", "1Y", "xlsx", cid)
    rows = list(openpyxl.load_workbook(io.BytesIO(xlsx))["Comparison series"].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["Index", "^GSPC", "GLD", "TLT"]
    from core.services import analytics

    inputs = analytics.load_view_inputs(cid)
    view = analytics.build_performance_view(inputs, *analytics.resolve_period(inputs, "1Y"))
    index_row = rows[1]
    assert index_row[1] == pytest.approx(risk_metrics(view.index_level)["total_return"], rel=1e-9)
    _, html = build_report_bytes("benchmark", "1Y", "html", cid)
    assert "Comparison series" in html.decode() and "GLD" in html.decode()
