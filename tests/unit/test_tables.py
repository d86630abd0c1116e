"""Tables as people read them (ui/tables.py): human headers, empty cells, readable UTC times, yes/no."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ui.tables import header, prepare


def test_headers_are_human_with_units_and_acronyms():
    assert header("created_by") == "Created by"
    assert header("ttl_s") == "TTL (s)"
    assert header("last_heartbeat_s") == "Last heartbeat (s)"
    assert header("id") == "ID"
    assert header("stale_days") == "Business days stale"  # core.services.freshness.STALE_LABEL, every screen
    assert header("Already Human") == "Already Human"


def test_missing_values_are_empty_times_are_utc_without_offset_and_flags_read_yes_no():
    stamp = dt.datetime(2026, 11, 29, 8, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    frame = pd.DataFrame(
        {
            "created_by": ["ann", None],
            "created_at": [stamp, None],
            "active": [True, False],
            "size_kb": [1.5, float("nan")],
            "detail": [{"a": 1}, None],
        }
    )
    shown, renamed = prepare(frame)
    assert list(shown.columns) == ["Created by", "Created at (UTC)", "Active", "Size (kB)", "Detail"]
    assert shown["Created by"].tolist() == ["ann", ""]
    assert shown["Created at (UTC)"].tolist() == ["2026-11-29 06:15", ""]  # converted to UTC, no offset
    assert shown["Active"].tolist() == ["yes", "no"]
    assert shown["Size (kB)"].tolist() == ["1.5", ""]  # text throughout: Arrow takes the column as it is
    assert shown["Detail"].tolist() == ['{"a": 1}', ""]
    assert "None" not in shown.astype(str).to_string()
    assert renamed["created_by"] == "Created by"
    import pyarrow as pa

    pa.Table.from_pandas(shown)  # no mixed column: Streamlit converts it without a fallback (and its traceback)


def test_columns_that_share_a_name_or_read_alike_get_numbered_headers():
    shown, _renamed = prepare(pd.DataFrame([[1, 2]], columns=["ttl_s", "ttl_s"]))
    assert list(shown.columns) == ["TTL (s)", "TTL (s) (2)"] and shown.iloc[0].tolist() == [1, 2]
    shown, _renamed = prepare(pd.DataFrame({"created_by": ["a"], "Created by": ["b"]}))
    assert list(shown.columns) == ["Created by", "Created by (2)"] and shown.iloc[0].tolist() == ["a", "b"]


def test_a_missing_flag_is_an_empty_cell():
    shown, _renamed = prepare(pd.DataFrame({"active": pd.array([True, None, False], dtype="boolean")}))
    assert shown["Active"].tolist() == ["yes", "", "no"]


def test_every_table_draws_a_missing_number_as_a_dash(monkeypatch):
    """A configured number column keeps NaN (it sorts and formats as a number): the grid would write "None" in those
    cells unless :func:`ui.tables.show` names what to draw, for every table it shows."""
    import streamlit as st

    from ui import tables
    from ui.format import MISSING

    drawn: list[dict] = []
    monkeypatch.setattr(st, "dataframe", lambda frame, **kwargs: drawn.append({"frame": frame, **kwargs}))
    frame = pd.DataFrame({"namespace": ["prices", "risk"], "hit_rate": [0.5, float("nan")]})
    tables.show(frame, column_config={"hit_rate": st.column_config.NumberColumn("hit rate", format="percent")})
    tables.show(frame)
    assert [d["placeholder"] for d in drawn] == [MISSING, MISSING]
    assert drawn[0]["frame"]["Hit rate"].isna().tolist() == [False, True]  # still a number column
    tables.show(frame, placeholder="")  # a screen may still ask for blank cells
    assert drawn[-1]["placeholder"] == ""
