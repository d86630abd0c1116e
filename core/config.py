"""Settings: one object, read from environment variables (or a .env file).

Every variable is documented in the README's configuration table. A bad value
stops start-up with one line naming the variable (see :func:`get_settings`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Bounds of a RATE_LIMIT_* setting: actions per window, and the window's length (1 year).
MAX_RATE_LIMIT_ACTIONS = 1_000_000_000
MAX_RATE_LIMIT_WINDOW_S = 366 * 86_400


class Settings(BaseSettings):
    """AutoIndex settings. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(default=PROJECT_ROOT / "data", description="Where SQLite, the queue, keys and reports live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<DATA_DIR>/autoindex.db"
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db; enables RedisHuey and the shared cache"
    )
    twelvedata_api_key: str | None = Field(default=None, description="TwelveData API key (secret)")
    twelvedata_base_url: str = "https://api.twelvedata.com"
    twelvedata_credits_per_minute: int = Field(default=8, ge=1, le=10_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_connect_timeout_s: float = Field(
        default=30.0, ge=0, le=600, description="Total time to retry the database at start-up"
    )
    demo_seed: int = 42
    demo_on_empty: bool = Field(default=True, description="Seed the demo universe when the database has no prices")
    embedded_worker: bool = Field(
        default=True, description="Run a Huey consumer thread inside the app when REDIS_URL is unset"
    )
    refresh_cron: str = Field(
        default="30 22 * * 1-5", description="minute hour day month weekday (UTC) of the periodic refresh"
    )
    retention_days: int = Field(default=90, ge=1, le=3650)
    reports_dir: Path | None = Field(
        default=None, description="Directory for report files; default: stored in the database"
    )
    cookie_key: str | None = Field(default=None, description="Secret that signs the re-authentication cookie")
    import_max_bytes: int = Field(default=20_000_000, ge=1_000)
    risk_free_rate: float = Field(
        default=0.0,
        ge=-0.05,
        le=0.5,
        allow_inf_nan=False,
        description="Annual risk-free rate (decimal, 0.04 = 4 %) used by Sharpe, Sortino, alpha",
    )
    risk_free_symbol: str | None = Field(
        default=None,
        max_length=32,
        description="Stored symbol whose closes are an annual yield in percent "
        "(e.g. ^IRX 5.25 = 5.25 %); overrides RISK_FREE_RATE where it has data",
    )
    admin_2fa: Literal["optional", "required"] = Field(
        default="optional",
        description="'required': an administrator must enrol in TOTP two-factor authentication "
        "before reaching any page or acting as an administrator",
    )
    two_factor_key: str | None = Field(default=None, description="Secret (32+ characters) encrypting TOTP secrets")
    two_factor_previous_keys: str | None = Field(
        default=None,
        description="Earlier TWO_FACTOR_KEY values, comma-separated: still read (logins keep working) until "
        "`python -m core rotate-two-factor-key` has re-encrypted every stored secret under TWO_FACTOR_KEY",
    )
    # Rate limits per user (``limits`` notation: "30/minute", "5/second;100/hour"; "off" disables one).
    rate_limit_preview: str | None = Field(default="60/minute", description="Strategy previews per user")
    rate_limit_report: str | None = Field(default="20/minute", description="Report requests per user")
    rate_limit_job: str | None = Field(default="60/minute", description="Jobs queued per user")
    rate_limit_sweep: str | None = Field(default="10/minute", description="Parameter sweeps started per user")
    rate_limit_login_user: str | None = Field(default="30/minute", description="Login attempts per user name")
    rate_limit_login_address: str | None = Field(default="60/minute", description="Login attempts per client address")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus /metrics on this port")
    metrics_host: str = Field(default="0.0.0.0", description="Address the /metrics server listens on")
    alert_check_minutes: float = Field(default=5.0, gt=0, le=1440, description="Minutes between alert evaluations")
    alert_smtp_password: str | None = Field(default=None, description="Password of the alert SMTP account (secret)")

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must start with sqlite:// or postgresql://")
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://") :]
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator(
        "rate_limit_preview",
        "rate_limit_report",
        "rate_limit_job",
        "rate_limit_sweep",
        "rate_limit_login_user",
        "rate_limit_login_address",
    )
    @classmethod
    def _check_rate_limit(cls, v: str | None) -> str | None:
        """``None`` (from "off", "none", "0" or "") disables the limit; anything else must parse as limits."""
        from limits import parse_many

        if v is None or v.strip().lower() in {"", "off", "none", "0"}:
            return None
        try:
            items = parse_many(v)
        except ValueError:
            raise ValueError('must look like "30/minute" or "5/second;100/hour" (or "off")') from None
        if any(item.amount < 1 for item in items):
            raise ValueError("each limit must allow at least 1 action")
        if re.search(r"(?:/|per)\s*0+\s*[a-z]", v.lower()):  # limits reads "5/0 minute" as 5 per 1 minute
            raise ValueError("a window must be at least 1 unit long (5/minute, 5/2 minutes)")
        if any(item.amount > MAX_RATE_LIMIT_ACTIONS or item.get_expiry() > MAX_RATE_LIMIT_WINDOW_S for item in items):
            # a typo, not a policy: Redis errs on such an expiry and keeps the key for ever (one action, then refusals
            # saying "try again in 51840000000000001879048192 minutes"); 100000 days is a ban per user
            raise ValueError(
                f"each limit must allow at most {MAX_RATE_LIMIT_ACTIONS:,} actions in a window of at most 1 year"
            )
        return v.strip()

    @field_validator("two_factor_key")
    @classmethod
    def _check_two_factor_key(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if len(v) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return v

    @field_validator("two_factor_previous_keys")
    @classmethod
    def _check_previous_keys(cls, v: str | None) -> str | None:
        keys = [k.strip() for k in (v or "").split(",") if k.strip()]
        if any(len(k) < 32 for k in keys):
            raise ValueError("each key must be at least 32 characters (the earlier TWO_FACTOR_KEY values)")
        return ",".join(keys) or None

    @field_validator("refresh_cron")
    @classmethod
    def _check_cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError("needs five fields: minute hour day month weekday")
        return v

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'autoindex.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def redacted(self) -> dict[str, str]:
        """Every setting as text with secrets replaced, for diagnostics and logs."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in {"twelvedata_api_key", "cookie_key", "alert_smtp_password", "two_factor_key"}:
                out[name] = "(set, hidden)" if value else "(not set)"
            elif name in {"database_url", "redis_url"} and value:
                out[name] = redact_url(str(value))
            else:
                out[name] = str(value)
        out["effective_database_url"] = redact_url(self.effective_database_url)
        return out


def redact_url(url: str) -> str:
    """Hide the password of a URL such as postgresql://user:secret@host/db."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (redis://...)
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}"
        return url


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; raises ConfigurationError naming the bad variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        variable = str(err["loc"][0]).upper() if err.get("loc") else "settings"
        raise ConfigurationError(variable, err["msg"]) from None
    check_data_dir(settings.data_dir)
    return settings


def check_data_dir(path: Path) -> None:
    """Create ``path`` if needed and prove it is a writable directory (a file is created and removed).

    Raises ConfigurationError("DATA_DIR", ...) naming the path and the reason: it cannot be created
    (``/proc/x``: no such file or directory), it is a file, or nothing can be written in it (no permission,
    a read-only file system).
    """
    import os
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigurationError("DATA_DIR", f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise ConfigurationError("DATA_DIR", f"cannot create {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise ConfigurationError("DATA_DIR", f"{path} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
    except OSError as exc:
        raise ConfigurationError("DATA_DIR", f"cannot write in {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:  # an append-only directory: writable, but leave no trace we cannot remove
        pass


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change environment variables)."""
    get_settings.cache_clear()
