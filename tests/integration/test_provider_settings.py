"""The provider saved on the Data page drives scheduled refreshes."""

from __future__ import annotations

import pytest

from core.errors import ValidationFailed
from core.services import universe


def test_refresh_source_defaults_to_demo_without_a_key(sqlite_db):
    assert universe.refresh_source() == ("demo", None)


def test_refresh_source_prefers_twelvedata_when_a_key_is_configured(sqlite_db, monkeypatch):
    from core.config import reset_settings_cache

    monkeypatch.setenv("TWELVEDATA_API_KEY", "k" * 16)
    reset_settings_cache()
    assert universe.refresh_source() == ("twelvedata", None)


def test_saved_provider_settings_win_and_bad_ones_are_refused(sqlite_db):
    universe.put_provider_settings("demo", "aapl, msft")
    assert universe.refresh_source() == ("demo", ["AAPL", "MSFT"])
    with pytest.raises(ValidationFailed) as exc:
        universe.put_provider_settings("yahoo", "AAPL")
    assert "provider" in exc.value.errors
    assert universe.refresh_source() == ("demo", ["AAPL", "MSFT"])


def test_scheduled_refresh_uses_the_saved_symbols(sqlite_db, monkeypatch):
    import datetime as dt

    from core.services.bootstrap import seed_demo

    seed_demo(years=0.1, end=dt.date(2024, 6, 28))
    universe.put_provider_settings("demo", "AAPL")
    seen: dict[str, object] = {}
    import jobs.tasks as job_tasks

    def fake_refresh_work(run_id, params, report):  # records what the scheduler asked for
        seen.update(params)
        return {"skipped": "recorded"}

    monkeypatch.setattr(job_tasks, "_refresh_work", fake_refresh_work)
    job_tasks._scheduled_refresh_work(0, {}, lambda f, m: None)
    assert seen == {"provider": "demo", "symbols": ["AAPL"]}
