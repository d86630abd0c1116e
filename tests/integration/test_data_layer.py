"""The data layer on SQLite and on the real PostgreSQL: migrations, upserts, loading, users, configs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from core.db import unit_of_work
from core.models import Asset, MarketCap, Price
from core.schemas.asset import AssetInfo
from core.services import prices as price_store

ASSETS = [AssetInfo(symbol="AAA", name="Alpha", sector="Tech"), AssetInfo(symbol="BBB", name="Beta", sector="Energy")]


def _frame(symbols=("AAA", "BBB"), days=5, start="2024-01-01", scale=1.0) -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=days)
    rows = [(d, s, scale * (10.0 + i + 0.5 * j)) for j, s in enumerate(symbols) for i, d in enumerate(dates)]
    return pd.DataFrame(rows, columns=["date", "symbol", "close"])


def _table_snapshot() -> list[tuple]:
    with unit_of_work() as s:
        return [
            tuple(r) for r in s.execute(text("SELECT asset_id, date, close FROM prices ORDER BY asset_id, date")).all()
        ]


def test_migrations_at_head_and_models_agree(db):
    from alembic import command

    from core.db import alembic_config, migration_status

    status = migration_status()
    assert status["at_head"], status
    command.check(alembic_config())  # raises if models and migrations disagree


def test_ingest_counts_new_updated_unchanged_and_is_idempotent(db):
    with unit_of_work() as s:
        first = price_store.ingest(s, prices=_frame(), assets=ASSETS, source="demo")
        s.commit()
    assert (first.rows_new, first.rows_updated, first.assets_created) == (10, 0, 2)
    assert first.per_symbol["AAA"].new == 5 and first.per_symbol["AAA"].gaps == 0
    snapshot = _table_snapshot()

    with unit_of_work() as s:
        again = price_store.ingest(s, prices=_frame(), assets=ASSETS, source="demo")
        s.commit()
    assert (again.rows_new, again.rows_updated, again.rows_unchanged) == (0, 0, 10)
    assert not again.changed
    assert _table_snapshot() == snapshot

    changed = _frame()
    changed.loc[(changed["symbol"] == "BBB") & (changed.index % 5 == 4), "close"] = 99.0
    more = pd.concat([changed, _frame(symbols=("AAA",), days=2, start="2024-01-08")])
    with unit_of_work() as s:
        third = price_store.ingest(s, prices=more, assets=ASSETS, source="demo")
        s.commit()
    assert (third.rows_new, third.rows_updated) == (2, 1)
    assert third.per_symbol["BBB"].updated == 1
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Price)) == 12


def test_ingest_reports_business_day_gaps(db):
    frame = _frame(symbols=("AAA",), days=10)
    frame = frame.drop(index=[3, 4])
    with unit_of_work() as s:
        summary = price_store.ingest(s, prices=frame, assets=ASSETS[:1], source="demo")
        s.commit()
    assert summary.per_symbol["AAA"].gaps == 2


def test_failed_ingest_leaves_database_unchanged(db):
    with unit_of_work() as s:
        price_store.ingest(s, prices=_frame(), assets=ASSETS, source="demo")
        s.commit()
    before = _table_snapshot()
    bad = pd.concat(
        [_frame(scale=2.0), pd.DataFrame([{"date": pd.Timestamp("2024-01-02"), "symbol": "ZZZ", "close": 1.0}])]
    )
    with pytest.raises(KeyError, match="ZZZ"):
        with unit_of_work() as s:
            price_store.ingest(s, prices=bad, assets=ASSETS, source="demo")
            s.commit()
    assert _table_snapshot() == before


def test_market_caps_upsert_and_matrix_load(db):
    caps = _frame().rename(columns={"close": "market_cap"})
    caps["market_cap"] *= 1e9
    with unit_of_work() as s:
        summary = price_store.ingest(s, prices=_frame(), market_caps=caps, assets=ASSETS, source="demo")
        s.commit()
    assert summary.caps_new == 10
    with unit_of_work() as s:
        matrix = price_store.load_price_matrix(s)
        cap_matrix = price_store.load_market_caps(s, ["AAA"])
        assert s.scalar(select(func.count()).select_from(MarketCap)) == 10
    expected = _frame().pivot(index="date", columns="symbol", values="close")
    assert list(matrix.columns) == ["AAA", "BBB"]
    np.testing.assert_array_equal(matrix.to_numpy(), expected.to_numpy())
    assert list(matrix.index) == list(expected.index)
    assert cap_matrix["AAA"].iloc[0] == pytest.approx(10e9)


def test_matrix_has_nan_where_an_asset_has_no_price(db):
    frame = pd.concat([_frame(symbols=("AAA",), days=5), _frame(symbols=("BBB",), days=2, start="2024-01-04")])
    with unit_of_work() as s:
        price_store.ingest(s, prices=frame, assets=ASSETS, source="demo")
        s.commit()
        matrix = price_store.load_price_matrix(s)
        last = price_store.last_price_dates(s)
    assert matrix["BBB"].isna().sum() == 3
    assert last["AAA"] == dt.date(2024, 1, 5)


def test_asset_metadata_refreshed_on_upsert(db):
    with unit_of_work() as s:
        price_store.ingest(s, prices=_frame(), assets=ASSETS, source="demo")
        price_store.upsert_assets(s, [AssetInfo(symbol="AAA", name="Alpha Inc", sector="Software")])
        s.commit()
        row = s.scalar(select(Asset).where(Asset.symbol == "AAA"))
        assert (row.name, row.sector) == ("Alpha Inc", "Software")
