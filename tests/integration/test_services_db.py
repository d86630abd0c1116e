"""Users, strategy versions, audit and settings on both databases."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import AuthenticationError, PermissionDenied, ValidationFailed
from core.services import audit, strategies, users

GOOD_PASSWORD = "correct horse battery"


@pytest.mark.real_bcrypt
def test_create_and_authenticate_user_with_bcrypt(db):
    user = users.create_user("alice", "Alice", GOOD_PASSWORD, role="analyst", email="alice@example.com")
    assert user.role == "analyst"
    from core.db import unit_of_work
    from core.models import User

    with unit_of_work() as s:
        stored = s.query(User).filter_by(username="alice").one().password_hash
    assert stored.startswith("$2b$12$") and GOOD_PASSWORD not in stored  # bcrypt at cost 12
    assert users.authenticate("alice", GOOD_PASSWORD).username == "alice"
    with pytest.raises(AuthenticationError):
        users.authenticate("alice", "wrong password!")


@pytest.mark.parametrize(
    "password, problem",
    [
        ("short", "at least 10"),
        ("password123", "too common"),
        ("aliceAlice", None),
    ],
)
def test_password_policy(db, password, problem):
    if problem is None:
        with pytest.raises(ValidationFailed) as exc:
            users.create_user("aliceAlice", "A", password)
        assert "username" in exc.value.errors["password"]
    else:
        with pytest.raises(ValidationFailed) as exc:
            users.create_user("bob", "Bob", password)
        assert problem in exc.value.errors["password"]
    assert users.count_users() == 0


def test_lockout_after_five_failures_for_fifteen_minutes(db):
    users.create_user("carol", "Carol", GOOD_PASSWORD)
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            users.authenticate("carol", "not the password", now=now)
    with pytest.raises(AuthenticationError, match="locked"):
        users.authenticate("carol", GOOD_PASSWORD, now=now + dt.timedelta(minutes=14))
    assert users.authenticate("carol", GOOD_PASSWORD, now=now + dt.timedelta(minutes=16)).username == "carol"
    events = audit.list_events(actor="carol")
    assert (events["action"] == "auth.lockout").sum() == 1
    assert (events["outcome"] == "failed").sum() >= 6


def test_duplicate_username_rejected(db):
    users.create_user("dave", "Dave", GOOD_PASSWORD)
    with pytest.raises(ValidationFailed) as exc:
        users.create_user("DAVE", "Dave 2", GOOD_PASSWORD)
    assert "taken" in exc.value.errors["username"]
    assert users.count_users() == 1


def test_first_admin_only_once(db):
    users.create_first_admin("root_admin", "Admin", GOOD_PASSWORD)
    with pytest.raises(PermissionDenied):
        users.create_first_admin("second", "Admin", GOOD_PASSWORD)


def test_last_admin_cannot_be_demoted(db):
    users.create_user("adm", "Adm", GOOD_PASSWORD, role="admin")
    with pytest.raises(ValidationFailed):
        users.update_user("adm", actor="adm", role="analyst")
    assert users.get_user("adm").role == "admin"


def test_strategy_versions_and_single_active(db):
    default = strategies.ensure_default_config()
    assert default.is_active and default.version == 1
    assert default.params["momentum"] == pytest.approx(0.4) and default.params["rebalance"] == "weekly"
    params = dict(default.params, cost_bps=5.0)
    users.create_user("alice", "Alice", GOOD_PASSWORD, role="admin")
    v2 = strategies.save_version(default.name, params, note="costs", actor="alice", parent_id=default.id)
    assert v2.version == 2 and not v2.is_active
    strategies.activate_version(v2.id, actor="alice")
    active = [v for v in strategies.list_versions() if v.is_active]
    assert [v.id for v in active] == [v2.id]
    assert strategies.ensure_default_config().id == v2.id


def test_invalid_strategy_is_not_saved(db):
    default = strategies.ensure_default_config()
    bad = dict(default.params, equal=0.5)  # sleeve weights now sum to 1.5
    with pytest.raises(ValidationFailed) as exc:
        strategies.save_version(default.name, bad, actor="alice")
    assert exc.value.errors
    assert len(strategies.list_versions()) == 1


def test_registration_modes(db):
    users.create_user("adm", "Adm", GOOD_PASSWORD, role="admin")
    with pytest.raises(PermissionDenied, match="closed"):
        users.register("eve", "Eve", GOOD_PASSWORD, "eve@example.com")
    users.set_registration_mode("invite", actor="adm")
    with pytest.raises(PermissionDenied, match="invited"):
        users.register("eve", "Eve", GOOD_PASSWORD, "eve@example.com")
    users.invite("eve@example.com", actor="adm")
    assert users.register("eve", "Eve", GOOD_PASSWORD, "eve@example.com").role == "analyst"
    with pytest.raises(ValidationFailed):
        users.set_registration_mode("anything", actor="adm")


def test_logout_moves_the_credential_version_on(db):
    before = users.create_user("frank", "Frank", GOOD_PASSWORD).credential_version
    assert users.revoke_cookies("frank") == before + 1
    assert users.revoke_cookies("frank") == before + 2
    assert users.get_user("frank").credential_version == before + 2
    assert users.revoke_cookies("nobody") == 0
