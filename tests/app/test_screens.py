"""AppTest: the values and charts each screen shows equal the service results; bad input is refused beside
the field and leaves the database unchanged."""

from __future__ import annotations

import pytest

from tests.app.conftest import ADMIN, ANALYST, make_app, plotly_figures, texts, trace_names


def _last_y(trace: dict) -> float:
    """The last y value of a trace, whether plotly sent a list or a base64 typed array."""
    import base64

    import numpy as np

    y = trace["y"]
    if isinstance(y, dict):
        return float(np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))[-1])
    return float(y[-1])


@pytest.fixture(scope="module")
def dashboard_service(app_db):  # type: ignore[no-untyped-def]
    from core.services import dashboard, strategies

    return dashboard.dashboard_data(strategies.active_version().id)


@pytest.mark.parametrize("username", [ADMIN[0], ANALYST[0]])
def test_dashboard_kpis_equal_the_service(app_db, dashboard_service, username: str) -> None:
    from ui.format import number, pct

    at = make_app(username)
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    data = dashboard_service
    assert shown["Index level"] == number(data.level)
    for period in ("1D", "MTD", "YTD", "1Y"):
        assert shown[f"{period} return"] == pct(data.kpis.loc[period, "index"])
        assert f"{data.benchmark_symbol}: {pct(data.kpis.loc[period, 'benchmark'])}" in texts(at)
    assert any("Synthetic demo data" in m.value for m in at.markdown)
    assert any("Synthetic demo data" in m.value for m in at.sidebar.markdown)


def _all_sections(at) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Figures of every dashboard section (one section is drawn per run)."""
    from ui.dashboard_view import SECTIONS

    figures = {}
    for section in SECTIONS:
        at.segmented_control(key="dash_section").set_value(section).run()
        assert not at.exception, at.exception
        figures.update(plotly_figures(at))
    return figures


def test_dashboard_charts_carry_expected_traces(app_db, dashboard_service) -> None:
    at = make_app(ADMIN[0])
    figures = _all_sections(at)
    bench = dashboard_service.benchmark_symbol
    assert trace_names(figures["Index vs benchmark · price return"]) == ["Index", bench]
    assert _last_y(figures["Index vs benchmark · price return"]["data"][0]) == pytest.approx(dashboard_service.level)
    assert trace_names(figures["Growth of 10,000 · price return"]) == ["Index", bench]
    assert trace_names(figures["Underwater (drawdown) · price return"]) == ["Index"]
    assert trace_names(figures["Monthly returns · price return"]) == ["Monthly returns"]
    assert trace_names(figures["Correlation of daily returns (last year) · price return"]) == ["Correlation"]
    at.segmented_control(key="dash_section").set_value("Risk").run()
    for kind, title in (("vol", "Rolling volatility"), ("sharpe", "Rolling Sharpe"), ("beta", "Rolling beta")):
        at.segmented_control(key="dash_rolling").set_value(kind).run()  # one full-width chart at a time
        assert not at.exception
        drawn = plotly_figures(at)
        assert trace_names(drawn[f"{title} · price return"]) == ["63 days", "252 days"]
        assert not [t for t in drawn if t.startswith("Rolling") and not t.startswith(title)]
    sectors = trace_names(figures["Allocation over time (by sector) · price return"])
    assert sectors == [str(c) for c in dashboard_service.allocation_history_sectors.columns]
    pie = figures["Allocation now by sector · price return"]["data"][0]
    assert list(pie["labels"]) == dashboard_service.allocation_sectors["sector"].tolist()


def test_dashboard_metrics_table_has_definitions_on_hover(app_db, dashboard_service) -> None:
    from core.quant.risk import METRIC_DEFINITIONS
    from ui.format import metric_value

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Risk").run()
    table = next(m.value for m in at.markdown if "autoindex-metrics" in m.value)
    for key, (label, formula, unit) in METRIC_DEFINITIONS.items():
        assert (
            f'title="{formula}"'.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in table
            or label in table
        )
        row = dashboard_service.metrics.set_index("key").loc[key]
        assert metric_value(row["value"], unit) in table


def test_dashboard_range_and_log_scale(app_db) -> None:
    at = make_app(ADMIN[0])
    at.toggle(key="dash_log_scale").set_value(True).run()
    assert plotly_figures(at)["Index vs benchmark · price return"]["layout"]["yaxis"]["type"] == "log"


def test_dashboard_is_fresh_after_a_new_version_is_computed(app_db) -> None:
    from core.services import compute, strategies

    at = make_app(ANALYST[0])
    version = strategies.save_version("Equal test", {"equal": 1.0, "rebalance": "monthly"}, note="fresh")
    compute.compute_config(version.id, actor="test")
    at.run()  # the selector now offers the new version: the cache key changed with the compute
    at.selectbox(key="sidebar_config_id").set_value(version.id).run()
    assert at.title[0].value == "Dashboard · Equal test v1"
    from ui.format import number

    assert at.metric[0].value == number(float(compute.stored_index(version.id).iloc[-1]))


def test_strategy_bad_input_shows_message_beside_field_and_saves_nothing(app_db) -> None:
    from core.services import strategies

    before = len(strategies.list_versions())
    at = make_app(ANALYST[0], page="pages/strategy.py")
    assert not at.exception
    at.number_input(key="strategy_field_equal").set_value(50.0).run()  # percent: the sleeves now sum to 150%
    # said once, below the sleeves, in percent as they are typed (it was under each of the four, in fractions)
    sleeve_errors = [e.value for e in at.error if "sleeve" in e.value]
    assert sleeve_errors == ["The four sleeve weights add up to 150%; they must add up to 100%."]
    assert any("paused" in w.value for w in at.warning)
    save = next(b for b in at.button if b.label == "Save as new version")
    assert save.disabled
    at.number_input(key="strategy_field_equal").set_value(0.0).run()
    at.number_input(key="strategy_field_top_n").set_value(2).run()
    at.number_input(key="strategy_field_max_weight").set_value(10.0).run()  # 10%: 2 assets cannot hold 100%
    assert any("infeasible cap" in e.value for e in at.error)
    assert len(strategies.list_versions()) == before


def test_strategy_preview_save_and_note_required(app_db) -> None:
    from core.services import strategies

    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.number_input(key="strategy_field_cost_bps").set_value(25.0).run()
    figures = plotly_figures(at)
    compare = figures["Preview and saved versions (rebased to 100)"]
    assert trace_names(compare)[0] == "Preview (unsaved)"
    before = len(strategies.list_versions())
    save = next(b for b in at.button if b.label == "Save as new version")
    at = save.click().run()
    assert any("Note" in e.value and "required" in e.value for e in at.error)
    assert len(strategies.list_versions()) == before
    at.text_area(key="strategy_note").input("higher costs")
    at = next(b for b in at.button if b.label == "Save as new version").click().run()
    assert not at.exception
    newest = max(strategies.list_versions(), key=lambda v: v.id)
    assert newest.note == "higher costs" and newest.created_by == ANALYST[0] and newest.params["cost_bps"] == 25.0
    assert any("Saved" in s.value for s in at.success)


def test_strategy_fields_read_with_units_and_percent_round_trips(app_db) -> None:
    from core.services import strategies

    at = make_app(ANALYST[0], page="pages/strategy.py")
    labels = {n.key: n.label for n in at.number_input}
    assert labels["strategy_field_momentum"] == "Momentum sleeve (%)"
    assert labels["strategy_field_momentum_lookback"] == "Momentum lookback (trading days)"
    assert labels["strategy_field_cost_bps"] == "Trading cost (bps of turnover)"
    assert labels["strategy_field_top_n"] == "Top N assets — optional"
    active = strategies.active_version()
    assert at.number_input(key="strategy_field_momentum").value == pytest.approx(active.params["momentum"] * 100)
    at.number_input(key="strategy_field_momentum").set_value(35.0).run()
    at.number_input(key="strategy_field_risk_parity").set_value(active.params["risk_parity"] * 100 + 5).run()
    assert not at.exception and not [e for e in at.error if "sum" in e.value]
    at.text_area(key="strategy_note").input("shift 5% to risk parity")
    at = next(b for b in at.button if b.label == "Save as new version").click().run()
    newest = max(strategies.list_versions(), key=lambda v: v.id)
    assert newest.params["momentum"] == pytest.approx(0.35)
    assert newest.params["risk_parity"] == pytest.approx(active.params["risk_parity"] + 0.05)


def test_a_saved_version_is_compared_without_activation_with_the_stored_computes_numbers(app_db) -> None:
    from core.services import compute, strategies
    from ui.strategy_view import BENCHMARK

    version = strategies.save_version(
        "Never activated", {"equal": 1.0, "rebalance": "quarterly", "cost_bps": 30}, note="compare me"
    )
    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.multiselect(key="strategy_compare_ids").set_value([version.id]).run()
    assert not at.exception
    assert "Never activated v1" in trace_names(plotly_figures(at)["Preview and saved versions (rebased to 100)"])
    table = next(d.value for d in at.dataframe if "Preview (unsaved)" in d.value.columns)
    assert {"Preview (unsaved)", "Never activated v1", BENCHMARK, "Preview − Never activated v1"} <= set(table.columns)
    assert {"Turnover per year", "Total costs", "Rebalances"} <= set(table.index)
    # what the comparison showed is what the stored compute stores, once someone computes the version
    compute.compute_config(version.id)
    stored = {name: value for name, (value, _reason) in compute.stored_metrics(version.id).items()}
    from ui.format import metric_value

    assert table.loc["CAGR", "Never activated v1"] == metric_value(stored["cagr"], "fraction")
    assert table.loc["Sharpe ratio", "Never activated v1"] == metric_value(stored["sharpe"], "ratio")
    assert strategies.get_version(version.id).is_active is False


def test_strategy_activate_recomputes(app_db) -> None:
    from core.services import strategies

    version = strategies.save_version("Activate me", {"equal": 1.0}, note="t")
    at = make_app(ADMIN[0], page="pages/strategy.py")
    at.selectbox(key="strategy_activate_id").set_value(version.id).run()
    at = at.button(key="strategy_activate_button").click().run()
    assert not at.exception
    assert strategies.active_version().id == version.id
    assert any("now active" in s.value for s in at.success)
    # the service queued the recompute of the version it activated (core.services.strategies.activate)
    from core.services import runs

    queued = [r for r in runs.list_runs(kind="compute") if r.args.get("config_id") == version.id]
    assert len(queued) == 1
    assert any(f"Recompute queued as task {queued[0].id}" in s.value for s in at.success)


def test_analysts_save_versions_but_are_offered_no_activation(app_db) -> None:
    from core.errors import PermissionDenied
    from core.services import strategies

    at = make_app(ANALYST[0], page="pages/strategy.py")
    assert not at.exception
    assert "Activate" not in [t.label for t in at.tabs]
    assert not [c for c in at.checkbox if c.key == "strategy_activate_on_save"]
    version = strategies.save_version("Analyst idea", {"equal": 1.0}, note="t", actor=ANALYST[0])
    with pytest.raises(PermissionDenied):
        strategies.activate_version(version.id, actor=ANALYST[0])
    with pytest.raises(PermissionDenied):
        strategies.save_version("Analyst idea", {"equal": 1.0}, note="t", actor=ANALYST[0], activate=True)
    assert strategies.active_version().id != version.id


def test_data_is_read_only_for_analysts(app_db) -> None:
    at = make_app(ANALYST[0], page="pages/data.py")
    assert not at.exception
    labels = [t.label for t in at.tabs]
    assert labels == ["Universe", "Asset history"]
    assert not [b for b in at.button if b.label in ("Import", "Add asset", "Deactivate")]
    assert "Read-only" in texts(at)


def test_data_asset_history_matches_service(app_db) -> None:
    from core.services import universe

    at = make_app(ANALYST[0], page="pages/data.py")
    symbol = at.selectbox(key="data_asset").value
    history = universe.asset_history(symbol)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Prices"] == f"{history.quality['prices']:,}"
    assert trace_names(plotly_figures(at)[f"{symbol} daily close"]) == [symbol]


def test_data_add_asset_validates_beside_the_field(app_db) -> None:
    from core.services import universe

    before = len(universe.list_assets())
    at = make_app(ADMIN[0], page="pages/data.py")
    at.text_input(key="data_new_symbol").input("BAD SYMBOL!")
    at.text_input(key="data_new_name").input("")
    at = next(b for b in at.button if b.label == "Add asset").click().run()
    messages = [e.value for e in at.error]
    assert any(m.startswith("Symbol:") for m in messages) and any(m.startswith("Name:") for m in messages)
    assert len(universe.list_assets()) == before
    at.text_input(key="data_new_symbol").input("NEWCO")
    at.text_input(key="data_new_name").input("New Company")
    at = next(b for b in at.button if b.label == "Add asset").click().run()
    assert "NEWCO" in universe.list_assets()["symbol"].tolist()
    at = next(b for b in at.button if b.label == "Add asset").click().run()


def test_data_deactivate_asset(app_db) -> None:
    from core.services import universe

    universe.add_asset("OLDCO", "Old Company")
    at = make_app(ADMIN[0], page="pages/data.py")
    at.selectbox(key="data_deactivate").set_value("OLDCO").run()
    at = at.button(key="data_toggle_active").click().run()
    frame = universe.list_assets().set_index("symbol")
    assert not bool(frame.loc["OLDCO", "active"])


def test_admin_create_user_validates_and_changes_role(app_db) -> None:
    from core.services import audit, users

    before = users.count_users()
    at = make_app(ADMIN[0], page="pages/admin.py")
    assert [u for u in at.dataframe[0].value["Username"]] == [u.username for u in users.list_users()]
    at.text_input(key="admin_new_username").input("newbie")
    at.text_input(key="admin_new_name").input("New Bie")
    at.text_input(key="admin_new_password").input("newbie")
    at = next(b for b in at.button if b.label == "Create user").click().run()
    assert any(e.value.startswith("Initial password:") for e in at.error)  # named by its label
    assert users.count_users() == before
    at.text_input(key="admin_new_password").input("newbie password 2024")
    at = next(b for b in at.button if b.label == "Create user").click().run()
    assert users.get_user("newbie").role == "analyst"
    at.selectbox(key="admin_edit_user").set_value("newbie").run()
    at.selectbox(key="admin_edit_role").set_value("admin").run()
    at = at.button(key="admin_save_user").click().run()
    assert users.get_user("newbie").role == "admin"
    assert len(audit.list_events(action="user.update")) >= 1


def test_admin_registration_mode_and_audit_filter(app_db) -> None:
    from core.services import users

    at = make_app(ADMIN[0], page="pages/admin.py")
    at.radio(key="admin_reg_mode").set_value("invite").run()
    at = at.button(key="admin_save_mode").click().run()
    assert users.registration_mode() == "invite"
    at.text_input(key="admin_invite_email").input("not-an-email")
    at = next(b for b in at.button if b.label == "Invite").click().run()
    assert any(e.value.startswith("Invite email:") for e in at.error)
    at.text_input(key="admin_audit_action").input("settings.registration").run()
    # The audit table is the one in the "Audit log" tab (the Alerts tab after it has tables of its own).
    audit_tab = next(t for t in at.tabs if t.label == "Audit log")
    assert len(audit_tab.dataframe) == 1
    audit_frame = audit_tab.dataframe[0].value
    assert len(audit_frame) >= 1 and set(audit_frame["Action"]) == {"settings.registration"}
    users.set_registration_mode("closed", actor=None)
