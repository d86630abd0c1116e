"""A growing universe and a real provider (issue 12, items 3 and 4), on SQLite and PostgreSQL.

* each symbol is fetched from its own last stored date (the stub counts the requested ranges per symbol);
* a symbol the provider does not know is skipped and named; the refresh job ends "succeeded with warnings";
* every valid ticker form (``^GSPC``, ``BRK.B``, ``RDS-A``) is accepted by job parameters, the CLI and the
  provider settings, and the demo provider serves symbols added by hand, by import or by a larger seed;
* a refresh or import that changes prices queues exactly one recompute of the active config, by the same
  actor, and none when nothing changed.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, text

from core.db import unit_of_work
from jobs.queue import set_immediate
from tests.stubs.twelvedata_stub import DEFAULT_API_KEY, STUB_TODAY, start_stub

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "root"


@pytest.fixture(scope="module")
def stub():
    base_url, controller, stop = start_stub()
    try:
        yield base_url, controller
    finally:
        stop()


@pytest.fixture
def huey(db):
    """The project's Huey in immediate mode (a queued job runs inside ``enqueue``), and an admin."""
    from core.services import users
    from jobs import huey as instance

    users.create_user(ADMIN, "Root Admin", "root's long password 1", role="admin")
    was, storage = instance.immediate, instance.storage
    instance.immediate = True
    try:
        yield instance
    finally:
        set_immediate(instance, was, storage=storage)


def _provider(base_url: str):  # type: ignore[no-untyped-def]
    from core.infra.providers.twelvedata import TwelveDataProvider

    return TwelveDataProvider(DEFAULT_API_KEY, base_url=base_url, credits_per_minute=10_000, sleep=lambda s: None)


def _requested(controller) -> dict[str, list[tuple[str | None, str | None]]]:  # type: ignore[no-untyped-def]
    """``{symbol: [(start_date, end_date), ...]}`` of every request the stub received."""
    ranges: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
    for request in controller.requests:
        for symbol in request.symbols:
            ranges[symbol].append((request.params.get("start_date"), request.params.get("end_date")))
    return dict(ranges)


def _compute_runs() -> list[tuple[str | None, str]]:
    from core.services import runs as svc

    return [(r.queued_by, r.state) for r in svc.list_runs(kind="compute", viewer=None)]


def _assets() -> dict[str, tuple[str, str]]:
    from core.models import Asset

    with unit_of_work() as session:
        return {s: (n, src) for s, n, src in session.execute(select(Asset.symbol, Asset.name, Asset.source))}


# --------------------------------------------------------------------------- per-symbol increments
def test_each_symbol_is_fetched_from_its_own_last_date(db, stub):
    """Before: one new symbol made every symbol start from the oldest last date (None: whole history)."""
    from core.schemas.asset import AssetInfo
    from core.services import prices
    from core.services.refresh import refresh_prices

    base_url, controller = stub
    controller.reset()
    with unit_of_work() as session:
        prices.upsert_assets(session, [AssetInfo(symbol=s, name=s, source="twelvedata") for s in ("AAPL", "MSFT")])
        session.commit()
    first = refresh_prices("twelvedata", ["AAPL", "MSFT"], provider=_provider(base_url), today=dt.date(2024, 6, 28))
    assert first["per_symbol"]["AAPL"]["last_date"] == "2024-06-28"
    # MSFT is one week behind AAPL; GLD is new.
    with unit_of_work() as session:
        session.execute(
            text(
                "DELETE FROM prices WHERE date > '2024-06-21' AND asset_id = "
                "(SELECT id FROM assets WHERE symbol = 'MSFT')"
            )
        )
        session.commit()
    controller.reset()
    summary = refresh_prices("twelvedata", ["AAPL", "MSFT", "GLD"], provider=_provider(base_url), today=STUB_TODAY)
    end = (STUB_TODAY + dt.timedelta(days=1)).isoformat()  # the provider sends end_date one day later (exclusive)
    assert _requested(controller) == {
        "GLD": [(None, end)],
        "MSFT": [("2024-06-22", end)],
        "AAPL": [("2024-06-29", end)],
    }
    served = {s: controller.closes(s) for s in ("AAPL", "MSFT", "GLD")}
    expected_new = {
        "AAPL": sum(d > "2024-06-28" for d in served["AAPL"]),
        "MSFT": sum(d > "2024-06-21" for d in served["MSFT"]),
        "GLD": len(served["GLD"]),
    }
    assert {s: summary["per_symbol"][s]["new"] for s in expected_new} == expected_new
    assert summary["rows_updated"] == 0 and summary["warnings"] == []


def test_fetch_groups_put_each_symbol_on_its_own_start():
    from core.services.refresh import fetch_groups

    last = {"A": dt.date(2024, 6, 28), "B": dt.date(2024, 6, 21), "C": dt.date(2024, 6, 28)}
    assert fetch_groups(["C", "NEW", "A", "B"], last) == {
        None: ["NEW"],
        dt.date(2024, 6, 22): ["B"],
        dt.date(2024, 6, 29): ["A", "C"],
    }
    assert fetch_groups([], last) == {}


# --------------------------------------------------------------------------- unknown symbols
def test_unknown_symbol_is_skipped_and_the_job_ends_succeeded_with_warnings(huey, stub, monkeypatch):
    from core.config import reset_settings_cache
    from core.schemas.task import FINAL_STATES
    from core.services import runs as svc

    base_url, controller = stub
    controller.reset()
    monkeypatch.setenv("TWELVEDATA_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("TWELVEDATA_BASE_URL", base_url)
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_MINUTE", "10000")
    reset_settings_cache()
    run_id = svc.enqueue("refresh", {"provider": "twelvedata", "symbols": "aapl, NOPE, ^gspc"}, user=ADMIN)
    run = svc.get_run(run_id)
    assert run.state == "succeeded_with_warnings", (run.state, run.error)
    assert run.result["warnings"] == [
        "NOPE: skipped, not known to twelvedata (TwelveData error 404: **symbol** "
        "not found: NOPE. Please specify it correctly.)"
    ]
    assert run.message.startswith("succeeded with 1 warning(s): NOPE: skipped")
    assert set(run.result["per_symbol"]) == {"AAPL", "^GSPC"} and run.result["rows_new"] > 0
    assert set(_assets()) == {"AAPL", "^GSPC"}
    assert run.state in FINAL_STATES
    # listed under its own state filter (the Tasks page's "State" filter)
    from core.schemas.task import RunFilters

    assert [r.id for r in svc.list_runs(RunFilters(state="succeeded_with_warnings"), viewer=ADMIN)] == [run_id]

    # every symbol unknown: nothing to store, the run fails naming them
    failed = svc.get_run(svc.enqueue("refresh", {"provider": "twelvedata", "symbols": "NOPE,ZZZZ"}, user=ADMIN))
    assert failed.state == "failed" and "none of the 2 symbol(s) is known to twelvedata" in failed.error


# --------------------------------------------------------------------------- ticker forms, any symbol
def test_every_ticker_form_everywhere_and_the_demo_serves_any_symbol(huey, db):
    from core.services import runs as svc
    from core.services import universe
    from jobs import tasks as job_tasks

    forms = "^GSPC, brk.b, RDS-A"
    assert svc.validate_params("refresh", {"symbols": forms})["symbols"] == ["BRK.B", "RDS-A", "^GSPC"]
    assert universe.put_provider_settings("demo", forms, actor=ADMIN)["symbols"] == "^GSPC,BRK.B,RDS-A"
    run = svc.get_run(svc.enqueue("refresh", {"provider": "demo", "symbols": forms}, user=ADMIN))
    assert run.state == "succeeded" and set(run.result["per_symbol"]) == {"BRK.B", "RDS-A", "^GSPC"}
    names = _assets()
    assert names["BRK.B"] == ("BRK.B (synthetic demo series)", "demo") and names["^GSPC"] == ("S&P 500", "demo")
    # the scheduled refresh with those saved settings: nothing new today, succeeds
    assert job_tasks._scheduled_refresh_work(0, {}, lambda f, m: None)["refresh"]["rows_new"] == 0


def test_demo_refresh_after_the_universe_grew_three_ways(huey, db, tmp_path):
    """seed-demo --assets 20, an asset added on the Data page, an import with new symbols: every demo refresh
    (the scheduled one included) succeeds, serves each of them, rewrites no stored price, and keeps names."""
    from core.services import runs as svc
    from core.services import universe
    from core.services.bootstrap import seed_demo
    from core.services.refresh import import_price_file

    end = dt.date.today() - dt.timedelta(days=10)
    seed_demo(n_assets=20, years=0.3, end=end)
    universe.add_asset("NEWCO", "Newco Holdings", sector="Industrials", actor=ADMIN)
    import_price_file(
        f"date,symbol,close\n{end - dt.timedelta(days=3)},IMPORTED,12.5\n".encode(),
        "new.csv",
        actor=ADMIN,
        allow_new_symbols=True,
    )
    for kind in ("refresh", "scheduled_refresh"):
        run_id = svc.enqueue(kind, {} if kind == "scheduled_refresh" else {"provider": "demo"}, user=ADMIN)
        run = svc.get_run(run_id)
        assert run.state == "succeeded", (kind, run.state, run.error)
    refreshed = svc.list_runs(kind="refresh", viewer=ADMIN)[0].result
    assert refreshed["rows_updated"] == 0  # stored seed prices are what the provider serves
    assert {"SYN0006", "NEWCO", "IMPORTED"} <= set(refreshed["per_symbol"])
    assert refreshed["per_symbol"]["NEWCO"]["first_date"] == "2018-01-01"  # whole history for a new symbol
    assert refreshed["per_symbol"]["SYN0006"]["first_date"] > str(end)  # only new dates for a stored one
    names = _assets()
    assert names["NEWCO"] == ("Newco Holdings", "demo") and names["IMPORTED"][1] == "demo"


def test_cli_refresh_accepts_every_ticker_form_and_says_what_followed(db, tmp_path):
    env = dict(os.environ)
    run = subprocess.run(
        [sys.executable, "-m", "core", "refresh", "--symbols", "^GSPC,brk.b,RDS-A"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "refresh from demo:" in run.stdout
    assert "recompute not queued: no active strategy config" in run.stdout
    assert {"^GSPC", "BRK.B", "RDS-A"} <= set(_assets())


# --------------------------------------------------------------------------- prices change -> the index follows
def test_a_change_queues_exactly_one_recompute_and_no_change_none(huey, db):
    from core.services.bootstrap import seed_demo
    from core.services.refresh import import_price_file, refresh_prices
    from core.services.strategies import ensure_default_config

    seed_demo(years=0.5, end=dt.date(2024, 6, 28))
    active = ensure_default_config()
    assert _compute_runs() == []

    file = b"date,symbol,close\n2024-06-27,AAPL,123.25\n"
    summary = import_price_file(file, "fix.csv", actor=ADMIN)
    assert summary["rows_updated"] == 1
    assert summary["recompute"]["queued"] and summary["recompute"]["config_id"] == active.id
    assert _compute_runs() == [(ADMIN, "succeeded")]  # queued by the importing admin, and run
    again = import_price_file(file, "fix.csv", actor=ADMIN)
    assert (again["rows_updated"], again["recompute"]) == (0, None)
    assert len(_compute_runs()) == 1

    summary = refresh_prices("demo", ["AAPL", "MSFT"], actor="cli", today=dt.date(2024, 7, 5))
    assert summary["rows_new"] == 10 and summary["recompute"]["queued"]
    assert _compute_runs()[0] == ("cli", "succeeded")
    unchanged = refresh_prices("demo", ["AAPL", "MSFT"], actor="cli", today=dt.date(2024, 7, 5))
    assert (unchanged["rows_new"], unchanged["recompute"]) == (0, None)
    assert len(_compute_runs()) == 2

    from core.services import compute

    index = compute.stored_index(active.id)
    assert index.index[-1] == pd.Timestamp("2024-07-05")  # the index followed the new prices
    assert np.isfinite(index.to_numpy()).all()


def test_cli_import_prints_the_queued_recompute_and_leaves_it_queued_for_a_worker(db, tmp_path):
    """The CLI queues on the configured queue (SQLite file by default); the app's worker runs it later."""
    from core.services import runs as svc
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    seed_demo(years=0.2, end=dt.date(2024, 6, 28))
    active = ensure_default_config()
    good = tmp_path / "fix.csv"
    good.write_text("date,symbol,close\n2024-06-27,AAPL,99.5\n")
    run = subprocess.run(
        [sys.executable, "-m", "core", "import-prices", str(good)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    queued = svc.list_runs(kind="compute", viewer=None)
    assert [(r.queued_by, r.state, r.args) for r in queued] == [("cli", "queued", {"config_id": active.id})]
    assert f"recompute of {active.label} queued as run {queued[0].id}" in run.stdout
    again = subprocess.run(
        [sys.executable, "-m", "core", "import-prices", str(good)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert "prices unchanged: no recompute queued" in again.stdout
    assert len(svc.list_runs(kind="compute", viewer=None)) == 1
