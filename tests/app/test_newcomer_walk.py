"""Small defects a newcomer's walk through the app found, each checked where a person sees it: an empty column, a
word said twice, unrounded timings, a label that wraps, a placeholder that misnames the default, two error
messages at once about two different forms."""

from __future__ import annotations

import json
import re

import pandas as pd

from tests.app.conftest import ADMIN, ANALYST, make_app, texts


def _metrics(reason: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": ["cagr", "sharpe"],
            "label": ["CAGR", "Sharpe ratio"],
            "value": [0.08, None if reason else 0.5],
            "benchmark": [0.07, 0.4],
            "unit": ["fraction", "ratio"],
            "formula": ["(V_T / V_0)^(252/n) - 1", "mean / std * sqrt(252)"],
            "reason": [None, reason],
            "benchmark_reason": [None, None],
        }
    )


def _metrics_table_html(metrics: pd.DataFrame) -> str:
    from streamlit.testing.v1 import AppTest

    def draw(metrics):  # type: ignore[no-untyped-def]  # its source runs as a script: no annotations
        from ui.dashboard_view import metrics_table

        metrics_table(metrics, "^GSPC")

    at = AppTest.from_function(draw, args=(metrics,)).run()
    assert not at.exception
    return next(m.value for m in at.markdown if "autoindex-metrics" in m.value)


def test_the_risk_table_has_a_note_column_only_when_a_row_has_a_note() -> None:
    plain = _metrics_table_html(_metrics(None))
    assert "<th>Note</th>" not in plain
    assert "<td></td>" not in plain  # no empty cell left where the column was
    noted = _metrics_table_html(_metrics("needs at least 2 returns"))
    assert "<th>Metric</th><th>Index</th><th>^GSPC</th><th>Note</th>" in noted
    assert "<td>needs at least 2 returns</td>" in noted
    assert noted.count("<td></td>") == 1  # the row without a note keeps its cell, empty


def test_the_dashboard_risk_table_shows_no_empty_note_column(app_db) -> None:
    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Risk").run()
    table = next(m.value for m in at.markdown if "autoindex-metrics" in m.value)
    assert "<th>Note</th>" not in table
    assert "<td></td>" not in table


def test_the_account_is_named_without_saying_a_word_twice(app_db) -> None:
    at = make_app(ADMIN[0], page="pages/account.py")
    assert not at.exception
    assert at.caption[0].value == "Ada Admin · admin · administrator"
    shown = texts(at) + "\n".join(str(m.value) for m in at.sidebar.markdown)
    assert not re.search(r"\badmin · admin\b", shown)
    assert "admin · administrator" in "\n".join(str(m.value) for m in at.sidebar.markdown)


def test_account_line_names_username_and_role_when_they_differ(app_db) -> None:
    from core.services import users
    from ui.auth import account_line

    user = users.get_user(ADMIN[0])
    assert account_line(user.model_copy(update={"username": "ada"})) == "ada · administrator"
    assert account_line(user) == "admin · administrator"
    assert account_line(user.model_copy(update={"username": "analyst", "role": "analyst"})) == "analyst"


def test_page_timings_are_shown_to_one_decimal(app_db) -> None:
    at = make_app(ADMIN[0], page="pages/diagnostics.py")
    at.run()  # the first runs' timings are stored: the table has rows
    assert not at.exception
    timings = next(df for df in at.dataframe if "P95 (ms)" in df.value.columns and "Count" in df.value.columns)
    config = json.loads(timings.proto.columns)
    shown = {spec.get("label", column): spec for column, spec in config.items()}  # as the header reads
    for column in ("P50 (ms)", "P95 (ms)", "Max (ms)", "CPU p50 (ms)", "CPU p95 (ms)", "Figure p50 (KiB)"):
        assert shown[column]["type_config"]["format"] == "%.1f", column


def test_the_yearly_contribution_label_fits_one_line_and_explains_in_its_help(app_db) -> None:
    at = make_app(ANALYST[0])
    at.segmented_control(key="dash_section").set_value("Scenarios").run()
    assert not at.exception
    contribution = at.number_input(key="risk15_contribution")
    assert contribution.label == "Yearly contribution"  # as short as its neighbours ("Target value", "Seed")
    assert "negative amount is a yearly withdrawal" in contribution.proto.help


def test_an_empty_benchmark_field_names_the_default_benchmark(app_db) -> None:
    from core.db import unit_of_work
    from core.services.market import benchmark_symbol

    with unit_of_work() as session:
        default = benchmark_symbol(session)
    assert default
    at = make_app(ANALYST[0], page="pages/strategy.py")
    at.session_state["strategy_more"] = True  # "Benchmark, basis, caps and exclusions" opened
    at.run()
    assert not at.exception
    assert at.text_input(key="strategy_field_benchmark").proto.placeholder == f"default: {default}"
    assert at.text_input(key="strategy_field_benchmark_blend").proto.placeholder == "none"


def test_the_data_page_shows_only_the_last_submissions_error(app_db) -> None:
    at = make_app(ADMIN[0], page="pages/data.py")
    assert not at.exception
    at.button(key="data_import_button").click().run()
    errors = [e.value for e in at.error]
    assert errors == ["File: choose a CSV or XLSX file first"], errors
    at.button(key="risk15_factor_import").click().run()
    errors = [e.value for e in at.error]
    assert errors == ["File: choose a CSV file first"], errors  # the price import's message went with its moment
    at.button(key="data_import_button").click().run()
    assert [e.value for e in at.error] == ["File: choose a CSV or XLSX file first"]
