"""The one home of the error-message helpers (core/errors.py) and of jsonable (core/services/runs.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError

from core.errors import ValidationFailed, error_text, one_line
from core.services.runs import jsonable


def test_one_line_names_the_type_and_keeps_the_first_line() -> None:
    assert one_line(ConnectionError("Connection refused\nretry later")) == "ConnectionError: Connection refused"
    assert one_line(RuntimeError("")) == "RuntimeError: no detail"
    assert one_line(RuntimeError("x" * 500)) == "RuntimeError: " + "x" * 286
    assert len(one_line(RuntimeError("x" * 500), limit=None)) == len("RuntimeError: ") + 500


def test_database_errors_keep_the_driver_line_and_never_the_statement() -> None:
    exc = OperationalError("SELECT secret FROM users WHERE id = %(id)s", {"id": 7}, ValueError("no such table: users"))
    assert one_line(exc) == "ValueError: no such table: users"
    assert error_text(exc) == "database error (OperationalError): no such table: users"
    assert "SELECT" not in one_line(exc) and "SELECT" not in error_text(exc)


def test_error_text_of_domain_errors_is_their_message() -> None:
    assert error_text(ValidationFailed({"config_id": "no strategy config with id 5"})) == str(
        ValidationFailed({"config_id": "no strategy config with id 5"})
    )
    assert error_text(KeyError("report_id")) == "KeyError: 'report_id'"
    assert len(error_text(RuntimeError("y" * 5000))) == 2000


def test_jsonable_makes_results_and_facts_json_ready() -> None:
    value = {
        1: (dt.date(2024, 1, 2), np.int64(3), np.float64("nan")),
        "ok": [True, None, 1.5, np.bool_(True)],
        "when": dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
        "other": ValueError("x"),
    }
    assert jsonable(value) == {
        "1": ["2024-01-02", 3, None],
        "ok": [True, None, 1.5, True],
        "when": "2024-01-02T03:04:00+00:00",
        "other": "x",
    }
    assert isinstance(jsonable(np.int64(3)), int) and jsonable(float("inf")) is None


@pytest.mark.parametrize("value", [0, -1, 2**40, 0.25, "text", None, False])
def test_jsonable_keeps_plain_values(value: object) -> None:
    assert jsonable(value) == value and type(jsonable(value)) is type(value)
