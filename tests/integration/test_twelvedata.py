"""TwelveDataProvider against the local stub server, and RedisRateLimiter against real Redis."""

from __future__ import annotations

import uuid
from datetime import date

import pandas as pd
import pytest

from core.errors import ProviderError
from core.infra.providers import InProcessRateLimiter, RedisRateLimiter, TwelveDataProvider, twelvedata
from tests.stubs.twelvedata_stub import DEFAULT_API_KEY, Fault, start_stub

START, END = date(2024, 1, 1), date(2024, 3, 29)


@pytest.fixture(scope="module")
def stub():
    base_url, controller, stop = start_stub()
    yield base_url, controller
    stop()


@pytest.fixture
def server(stub):
    base_url, controller = stub
    controller.reset()
    yield base_url, controller
    controller.reset()


@pytest.fixture
def slept() -> list[float]:
    return []


def make(base_url: str, slept: list[float], **kwargs) -> TwelveDataProvider:
    kwargs.setdefault("credits_per_minute", 1000)
    return TwelveDataProvider(kwargs.pop("api_key", DEFAULT_API_KEY), base_url=base_url, sleep=slept.append, **kwargs)


def test_batches_symbols_and_parses_values(server, slept):
    base_url, controller = server
    provider = make(base_url, slept, batch_size=3)
    data = provider.fetch(["AAPL", "MSFT", "GLD", "TLT", "^GSPC"], START, END)
    assert [r.symbols for r in controller.requests] == [["AAPL", "MSFT", "GLD"], ["TLT", "^GSPC"]]
    first = controller.requests[0]
    assert first.params["interval"] == "1day" and first.params["order"] == "ASC"
    assert first.params["outputsize"] == "5000" and first.params["start_date"] == "2024-01-01"
    assert first.headers["authorization"] == f"apikey {DEFAULT_API_KEY}"
    assert "apikey" not in first.params  # the key never goes into a URL
    served = controller.closes("AAPL")
    aapl = data.prices[data.prices["symbol"] == "AAPL"]
    assert len(aapl) == 65
    assert aapl["close"].tolist() == [served[d.strftime("%Y-%m-%d")] for d in aapl["date"]]
    assert data.market_caps.empty
    kinds = {a.symbol: a.asset_class for a in data.assets}
    assert kinds["AAPL"] == "equity" and kinds["^GSPC"] == "index" and kinds["TLT"] == "etf"
    assert slept == []


def test_single_symbol_request_and_batch_size_capped_by_credits(server, slept):
    base_url, controller = server
    provider = make(base_url, slept, credits_per_minute=2, batch_size=50)
    assert provider.batch_size == 2
    data = provider.fetch(["tlt"], START, END)
    assert controller.requests[0].symbols == ["TLT"]
    assert controller.requests[0].params["end_date"] == "2024-03-30"  # end + 1: inclusive either way
    assert data.prices["date"].max() == pd.Timestamp(END)


def test_incremental_start_only_returns_new_days(server, slept):
    base_url, controller = server
    data = make(base_url, slept).fetch(["AAPL"], date(2024, 3, 28), date(2024, 12, 31))
    assert controller.requests[0].params["start_date"] == "2024-03-28"
    assert data.prices["date"].min() == pd.Timestamp("2024-03-28")
    # Nothing new yet (a weekend): TwelveData answers "No data is available" -> empty, no error.
    data = make(base_url, slept).fetch(["AAPL", "MSFT"], date(2024, 3, 30), date(2024, 3, 31))
    assert data.prices.empty


def test_long_ranges_are_paged(server, slept, monkeypatch):
    base_url, controller = server
    monkeypatch.setattr(twelvedata, "OUTPUTSIZE", 100)
    data = make(base_url, slept).fetch(["AAPL", "MSFT"], date(2023, 1, 1), date(2023, 12, 31))
    assert data.prices.groupby("symbol").size().to_dict() == {"AAPL": 260, "MSFT": 260}
    assert not data.prices.duplicated(["date", "symbol"]).any()
    # 260 rows at 100 per page: one batched request, then two more pages (both symbols together).
    assert [r.symbols for r in controller.requests] == [["AAPL", "MSFT"]] * 3
    assert controller.closes("MSFT")["2023-01-02"] == data.prices.iloc[260]["close"]


def test_429_then_200_honours_retry_after(server, slept):
    base_url, controller = server
    controller.push(Fault(status=429, retry_after="7", error=(429, "You have run out of API credits")))
    data = make(base_url, slept).fetch(["AAPL"], START, END)
    assert len(data.prices) == 65
    assert slept == [7.0]
    assert len(controller.requests) == 2


def test_429_in_a_200_body_for_one_symbol_retries_only_that_symbol(server, slept):
    base_url, controller = server
    controller.push(Fault(symbol_errors={"MSFT": (429, "credits")}, retry_after="2"))
    data = make(base_url, slept).fetch(["AAPL", "MSFT"], START, END)
    assert set(data.prices["symbol"]) == {"AAPL", "MSFT"}
    assert [r.symbols for r in controller.requests] == [["AAPL", "MSFT"], ["MSFT"]]
    assert slept == [2.0]


def test_500_is_retried_with_exponential_backoff(server, slept):
    base_url, controller = server
    controller.push(Fault(status=500, body="oops"), Fault(status=503, body="busy"))
    data = make(base_url, slept, backoff=0.5).fetch(["AAPL"], START, END)
    assert len(data.prices) == 65
    assert slept == [0.5, 1.0]


def test_timeout_is_retried(server, slept):
    base_url, controller = server
    controller.push(Fault(delay=0.6))
    data = make(base_url, slept, timeout=0.2).fetch(["AAPL"], START, END)
    assert len(data.prices) == 65 and slept == [1.0]


def test_dropped_connection_is_retried(server, slept):
    base_url, controller = server
    controller.push(Fault(drop_connection=True))
    assert len(make(base_url, slept).fetch(["AAPL"], START, END).prices) == 65
    assert len(slept) == 1


def test_gives_up_after_max_retries_naming_the_symbols(server, slept):
    base_url, controller = server
    controller.push(*[Fault(status=502, body="bad gateway")] * 3)
    with pytest.raises(ProviderError) as info:
        make(base_url, slept, max_retries=2).fetch(["AAPL", "MSFT"], START, END)
    error = info.value
    assert error.transient and error.status == 502 and error.symbol == "AAPL,MSFT"
    assert "gave up after 3 attempts" in str(error)
    assert slept == [1.0, 2.0]


def test_truncated_json_is_a_clear_permanent_error(server, slept):
    base_url, controller = server
    controller.push(Fault(truncate=120))
    with pytest.raises(ProviderError) as info:
        make(base_url, slept).fetch(["AAPL"], START, END)
    assert info.value.symbol == "AAPL" and not info.value.transient
    assert "malformed JSON" in str(info.value) and str(info.value).startswith("AAPL: ")
    assert len(controller.requests) == 1 and slept == []


def test_malformed_json_and_missing_fields(server, slept):
    base_url, controller = server
    controller.push(Fault(body="<html>gateway</html>"))
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        make(base_url, slept).fetch(["MSFT"], START, END)
    assert info.value.symbol == "MSFT"
    controller.push(Fault(body={"meta": {}, "status": "ok"}))
    with pytest.raises(ProviderError, match="no 'values' list"):
        make(base_url, slept).fetch(["MSFT"], START, END)
    controller.push(Fault(body={"meta": {}, "values": [{"datetime": "2024-01-02", "close": "n/a"}]}))
    with pytest.raises(ProviderError, match="not a positive number") as info:
        make(base_url, slept).fetch(["MSFT"], START, END)
    assert info.value.symbol == "MSFT"
    controller.push(Fault(body={"AAPL": {"values": [{"datetime": "2024-01-02"}]}, "MSFT": {"values": []}}))
    with pytest.raises(ProviderError, match="lacks 'datetime' or 'close'") as info:
        make(base_url, slept).fetch(["AAPL", "MSFT"], START, END)
    assert info.value.symbol == "AAPL"


def test_error_payload_inside_a_batch_names_that_symbol(server, slept):
    base_url, controller = server
    controller.symbol_errors["MSFT"] = (400, "**symbol** MSFT is not available with your plan")
    with pytest.raises(ProviderError) as info:
        make(base_url, slept).fetch(["AAPL", "MSFT", "GLD"], START, END)
    assert info.value.symbol == "MSFT" and info.value.status == 400 and not info.value.transient
    assert "not available with your plan" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_permanent_http_errors_are_not_retried(server, slept, status):
    base_url, controller = server
    controller.push(Fault(status=status, error=(status, "nope")))
    with pytest.raises(ProviderError) as info:
        make(base_url, slept).fetch(["AAPL"], START, END)
    assert info.value.status == status and info.value.symbol == "AAPL"
    assert len(controller.requests) == 1 and slept == []


def test_wrong_api_key_is_refused_without_leaking_it(server, slept):
    base_url, _ = server
    with pytest.raises(ProviderError) as info:
        make(base_url, slept, api_key="secret-wrong-key").fetch(["AAPL"], START, END)
    assert info.value.status == 401 and "secret-wrong-key" not in str(info.value)


def test_connection_refused_is_transient(slept):
    with pytest.raises(ProviderError) as info:
        make("http://127.0.0.1:9", slept, max_retries=1, timeout=0.5).fetch(["AAPL"], START, END)
    assert info.value.transient and "network error" in str(info.value)


def test_in_process_limiter_waits_for_the_next_minute(server):
    base_url, controller = server
    clock = [600.0]  # start of a minute

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    limiter = InProcessRateLimiter(4, clock=lambda: clock[0])
    provider = TwelveDataProvider(
        DEFAULT_API_KEY, base_url=base_url, limiter=limiter, sleep=sleep, clock=lambda: clock[0]
    )
    provider.fetch(["AAPL", "MSFT", "GLD", "TLT", "SPY", "IEF"], START, END)
    assert [len(r.symbols) for r in controller.requests] == [4, 2]
    assert 60.0 <= clock[0] - 600.0 < 61.0


# --------------------------------------------------------------------------- Redis
@pytest.fixture
def redis_client():
    import redis

    from tests.conftest import REDIS_BASE

    client = redis.Redis.from_url(f"{REDIS_BASE}/15", socket_timeout=2)
    client.ping()  # Redis is part of the test setup (./test.sh provides it): missing is a failure, not a skip
    prefix = f"autoindex-test:{uuid.uuid4().hex}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def test_redis_limiter_is_shared_between_instances(redis_client):
    client, prefix = redis_client
    one = RedisRateLimiter(client, prefix, credits_per_minute=8)
    two = RedisRateLimiter(client, prefix, credits_per_minute=8)
    now = 1_700_000_000.0 - 1_700_000_000.0 % 60 + 10  # 10 s into a minute
    assert one.try_acquire(5, now=now) == 0.0
    assert two.try_acquire(3, now=now + 1) == 0.0
    assert one.used(now=now) == 8
    assert two.try_acquire(1, now=now + 2) == pytest.approx(48.0, abs=0.01)
    assert one.try_acquire(1, now=now + 3) == pytest.approx(47.0, abs=0.01)
    assert one.try_acquire(8, now=now + 45) > 0  # still the same window
    assert two.try_acquire(8, now=now + 51) == 0.0  # next window: a fresh budget
    assert 0 < client.ttl(f"{prefix}:{int(now // 60)}") <= 120


def test_redis_limiter_with_server_clock_and_provider(redis_client, server):
    client, prefix = redis_client
    base_url, controller = server
    limiter = RedisRateLimiter(client, prefix, credits_per_minute=50)
    provider = TwelveDataProvider(DEFAULT_API_KEY, base_url=base_url, limiter=limiter, sleep=lambda s: None)
    provider.fetch(["AAPL", "MSFT", "GLD"], START, END)
    other = RedisRateLimiter(client, prefix, credits_per_minute=50)
    server_now = float(client.time()[0])
    used = other.used(now=server_now)
    assert used == 3 or other.used(now=server_now - 60) + used >= 3  # minute may have rolled over
    with pytest.raises(ValueError):
        other.acquire(51)


def test_redis_limiter_never_overspends_under_concurrency(redis_client):
    import threading

    client, prefix = redis_client
    now = 1_800_000_000.0 - 1_800_000_000.0 % 60
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = RedisRateLimiter(client, prefix, credits_per_minute=25)
        for _ in range(10):
            if limiter.try_acquire(1, now=now) == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 25
