"""Two-factor authentication on SQLite and PostgreSQL: enrolment, the login's code step, wrong codes and replays,
clock skew, recovery codes, the lockout, the admin's reset, turning it off, ADMIN_2FA=required, and the secret
stored encrypted (issue 16, item 1)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.errors import AuthenticationError, PermissionDenied, ValidationFailed
from core.services import audit, two_factor, users
from core.services.access import Actor

PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 3, 2, 9, 0, 10, tzinfo=dt.timezone.utc)


def code(secret: str, now: dt.datetime, offset: int = 0) -> str:
    return two_factor.code_at(secret, two_factor.time_step(now) + offset)


def wrong(secret: str, now: dt.datetime) -> str:
    """A 6-digit code matching no step within +-2 of ``now``."""
    near = {code(secret, now, k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


def stored_user(username: str):  # type: ignore[no-untyped-def]
    from core.db import unit_of_work
    from core.models import User

    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        session.expunge(user)
        return user


def recovery_rows(user_id: int) -> list:  # type: ignore[type-arg]
    from core.db import unit_of_work
    from core.models.user import RecoveryCode

    with unit_of_work() as session:
        rows = list(session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)))
        for row in rows:
            session.expunge(row)
        return rows


def enrolled(username: str = "alice", role: str = "analyst", now: dt.datetime = T0) -> tuple[str, list[str]]:
    """Create ``username`` with 2FA confirmed at ``now``; return (secret, recovery codes)."""
    users.create_user(username, username.title(), PASSWORD, role=role)
    enrolment = two_factor.begin_enrolment(username)
    enabled = two_factor.confirm_enrolment(username, code(enrolment.secret, now), now=now)
    return enrolment.secret, enabled.recovery_codes


def challenge(username: str = "alice", now: dt.datetime = T0) -> users.LoginChallenge:
    with pytest.raises(users.TwoFactorRequired) as raised:
        users.authenticate(username, PASSWORD, now=now)
    return raised.value.challenge


def test_enrolment_stores_the_secret_encrypted_and_is_confirmed_by_a_first_code(db):
    user = users.create_user("alice", "Alice", PASSWORD)
    enrolment = two_factor.begin_enrolment(Actor("alice", user.credential_version))
    row = stored_user("alice")
    assert row.totp_secret is not None and row.totp_secret != enrolment.secret
    assert enrolment.secret not in row.totp_secret
    assert two_factor.decrypt_secret(row.totp_secret) == enrolment.secret
    assert row.totp_enabled_at is None
    assert users.authenticate("alice", PASSWORD, now=T0).username == "alice"  # not on before it is confirmed
    with pytest.raises(ValidationFailed) as refused:
        two_factor.confirm_enrolment("alice", wrong(enrolment.secret, T0), now=T0)
    assert "code" in refused.value.errors
    assert not users.get_user("alice").two_factor_enabled and recovery_rows(user.id) == []

    enabled = two_factor.confirm_enrolment(Actor("alice", user.credential_version), code(enrolment.secret, T0), now=T0)
    after = users.get_user("alice")
    assert after.two_factor_enabled
    assert enabled.credential_version == after.credential_version == user.credential_version + 1  # others end
    rows = recovery_rows(user.id)
    assert len(rows) == 10 and all(r.used_at is None for r in rows)
    stored_hashes = {r.code_hash for r in rows}
    assert stored_hashes == {two_factor.hash_recovery_code(user.id, c) for c in enabled.recovery_codes}
    assert not stored_hashes & {c.replace("-", "") for c in enabled.recovery_codes}  # hashed, not the codes
    assert list(audit.list_events(action="user.2fa.enable")["target"]) == ["alice"]
    with pytest.raises(ValidationFailed, match="already enabled"):
        two_factor.begin_enrolment("alice")


def test_login_needs_the_code_after_the_password(db):
    secret, _ = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    pending = challenge(now=now)
    assert stored_user("alice").last_login_at is None  # the password alone logs nobody in
    user = two_factor.complete_login(pending, code(secret, now), now=now)
    assert user.username == "alice" and user.last_login_at == now
    events = audit.list_events(actor="alice", action="auth.login")
    assert list(events["outcome"]) == ["ok"]
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        users.authenticate("alice", "not the password!", now=now)


def test_a_wrong_code_is_refused_and_counted(db):
    secret, _ = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    pending = challenge(now=now)
    with pytest.raises(AuthenticationError, match="wrong code"):
        two_factor.complete_login(pending, wrong(secret, now), now=now)
    assert stored_user("alice").failed_attempts == 1
    events = audit.list_events(actor="alice", action="auth.login")
    assert list(events["message"]) == ["wrong code"]
    two_factor.complete_login(pending, code(secret, now), now=now)
    assert stored_user("alice").failed_attempts == 0  # a right code clears the counter


def test_a_used_code_cannot_be_replayed_within_its_window(db):
    secret, _ = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    used = code(secret, now)
    two_factor.complete_login(challenge(now=now), used, now=now)
    later = now + dt.timedelta(seconds=20)  # the same code is still inside the +-1 step window
    assert two_factor.matching_step(secret, used, later) is not None
    with pytest.raises(AuthenticationError, match="already used"):
        two_factor.complete_login(challenge(now=later), used, now=later)
    # an older code (the previous step) is refused too once a newer one was accepted
    with pytest.raises(AuthenticationError):
        two_factor.complete_login(challenge(now=later), code(secret, now, -1), now=later)
    assert list(
        audit.list_events(
            actor="alice",
            action="auth.login",
        )["message"].dropna()
    )[:2] == ["wrong code", "code replayed"]


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (1, True), (2, False)])
def test_clock_skew_of_one_step_is_accepted_two_are_refused(db, offset, accepted):
    secret, _ = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    pending = challenge(now=now)
    if accepted:
        assert two_factor.complete_login(pending, code(secret, now, offset), now=now).username == "alice"
        assert stored_user("alice").totp_last_step == two_factor.time_step(now) + offset
    else:
        with pytest.raises(AuthenticationError, match="wrong code"):
            two_factor.complete_login(pending, code(secret, now, offset), now=now)


def test_a_recovery_code_logs_in_once(db):
    _, codes = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    assert two_factor.complete_login(challenge(now=now), codes[3].lower().replace("-", " "), now=now)
    with pytest.raises(AuthenticationError, match="wrong code"):
        two_factor.complete_login(challenge(now=now), codes[3], now=now)
    status = two_factor.status("alice")
    assert status.enabled and status.recovery_codes_left == 9
    spent = [r for r in recovery_rows(stored_user("alice").id) if r.used_at is not None]
    assert len(spent) == 1 and spent[0].used_at == now
    assert list(audit.list_events(action="user.2fa.recovery_code")["detail"])[0] == {"left": 9}
    # another user's code is not this user's
    _, bobs = enrolled("bob")
    with pytest.raises(AuthenticationError):
        two_factor.complete_login(challenge(now=now), bobs[0], now=now)


def test_wrong_codes_lock_the_account_and_a_right_password_does_not_clear_them(db):
    secret, _ = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    for attempt in range(1, users.MAX_FAILED_ATTEMPTS):
        pending = challenge(now=now)  # a right password each time ...
        with pytest.raises(AuthenticationError, match="wrong code"):
            two_factor.complete_login(pending, wrong(secret, now), now=now)
        assert stored_user("alice").failed_attempts == attempt  # ... does not reset the count of wrong codes
    pending = challenge(now=now)
    with pytest.raises(AuthenticationError, match="locked") as locked:
        two_factor.complete_login(pending, wrong(secret, now), now=now)
    assert locked.value.locked_until == now + users.LOCKOUT
    with pytest.raises(AuthenticationError, match="locked"):  # the right code is refused while locked
        two_factor.complete_login(pending, code(secret, now, 1), now=now)
    with pytest.raises(AuthenticationError, match="locked"):
        users.authenticate("alice", PASSWORD, now=now)
    assert (audit.list_events(action="auth.lockout")["target"] == "alice").sum() == 1
    later = now + users.LOCKOUT + dt.timedelta(seconds=1)
    assert two_factor.complete_login(challenge(now=later), code(secret, later), now=later).username == "alice"


def test_a_challenge_ends_with_the_credentials_it_was_issued_under(db):
    secret, _ = enrolled()
    users.create_user("boss", "Boss", PASSWORD, role="admin")
    now = T0 + dt.timedelta(minutes=10)
    pending = challenge(now=now)
    users.set_password("alice", "a brand new password 1", actor="boss")
    with pytest.raises(AuthenticationError, match="log in again"):
        two_factor.complete_login(pending, code(secret, now), now=now)


def test_admin_reset_removes_the_second_factor_and_is_audited(db):
    _, codes = enrolled()
    users.create_user("ann", "Ann", PASSWORD)
    users.create_user("boss", "Boss", PASSWORD, role="admin")
    before = users.get_user("alice")
    with pytest.raises(PermissionDenied):
        two_factor.reset("alice", actor="ann")
    assert users.get_user("alice").two_factor_enabled
    two_factor.reset("alice", actor="boss")
    after = stored_user("alice")
    assert after.totp_secret is None and after.totp_enabled_at is None and after.totp_last_step is None
    assert recovery_rows(after.id) == []
    assert after.credential_version == before.credential_version + 1  # alice's sessions end
    events = audit.list_events(action="user.2fa.reset")
    assert list(events["actor"]) == ["boss"] and list(events["target"]) == ["alice"]
    assert list(events["detail"]) == [{"was_enabled": True}]
    assert users.authenticate("alice", PASSWORD, now=T0).username == "alice"  # the password alone again


def test_disable_and_new_recovery_codes_need_a_current_code(db):
    secret, old_codes = enrolled()
    now = T0 + dt.timedelta(minutes=10)
    with pytest.raises(ValidationFailed, match="wrong code"):
        two_factor.regenerate_recovery_codes("alice", wrong(secret, now), now=now)
    fresh = two_factor.regenerate_recovery_codes("alice", code(secret, now), now=now)
    assert len(fresh) == 10 and not set(fresh) & set(old_codes)
    with pytest.raises(AuthenticationError):
        two_factor.complete_login(challenge(now=now), old_codes[0], now=now)  # old codes stop working
    later = now + dt.timedelta(minutes=1)
    version = users.get_user("alice").credential_version
    assert two_factor.disable(Actor("alice", version), fresh[0], now=later) == version + 1
    assert not users.get_user("alice").two_factor_enabled and recovery_rows(stored_user("alice").id) == []
    assert users.authenticate("alice", PASSWORD, now=later).username == "alice"
    assert list(audit.list_events(action="user.2fa.disable")["target"]) == ["alice"]


@pytest.fixture
def admin_2fa_required(monkeypatch):  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    monkeypatch.setenv("ADMIN_2FA", "required")
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_admin_2fa_required_refuses_admin_actions_until_enrolled(db, admin_2fa_required):
    users.create_user("boss", "Boss", PASSWORD, role="admin")
    users.create_user("ann", "Ann", PASSWORD)
    with pytest.raises(PermissionDenied, match="ADMIN_2FA=required"):
        users.list_users(actor="boss")
    with pytest.raises(PermissionDenied, match="ADMIN_2FA=required"):
        users.update_user("ann", actor="boss", role="admin")
    assert users.get_user("ann").role == "analyst"
    assert two_factor.required_for(users.get_user("boss")) and not two_factor.required_for(users.get_user("ann"))
    enrolment = two_factor.begin_enrolment("boss")  # enrolling is allowed, of course
    two_factor.confirm_enrolment("boss", code(enrolment.secret, T0), now=T0)
    assert {u.username for u in users.list_users(actor="boss")} == {"boss", "ann"}
    with pytest.raises(ValidationFailed, match="ADMIN_2FA=required"):
        two_factor.disable("boss", code(enrolment.secret, T0, 1), now=T0)
    assert users.get_user("boss").two_factor_enabled


def test_the_lone_admin_who_lost_the_phone_and_the_codes_is_reset_from_the_command_line(db, admin_2fa_required):
    """With ADMIN_2FA=required and one administrator, nobody in the app can reset their second factor (a self-reset
    is refused); ``python -m core reset-2fa`` (the server's operator) can, audited as ``cli``."""
    from cli import main

    enrolled("root", role="admin")
    with pytest.raises(ValidationFailed):
        two_factor.reset("root", actor="root")
    assert main(["reset-2fa", "root"]) == 0
    assert stored_user("root").totp_secret is None
    events = audit.list_events(action="user.2fa.reset")
    assert list(events["actor"]) == ["cli"] and list(events["target"]) == ["root"]
    assert main(["reset-2fa", "nobody"]) == 2  # an unknown user: one line, exit 2


# --------------------------------------------------------------------------- key rotation
KEY_OLD, KEY_NEW, KEY_LOST = "o" * 40, "n" * 40, "l" * 40


def _keys(monkeypatch, current: str, previous: str | None = None) -> None:  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    monkeypatch.setenv("TWO_FACTOR_KEY", current)
    if previous is None:
        monkeypatch.delenv("TWO_FACTOR_PREVIOUS_KEYS", raising=False)
    else:
        monkeypatch.setenv("TWO_FACTOR_PREVIOUS_KEYS", previous)
    reset_settings_cache()


def _logs_in(username: str, secret: str, now: dt.datetime) -> bool:
    return two_factor.complete_login(challenge(username, now=now), code(secret, now), now=now).username == username


def test_the_two_factor_key_is_rotated_with_no_login_lost_and_all_or_nothing(db, monkeypatch, capsys):
    """A new TWO_FACTOR_KEY with the old one in TWO_FACTOR_PREVIOUS_KEYS: logins go on; `python -m core
    rotate-two-factor-key` re-encrypts every secret (a confirmed and a pending enrolment) under the new key, after
    which the old key can go. A secret no configured key reads stops the rotation and changes nothing."""
    from cli import main
    from core.errors import ConfigurationError

    _keys(monkeypatch, KEY_OLD)
    secret, _ = enrolled("alice")
    users.create_user("bob", "Bob", PASSWORD)
    pending = two_factor.begin_enrolment("bob")
    old_token = stored_user("alice").totp_secret
    later = T0 + dt.timedelta(minutes=5)

    _keys(monkeypatch, KEY_NEW)  # the new key alone cannot read the old secrets: said, and how to proceed
    with pytest.raises(ConfigurationError, match="TWO_FACTOR_PREVIOUS_KEYS"):
        _logs_in("alice", secret, later)

    _keys(monkeypatch, KEY_NEW, f" {KEY_OLD} ")  # both configured: logins go on during the rotation
    assert _logs_in("alice", secret, later + dt.timedelta(minutes=1))
    with pytest.raises(PermissionDenied):
        two_factor.rotate_key(actor="alice")  # an analyst may not
    assert stored_user("alice").totp_secret == old_token
    assert main(["rotate-two-factor-key"]) == 0
    assert "2 two-factor secret(s) re-encrypted" in capsys.readouterr().out
    new_token = stored_user("alice").totp_secret
    assert new_token != old_token
    events = audit.list_events(action="user.2fa.rotate_key")
    assert list(events["actor"]) == ["cli"] and list(events["detail"]) == [{"secrets": 2}]

    _keys(monkeypatch, KEY_NEW)  # the old key dropped: every secret still reads
    assert _logs_in("alice", secret, later + dt.timedelta(minutes=2))
    assert two_factor.decrypt_secret(stored_user("bob").totp_secret) == pending.secret

    _keys(monkeypatch, KEY_LOST)
    enrolled("carol")  # encrypted under a key that is then lost
    _keys(monkeypatch, KEY_NEW, KEY_OLD)
    with pytest.raises(ConfigurationError, match=r"1 account\(s\) \(carol\); nothing was re-encrypted"):
        two_factor.rotate_key()
    assert stored_user("alice").totp_secret == new_token  # all or nothing
    assert main(["rotate-two-factor-key"]) == 2  # one line, exit 2


def test_a_previous_key_shorter_than_a_key_is_refused_naming_the_variable(monkeypatch):
    from core.config import get_settings, reset_settings_cache
    from core.errors import ConfigurationError

    monkeypatch.setenv("TWO_FACTOR_PREVIOUS_KEYS", f"{KEY_OLD},short")
    reset_settings_cache()
    try:
        with pytest.raises(ConfigurationError, match="TWO_FACTOR_PREVIOUS_KEYS"):
            get_settings()
    finally:
        monkeypatch.delenv("TWO_FACTOR_PREVIOUS_KEYS")
        reset_settings_cache()
