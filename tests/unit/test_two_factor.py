"""Two-factor building blocks, checked against independent references: RFC 6238's test vectors and an HOTP
written here from RFC 4226 with hmac/struct (not pyotp); the +-1 step window; recovery codes; the secret
encrypted at rest; the QR code; login challenges; the settings that configure it all."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import stat
import struct
import xml.etree.ElementTree as ET

import pytest

from core.services import two_factor

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1 seed


def hotp(secret_b32: str, counter: int, digits: int = 6) -> str:
    """RFC 4226 section 5.3, written out: HMAC-SHA1, dynamic truncation, modulo 10^digits."""
    key = base64.b32decode(secret_b32)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


@pytest.mark.parametrize(
    "unix, eight_digits",
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_codes_match_the_rfc_6238_test_vectors(unix, eight_digits):
    step = two_factor.time_step(at(unix))
    assert step == unix // 30
    assert two_factor.code_at(RFC_SECRET, step) == eight_digits[-6:]  # 6 digits = the same value mod 10^6
    assert hotp(RFC_SECRET, step, digits=8) == eight_digits


def test_codes_match_an_independent_hotp_on_random_secrets():
    import pyotp

    for _ in range(20):
        secret = pyotp.random_base32()
        for step in (0, 1, 56_000_000, 2**31):
            assert two_factor.code_at(secret, step) == hotp(secret, step)


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_one_step_of_clock_skew_either_side_is_accepted_two_are_not(offset, accepted):
    now = at(1_700_000_015)
    step = two_factor.time_step(now)
    code = hotp(RFC_SECRET, step + offset)
    # a code that happens to equal a neighbour's would blur the check: the RFC secret has none here
    assert len({hotp(RFC_SECRET, step + k) for k in range(-2, 3)}) == 5
    assert two_factor.matching_step(RFC_SECRET, code, now) == (step + offset if accepted else None)


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12345a", "１２３４５６", None])
def test_malformed_codes_match_nothing(typed):
    assert two_factor.matching_step(RFC_SECRET, typed, at(1_700_000_000)) is None  # type: ignore[arg-type]


def test_a_code_with_spaces_is_read_as_typed():
    now = at(1_700_000_000)
    code = hotp(RFC_SECRET, two_factor.time_step(now))
    assert two_factor.matching_step(RFC_SECRET, f" {code[:3]} {code[3:]} ", now) == two_factor.time_step(now)


def test_recovery_codes_are_ten_distinct_80_bit_codes():
    codes = two_factor.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set(two_factor.RECOVERY_ALPHABET)
    assert len(two_factor.RECOVERY_ALPHABET) == 32 and len(set(two_factor.RECOVERY_ALPHABET)) == 32
    assert two_factor.RECOVERY_LENGTH * 5 == 80  # bits: 16 letters of a 32-letter alphabet


def test_recovery_codes_are_hashed_per_user_and_typed_loosely():
    code = two_factor.new_recovery_codes(1)[0]
    digest = two_factor.hash_recovery_code(7, code)
    assert digest == hashlib.sha256(f"autoindex-recovery:7:{code.replace('-', '')}".encode()).hexdigest()
    assert code.replace("-", "") not in digest
    assert two_factor.hash_recovery_code(7, code.lower().replace("-", " ")) == digest
    assert two_factor.hash_recovery_code(8, code) != digest  # salted with the user
    assert two_factor.normalise_recovery_code("0000-1111-OOOO-IIII") is None  # letters outside the alphabet
    assert two_factor.normalise_recovery_code("ABCD-EFGH") is None


@pytest.fixture
def key_env(data_dir, monkeypatch):
    from core.config import reset_settings_cache

    monkeypatch.setenv("TWO_FACTOR_KEY", "k" * 40)
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_the_secret_is_encrypted_at_rest_and_needs_the_key(key_env, monkeypatch):
    import pyotp

    from core.config import reset_settings_cache
    from core.errors import ConfigurationError

    secret = pyotp.random_base32()
    stored = two_factor.encrypt_secret(secret)
    assert stored != secret and secret not in stored
    assert secret.encode() not in base64.urlsafe_b64decode(stored)  # not merely encoded
    assert two_factor.encrypt_secret(secret) != stored  # a fresh IV every time
    assert two_factor.decrypt_secret(stored) == secret
    monkeypatch.setenv("TWO_FACTOR_KEY", "another key of at least thirty-two chars")
    reset_settings_cache()
    with pytest.raises(ConfigurationError, match="TWO_FACTOR_KEY"):
        two_factor.decrypt_secret(stored)


def test_without_a_configured_key_one_is_generated_once_mode_600(data_dir, monkeypatch):
    monkeypatch.delenv("TWO_FACTOR_KEY", raising=False)
    monkeypatch.setattr(two_factor, "PROJECT_ROOT", two_factor.Path(data_dir))  # no secrets.toml there
    first = two_factor.two_factor_key()
    path = two_factor.Path(data_dir) / "two_factor_key"
    assert len(first) == 64 and path.read_text().strip() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert two_factor.two_factor_key() == first


def test_the_key_may_come_from_secrets_toml(data_dir, monkeypatch, tmp_path):
    from core.errors import ConfigurationError

    monkeypatch.delenv("TWO_FACTOR_KEY", raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('two_factor_key = "' + "s" * 40 + '"\n')
    monkeypatch.setattr(two_factor, "PROJECT_ROOT", tmp_path)
    assert two_factor.two_factor_key() == "s" * 40
    (tmp_path / ".streamlit" / "secrets.toml").write_text('two_factor_key = "short"\n')
    with pytest.raises(ConfigurationError, match="two_factor_key"):
        two_factor.two_factor_key()


def test_a_short_two_factor_key_stops_start_up_naming_the_variable(data_dir, monkeypatch):
    from core.config import get_settings, reset_settings_cache
    from core.errors import ConfigurationError

    monkeypatch.setenv("TWO_FACTOR_KEY", "too short")
    reset_settings_cache()
    with pytest.raises(ConfigurationError, match="^TWO_FACTOR_KEY: .*32 characters"):
        get_settings()
    monkeypatch.setenv("TWO_FACTOR_KEY", "x" * 32)
    reset_settings_cache()
    assert get_settings().redacted()["two_factor_key"] == "(set, hidden)"
    reset_settings_cache()


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("ADMIN_2FA", "sometimes", None),
        ("RATE_LIMIT_PREVIEW", "lots", None),
        ("RATE_LIMIT_JOB", "0/minute", None),
        ("RATE_LIMIT_REPORT", "off", "none"),
        ("RATE_LIMIT_SWEEP", "5/second;100/hour", "5/second;100/hour"),
    ],
)
def test_two_factor_and_rate_limit_settings(data_dir, monkeypatch, variable, value, expected):
    from core.config import get_settings, reset_settings_cache
    from core.errors import ConfigurationError

    monkeypatch.setenv(variable, value)
    reset_settings_cache()
    try:
        if expected is None:
            with pytest.raises(ConfigurationError, match=f"^{variable}: "):
                get_settings()
        else:
            got = getattr(get_settings(), variable.lower())
            assert got == (None if expected == "none" else expected)
    finally:
        reset_settings_cache()


def test_the_qr_code_is_an_svg_of_the_otpauth_uri():
    uri = two_factor.provisioning_uri(RFC_SECRET, "ada")
    assert uri.startswith("otpauth://totp/AutoIndex:ada?") and f"secret={RFC_SECRET}" in uri
    assert "issuer=AutoIndex" in uri
    svg = two_factor.qr_svg(uri)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    paths = [el for el in root.iter() if el.tag.endswith("path")]
    assert paths and len(paths[0].get("d", "")) > 1000  # modules drawn as one path
    assert RFC_SECRET not in svg  # the secret is in the modules, not in the markup


def test_a_login_challenge_is_refused_when_forged_altered_or_old():
    import dataclasses

    from core.errors import AuthenticationError
    from core.services import users

    now = at(1_700_000_000)
    good = users.LoginChallenge(3, "ada", 2, now, users.LoginChallenge.sign(3, "ada", 2, now))
    assert users.verify_challenge(good, now + dt.timedelta(minutes=4)) is good
    for bad in (
        dataclasses.replace(good, user_id=4),
        dataclasses.replace(good, credential_version=3),
        dataclasses.replace(good, signature="0" * 64),
        {"user_id": 3},
        None,
    ):
        with pytest.raises(AuthenticationError, match="expired"):
            users.verify_challenge(bad, now)
    with pytest.raises(AuthenticationError, match="5 minutes"):
        users.verify_challenge(good, now + dt.timedelta(minutes=5, seconds=1))


def test_the_login_metric_tells_the_second_step_and_rate_limits_apart():
    from core.infra import metrics
    from core.infra.ratelimit import RateLimited
    from core.services import users

    now = at(1_700_000_000)
    pending = users.LoginChallenge(1, "ada", 0, now, users.LoginChallenge.sign(1, "ada", 0, now))
    assert metrics.login_outcome(users.TwoFactorRequired(pending)) == "second_factor"
    assert metrics.login_outcome(RateLimited("login_user", "30 per 1 minute", 12)) == "rate_limited"
