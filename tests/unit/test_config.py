"""Settings: defaults, and a bad value naming its variable."""

from __future__ import annotations

import pytest

from core.config import get_settings, redact_url, reset_settings_cache
from core.errors import ConfigurationError


def test_defaults_use_sqlite_under_data_dir(data_dir):
    settings = get_settings()
    assert settings.effective_database_url == f"sqlite:///{data_dir}/autoindex.db"
    assert settings.redis_url is None and settings.twelvedata_credits_per_minute == 8


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TWELVEDATA_CREDITS_PER_MINUTE", "lots"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("LOG_LEVEL", "LOUD"),
        ("REFRESH_CRON", "every day"),
    ],
)
def test_bad_value_names_the_variable(data_dir, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    reset_settings_cache()
    with pytest.raises(ConfigurationError) as exc:
        get_settings()
    assert exc.value.variable == variable
    assert variable in str(exc.value)


def test_postgres_url_normalised_and_redacted(data_dir, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:hunter2secret@db:5432/x")
    reset_settings_cache()
    settings = get_settings()
    assert settings.effective_database_url.startswith("postgresql+psycopg://")
    assert "hunter2secret" not in str(settings.redacted())
    assert "hunter2secret" not in redact_url("redis://:hunter2secret@host:6379/0")


def test_unreachable_database_fails_after_bounded_retries(data_dir, monkeypatch):
    from core.db import make_engine, wait_for_database
    from core.errors import DatabaseUnavailableError

    engine = make_engine("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    sleeps: list[float] = []
    with pytest.raises(DatabaseUnavailableError) as exc:
        wait_for_database(engine, timeout_s=3, sleep=sleeps.append)
    assert exc.value.attempts >= 2 and sum(sleeps) <= 3
    assert "pw@" not in str(exc.value)


def test_a_sqlite_file_that_cannot_be_opened_fails_at_once(data_dir, tmp_path):
    """No server to wait for: the first failed open is the answer, with the file named (a retry loop cost 30 s)."""
    from sqlalchemy import create_engine

    from core.db import wait_for_database
    from core.errors import DatabaseUnavailableError

    blocker = tmp_path / "a-file"  # a file where the database's directory should be: nothing can create it
    blocker.write_text("")
    missing = blocker / "autoindex.db"
    sleeps: list[float] = []
    with pytest.raises(DatabaseUnavailableError) as exc:
        wait_for_database(create_engine(f"sqlite:///{missing}"), timeout_s=30, sleep=sleeps.append)
    assert exc.value.attempts == 1 and sleeps == []
    assert "unable to open database file" in str(exc.value) and str(missing) in str(exc.value)


def test_a_sqlite_file_locked_by_another_process_is_waited_for(data_dir, tmp_path):
    """Busy is the one SQLite failure that passes: a file another connection holds locked is tried again."""
    import sqlite3

    from sqlalchemy import create_engine, event

    from core.db import wait_for_database

    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.01})
    event.listen(engine, "connect", lambda conn, _rec: conn.execute("PRAGMA journal_mode=WAL"))  # needs the lock
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        holder.execute("ROLLBACK")  # the other process lets go

    assert wait_for_database(engine, timeout_s=30, sleep=sleep) == 2
    assert len(sleeps) == 1
    holder.close()
    engine.dispose()
