"""Accounts under concurrency, on SQLite and PostgreSQL, with real threads and real processes.

Issue 11 cases proven here (service level; the browser halves live in tests/e2e/test_concurrent_actors.py):
1. a stale callback of a demoted, deactivated admin cannot restore its role;
2. a report of another user cannot be queued, and one report is never queued twice at once;
3. 40 wrong passwords at once lock the account after exactly 5 password checks (threads and processes);
4. a password reset (or role change, deactivation, logout) ends every earlier session;
5. the first-run setup token used by many requests at once makes exactly one administrator.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from core.errors import AuthenticationError, NotFoundError, PermissionDenied, ValidationFailed
from tests.concurrency.conftest import assert_clean, run_at_once

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _no_login_rate_limit(monkeypatch):  # type: ignore[no-untyped-def]
    """These races are about the lockout and the credential version: the per-user login rate limit (issue 16,
    tests/concurrency/test_two_factor_races.py) would refuse part of a 40-attempt burst before it got there."""
    from core.config import reset_settings_cache

    monkeypatch.setenv("RATE_LIMIT_LOGIN_USER", "off")
    reset_settings_cache()
    yield
    reset_settings_cache()


PASSWORD = "a perfectly long password 1"
WRONG = "not the password at all"


def _at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i in range(n) on n threads released together; each result or the exception raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread did not finish within 120 s"
    return results


def _events(action: str, message: str | None = None) -> int:
    from core.db import unit_of_work
    from core.models import AuditEvent

    with unit_of_work() as session:
        q = select(func.count(AuditEvent.id)).where(AuditEvent.action == action)
        if message is not None:
            q = q.where(AuditEvent.message == message)
        return int(session.scalar(q) or 0)


def _assert_locked_after_exactly_five_checks(username: str) -> None:
    from core.services import users

    user = users.get_user(username)
    assert user.locked_until is not None and user.locked_until > dt.datetime.now(dt.timezone.utc)
    assert _events("auth.login", "wrong password") == users.MAX_FAILED_ATTEMPTS  # passwords actually checked
    assert _events("auth.lockout") == 1
    assert _events("auth.login", "account locked") == 40 - users.MAX_FAILED_ATTEMPTS
    with pytest.raises(AuthenticationError, match="locked"):  # even the right password, now
        users.authenticate(username, PASSWORD)


# --------------------------------------------------------------------------- case 3: lockout
def test_forty_wrong_passwords_from_threads_lock_the_account(db):
    from core.services import users

    users.create_user("carol", "Carol", PASSWORD)
    results = _at_once(40, lambda _i: users.authenticate("carol", WRONG))
    assert all(isinstance(r, AuthenticationError) for r in results), results
    _assert_locked_after_exactly_five_checks("carol")


def test_forty_wrong_passwords_from_processes_lock_the_account(db):
    """10 processes x 4 threads, released at the same wall-clock instant."""
    from core.services import users

    users.create_user("carol", "Carol", PASSWORD)
    start_at = dt.datetime.now().timestamp() + 6.0  # after every interpreter has started
    script = textwrap.dedent(f"""
        import threading, time
        from core.errors import AuthenticationError
        from core.services import users
        users.count_users()  # connect before the start
        outcomes = []
        def attempt():
            try:
                users.authenticate("carol", {WRONG!r})
                outcomes.append("IN")
            except AuthenticationError:
                outcomes.append("refused")
        threads = [threading.Thread(target=attempt) for _ in range(4)]
        time.sleep(max(0.0, {start_at} - time.time()))
        for t in threads: t.start()
        for t in threads: t.join()
        print(",".join(outcomes))
    """)
    results = run_at_once([["-c", script]] * 10, timeout=180)
    assert_clean(results)
    outcomes = [o for r in results for o in r.stdout.strip().split(",")]
    assert outcomes == ["refused"] * 40
    _assert_locked_after_exactly_five_checks("carol")


def test_a_right_password_resets_the_count_and_a_lock_expires(db):
    from core.services import users

    users.create_user("dora", "Dora", PASSWORD)
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    for _ in range(4):
        with pytest.raises(AuthenticationError, match="wrong"):
            users.authenticate("dora", WRONG, now=now)
    assert users.authenticate("dora", PASSWORD, now=now).failed_attempts == 0
    for _ in range(4):
        with pytest.raises(AuthenticationError, match="wrong"):
            users.authenticate("dora", WRONG, now=now)
    with pytest.raises(AuthenticationError, match="locked for 15 minutes"):
        users.authenticate("dora", WRONG, now=now)
    with pytest.raises(AuthenticationError, match="locked"):
        users.authenticate("dora", PASSWORD, now=now + dt.timedelta(minutes=14))
    assert users.authenticate("dora", PASSWORD, now=now + dt.timedelta(minutes=16)).username == "dora"


# --------------------------------------------------------------------------- case 5: setup token
def _issue_token() -> str:
    from core.services import bootstrap

    token = bootstrap.issue_setup_token()
    assert token
    return token


def test_setup_token_used_by_many_threads_at_once_makes_one_admin(db):
    from core.services import bootstrap, users

    token = _issue_token()
    results = _at_once(8, lambda i: bootstrap.create_admin_with_token(token, f"admin{i}", f"Admin {i}", PASSWORD))
    created = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(created) == 1, results
    assert all(isinstance(r, (ValidationFailed, PermissionDenied)) for r in refused), refused
    assert [(u.username, u.role) for u in users.list_users()] == [(created[0].username, "admin")]
    with pytest.raises(ValidationFailed, match="already been used"):
        bootstrap.create_admin_with_token(token, "late", "Late", PASSWORD)


def test_setup_token_used_by_four_processes_at_once_makes_one_admin(db):
    from core.services import users

    token = _issue_token()
    start_at = dt.datetime.now().timestamp() + 5.0
    script = textwrap.dedent("""
        import sys, time
        from core.errors import AutoIndexError
        from core.services import bootstrap, users
        users.count_users()
        time.sleep(max(0.0, {start_at} - time.time()))
        try:
            bootstrap.create_admin_with_token({token!r}, sys.argv[1], "Admin", {password!r})
            print("created")
        except AutoIndexError as exc:
            print("refused:", exc)
    """).format(start_at=start_at, token=token, password=PASSWORD)
    results = run_at_once([["-c", script, f"boss{i}"] for i in range(4)], timeout=120)
    assert_clean(results)
    assert sorted(r.stdout.split(":")[0].strip() for r in results) == ["created", "refused", "refused", "refused"]
    assert len(users.list_users()) == 1 and users.list_users()[0].role == "admin"


def test_a_wrong_setup_token_spends_nothing(db):
    from core.services import bootstrap

    token = _issue_token()
    with pytest.raises(ValidationFailed, match="wrong"):
        bootstrap.create_admin_with_token("not-the-token", "mallory", "Mallory", PASSWORD)
    assert bootstrap.create_admin_with_token(token, "root", "Root", PASSWORD).role == "admin"


# --------------------------------------------------------------------------- case 1: stale admin callbacks
def _two_admins() -> tuple[Any, Any]:
    from core.services import users

    boss = users.create_user("boss", "Boss", PASSWORD, role="admin")
    boss2 = users.create_user("boss2", "Boss Two", PASSWORD, role="admin")
    return boss, boss2


def test_a_demoted_deactivated_admin_cannot_restore_itself_with_a_stale_callback(db):
    from core.services import users
    from core.services.access import Actor, SessionEnded

    boss, boss2 = _two_admins()
    stale_actor = Actor(boss2.username, boss2.credential_version)  # what boss2's open Admin page holds
    users.update_user("boss2", actor=Actor(boss.username, boss.credential_version), role="analyst", is_active=False)
    for stale in (stale_actor, boss2, "boss2"):  # the claim, the UserOut of an earlier render, a bare name
        with pytest.raises(SessionEnded):
            users.update_user("boss2", actor=stale, role="admin", is_active=True)
        with pytest.raises(SessionEnded):
            users.set_password("boss2", "a brand new long password", actor=stale)
        with pytest.raises(SessionEnded):
            users.set_registration_mode("open", actor=stale)
    after = users.get_user("boss2")
    assert (after.role, after.is_active) == ("analyst", False)
    assert users.registration_mode() == "closed"


def test_a_demoted_admin_still_active_is_refused_by_role_even_with_a_fresh_session(db):
    from core.services import strategies, users
    from core.services.access import Actor

    boss, _ = _two_admins()
    users.update_user("boss2", actor=Actor(boss.username, boss.credential_version), role="analyst")
    fresh = users.get_user("boss2")  # logged in again, as the analyst it now is
    with pytest.raises(PermissionDenied, match="for admin users"):
        users.update_user("boss2", actor=Actor("boss2", fresh.credential_version), role="admin")
    default = strategies.ensure_default_config()
    with pytest.raises(PermissionDenied, match="for admin users"):
        strategies.activate_version(default.id, actor=Actor("boss2", fresh.credential_version))
    assert users.get_user("boss2").role == "analyst"


def test_two_admins_demoting_each_other_at_once_leave_one_admin(db):
    from core.services import users
    from core.services.access import Actor

    boss, boss2 = _two_admins()
    actors = {"boss": Actor("boss", boss.credential_version), "boss2": Actor("boss2", boss2.credential_version)}
    results = _at_once(
        2, lambda i: users.update_user(("boss2", "boss")[i], actor=actors[("boss", "boss2")[i]], role="analyst")
    )
    admins = [u.username for u in users.list_users() if u.role == "admin" and u.is_active]
    assert len(admins) == 1, (admins, results)
    assert sum(isinstance(r, Exception) for r in results) == 1


# --------------------------------------------------------------------------- case 4: sessions follow the account
@pytest.mark.parametrize("change", ["reset", "own_change", "role", "deactivate", "logout"])
def test_every_earlier_session_ends_when_the_account_changes(db, change):
    from core.services import reports, users
    from core.services.access import Actor, SessionEnded

    boss = users.create_user("boss", "Boss", PASSWORD, role="admin")
    eve = users.create_user("eve", "Eve", PASSWORD)
    admin = Actor("boss", boss.credential_version)
    old_session = Actor("eve", eve.credential_version)
    assert reports.list_reports(old_session) == []
    if change == "reset":
        users.set_password("eve", "reset by the admin 2026", actor=admin)
    elif change == "own_change":
        new_version = users.set_password("eve", "changed by eve herself", actor=old_session, current_password=PASSWORD)
        assert reports.list_reports(Actor("eve", new_version)) == []  # the tab that changed it goes on
    elif change == "role":
        users.update_user("eve", actor=admin, role="admin")
    elif change == "deactivate":
        users.update_user("eve", actor=admin, is_active=False)
    else:
        users.revoke_cookies("eve")
    assert users.get_user("eve").credential_version == eve.credential_version + 1
    with pytest.raises(SessionEnded):
        reports.list_reports(old_session)


def test_changing_your_own_password_needs_the_current_one(db):
    from core.services import users
    from core.services.access import Actor

    eve = users.create_user("eve", "Eve", PASSWORD)
    with pytest.raises(ValidationFailed, match="wrong") as caught:
        users.set_password("eve", "changed by eve herself", actor=Actor("eve", eve.credential_version))
    assert "current_password" in caught.value.errors
    assert users.get_user("eve").credential_version == eve.credential_version  # nothing changed


def test_an_analyst_cannot_reset_another_password_or_create_users(db):
    from core.services import users
    from core.services.access import Actor

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    eve = users.create_user("eve", "Eve", PASSWORD)
    as_eve = Actor("eve", eve.credential_version)
    with pytest.raises(PermissionDenied):
        users.set_password("boss", "taken over by eve 2026", actor=as_eve)
    with pytest.raises(PermissionDenied):
        users.create_user("eve2", "Eve Two", PASSWORD, role="admin", actor=as_eve)
    with pytest.raises(PermissionDenied):
        users.update_user("eve", actor=as_eve, role="admin")
    assert users.authenticate("boss", PASSWORD).role == "admin"
    assert [u.username for u in users.list_users()] == ["boss", "eve"]


# --------------------------------------------------------------------------- registration races
def test_one_invitation_used_by_two_registrations_at_once_makes_one_account(db):
    from core.services import users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.set_registration_mode("invite", actor="boss")
    users.invite("eve@example.com", actor="boss")
    results = _at_once(2, lambda i: users.register(f"eve{i}", "Eve", PASSWORD, "eve@example.com"))
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, (PermissionDenied, ValidationFailed)) for r in results if isinstance(r, Exception))
    assert len(users.list_users()) == 2


def test_the_same_username_registered_twice_at_once_makes_one_account(db):
    from core.services import users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.set_registration_mode("open", actor="boss")
    results = _at_once(4, lambda i: users.register("samename", "Sam", PASSWORD, f"sam{i}@example.com"))
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, ValidationFailed) for r in results if isinstance(r, Exception)), results
    assert sorted(u.username for u in users.list_users()) == ["boss", "samename"]


# --------------------------------------------------------------------------- case 2: reports of others
@pytest.fixture
def queued_reports(db, monkeypatch):
    """A computed demo database, an admin and two analysts, and one report of each on a queue nobody works."""
    from huey.storage import MemoryStorage

    import jobs
    from core.services import compute, reports, strategies, users
    from core.services.bootstrap import seed_demo

    seed_demo(years=1, end=dt.date(2024, 12, 31))
    compute.compute_config(strategies.ensure_default_config().id)
    for name, role in (("boss", "admin"), ("anna", "analyst"), ("bob", "analyst")):
        users.create_user(name, name.title(), PASSWORD, role=role)
    monkeypatch.setattr(jobs.huey, "storage", MemoryStorage("concurrency"))
    monkeypatch.setattr(jobs.huey, "immediate_use_memory", False)
    monkeypatch.setattr(jobs.huey, "immediate", False)
    ids = {
        who: reports.request_report("performance", "MTD", "csv", owner=who, huey=jobs.huey) for who in ("boss", "anna")
    }
    return ids, jobs.huey


def _report_runs(report_id: int) -> int:
    from core.db import unit_of_work
    from core.models import TaskRun

    with unit_of_work() as session:
        runs = session.scalars(select(TaskRun).where(TaskRun.kind == "report")).all()
        return sum(1 for r in runs if (r.args or {}).get("report_id") == report_id)


def test_an_analyst_cannot_queue_or_read_another_users_report(queued_reports):
    from core.services import reports
    from core.services import runs as run_service

    ids, queue = queued_reports
    before = _report_runs(ids["boss"])
    for who in ("anna", "bob"):
        with pytest.raises(ValidationFailed, match=f"no report with id {ids['boss']}"):
            run_service.enqueue("report", {"report_id": ids["boss"]}, user=who, huey=queue)
        with pytest.raises(NotFoundError):
            reports.get_report(ids["boss"], who)
    with pytest.raises(ValidationFailed, match="no report with id"):
        run_service.enqueue("report", {"report_id": ids["anna"]}, user="bob", huey=queue)
    assert _report_runs(ids["boss"]) == before


def test_a_report_is_never_queued_twice_at_once(queued_reports):
    from core.services import runs as run_service

    ids, queue = queued_reports
    with pytest.raises(ValidationFailed, match="already queued"):  # its first job is still waiting
        run_service.enqueue("report", {"report_id": ids["anna"]}, user="anna", huey=queue)
    first = run_service.list_runs(kind="report", user="anna", viewer="boss")[0]
    run_service.cancel(first.id, "anna", huey=queue)
    results = _at_once(4, lambda _i: run_service.enqueue("report", {"report_id": ids["anna"]}, user="anna", huey=queue))
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert all(isinstance(r, ValidationFailed) for r in results if not isinstance(r, int)), results
    assert _report_runs(ids["anna"]) == 2  # the cancelled one and exactly one new


# --------------------------------------------------------------------------- found by attacking the above
def test_a_login_in_flight_during_a_reset_never_yields_a_live_session(db):
    """Logins with the old password racing an admin's reset: whatever the timing, every session they got was
    issued under a credential version the reset ended (none survives it)."""
    import time

    from core.services import users
    from core.services.access import Actor, SessionEnded

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.create_user("eve", "Eve", PASSWORD)
    stop = threading.Event()
    sessions: list[Any] = []

    def attacker() -> None:
        while not stop.is_set():
            try:
                sessions.append(users.authenticate("eve", PASSWORD))
            except AuthenticationError:
                pass

    threads = [threading.Thread(target=attacker) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    users.set_password("eve", "reset by the admin 2026", actor="boss")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    final = users.get_user("eve").credential_version
    assert sessions, "the attacker logged in before the reset"
    assert all(s.credential_version < final for s in sessions)
    with pytest.raises(SessionEnded):
        users.set_password(
            "eve",
            "attacker's new password",
            actor=Actor("eve", max(s.credential_version for s in sessions)),
            current_password=PASSWORD,
        )


def test_saving_and_activating_at_once_leaves_exactly_one_active_version(db):
    from core.services import strategies, users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    default = strategies.ensure_default_config()
    results = _at_once(
        6, lambda i: strategies.save_version(f"Race {i}", {"equal": 1.0}, note="race", actor="boss", activate=True)
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    active = [v for v in strategies.list_versions() if v.is_active]
    assert len(active) == 1
    results = _at_once(4, lambda i: strategies.activate_version(default.id if i % 2 else results[i].id, actor="boss"))
    assert len([v for v in strategies.list_versions() if v.is_active]) == 1


@pytest.mark.parametrize("name", ["cli", "System", "SCHEDULER"])
def test_the_systems_names_are_not_accounts(db, name):
    from core.services import runs as run_service
    from core.services import users
    from core.services.access import SessionEnded

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.set_registration_mode("open", actor="boss")
    with pytest.raises(ValidationFailed, match="reserved"):
        users.register(name, "Mallory", PASSWORD, "mallory@example.com")
    with pytest.raises(ValidationFailed, match="reserved"):
        users.create_user(name, "Mallory", PASSWORD)
    with pytest.raises(SessionEnded, match="reserved"):
        run_service.list_runs(viewer=name)


def test_user_names_that_differ_only_in_case_are_one_account(db):
    from core.services import users

    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.set_registration_mode("open", actor="boss")
    names = ["bob", "Bob", "BOB", "bOb", "boB", "BoB"]
    results = _at_once(6, lambda i: users.register(names[i], "Bob", PASSWORD, f"bob{i}@example.com"))
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, ValidationFailed) for r in results if isinstance(r, Exception)), results
    assert len(users.list_users()) == 2


def test_an_admin_demoted_while_acting_cannot_finish_the_action(db):
    """Another admin's demotion is in flight (uncommitted, holding its row): the demoted admin's action waits
    for it and is then refused, on both databases; before, PostgreSQL let it commit after the demotion."""
    from sqlalchemy import text

    from core.db import get_engine
    from core.services import users

    for name in ("adm", "bdm", "cdm"):
        users.create_user(name, name.title(), PASSWORD, role="admin")
    with get_engine().connect() as other:
        other.execute(
            text(
                "UPDATE users SET role = 'analyst', credential_version = credential_version + 1 WHERE username = 'bdm'"
            )
        )
        outcome: list[Any] = []
        acting = threading.Thread(
            target=lambda: outcome.append(_try(lambda: users.update_user("cdm", actor="bdm", role="analyst")))
        )
        acting.start()
        acting.join(1.5)
        assert acting.is_alive(), "the demoted admin's action did not wait for the demotion in flight"
        other.commit()
    acting.join(30)
    assert isinstance(outcome[0], PermissionDenied), outcome
    assert users.get_user("cdm").role == "admin"


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return exc


def test_wrong_current_passwords_count_toward_the_lockout(db):
    from core.services import users
    from core.services.access import Actor

    eve = users.create_user("eve", "Eve", PASSWORD)
    as_eve = Actor("eve", eve.credential_version)
    for _ in range(users.MAX_FAILED_ATTEMPTS):
        with pytest.raises(ValidationFailed):
            users.set_password("eve", "a brand new long password", actor=as_eve, current_password="guess 1234567")
    with pytest.raises(ValidationFailed, match="locked"):
        users.set_password("eve", "a brand new long password", actor=as_eve, current_password=PASSWORD)
    with pytest.raises(AuthenticationError, match="locked"):
        users.authenticate("eve", PASSWORD)


def test_an_unknown_name_costs_the_same_password_check_as_a_known_one(db):
    import time

    from core.services import users

    users.create_user("eve", "Eve", PASSWORD)
    users.authenticate("eve", PASSWORD)  # warm up (bcrypt, connections, the dummy hash)
    with pytest.raises(AuthenticationError):
        users.authenticate("nobody-here", WRONG)

    def seconds(name: str) -> float:
        started = time.perf_counter()
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            users.authenticate(name, WRONG)
        return time.perf_counter() - started

    known = min(seconds("eve") for _ in range(2))
    unknown = min(seconds("nobody-here") for _ in range(2))
    assert unknown > 0.5 * known, (known, unknown)


def test_a_tab_whose_session_ended_cannot_log_out_the_newer_sessions(db):
    from core.services import users

    eve = users.create_user("eve", "Eve", PASSWORD)
    stale = eve.credential_version
    users.revoke_cookies("eve")  # logged out elsewhere; eve logs in again under the new version
    current = users.get_user("eve").credential_version
    assert users.revoke_cookies("eve", version=stale) == current  # the stale tab's logout changes nothing
    assert users.get_user("eve").credential_version == current
    assert users.revoke_cookies("eve", version=current) == current + 1


def test_an_email_taken_by_another_user_is_a_named_error(db):
    from core.services import users

    users.create_user("boss", "Boss", PASSWORD, role="admin", email="boss@example.com")
    users.create_user("eve", "Eve", PASSWORD, email="eve@example.com")
    with pytest.raises(ValidationFailed) as caught:
        users.update_user("eve", actor="boss", email="BOSS@example.com")
    assert caught.value.errors == {"email": "is already registered"}
    assert users.get_user("eve").email == "eve@example.com"


@pytest.mark.parametrize("huge", [2**31, 10**20])
def test_ids_beyond_the_database_are_not_found(queued_reports, huge):
    from core.errors import NotFoundError
    from core.services import reports, strategies
    from core.services import runs as run_service

    _, queue = queued_reports
    for call in (
        lambda: run_service.get_run(huge, "boss"),
        lambda: run_service.retry(huge, "boss", huey=queue),
        lambda: run_service.cancel(huge, "boss", huey=queue),
        lambda: reports.get_report(huge, "boss"),
        lambda: reports.download(huge, "boss"),
        lambda: reports.delete(huge, "boss"),
        lambda: strategies.activate_version(huge, actor="boss"),
        lambda: strategies.get_version(huge),
    ):
        with pytest.raises(NotFoundError):
            call()
    for params, kind in (({"report_id": huge}, "report"), ({"config_id": huge}, "compute")):
        with pytest.raises(ValidationFailed):
            run_service.enqueue(kind, params, user="boss", huey=queue)
    with pytest.raises(ValidationFailed):
        reports.request_report("performance", "MTD", "csv", config_id=huge, owner="boss", huey=queue)


def test_prices_changed_by_a_user_deactivated_meanwhile_are_still_followed_by_a_recompute(queued_reports):
    """Found by attacking issue 12: the refresh of a since-deactivated admin stored prices and then could not
    queue the recompute under that admin, leaving the index stale behind a plain "succeeded"."""
    from core.services import refresh, users
    from core.services import runs as run_service

    users.create_user("admin2", "Admin Two", PASSWORD, role="admin")
    users.update_user("admin2", actor="boss", is_active=False)
    result = refresh.refresh_prices("demo", ["ZZZQ"], actor="admin2", wait=False, today=dt.date(2024, 12, 31))
    assert result["rows_new"] > 0
    assert result["recompute"]["queued"] is True, result["recompute"]
    run = run_service.get_run(result["recompute"]["run_id"], "boss")
    assert (run.kind, run.queued_by) == ("compute", "system")
    assert not [w for w in result["warnings"] if "not recomputed" in w]
