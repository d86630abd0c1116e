"""Start-up: migrations, the demo universe on an empty database, the default config, secrets."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import PROJECT_ROOT, get_settings
from core.db import migrate, unit_of_work
from core.infra.locks import REFRESH, SEED, hold
from core.models import IndexValue, Price
from core.services import app_settings, prices, strategies, users

log = logging.getLogger(__name__)

SETUP_TOKEN_KEY = "setup_token"


def seed_demo(
    *,
    n_assets: int | None = None,
    years: float | None = None,
    seed: int | None = None,
    end: dt.date | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, object]:
    """Generate the deterministic synthetic universe and store it (idempotent: a rerun changes nothing).

    Storing it is a refresh: it holds the ``refresh`` lock (:mod:`core.infra.locks`), waiting up to
    ``REFRESH_LOCK_WAIT_S`` for a running refresh or seeding, so market data has one writer at a time."""
    from core.infra.providers.demo import DemoProvider
    from core.services.refresh import REFRESH_LOCK_WAIT_S

    settings = get_settings()
    end = end or dt.date.today()
    start = dt.date(2018, 1, 1) if years is None else end - dt.timedelta(days=int(round(365.25 * years)))
    provider = DemoProvider(
        seed=settings.demo_seed if seed is None else seed, n_assets=n_assets, start=start, end=end, today=end
    )
    data = provider.fetch(None, start=start, end=end, progress=progress)
    with hold(REFRESH, timeout_s=REFRESH_LOCK_WAIT_S, holder="seed-demo"), unit_of_work() as session:
        summary = prices.ingest(
            session,
            prices=data.prices,
            market_caps=data.market_caps,
            assets=data.assets,
            source="demo",
            dividends=data.dividends,
        )
        _seed_demo_factors(session, data.prices, provider.seed)
        if summary.changed:
            prices.mark_refreshed(session)
        session.commit()
    return summary.as_dict()


def _seed_demo_factors(session: Session, long_prices: pd.DataFrame, seed: int) -> None:
    """Store the demo's synthetic factor set (labelled demo) from the demo market series (issue 15)."""
    from core.infra.providers.demo import DEMO_FACTOR_SET, demo_factors
    from core.services.factors import store_factors

    market = long_prices.loc[long_prices["symbol"] == "^GSPC"].set_index("date")["close"]
    if len(market) > 1:
        store_factors(session, DEMO_FACTOR_SET, demo_factors(market, seed), is_demo=True)


def database_is_empty() -> bool:
    with unit_of_work() as session:
        return session.scalar(select(Price.asset_id).limit(1)) is None


#: Longest a start-up waits for another process's first-start seeding (demo universe and first compute), seconds.
SEED_LOCK_WAIT_S = 900.0


def start_up(
    *,
    seed_if_empty: bool | None = None,
    compute_if_needed: bool = True,
    lock_timeout_s: float | None = SEED_LOCK_WAIT_S,
) -> dict[str, object]:
    """Bring the database to a usable state; safe to call from every process, any number of times, at once.

    Migrations hold the ``migrate`` lock; seeding an empty database, the default config and its first compute
    hold the ``seed`` lock (:mod:`core.infra.locks`), so of processes starting together one seeds and
    computes, and the others wait for it and then find everything in place.
    """
    from core.services.compute import compute_config

    settings = get_settings()
    report: dict[str, object] = {"head": migrate()}
    seed = settings.demo_on_empty if seed_if_empty is None else seed_if_empty
    with hold(SEED, timeout_s=lock_timeout_s, holder="start-up"):
        if seed and database_is_empty():
            log.info("empty database: loading the synthetic demo universe")
            report["seeded"] = seed_demo()
        default = strategies.ensure_default_config()
        report["active_config"] = default.id
        if compute_if_needed and not database_is_empty():
            with unit_of_work() as session:
                has_values = session.scalar(
                    select(IndexValue.config_id).where(IndexValue.config_id == default.id).limit(1)
                )
            if has_values is None:
                report["computed"] = compute_config(default.id, actor="system")
    return report


_started: dict[str, dict[str, object]] = {}  # database URL -> the report of this process's start-up there
_started_lock = threading.Lock()


def start_up_once() -> dict[str, object]:
    """:func:`start_up` once per process and database: what ``python -m core serve``'s start-up thread and Home.py's
    first page run both call, so the second finds the first's report instead of migrating and checking again (a
    visitor arriving during the start-up waits here for it). A failed start-up is not remembered: the next call
    tries again."""
    url = get_settings().effective_database_url
    with _started_lock:
        if url not in _started:
            _started[url] = start_up()
        return _started[url]


# --- first-run setup token -------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_setup_token() -> str | None:
    """While no user exists, make a one-time token for creating the admin, log it, and return it."""
    if users.count_users() > 0:
        return None
    token = secrets.token_urlsafe(12)
    with unit_of_work() as session:
        app_settings.put(session, SETUP_TOKEN_KEY, {"sha256": _hash_token(token)})
        session.commit()
    log.warning("AutoIndex first-run setup token: %s (enter it on the setup page to create the administrator)", token)
    print(f"AutoIndex first-run setup token: {token}", flush=True)
    token_file = get_settings().data_dir / "setup_token.txt"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    return token


def create_admin_with_token(token: str, username: str, name: str, password: str, email: str | None = None):  # type: ignore[no-untyped-def]
    """Create the first administrator if ``token`` matches; the token is then spent.

    The token row is deleted (``DELETE ... RETURNING``) in the same transaction that creates the admin, after
    the users table is locked: of any number of requests at once, exactly one creates an administrator and
    the others are told the token is spent or an administrator exists. A wrong token spends nothing."""
    from sqlalchemy import delete

    from core.errors import ValidationFailed
    from core.models import AppSetting

    wanted = _hash_token((token or "").strip())

    def consume(session: Session) -> None:
        stored = session.execute(
            delete(AppSetting).where(AppSetting.key == SETUP_TOKEN_KEY).returning(AppSetting.value)
        ).scalar_one_or_none()
        digest = (stored or {}).get("sha256")
        if not digest:
            raise ValidationFailed({"setup_token": "has already been used; log in with the administrator account"})
        if not secrets.compare_digest(str(digest), wanted):
            raise ValidationFailed({"setup_token": "is wrong; use the token printed in the server log"})

    with unit_of_work() as session:  # cheap early answer before the slow password hash
        stored = app_settings.get(session, SETUP_TOKEN_KEY).get("sha256")
    if not stored and users.count_users() > 0:
        raise ValidationFailed({"setup_token": "has already been used; log in with the administrator account"})
    if not stored or not secrets.compare_digest(str(stored), wanted):
        raise ValidationFailed({"setup_token": "is wrong; use the token printed in the server log"})
    user = users.create_first_admin(username, name, password, email=email, consume=consume)
    token_file = get_settings().data_dir / "setup_token.txt"
    token_file.unlink(missing_ok=True)
    return user


# --- cookie key ----------------------------------------------------------------------------------

#: Shortest signing key accepted (a short or example key lets anyone forge a re-authentication cookie).
COOKIE_KEY_MIN_LENGTH = 32
#: Values from the shipped examples, refused as keys.
_EXAMPLE_KEYS = frozenset({"replace-with-64-hex-characters", "changeme", "change-me", "secret"})


def _checked_cookie_key(value: str, source: str) -> str:
    from core.errors import ConfigurationError

    key = value.strip()
    if key.lower() in _EXAMPLE_KEYS or "replace" in key.lower():
        raise ConfigurationError(source, "is the example value; set a random key (e.g. `openssl rand -hex 32`)")
    if len(key) < COOKIE_KEY_MIN_LENGTH:
        raise ConfigurationError(
            source, f"must be at least {COOKIE_KEY_MIN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
        )
    return key


def cookie_key() -> str:
    """The re-authentication cookie's signing key.

    From COOKIE_KEY, else ``cookie_key`` in .streamlit/secrets.toml, else a key generated on first start and
    kept (mode 600) under the data directory. A configured key shorter than 32 characters, or the example
    value, is refused (ConfigurationError naming where it came from). The generated file is written whole
    under a temporary name and linked into place, so a process starting at the same moment never reads a
    half-written (empty) key.
    """
    settings = get_settings()
    if settings.cookie_key:
        return _checked_cookie_key(settings.cookie_key, "COOKIE_KEY")
    secrets_file = PROJECT_ROOT / ".streamlit" / "secrets.toml"
    if secrets_file.exists():
        try:
            value = tomllib.loads(secrets_file.read_text()).get("cookie_key")
            if value:
                return _checked_cookie_key(str(value), ".streamlit/secrets.toml cookie_key")
        except tomllib.TOMLDecodeError:
            log.error("could not parse .streamlit/secrets.toml; using the generated cookie key")
    path: Path = settings.data_dir / "cookie_key"
    if not path.exists():
        _write_key(path, replace=False)
    key = path.read_text().strip()
    if not key:  # an empty file left by a crash of an older version (it wrote the key in place): replace it
        _write_key(path, replace=True)
        key = path.read_text().strip()
    return key


def _write_key(path: Path, *, replace: bool) -> None:
    """Write a new random key under a temporary name, then link it into place (only if no key is there yet:
    another process that got there first keeps its key) or, with ``replace``, rename it over the old file."""
    tmp = path.with_name(f".cookie_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
