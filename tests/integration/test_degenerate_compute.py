"""A degenerate backtest is refused by the stored compute on SQLite and PostgreSQL (issue 11, case 13).

Before: a bad tick of 1e308 with ``return_clip`` off was stored as levels of 1e307 (or overflowed into an
IntegrityError carrying SQL text). Now the engine's result check raises a DegenerateResultError that names
the date and the cause, the previous results stay in place, and no SQL reaches the message.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import text

from core.db import unit_of_work
from core.errors import ValidationFailed
from core.quant.engine import DegenerateResultError
from core.services import compute, strategies
from core.services.bootstrap import seed_demo

RESULT_TABLES = ("index_values", "allocations", "rebalances", "risk_metrics")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    with unit_of_work() as s:
        for table in RESULT_TABLES:
            for row in s.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3")):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _set_params(config_id: int, **changes: object) -> None:
    import json

    with unit_of_work() as s:
        params = s.execute(text("SELECT params FROM strategy_configs WHERE id = :i"), {"i": config_id}).scalar_one()
        params = json.loads(params) if isinstance(params, str) else dict(params)
        params.update(changes)
        s.execute(
            text("UPDATE strategy_configs SET params = :p WHERE id = :i"), {"p": json.dumps(params), "i": config_id}
        )
        s.commit()


def _bad_tick(value: float) -> str:
    with unit_of_work() as s:
        asset_id, day = s.execute(
            text(
                "SELECT p.asset_id, p.date FROM prices p JOIN assets a ON a.id = p.asset_id "
                "WHERE a.is_benchmark = :f ORDER BY p.date, a.symbol LIMIT 1 OFFSET 1500"
            ),
            {"f": False},
        ).one()
        s.execute(
            text("UPDATE prices SET close = :v WHERE asset_id = :a AND date = :d"),
            {"v": value, "a": asset_id, "d": day},
        )
        s.commit()
    return str(day)


def test_a_1e308_tick_with_clipping_off_is_refused_and_the_stored_results_stay(db):
    seed_demo(years=0.5, end=dt.date(2024, 6, 28))
    cfg = strategies.ensure_default_config()
    compute.compute_config(cfg.id, actor="test")
    before = _fingerprint()
    day = _bad_tick(1e308)
    _set_params(cfg.id, return_clip=None)
    with pytest.raises(DegenerateResultError) as info:
        compute.compute_config(cfg.id, actor="test")
    assert isinstance(info.value, ValidationFailed)  # entry points print it as one line naming "index"
    message = str(info.value)
    assert message.startswith("index: the index level ") and "return_clip" in message
    assert "INSERT" not in message and "SQL" not in message
    assert info.value.date is not None and str(info.value.date) >= day
    assert _fingerprint() == before
    # With the clip on (the default 0.5) the same prices compute to finite, plausible levels.
    _set_params(cfg.id, return_clip=0.5)
    summary = compute.compute_config(cfg.id, actor="test")
    assert 1 < float(summary["final_level"]) < 1e4
    with unit_of_work() as s:
        values = [v for (v,) in s.execute(text("SELECT value FROM index_values WHERE config_id = :c"), {"c": cfg.id})]
        reasons = s.execute(
            text("SELECT COUNT(*) FROM risk_metrics WHERE config_id = :c AND value IS NULL AND reason IS NULL"),
            {"c": cfg.id},
        ).scalar_one()
    assert values and all(0 < v < 1e6 for v in values)
    assert reasons == 0  # a metric without a value always says why


def test_a_stored_config_outside_the_new_bounds_is_a_clear_error_naming_the_field(db):
    seed_demo(years=0.3, end=dt.date(2024, 6, 28))
    cfg = strategies.ensure_default_config()
    _set_params(cfg.id, base_value=1e308, top_n=1)
    with pytest.raises(ValidationFailed) as info:
        compute.compute_config(cfg.id, actor="test")
    assert info.value.errors == {"base_value": "base_value must be between 1 and 1,000,000; got 1e+308"}
    assert _fingerprint() == hashlib.sha256().hexdigest()  # nothing stored
