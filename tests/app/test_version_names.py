"""One name per version, fresh everywhere: after an activation every selector names the new active version
(issue 12: the sidebar, "Start from version", the compare chips and the Reports selector kept the old one)."""

from __future__ import annotations

from tests.app.conftest import ADMIN, make_app


def _options(widget) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(o) for o in widget.options]


def test_after_an_activation_every_selector_names_the_new_active_version(app_db) -> None:
    from core.services import strategies

    version = strategies.save_version("Named everywhere", {"equal": 1.0}, note="names")
    at = make_app(ADMIN[0], page="pages/strategy.py")
    at.selectbox(key="strategy_activate_id").set_value(version.id).run()
    at = at.button(key="strategy_activate_button").click().run()
    assert not at.exception
    active_label = f"{version.name} v{version.version} (active)"
    sidebar = at.sidebar.selectbox(key="sidebar_config_id")
    assert active_label in _options(sidebar)
    assert sum("(active)" in o for o in _options(sidebar)) == 1
    base = at.selectbox(key="strategy_base_id")
    assert active_label in _options(base) and sum("(active)" in o for o in _options(base)) == 1
    chips = at.multiselect(key="strategy_compare_ids")
    assert active_label in _options(chips)
    reports = make_app(ADMIN[0], page="pages/reports.py")
    selector = reports.selectbox(key="reports_config")
    assert active_label in _options(selector)
    assert not any("(active) (active)" in o for o in _options(selector))
    previous = strategies.ensure_default_config()
    assert previous.id == version.id
