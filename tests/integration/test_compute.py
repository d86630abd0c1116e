"""Persisting a config version's results (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from core.db import unit_of_work
from core.quant.engine import backtest
from core.quant.risk import risk_metrics
from core.services import compute, market, strategies
from core.services.bootstrap import seed_demo


def _rows(table: str, config_id: int) -> list[tuple]:
    with unit_of_work() as s:
        return [
            tuple(r)
            for r in s.execute(text(f"SELECT * FROM {table} WHERE config_id = :c ORDER BY 2, 3"), {"c": config_id})
        ]


def test_compute_writes_results_matching_the_engine_and_is_repeatable(db):
    seed_demo(years=2, end=dt.date(2024, 12, 31))
    cfg = strategies.ensure_default_config()
    summary = compute.compute_config(cfg.id, actor="test")
    assert summary["dates"] > 400 and summary["rebalances"] > 50

    with unit_of_work() as s:
        inputs = market.load_market_inputs(s)
    assert "^GSPC" not in inputs.prices.columns and inputs.benchmark_symbol == "^GSPC"
    expected = backtest(inputs.prices, strategies.parse_params(cfg.params), market_caps=inputs.market_caps)
    stored = compute.stored_index(cfg.id)
    levels = expected.values.dropna().loc[pd.Timestamp(expected.rebalance_dates[0]) :]  # from the first allocation
    assert stored.index[0] == levels.index[0] and stored.iloc[0] <= 100.0
    np.testing.assert_allclose(stored.to_numpy(), levels.to_numpy(), rtol=1e-12)

    weights = compute.stored_allocations(cfg.id)
    assert len(weights) == len(expected.rebalance_dates)
    np.testing.assert_allclose(weights.sum(axis=1).to_numpy(), 1.0, atol=1e-9)

    metrics = compute.stored_metrics(cfg.id)
    reference = risk_metrics(levels, inputs.benchmark.reindex(levels.index).ffill())
    assert metrics["sharpe"][0] == pytest.approx(reference["sharpe"], rel=1e-9)
    assert metrics["beta"][0] == pytest.approx(reference["beta"], rel=1e-9)

    snapshot = {t: _rows(t, cfg.id) for t in ("index_values", "allocations", "rebalances", "risk_metrics")}
    compute.compute_config(cfg.id, actor="test")
    assert {t: _rows(t, cfg.id) for t in snapshot} == snapshot


def test_compute_without_prices_is_a_clear_error_and_writes_nothing(db):
    from core.errors import AutoIndexError

    cfg = strategies.ensure_default_config()
    with pytest.raises(AutoIndexError, match="no prices"):
        compute.compute_config(cfg.id)
    assert _rows("index_values", cfg.id) == []


def test_start_up_seeds_and_computes_once(data_dir, monkeypatch):
    from core.config import reset_settings_cache
    from core.services.bootstrap import start_up

    monkeypatch.setenv("DEMO_ON_EMPTY", "true")
    reset_settings_cache()
    first = start_up()
    assert "seeded" in first and "computed" in first
    second = start_up()
    assert "seeded" not in second and "computed" not in second
