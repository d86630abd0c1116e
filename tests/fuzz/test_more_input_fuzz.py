"""More bad input: report parameters, and odd text at the remaining text fields (asset add, provider settings,
asset lookups, audit and run filters, task params via run_service.enqueue, invitations). Every call either succeeds
or raises an AutoIndexError with a message, and a refused input leaves the database unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import AutoIndexError
from tests.fuzz.test_input_fuzz import (
    FUZZ,
    JSONISH,
    ODD_TEXT,
    _expect_clean_failure_or_success,
    _fingerprint,
    seeded,  # noqa: F401  (fixture)
)


@pytest.fixture
def computed(seeded):
    from core.services.compute import compute_config

    compute_config(None, actor="fuzz")
    return seeded


@pytest.fixture
def memory_queue(monkeypatch):
    """jobs.huey on in-memory storage, not immediate: enqueue records and queues, nothing runs."""
    from huey.storage import MemoryStorage

    import jobs

    monkeypatch.setattr(jobs.huey, "storage", MemoryStorage("fuzz"))
    monkeypatch.setattr(jobs.huey, "immediate_use_memory", False)
    monkeypatch.setattr(jobs.huey, "immediate", False)
    return jobs.huey


DATEISH = st.one_of(
    st.none(),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)),
    st.dates().map(str),
    ODD_TEXT,
    st.integers(),
    st.floats(allow_nan=True),
)


@FUZZ
@given(
    report_type=st.one_of(st.sampled_from(["performance", "allocation", "risk", "benchmark"]), ODD_TEXT),
    period=st.one_of(st.sampled_from(["MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "max", "custom"]), ODD_TEXT),
    fmt=st.one_of(st.sampled_from(["html", "pdf", "xlsx", "csv"]), ODD_TEXT),
    config_id=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63), ODD_TEXT, st.floats()),
    start=DATEISH,
    end=DATEISH,
)
def test_report_parameters(computed, memory_queue, count_case, report_type, period, fmt, config_id, start, end):
    from core.schemas.report import ReportRequest
    from core.services import reports

    _expect_clean_failure_or_success(
        lambda: reports.request_report(report_type, period, fmt, config_id, start, end, owner=None, huey=memory_queue),
        count_case,
    )
    count_case()
    try:  # the schema alone: a pydantic error, never anything else
        ReportRequest.model_validate(
            {
                "report_type": report_type,
                "period": period,
                "format": fmt,
                "config_id": config_id,
                "start": start,
                "end": end,
            }
        )
    except ValueError:
        pass


@FUZZ
@given(
    owner=st.one_of(st.none(), ODD_TEXT),
    report_type=st.one_of(st.none(), ODD_TEXT),
    status=st.one_of(st.none(), ODD_TEXT),
    limit=st.one_of(st.integers(), ODD_TEXT),
)
def test_report_history_filters(computed, count_case, owner, report_type, status, limit):
    from core.services import reports

    count_case()
    filters = {"owner": owner, "report_type": report_type, "status": status, "limit": limit}
    try:
        rows = reports.list_reports(None, {k: v for k, v in filters.items() if v is not None})
    except (AutoIndexError, ValueError):  # pydantic ValidationError is a ValueError: the page shows its message
        return
    assert isinstance(rows, list)


@FUZZ
@given(
    symbol=ODD_TEXT,
    name=ODD_TEXT,
    asset_class=st.one_of(st.sampled_from(["equity", "etf", "bond"]), ODD_TEXT),
    sector=st.one_of(st.none(), ODD_TEXT),
    currency=st.one_of(st.just("USD"), ODD_TEXT),
    is_benchmark=st.booleans(),
)
def test_asset_add(seeded, count_case, symbol, name, asset_class, sector, currency, is_benchmark):
    from core.services import universe

    _expect_clean_failure_or_success(
        lambda: universe.add_asset(
            symbol,
            name,
            asset_class=asset_class,
            sector=sector,
            currency=currency,
            is_benchmark=is_benchmark,
            actor=None,
        ),
        count_case,
    )


@FUZZ
@given(symbol=ODD_TEXT, active=st.booleans(), provider=st.one_of(st.just("demo"), ODD_TEXT), symbols=ODD_TEXT)
def test_asset_lookup_activation_and_provider_settings(seeded, count_case, symbol, active, provider, symbols):
    from core.services import universe

    _expect_clean_failure_or_success(lambda: universe.asset_history(symbol), count_case)
    _expect_clean_failure_or_success(lambda: universe.set_active(symbol, active), count_case)
    _expect_clean_failure_or_success(lambda: universe.put_provider_settings(provider, symbols), count_case)


@FUZZ
@given(
    actor=st.one_of(st.none(), ODD_TEXT),
    action=st.one_of(st.none(), ODD_TEXT),
    since=st.one_of(st.none(), st.datetimes()),
    until=st.one_of(st.none(), st.datetimes()),
    limit=st.integers(min_value=-5, max_value=10**6),
    offset=st.integers(min_value=-5, max_value=10**6),
)
def test_audit_filters(seeded, count_case, actor, action, since, until, limit, offset):
    from core.services import audit

    count_case()
    before = _fingerprint()
    try:
        frame = audit.list_events(actor=actor, action=action, since=since, until=until, limit=limit, offset=offset)
    except AutoIndexError as exc:
        assert str(exc).strip()
    else:
        assert list(frame.columns)[:3] == ["at", "actor", "action"]
    assert _fingerprint() == before


KINDS = st.one_of(st.sampled_from(["refresh", "compute", "report", "scheduled_refresh", "retention"]), ODD_TEXT)
PARAM_NAMES = st.sampled_from(["provider", "symbols", "full", "config_id", "report_id", "bogus", ""])


@FUZZ
@given(
    kind=KINDS,
    params=st.one_of(st.none(), st.dictionaries(PARAM_NAMES, st.one_of(JSONISH, ODD_TEXT), max_size=4)),
    user=st.one_of(st.none(), ODD_TEXT),
)
def test_task_params_via_enqueue(seeded, memory_queue, count_case, kind, params, user):
    from core.services import runs as run_service

    runs = run_service.count_runs()
    count_case()
    try:
        run_id = run_service.enqueue(kind, params, user=user, huey=memory_queue)
    except AutoIndexError as exc:
        assert str(exc).strip()
        assert run_service.count_runs() == runs, "a refused job leaves no run behind"
    else:
        assert run_service.get_run(run_id).state == "queued"


@FUZZ
@given(
    kind=st.one_of(st.none(), ODD_TEXT),
    state=st.one_of(st.none(), ODD_TEXT),
    user=st.one_of(st.none(), ODD_TEXT),
    run_id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_run_filters_and_lookups(seeded, count_case, kind, state, user, run_id):
    from core.services import runs as run_service

    count_case()
    for call in (
        lambda: run_service.list_runs(kind=kind, state=state, user=user),
        lambda: run_service.get_run(run_id, user),
        lambda: run_service.retry(run_id, user),
        lambda: run_service.cancel(run_id, user),
    ):
        try:
            call()
        except (AutoIndexError, ValueError) as exc:  # ValueError: RunFilters' pydantic message
            assert str(exc).strip()


@FUZZ
@given(email=ODD_TEXT, mode=st.one_of(st.sampled_from(["closed", "invite", "open"]), ODD_TEXT))
def test_invitation_and_registration_mode(seeded, count_case, email, mode):
    from core.services import users

    _expect_clean_failure_or_success(lambda: users.invite(email, actor=None), count_case)
    _expect_clean_failure_or_success(lambda: users.set_registration_mode(mode, actor=None), count_case)
