"""AppTest: enrolling in two-factor authentication on the Account page, the code step of the login, the admin's
reset, and ADMIN_2FA=required sending an administrator to enrol before any page (issue 16, item 1)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.app.conftest import make_app, page_app, texts

PASSWORD = "two factor password 2024"


def _now_step() -> int:
    from core.services import two_factor

    return two_factor.time_step(dt.datetime.now(dt.timezone.utc))


def _button(at, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def _login(at, username: str, password: str):  # type: ignore[no-untyped-def]
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return _button(at, "Log in").click().run()


def _enrol(at):  # type: ignore[no-untyped-def]
    """Start and confirm an enrolment in ``at`` (on the Account page); return (secret, recovery codes)."""
    from core.services import two_factor

    at = at.button(key="two_factor_begin").click().run()
    enrolment = at.session_state["account_enrolment"]
    assert [c.value for c in at.code] == [enrolment.secret]  # the secret is shown beside the QR code
    assert [i.captions for i in at.get("image")] == [["otpauth QR code"]], "the QR code is drawn"
    assert enrolment.qr_svg.startswith("<svg") or "<svg" in enrolment.qr_svg[:200]
    # a wrong code is refused beside the field, nothing enabled
    at.text_input(key="account_confirm_code").input(
        "000000" if two_factor.code_at(enrolment.secret, _now_step()) != "000000" else "111111"
    )
    at = _button(at, "Confirm and turn on").click().run()
    assert any("not the current code" in e.value for e in at.error)
    at.text_input(key="account_confirm_code").input(two_factor.code_at(enrolment.secret, _now_step()))
    at = _button(at, "Confirm and turn on").click().run()
    assert not at.exception
    codes = at.session_state["account_recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert at.code[0].value.splitlines() == codes  # shown once, as a block
    return at, enrolment.secret, codes


def test_enrol_on_the_account_page_then_log_in_with_a_code(app_db) -> None:
    from core.services import audit, users

    users.create_user("tina", "Tina Two", PASSWORD)
    at = make_app("tina", page="pages/account.py")
    assert at.title[0].value == "Account"
    at, secret, codes = _enrol(at)
    assert users.get_user("tina").two_factor_enabled
    # this session goes on under the new credential version; the codes go away once saved
    at = _button(at, "I have saved them").click().run()
    assert not at.session_state["account_recovery_codes"] if "account_recovery_codes" in at.session_state else True
    assert any("On since" in s.value for s in at.success)
    assert at.session_state["auth_credential_version"] == users.get_user("tina").credential_version

    # logging in now asks for the code after the password
    from core.services import two_factor

    login = make_app()
    login = _login(login, "tina", PASSWORD)
    assert login.text_input(key="login_code") is not None
    assert "Dashboard" not in [t.value for t in login.title]
    login.text_input(key="login_code").input(
        "123456" if two_factor.code_at(secret, _now_step()) != "123456" else "654321"
    )
    login = _button(login, "Verify").click().run()
    assert any("wrong code" in e.value.lower() for e in login.error)
    login.text_input(key="login_code").input(two_factor.code_at(secret, _now_step() + 1))  # the app's clock ahead
    login = _button(login, "Verify").click().run()
    assert not login.exception
    assert login.title[0].value.startswith("Dashboard")
    events = audit.list_events(actor="tina", action="auth.login")
    assert {"ok", "failed"} <= set(events["outcome"])

    # a recovery code logs in once
    again = _login(make_app(), "tina", PASSWORD)
    again.text_input(key="login_code").input(codes[0].lower())
    again = _button(again, "Verify").click().run()
    assert again.title[0].value.startswith("Dashboard")
    reused = _login(make_app(), "tina", PASSWORD)
    reused.text_input(key="login_code").input(codes[0])
    reused = _button(reused, "Verify").click().run()
    assert any("wrong code" in e.value.lower() for e in reused.error)
    users.update_user("tina", actor=None, unlock=True)


def test_admin_resets_a_users_two_factor_from_the_admin_page(app_db) -> None:
    from core.services import audit, two_factor, users
    from tests.app.conftest import ADMIN

    users.create_user("rita", "Rita Reset", PASSWORD)
    enrolment = two_factor.begin_enrolment("rita")
    two_factor.confirm_enrolment("rita", two_factor.code_at(enrolment.secret, _now_step()))
    at = make_app(ADMIN[0], page="pages/admin.py")
    at.selectbox(key="admin_edit_user").select("rita").run()
    at = at.button(key="admin_reset_two_factor").click().run()
    assert not at.exception
    assert any("Two-factor authentication of rita reset" in s.value for s in at.success)
    assert not users.get_user("rita").two_factor_enabled
    events = audit.list_events(action="user.2fa.reset")
    assert list(events["actor"]) == [ADMIN[0]] and list(events["target"]) == ["rita"]
    # rita logs in with the password alone again
    login = _login(make_app(), "rita", PASSWORD)
    assert login.title[0].value.startswith("Dashboard")


@pytest.fixture
def admin_2fa_required(app_db, monkeypatch):  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    monkeypatch.setenv("ADMIN_2FA", "required")
    reset_settings_cache()
    yield
    monkeypatch.delenv("ADMIN_2FA")
    reset_settings_cache()


def test_admin_2fa_required_forces_an_admin_to_enrol_before_any_page(admin_2fa_required) -> None:
    from core.errors import PermissionDenied
    from core.services import users

    users.create_user("ada2", "Ada Second", PASSWORD, role="admin")
    at = make_app("ada2")
    assert [t.value for t in at.title] == ["Set up two-factor authentication"]
    assert "Dashboard" not in texts(at)
    # a page file reached without Home's navigation draws nothing either
    admin_page = page_app("pages/admin.py", "ada2")
    assert "Admin" not in [t.value for t in admin_page.title]
    assert any("ADMIN_2FA=required" in w.value for w in admin_page.warning)
    # and the services refuse admin-only actions
    with pytest.raises(PermissionDenied, match="two-factor"):
        users.list_users(actor="ada2")
    # analysts are not concerned
    users.create_user("andy", "Andy Analyst", PASSWORD)
    assert make_app("andy").title[0].value.startswith("Dashboard")

    at, _secret, _codes = _enrol(at)
    assert [t.value for t in at.title] == ["Set up two-factor authentication"]  # still here: the codes are shown
    at = _button(at, "I have saved them").click().run()
    assert not at.exception
    assert at.title[0].value.startswith("Dashboard")
    assert [u.username for u in users.list_users(actor="ada2")]


def test_a_preview_over_the_rate_limit_says_when_to_retry(app_db, monkeypatch) -> None:
    import random

    from core.config import reset_settings_cache
    from core.services import users

    monkeypatch.setenv("RATE_LIMIT_PREVIEW", "1/minute")
    reset_settings_cache()
    try:
        users.create_user("petra", "Petra Preview", PASSWORD)
        at = make_app("petra", page="pages/strategy.py")
        refused: list[str] = []
        for _ in range(3):  # parameters no earlier run cached: each is a new backtest
            at.number_input(key="strategy_field_cost_bps").set_value(round(random.uniform(1, 999), 3)).run()
            assert not at.exception
            refused = [e.value for e in at.error if "too many previews" in e.value]
            if refused:
                break
        assert refused, "the second new preview within a minute is refused"
        assert "at most 1 per 1 minute" in refused[0] and "try again in" in refused[0]
    finally:
        reset_settings_cache()


def test_the_enrolment_qr_code_is_dark_on_a_white_quiet_zone(app_db) -> None:
    """In the dark theme the QR code was black modules on a transparent background, so black on near-black, which no
    camera reads: the page draws it on white with a four-module quiet zone, the modules black, whatever the theme."""
    import base64
    import re
    import xml.etree.ElementTree as ET

    from core.services import users

    users.create_user("qr_reader", "Quinn Reader", PASSWORD, role="analyst")
    at = make_app("qr_reader", "pages/account.py")
    at = at.button(key="two_factor_begin").click().run()
    assert not at.exception
    [image] = at.get("image")
    url = image.proto.imgs[0].url
    assert url.startswith("data:image/svg+xml;base64,")
    svg = ET.fromstring(base64.b64decode(url.split(",", 1)[1]))
    ns = "{http://www.w3.org/2000/svg}"
    x, y, width, height = (float(v) for v in svg.get("viewBox").split())
    background = svg[0]
    assert background.tag == f"{ns}rect" and background.get("fill") == "#ffffff"  # drawn first: under the modules
    assert [float(background.get(k)) for k in ("x", "y", "width", "height")] == [x, y, width, height]
    modules = svg.find(f"{ns}path")
    assert modules is not None and modules.get("fill") == "#000000"
    corners = re.findall(r"M([\d.]+),([\d.]+)", modules.get("d"))  # each dark module's top-left corner
    assert min(min(float(cx) - x, float(cy) - y) for cx, cy in corners) >= 4  # the quiet zone, in modules
