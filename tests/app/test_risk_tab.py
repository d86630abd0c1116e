"""AppTest: the Dashboard's Risk section shows the issue-15 panels (Monte Carlo fan, stress scenarios, factor
regression on the demo factor set) with the numbers of core.services.risk_views and the rate and basis stated."""

from __future__ import annotations

import pytest

from tests.app.conftest import ANALYST, make_app, plotly_figures
from tests.app.test_dashboard_look import _array


def _last_median(at) -> float:  # type: ignore[no-untyped-def]
    fan = plotly_figures(at)["Monte Carlo projection · price return"]
    median = [t for t in fan["data"] if t["name"] == "median"][0]
    return float(_array(median["y"])[-1])


def test_risk_section_shows_monte_carlo_stress_and_factors(app_db) -> None:
    from core.services import strategies
    from core.services.risk_views import MonteCarloParams, risk_view

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert not at.exception
    assert [h.value for h in at.subheader][-1] == "Monte Carlo projection"  # the first view, alone
    assert any("risk-free rate" in c.value and "Basis: price return" in c.value for c in at.caption)
    cid = strategies.active_version().id
    view = risk_view(cid, actor=None, monte_carlo=MonteCarloParams(target=20_000.0))
    assert _last_median(at) == pytest.approx(float(view.monte_carlo.fan["p50"].iloc[-1]), rel=1e-12)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Probability of a loss"] == f"{view.monte_carlo.prob_loss:.1%}"
    at.number_input(key="risk15_years").set_value(3).run()
    assert not at.exception
    three = risk_view(cid, actor=None, monte_carlo=MonteCarloParams(years=3, target=20_000.0))
    assert _last_median(at) == pytest.approx(float(three.monte_carlo.fan["p50"].iloc[-1]), rel=1e-12)
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    assert not at.exception and [h.value for h in at.subheader][-1] == "Stress scenarios"
    assert "Monte Carlo projection · price return" not in plotly_figures(at)  # one view drawn at a time
    assert any("Index return" in d.value.columns for d in at.dataframe)
    at.segmented_control(key="risk15_view").set_value("Factor regression").run()
    assert not at.exception and [h.value for h in at.subheader][-1] == "Factor regression"
    assert any("demo" in c.value for c in at.caption if "Factor set" in c.value)
    at.segmented_control(key="risk15_view").set_value("Monte Carlo").run()
    assert at.number_input(key="risk15_years").value == 3  # the view's inputs were kept while another was shown
    at.segmented_control(key="dash_section").set_value("Risk").run()
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert at.number_input(key="risk15_years").value == 3  # and while another Dashboard section was shown
    assert _last_median(at) == pytest.approx(float(three.monte_carlo.fan["p50"].iloc[-1]), rel=1e-12)


def test_strategy_lab_edits_the_benchmark_blend_and_caps_with_errors_beside_them(app_db) -> None:
    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.session_state["strategy_more"] = True  # the person opens "Benchmark, basis, caps and exclusions"
    at.run()
    at.text_input(key="strategy_field_benchmark_blend").input("^GSPC=60, IEF=50").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("blend weights must sum to 1" in e for e in errors), errors
    at.text_input(key="strategy_field_benchmark_blend").input("^GSPC=60, IEF=40").run()
    at.text_input(key="strategy_field_sector_caps").input("Retail=20").run()
    errors = [e.value for e in at.error]
    assert not any("blend" in e for e in errors) and any("Retail" in e for e in errors), errors
    at.text_input(key="strategy_field_sector_caps").input("Information Technology=25").run()
    at.selectbox(key="strategy_field_basis").set_value("total_return").run()
    assert not at.exception and not at.error


def _more_fields_drawn(at) -> set[str]:  # type: ignore[no-untyped-def]
    from ui.strategy_view import MORE_GROUPS

    keys = {w.key for w in [*at.text_input, *at.number_input, *at.selectbox]}
    return {n for g in MORE_GROUPS.values() for n in g if f"strategy_field_{n}" in keys}


def test_the_closed_expander_draws_no_field_and_keeps_what_was_typed_there(app_db) -> None:
    """Issue 17: "Benchmark, basis, caps and exclusions" draws its nine fields only while open. What was typed
    there counts while it is closed (the preview and the draft use it), survives an edit of another field and a
    visit to another page, and is there again when it opens; a value refused there is named while it is closed."""
    from core.services import strategies
    from ui.strategy_view import MORE_GROUPS

    at = make_app(ANALYST[0], page="pages/strategy.py")
    assert not at.exception and _more_fields_drawn(at) == set()
    at.session_state["strategy_more"] = True
    at.run()
    assert _more_fields_drawn(at) == {n for g in MORE_GROUPS.values() for n in g}
    at.text_input(key="strategy_field_sector_caps").input("Information Technology=25").run()
    at.session_state["strategy_more"] = False  # closed
    at.run()
    assert _more_fields_drawn(at) == set()
    at.number_input(key="strategy_field_cost_bps").set_value(9.0).run()
    draft = at.session_state["strategy_draft"]
    assert draft["sector_caps"] == {"Information Technology": 0.25} and draft["cost_bps"] == 9.0
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/strategy.py").run()
    assert not at.exception
    at.session_state["strategy_more"] = True
    at.run()
    assert at.text_input(key="strategy_field_sector_caps").value == "Information Technology=25"
    assert at.number_input(key="strategy_field_cost_bps").value == 9.0
    at.session_state["strategy_more"] = False  # saved while closed: what was typed there is saved
    at.run()
    at.text_area(key="strategy_note").input("caps typed, then the expander closed")
    next(b for b in at.button if b.label == "Save as new version").click().run()
    assert not at.exception
    saved = max(strategies.list_versions(), key=lambda v: v.id)
    assert saved.params["sector_caps"] == {"Information Technology": 0.25} and saved.params["cost_bps"] == 9.0
    at.number_input(key="strategy_field_cost_bps").set_value(11.0).run()  # a draft on the version just saved
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/strategy.py").run()  # the base and the draft survive the visit (not the active version)
    assert at.selectbox(key="strategy_base_id").value == saved.id
    assert at.number_input(key="strategy_field_cost_bps").value == 11.0
    assert at.session_state["strategy_draft"]["sector_caps"] == {"Information Technology": 0.25}
    at.session_state["strategy_more"] = True
    at.run()

    at.text_input(key="strategy_field_benchmark_blend").input("^GSPC=60, IEF=50").run()
    at.session_state["strategy_more"] = False  # closing it while a field there is refused
    at.run()
    assert _more_fields_drawn(at) == set()
    assert any(
        e.value.startswith("Or a blend (SYMBOL=% , ...) (under Benchmark, basis, caps and exclusions): ")
        and "blend weights must sum to 1" in e.value
        for e in at.error
    ), [e.value for e in at.error]
    assert any("preview is paused" in w.value for w in at.warning)


def test_data_page_factor_import_refuses_a_missing_file_beside_the_field(app_db) -> None:
    from tests.app.conftest import ADMIN

    at = make_app(ADMIN[0], page="pages/data.py")
    assert not at.exception
    at.text_input(key="risk15_factor_set").input("FF3").run()
    next(b for b in at.button if b.label == "Import factors").click().run()
    assert not at.exception
    assert any("choose a CSV file first" in e.value for e in at.error)


def test_the_drawdown_histogram_sends_its_bins_with_the_views_numbers(app_db) -> None:
    import numpy as np

    from core.services import strategies
    from core.services.risk_views import risk_view
    from ui.risk_view import DEFAULTS, DRAWDOWN_BINS

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert not at.exception
    view = risk_view(strategies.active_version().id, actor=None, monte_carlo=DEFAULTS)
    figures = plotly_figures(at)
    bars = figures["Distribution of the maximum drawdown · price return"]["data"][0]
    counts = _array(bars["y"])
    expected, edges = np.histogram(view.monte_carlo.max_drawdowns, bins=DRAWDOWN_BINS)
    assert len(counts) == DRAWDOWN_BINS and np.array_equal(counts, expected)
    assert counts.sum() == DEFAULTS.n_paths  # every path counted once
    assert _array(bars["x"]) == pytest.approx((edges[:-1] + edges[1:]) / 2)
    fan = view.monte_carlo.fan
    median = [t for t in figures["Monte Carlo projection · price return"]["data"] if t["name"] == "median"][0]
    assert np.allclose(_array(median["x"]), fan["years"]) and np.allclose(_array(median["y"]), fan["p50"], rtol=1e-12)


@pytest.fixture
def risk_calls(monkeypatch):  # type: ignore[no-untyped-def]
    """A served app's caches, emptied, and the keyword arguments of every risk view actually computed."""
    from core.services import risk_views
    from ui import cache

    cache.clear()
    calls: list[dict] = []
    real = risk_views.risk_view

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(risk_views, "risk_view", counted)
    monkeypatch.setattr(cache, "served", lambda: True)  # prewarms run only in a served app
    return calls


def test_dashboard_computes_the_risk_section_ahead_with_the_sections_own_defaults(app_db, risk_calls) -> None:
    """The first Risk view of a data version is read, not computed: the Dashboard queued it on the prewarm thread
    with the section's widget defaults. Were the defaults and the widgets apart, the section would compute again."""
    from ui import cache

    calls = risk_calls
    at = make_app(ANALYST[0])
    assert not at.exception and not [s for s in at.subheader if s.value == "Monte Carlo projection"]
    assert cache._prewarm.idle(120)
    assert len(calls) == 1
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert not at.exception and any(s.value == "Monte Carlo projection" for s in at.subheader)
    assert len(calls) == 1, calls  # the section read the prewarmed view
    at.number_input(key="risk15_years").set_value(3).run()
    assert len(calls) == 2 and calls[-1]["monte_carlo"].years == 3  # other inputs are computed when asked
    for shown in ("Stress scenarios", "Factor regression", "Monte Carlo"):
        at.segmented_control(key="risk15_view").set_value(shown).run()
        assert not at.exception
    assert len(calls) == 2  # switching views reads the same view: the inputs of the views not drawn are kept


def test_a_shared_risk_view_is_computed_as_the_system_and_every_reader_is_checked(app_db, risk_calls) -> None:
    """One user's session ending (here: an account that no longer exists queued the prewarm) never fails another
    user's view, and a reader whose session ended is refused even though the view is cached."""
    from core.services import strategies
    from core.services.access import SessionEnded
    from ui import cache
    from ui.risk_view import DEFAULTS

    calls = risk_calls
    token, cid = cache.token(), strategies.active_version().id
    cache.prewarm_risk_view(token, cid, actor="nobody-anymore", monte_carlo=DEFAULTS)
    assert cache._prewarm.idle(120) and [c["actor"] for c in calls] == [None]  # computed as the system
    view = cache.risk_view(token, cid, actor=ANALYST[0], monte_carlo=DEFAULTS)
    assert view.monte_carlo is not None and len(calls) == 1  # read, not computed again
    with pytest.raises(SessionEnded):
        cache.risk_view(token, cid, actor="nobody-anymore", monte_carlo=DEFAULTS)


def test_stress_and_factor_tables_keep_their_numbers_as_numbers(app_db) -> None:
    """Returns stay numbers (drawn as percent, a scenario not covered blank), t-stats too: not full-precision
    text."""
    import numpy as np

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    assert not at.exception
    stress = next(d.value for d in at.dataframe if "Index return" in d.value.columns)
    assert stress["Index return"].dtype == float and stress["Benchmark return"].dtype == float
    uncovered = stress["Covered"] == "not covered"
    assert uncovered.any() and np.isnan(stress.loc[uncovered, "Index return"]).all()
    assert np.isfinite(stress.loc[~uncovered, "Index return"]).all()
    at.segmented_control(key="risk15_view").set_value("Factor regression").run()
    assert not at.exception
    factors = next(d.value for d in at.dataframe if "T stat" in d.value.columns)
    assert factors["T stat"].dtype == float and factors["Beta"].dtype == float


def test_the_chosen_scenario_view_is_kept_across_sections_and_stays_chosen(app_db) -> None:
    """Found by attacking the change: the inputs were kept while another section was shown, the view was not; and
    clicking the chosen view left none chosen."""
    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    at.segmented_control(key="dash_section").set_value("Risk").run()
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert not at.exception and [h.value for h in at.subheader][-1] == "Stress scenarios"
    assert at.segmented_control(key="risk15_view").value == "Stress scenarios"


def test_the_shock_editor_is_drawn_only_while_open_and_its_rows_apply_while_closed(app_db) -> None:
    """Issue 17: the hypothetical shocks' table editor is drawn only while its expander is open (a closed one still
    cost the browser a third of the Scenarios section). The rows that apply while it is closed are the last ones
    edited (the defaults at first): the stress view's hypothetical return is the risk view's for those rows, and the
    editor opens on them."""
    import pandas as pd

    from core.services import strategies
    from core.services.risk_views import risk_view
    from ui.risk_view import DEFAULTS, _default_shock_rows, shocks_of

    cid = strategies.active_version().id
    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    assert not at.exception and len(at.data_editor) == 0  # closed: not drawn

    def hypothetical(rows: pd.DataFrame) -> str:
        view = risk_view(cid, actor=None, monte_carlo=DEFAULTS, shocks=shocks_of(rows))
        return f"{view.hypothetical[0]:.2%}"

    def shown() -> str:
        return next(m.value for m in at.metric if m.label == "Index return under the hypothetical shocks")

    assert shown() == hypothetical(_default_shock_rows())
    at.session_state["risk15_shocks_open"] = True
    at.run()
    assert len(at.data_editor) == 1
    pd.testing.assert_frame_equal(at.data_editor[0].value.reset_index(drop=True), _default_shock_rows())

    edited = pd.DataFrame({"kind": ["asset_class", "asset"], "target": ["equity", "SPY"], "shock %": [-50.0, 10.0]})
    at.session_state["risk15_shocks_open"] = False
    at.run()  # the closing run (the editor is drawn once more, closed: an edit may come with the click)
    at.session_state["risk15_shock_rows"] = edited  # as if those were the rows of its last edit
    at.run()
    assert len(at.data_editor) == 0 and shown() == hypothetical(edited) != hypothetical(_default_shock_rows())
    at.segmented_control(key="dash_section").set_value("Performance").run()
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert shown() == hypothetical(edited)  # kept while another section was shown
    at.session_state["risk15_shocks_open"] = True
    at.run()
    pd.testing.assert_frame_equal(at.data_editor[0].value.reset_index(drop=True), edited)
    assert shown() == hypothetical(edited)


# --- found by attacking the lazy expanders (each failed on the first version) --------------------------------------


def test_an_edit_committed_by_the_click_that_closes_the_expander_is_kept(app_db) -> None:
    """In a browser, typing in a field under "Benchmark, basis, caps and exclusions" and then clicking its header
    commits the value and closes it in one run: that value counts, is saved in the draft, and is there on reopening."""
    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.session_state["strategy_more"] = True
    at.run()
    at.text_input(key="strategy_field_sector_caps").input("Information Technology=25")
    at.number_input(key="strategy_field_min_holdings").set_value(5)
    at.session_state["strategy_more"] = False  # the same run
    at.run()
    assert not at.exception and _more_fields_drawn(at) == set()
    draft = at.session_state["strategy_draft"]
    assert draft["sector_caps"] == {"Information Technology": 0.25} and draft["min_holdings"] == 5
    at.number_input(key="strategy_field_cost_bps").set_value(7.0).run()  # a later run: still held
    assert at.session_state["strategy_draft"]["sector_caps"] == {"Information Technology": 0.25}
    at.session_state["strategy_more"] = True
    at.run()
    assert at.text_input(key="strategy_field_sector_caps").value == "Information Technology=25"
    assert at.number_input(key="strategy_field_min_holdings").value == 5


def test_a_shock_edit_committed_by_the_click_that_closes_the_editor_applies(app_db) -> None:
    """The same for the shock editor: an edit arriving with the closing click applies to the stress view and is in
    the rows the editor reopens on; an edit made, then another section shown and this one again, is kept too."""
    import pandas as pd

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    at.session_state["risk15_shocks_open"] = True
    at.run()
    # what the browser's editor reports for a cell typed into (AppTest cannot type into a grid)
    edit = {"edited_rows": {0: {"shock %": -50.0}}, "added_rows": [], "deleted_rows": []}
    at.session_state[at.data_editor[0].key] = edit
    at.session_state["risk15_shocks_open"] = False  # the same run
    at.run()
    assert not at.exception
    assert at.session_state["risk15_shock_rows"]["shock %"].tolist() == [-50.0, 5.0]
    shown = next(m.value for m in at.metric if m.label == "Index return under the hypothetical shocks")
    at.run()
    assert len(at.data_editor) == 0  # drawn once more in the closing run only
    at.session_state["risk15_shocks_open"] = True
    at.run()
    pd.testing.assert_series_equal(
        at.data_editor[0].value["shock %"].reset_index(drop=True), pd.Series([-50.0, 5.0], name="shock %")
    )

    at.session_state[at.data_editor[0].key] = {
        "edited_rows": {1: {"shock %": 8.0}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()  # edited while open
    at.segmented_control(key="dash_section").set_value("Performance").run()
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert at.session_state["risk15_shock_rows"]["shock %"].tolist() == [-50.0, 8.0]
    assert next(m.value for m in at.metric if m.label == "Index return under the hypothetical shocks") != shown


def test_a_weight_map_keeps_its_precision_through_a_visit_to_another_page(app_db) -> None:
    """A weight typed with more than six significant digits was rounded on the way back from another page (and when
    a saved version was loaded): the draft, and so the preview and a save, changed without anyone editing."""
    from ui.strategy_view import form_params

    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.session_state["strategy_more"] = True
    at.run()
    at.text_input(key="strategy_field_asset_class_caps").input("equity=12.3456789").run()
    before = at.session_state["strategy_draft"]["asset_class_caps"]
    assert before == {"equity": 0.123456789}
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/strategy.py").run()
    assert at.session_state["strategy_draft"]["asset_class_caps"] == before
    loaded = form_params({"asset_class_caps": {"equity": 0.123456789}, "benchmark_blend": {"SPY": 0.6, "IEF": 0.4}})
    assert loaded["asset_class_caps"] == {"equity": 0.123456789}
    assert loaded["benchmark_blend"] == {"SPY": 0.6, "IEF": 0.4}


def test_a_logout_leaves_nothing_of_the_last_users_work_for_the_next(app_db) -> None:
    """Unsaved work (a draft, a field held under a closed expander, shock rows) belongs to the person who made it:
    after a logout, the next person logging in on the same browser session starts from the active version."""
    import pandas as pd

    from tests.app.conftest import ADMIN, log_in

    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.session_state["strategy_more"] = True
    at.run()
    at.text_input(key="strategy_field_exclusions").input("SPY").run()
    at.session_state["strategy_more"] = False
    at.session_state["risk15_shock_rows"] = pd.DataFrame({"kind": ["asset"], "target": ["SPY"], "shock %": [-90.0]})
    at.run()
    assert at.session_state["strategy_draft"]["exclusions"] == ["SPY"]
    at.button(key="logout_button").click().run()
    assert not at.exception
    for key in ("strategy_draft", "strategy_held", "risk15_shock_rows", "strategy_field_exclusions"):
        assert key not in at.session_state, key
    log_in(at, ADMIN[0])
    at.run()
    at.switch_page("pages/strategy.py").run()
    assert not at.exception
    assert at.session_state["strategy_draft"]["exclusions"] == []


def test_missing_numbers_are_drawn_as_a_dash_not_the_word_none(app_db) -> None:
    """A newcomer read "None" in the stress table's returns of uncovered scenarios and the factor table's T stat of
    R²: the grid writes "None" for a missing value unless told otherwise. Every table is drawn by
    ``ui.tables.show``, which tells it; the cells themselves stay NaN (numbers, see the test above)."""
    from ui.format import MISSING

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    at.segmented_control(key="risk15_view").set_value("Stress scenarios").run()
    assert not at.exception
    stress = next(d for d in at.dataframe if "Index return" in d.value.columns)
    assert stress.value["Index return"].isna().any()
    at.segmented_control(key="risk15_view").set_value("Factor regression").run()
    assert not at.exception
    factors = next(d for d in at.dataframe if "T stat" in d.value.columns)
    assert factors.value["T stat"].isna().any()
    for table in (stress, factors):
        assert table.proto.placeholder == MISSING


def test_scenario_charts_are_drawn_in_light_colours_in_the_dark_theme(app_db, monkeypatch) -> None:
    """Dark theme: the stress chart's Index bars were navy on near-black and the Monte Carlo bands hardly showed: the
    section's figures never went through the dark swap, and traces naming no colour took the light theme's navy from
    the colours the element sends. Every figure and colour the section sends is the dark theme's."""
    import json
    import re

    from ui import charts as chart_colors
    from ui import dashboard_view

    monkeypatch.setattr(dashboard_view, "dark_theme", lambda: True)

    def rgb(color: str) -> tuple[int, ...]:  # "#1f4e79", "rgb(31,78,121)" and "rgba(31,78,121,0.2)" alike
        if color.startswith("#"):
            return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        return tuple(int(float(v)) for v in re.findall(r"[\d.]+", color)[:3])

    too_dark = {rgb(c) for c in chart_colors.DARK_THEME_COLORS}

    def colors(figure: dict) -> list[str]:
        out = []
        for trace in figure["data"]:
            for value in (
                trace.get("fillcolor"),
                (trace.get("line") or {}).get("color"),
                (trace.get("marker") or {}).get("color"),
            ):
                out += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        return out

    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    sent = {}
    for view in ("Monte Carlo", "Stress scenarios"):
        at.segmented_control(key="risk15_view").set_value(view).run()
        assert not at.exception
        sent.update(plotly_figures(at))
        for element in at.get("bidi_component"):
            data = json.loads(element.proto.json or "null") or {}
            if data.get("spec"):
                assert not too_dark & {rgb(c) for c in data["colorway"]}
    fan = sent["Monte Carlo projection · price return"]
    stress = sent["Stress scenarios on the current weights · price return"]
    assert [t["name"] for t in fan["data"] if t.get("fill")] == ["p5-p95", "p25-p75"]
    assert [t["name"] for t in stress["data"]][0] == "Index"
    for figure in (fan, stress):
        shown = colors(figure)
        assert shown and not too_dark & {rgb(c) for c in shown}, shown
