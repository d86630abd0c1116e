"""The Diagnostics page in AppTest: admins see every check with its rule and can clear caches (audited);
analysts are refused; Redis configured but down still renders, with a clear error card."""

from __future__ import annotations

from tests.app.conftest import make_app, page_app, texts

PAGE = "pages/diagnostics.py"


def _exception_free(at) -> None:  # type: ignore[no-untyped-def]
    assert not at.exception, [e.value for e in at.exception]


def test_admin_sees_every_check_with_its_rule(app_db) -> None:
    at = make_app("admin", PAGE)
    _exception_free(at)
    shown = texts(at)
    assert "Diagnostics" in shown
    assert "Overall status" in shown
    for title in (
        "Database",
        "Redis",
        "Job queue",
        "Workers",
        "Data freshness",
        "Jobs",
        "App performance",
        "Cache",
        "Configuration",
    ):
        assert f"**{title}**" in shown, title
    assert "warning if the benchmark is more than 3 business days stale" in shown
    assert "error if the database is unreachable" in shown
    # the freshness table lists the benchmark first
    frames = [df.value for df in at.dataframe]
    freshness = next(f for f in frames if "Business days stale" in f.columns)  # the one freshness wording
    assert freshness.iloc[0]["Benchmark"] == "yes"


def test_analyst_is_denied(app_db) -> None:
    at = page_app(PAGE, "analyst")
    _exception_free(at)
    assert any("Access denied" in str(e.value) for e in at.error)
    assert "Overall status" not in texts(at)


def test_cache_actions_are_audited(app_db) -> None:
    from core.infra.cache import get_cache
    from core.services import audit

    cache = get_cache()
    cache.get_or_compute("metrics", "probe", lambda: 1, version=0)
    cache.get_or_compute("index", "probe", lambda: 2, version=0)
    at = make_app("admin", PAGE)
    at.selectbox(key="diag_namespace").set_value("metrics")
    at.button(key="diag_clear_namespace").click().run()
    _exception_free(at)
    assert "Cleared namespace metrics:" in texts(at)
    assert cache.backend.count_keys(cache.namespace_prefix("metrics")) == 0
    assert cache.backend.count_keys(cache.namespace_prefix("index")) >= 1  # the other namespace is kept
    at.button(key="diag_clear_all").click().run()
    assert "Cleared every cache namespace" in texts(at)
    at.button(key="diag_clear_streamlit").click().run()
    assert "Cleared Streamlit's data caches" in texts(at)
    actions = list(audit.list_events(actor="admin")["action"])
    for action in ("cache.clear", "cache.clear_all", "cache.clear_streamlit"):
        assert action in actions


def test_redis_configured_but_down_renders_an_error_card(app_db, monkeypatch) -> None:
    import jobs  # noqa: F401 - build the job queue before REDIS_URL changes (it is built once per process)
    from core.config import reset_settings_cache

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings_cache()
    try:
        at = make_app("admin", PAGE)
        _exception_free(at)
        shown = texts(at)
        assert "Overall status: **ERROR**" in shown
        assert "unreachable at redis://127.0.0.1:1/0" in shown
        # the dashboard still renders (its cached reads fall back to computing)
        dash = make_app("admin", "pages/dashboard.py")
        _exception_free(dash)
    finally:
        monkeypatch.delenv("REDIS_URL")
        reset_settings_cache()
