"""One freshness rule on every screen's service: Dashboard (dashboard.freshness), Data (universe.list_assets,
universe.asset_history) and Diagnostics (health freshness card) give the same number for the same clock, on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

UTC = dt.timezone.utc


def _add_asset(symbol: str, last: dt.date, *, benchmark: bool = False) -> None:
    from core.db import unit_of_work
    from core.models import Asset, Price

    with unit_of_work() as session:
        asset = Asset(symbol=symbol, name=symbol, is_benchmark=benchmark, source="demo")
        session.add(asset)
        session.flush()
        session.add_all(
            [
                Price(asset_id=asset.id, date=d.date(), close=100.0 + i)
                for i, d in enumerate(pd.bdate_range(end=last, periods=10))
            ]
        )
        session.commit()


# Friday 13 March 2026 closes at 20:00 UTC (16:00 New York, daylight time).
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2026, 3, 14, 12, tzinfo=UTC), {"^GSPC": 0, "THU": 1, "OLD": 9}),  # Saturday
        (dt.datetime(2026, 3, 16, 13, tzinfo=UTC), {"^GSPC": 0, "THU": 1, "OLD": 9}),  # Monday before the close
        (dt.datetime(2026, 3, 16, 21, tzinfo=UTC), {"^GSPC": 1, "THU": 2, "OLD": 10}),  # Monday after the close
    ],
)
def test_every_screen_counts_the_same(db, now: dt.datetime, expected: dict[str, int]) -> None:
    from core import health
    from core.services import dashboard, universe

    _add_asset("^GSPC", dt.date(2026, 3, 13), benchmark=True)  # Friday
    _add_asset("THU", dt.date(2026, 3, 12))  # Thursday
    _add_asset("OLD", dt.date(2026, 3, 2))  # Monday two weeks before
    on_dashboard = dashboard.freshness(today=now).set_index("symbol")["stale_days"].to_dict()
    on_data = universe.list_assets(today=now).set_index("symbol")["stale_days"].to_dict()
    per_asset = {s: universe.asset_history(s, today=now).quality["stale_days"] for s in expected}
    card = health.run_checks(now=now, only=("freshness",)).check("freshness")
    on_diagnostics = card.tables["freshness"].set_index("symbol")["stale_days"].to_dict()
    for shown in (on_dashboard, on_data, per_asset, on_diagnostics):
        assert {s: int(v) for s, v in shown.items()} == expected
    assert card.facts["benchmark_stale_days"] == expected["^GSPC"]
