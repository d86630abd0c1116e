"""Property-based bad input: arbitrary bytes and values never crash a service and never half-write.

Every service either succeeds or raises an AutoIndexError (a clear message for the page); when it raises,
the database is byte-for-byte unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core.db import unit_of_work
from core.errors import AutoIndexError

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
ODD_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "'; DROP TABLE users; --",
            '" OR 1=1 --',
            "Robert'); DELETE FROM prices;--",
            "<script>alert(1)</script>",
            "名前😀",
            "\u202etxt.exe",
            "a" * 5000,
            "",
            " ",
            "\x00nul",
            "../../etc/passwd",
            "%s%s%n",
            "{{7*7}}",
        ]
    ),
)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    with unit_of_work() as s:
        for table in ("assets", "prices", "market_caps", "users", "strategy_configs", "audit_events"):
            for row in s.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def seeded(sqlite_db):
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    seed_demo(years=0.2, end=dt.date(2024, 6, 28))
    ensure_default_config()
    return sqlite_db


def _expect_clean_failure_or_success(call, count_case) -> None:
    count_case()
    before = _fingerprint()
    try:
        call()
    except AutoIndexError as exc:
        assert str(exc).strip(), "an error must carry a message"
        assert _fingerprint() == before, "a refused input must leave the database unchanged"


@FUZZ
@given(content=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".xlsx", ".txt", ".bin"]))
def test_importer_arbitrary_bytes(seeded, count_case, content, suffix):
    from core.services.refresh import import_price_file

    _expect_clean_failure_or_success(lambda: import_price_file(content, "upload" + suffix), count_case)


CELL = st.one_of(
    st.text(alphabet=string.printable, max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)).map(str),
    st.sampled_from(["AAPL", "MSFT", "^GSPC", "NOPE", "", "-1", "0", "1e400", "2024-02-30"]),
)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["date", "symbol", "close", "market_cap", "AAPL", "MSFT", "junk", ""]), min_size=0, max_size=5
    ),
    rows=st.lists(st.lists(CELL, min_size=0, max_size=5), max_size=15),
    sep=st.sampled_from([",", ";", "\t"]),
)
def test_importer_structured_csv(seeded, count_case, header, rows, sep):
    from core.services.refresh import import_price_file

    body = "\n".join(sep.join(r) for r in [header, *rows]).encode()
    _expect_clean_failure_or_success(lambda: import_price_file(body, "prices.csv"), count_case)


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), max_size=8))
def test_importer_structured_xlsx(seeded, count_case, rows):
    from openpyxl import Workbook

    from core.services.refresh import import_price_file

    wb = Workbook()
    ws = wb.active
    ws.append(["date", "symbol", "close"])
    for r in rows:
        ws.append([c.replace("\x0b", "").replace("\x0c", "") for c in r])
    buf = io.BytesIO()
    wb.save(buf)
    _expect_clean_failure_or_success(lambda: import_price_file(buf.getvalue(), "prices.xlsx"), count_case)


JSONISH = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
FIELDS = [
    "equal",
    "momentum",
    "market_cap",
    "risk_parity",
    "momentum_lookback",
    "momentum_threshold",
    "risk_parity_lookback",
    "market_cap_sqrt",
    "top_n",
    "max_weight",
    "min_history",
    "rebalance",
    "drift_band",
    "cost_bps",
    "min_price",
    "ffill_limit",
    "return_clip",
    "outlier_z",
    "outlier_window",
    "base_value",
    "bogus",
]


@FUZZ
@given(
    params=st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=8),
    name=ODD_TEXT,
    note=st.one_of(st.none(), ODD_TEXT),
)
def test_strategy_schema_and_save(seeded, count_case, params, name, note):
    from core.schemas.strategy import validate_config
    from core.services import strategies

    cfg, errors = validate_config(params)
    assert (cfg is None) == bool(errors)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    _expect_clean_failure_or_success(lambda: strategies.save_version(name, params, note=note), count_case)


@FUZZ
@given(
    username=ODD_TEXT,
    name=ODD_TEXT,
    email=st.one_of(st.none(), ODD_TEXT),
    password=ODD_TEXT,
    role=st.sampled_from(["admin", "analyst", "root", "", "'; --"]),
)
def test_user_fields(seeded, count_case, username, name, email, password, role):
    from core.services import users

    _expect_clean_failure_or_success(
        lambda: users.create_user(username, name, password, role=role, email=email), count_case
    )
    count_case()
    with pytest.raises(AutoIndexError):
        users.authenticate(username + "\x01nobody", password)


@FUZZ
@given(symbols=st.lists(ODD_TEXT, max_size=4), provider=st.one_of(ODD_TEXT, st.just("demo")))
def test_refresh_parameters(seeded, count_case, symbols, provider):
    from core.services.refresh import refresh_prices

    _expect_clean_failure_or_success(
        lambda: refresh_prices(provider, symbols or None, today=dt.date(2024, 6, 28)), count_case
    )
