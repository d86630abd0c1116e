"""Two-factor codes under concurrency, on SQLite and PostgreSQL, with real threads (issue 16, item 1):

1. 40 wrong codes at once lock the account after exactly 5 codes were checked, like passwords do;
2. one valid code sent 5 times at once logs in exactly once (the others are replays, counted toward the lockout:
   5 at once stay under it);
3. one recovery code spent 5 times at once logs in exactly once;
4. a burst of logins is cut by the per-user rate limit before it reaches a password check.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from core.errors import AuthenticationError

pytestmark = pytest.mark.timeout(300)

PASSWORD = "a perfectly long password 1"


def _at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` on n threads released together; each result or the exception raised."""
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


def _enrolled(username: str) -> tuple[str, list[str]]:
    from core.services import two_factor, users

    users.create_user(username, username.title(), PASSWORD)
    enrolment = two_factor.begin_enrolment(username)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)  # leaves the current steps unused
    enabled = two_factor.confirm_enrolment(
        username, two_factor.code_at(enrolment.secret, two_factor.time_step(now)), now=now
    )
    return enrolment.secret, enabled.recovery_codes


def _challenge(username: str):  # type: ignore[no-untyped-def]
    from core.services import users

    with pytest.raises(users.TwoFactorRequired) as raised:
        users.authenticate(username, PASSWORD)
    return raised.value.challenge


def test_forty_wrong_codes_at_once_lock_the_account_after_exactly_five_checks(db):
    from core.services import two_factor, users

    secret, _ = _enrolled("carol")
    now = dt.datetime.now(dt.timezone.utc)
    near = {two_factor.code_at(secret, two_factor.time_step(now) + k) for k in range(-2, 3)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)
    pending = _challenge("carol")
    results = _at_once(40, lambda _i: two_factor.complete_login(pending, wrong))
    assert all(isinstance(r, AuthenticationError) for r in results), results
    assert _events("auth.login", "wrong code") == users.MAX_FAILED_ATTEMPTS  # codes actually checked
    assert _events("auth.lockout") == 1
    assert _events("auth.login", "account locked") == 40 - users.MAX_FAILED_ATTEMPTS
    assert users.get_user("carol").locked_until is not None
    with pytest.raises(AuthenticationError, match="locked"):  # even the right code, now
        two_factor.complete_login(pending, two_factor.code_at(secret, two_factor.time_step(now)))


def test_one_code_sent_five_times_at_once_logs_in_once(db):
    from core.services import two_factor, users

    secret, _ = _enrolled("dora")
    now = dt.datetime.now(dt.timezone.utc)
    code = two_factor.code_at(secret, two_factor.time_step(now))
    pending = _challenge("dora")
    results = _at_once(5, lambda _i: two_factor.complete_login(pending, code, now=now))
    logged_in = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(logged_in) == 1, results
    assert all(isinstance(r, AuthenticationError) and "already used" in r.message for r in refused), refused
    assert _events("auth.login", "code replayed") == 4
    assert users.get_user("dora").failed_attempts == 4 and users.get_user("dora").locked_until is None


def test_one_recovery_code_spent_five_times_at_once_logs_in_once(db):
    from core.services import two_factor

    _, codes = _enrolled("erin")
    pending = _challenge("erin")
    results = _at_once(5, lambda _i: two_factor.complete_login(pending, codes[0]))
    assert len([r for r in results if not isinstance(r, Exception)]) == 1, results
    assert two_factor.status("erin").recovery_codes_left == 9


def test_a_burst_of_logins_is_cut_by_the_rate_limit_before_any_password_check(db, monkeypatch):
    from core.config import reset_settings_cache
    from core.infra.ratelimit import RateLimited
    from core.services import users

    monkeypatch.setenv("RATE_LIMIT_LOGIN_USER", "10/minute")
    reset_settings_cache()
    try:
        users.create_user("fay", "Fay", PASSWORD)
        results = _at_once(30, lambda _i: users.authenticate("fay", "not the password at all"))
        limited = [r for r in results if isinstance(r, RateLimited)]
        assert len(limited) == 20 and all(r.retry_after_s > 0 for r in limited)
        checked = _events("auth.login", "wrong password") + _events("auth.login", "account locked")
        assert checked == 10  # exactly the allowed ten reached the lockout logic
        assert _events("auth.login", "wrong password") == users.MAX_FAILED_ATTEMPTS
    finally:
        reset_settings_cache()
