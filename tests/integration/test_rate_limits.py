"""Rate limits per user (issue 16, item 5): the limiter over memory and over a real Redis, the message saying when
to retry, limits shared through Redis by separate limiters (replicas), a Redis that does not answer, and the hooks
in the services (logins per user and per address, report requests, jobs) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from limits.storage import MemoryStorage, RedisStorage

from core.infra import ratelimit
from core.infra.ratelimit import KEY_PREFIX, RateLimited, RateLimiter
from tests.conftest import TEST_REDIS_URL

PASSWORD = "correct horse battery"


def _flush(url: str = TEST_REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{KEY_PREFIX}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request) -> Iterator:  # type: ignore[type-arg]
    """A factory of limiters over one backend (two from it share the count only on Redis)."""
    memory = MemoryStorage()
    if request.param == "redis":
        _flush()
        yield lambda rules: RateLimiter(RedisStorage(TEST_REDIS_URL, key_prefix=KEY_PREFIX), rules)
        _flush()
    else:
        yield lambda rules: RateLimiter(memory, rules)


def who() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_a_limit_refuses_the_next_action_and_says_when_to_retry(make_limiter):
    limiter = make_limiter({"preview": "3/minute"})
    name = who()
    for _ in range(3):
        limiter.hit("preview", name)
    assert limiter.remaining("preview", name) == 0
    with pytest.raises(RateLimited) as refused:
        limiter.hit("preview", name)
    error = refused.value
    assert error.action == "preview" and error.limit == "3 per 1 minute"
    assert 55 <= error.retry_after_s <= 60  # the oldest of the three leaves the window in about a minute
    assert str(error).startswith("too many previews (at most 3 per 1 minute); try again in ")
    assert error.transient
    limiter.hit("preview", who())  # another user has a count of their own
    limiter.hit("report", name)  # an action without a limit is never refused


def test_the_window_moves(make_limiter):
    limiter = make_limiter({"job": "2/second"})
    name = who()
    limiter.hit("job", name)
    limiter.hit("job", name)
    with pytest.raises(RateLimited) as refused:
        limiter.hit("job", name)
    assert refused.value.retry_after_s == 1
    time.sleep(1.1)
    limiter.hit("job", name)


def test_every_limit_of_a_rule_holds_and_a_refusal_counts_nothing(make_limiter):
    limiter = make_limiter({"sweep": "2/second;3/minute"})
    name = who()
    limiter.hit("sweep", name)
    limiter.hit("sweep", name)
    with pytest.raises(RateLimited, match="2 per 1 second"):
        limiter.hit("sweep", name)
    time.sleep(1.1)
    limiter.hit("sweep", name)  # the per-second limit moved on; the third of the minute
    with pytest.raises(RateLimited, match="3 per 1 minute") as refused:
        limiter.hit("sweep", name)
    assert refused.value.retry_after_s > 50


def test_replicas_share_one_count_through_redis_and_not_through_memory():
    _flush()
    try:
        replicas = [
            RateLimiter(RedisStorage(TEST_REDIS_URL, key_prefix=KEY_PREFIX), {"report": "2/minute"}) for _ in range(2)
        ]  # two storages, two connection pools: two app processes
        name = who()
        replicas[0].hit("report", name)
        replicas[1].hit("report", name)
        with pytest.raises(RateLimited):
            replicas[0].hit("report", name)
        with pytest.raises(RateLimited):
            replicas[1].hit("report", name)
    finally:
        _flush()
    separate = [RateLimiter(MemoryStorage(), {"report": "2/minute"}) for _ in range(2)]
    for limiter in separate:  # without Redis each process counts on its own
        limiter.hit("report", name)
        limiter.hit("report", name)


# --------------------------------------------------------------------------- settings and the process-wide limiter
@pytest.fixture
def limits_env(data_dir, monkeypatch):  # type: ignore[no-untyped-def]
    from core.config import reset_settings_cache

    def configure(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings_cache()

    yield configure
    reset_settings_cache()


def test_the_process_limiter_follows_the_settings(limits_env):
    limits_env(RATE_LIMIT_PREVIEW="1/minute", RATE_LIMIT_JOB="off")
    limiter = ratelimit.limiter()
    assert limiter.backend == "memory" and ratelimit.limiter() is limiter
    name = who()
    ratelimit.hit("preview", name)
    with pytest.raises(RateLimited):
        ratelimit.hit("preview", name.upper())  # user names are counted whatever their case
    for _ in range(100):
        ratelimit.hit("job", name)  # "off"
    ratelimit.hit("preview", None)  # the system is never limited
    from core.services.access import Principal

    ratelimit.hit("preview", Principal("cli", True, is_system=True))
    limits_env(RATE_LIMIT_PREVIEW="5/minute")
    assert ratelimit.limiter() is not limiter  # reloaded settings, a new limiter


def test_redis_when_configured_and_allowed_when_redis_is_down(limits_env, caplog):
    limits_env(REDIS_URL=TEST_REDIS_URL, RATE_LIMIT_REPORT="1/minute")
    _flush()
    try:
        assert ratelimit.limiter().backend == "redis"
        name = who()
        ratelimit.hit("report", name)
        with pytest.raises(RateLimited):
            ratelimit.hit("report", name)
    finally:
        _flush()
    limits_env(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    started = time.monotonic()
    ratelimit.hit("report", who())
    ratelimit.hit("report", who())
    assert time.monotonic() - started < 10
    assert "could not count report" in caplog.text


# --------------------------------------------------------------------------- the hooks in the services
def test_login_attempts_are_limited_per_user_before_the_lockout_counts(db, limits_env):
    from core.errors import AuthenticationError
    from core.services import users

    limits_env(RATE_LIMIT_LOGIN_USER="3/minute")
    users.create_user("alice", "Alice", PASSWORD)
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            users.authenticate("alice", "not the password!")
    assert users.authenticate("ALICE", PASSWORD).username == "alice"
    with pytest.raises(RateLimited, match="login attempts for this user"):
        users.authenticate("alice", PASSWORD)
    assert users.get_user("alice").failed_attempts == 0  # a refused attempt reaches neither bcrypt nor the count


def test_login_attempts_are_limited_per_client_address(db, limits_env):
    from core.errors import AuthenticationError
    from core.services import users

    limits_env(RATE_LIMIT_LOGIN_ADDRESS="2/minute")
    for name in ("spray1", "spray2"):
        with pytest.raises(AuthenticationError):
            users.authenticate(name, "password spraying", client_address="203.0.113.7")
    with pytest.raises(RateLimited, match="from this address"):
        users.authenticate("spray3", "password spraying", client_address="203.0.113.7")
    with pytest.raises(AuthenticationError):  # another address is not concerned
        users.authenticate("spray3", "password spraying", client_address="198.51.100.1")


def test_report_requests_are_limited_per_user_in_the_service(db, limits_env):
    from core.errors import ValidationFailed
    from core.services import reports, users

    limits_env(RATE_LIMIT_REPORT="2/minute")
    users.create_user("alice", "Alice", PASSWORD)
    users.create_user("bob", "Bob", PASSWORD)
    for _ in range(2):
        with pytest.raises(ValidationFailed):  # counted before the (cheap) validation, like any request
            reports.request_report("nonsense", "1y", "pdf", owner="alice")
    with pytest.raises(RateLimited, match="too many report requests"):
        reports.request_report("performance", "1y", "pdf", owner="alice")
    with pytest.raises(ValidationFailed):
        reports.request_report("nonsense", "1y", "pdf", owner="bob")
    with pytest.raises(ValidationFailed):
        reports.request_report("nonsense", "1y", "pdf", owner=None)  # the system: not limited
    with pytest.raises(ValidationFailed):
        reports.request_report("nonsense", "1y", "pdf", owner=None)
    with pytest.raises(ValidationFailed):
        reports.request_report("nonsense", "1y", "pdf", owner=None)


def test_jobs_queued_are_limited_per_user_in_the_service(db, limits_env):
    from core.errors import ValidationFailed
    from core.services import runs, users

    limits_env(RATE_LIMIT_JOB="1/minute", EMBEDDED_WORKER="false")
    users.create_user("boss", "Boss", PASSWORD, role="admin")
    run_id = runs.enqueue("refresh", {"provider": "demo"}, user="boss")
    assert run_id
    with pytest.raises(RateLimited, match="too many queued jobs"):
        runs.enqueue("refresh", {"provider": "demo"}, user="boss")
    with pytest.raises(ValidationFailed):  # a bad request is refused before it counts
        runs.enqueue("no-such-kind", {}, user="boss")
    assert runs.enqueue("refresh", {"provider": "demo"}, user=None)  # the system is not limited


def test_sweeps_are_limited_per_user_in_the_service(db, limits_env):
    from core.errors import AutoIndexError
    from core.services import sweeps, users

    limits_env(RATE_LIMIT_SWEEP="1/minute")
    users.create_user("alice", "Alice", PASSWORD)
    grid = {"axes": [{"name": "top_n", "values": [3, 5]}]}
    with pytest.raises(AutoIndexError) as first:  # counted, then refused for want of a config and prices
        sweeps.start("alice", grid)
    assert not isinstance(first.value, RateLimited)
    with pytest.raises(RateLimited, match="too many sweeps"):
        sweeps.start("alice", grid)
