"""TwelveData daily closes over HTTP, within a per-minute credit budget shared by every process.

Wire format (``GET {base_url}/time_series``, ``interval=1day``, ``order=ASC``):

* one symbol: ``{"meta": {...}, "values": [{"datetime": "2024-01-02", "close": "123.4", ...}], "status": "ok"}``
* several (``symbol=AAPL,MSFT``): ``{"AAPL": {...one-symbol object...}, "MSFT": {...}}``
* errors: ``{"code": 400|401|404|429|500, "message": "...", "status": "error"}``, as the HTTP
  status and/or as a 200 body, for the whole request or for one symbol inside a batch.

Every symbol costs one credit. Before each request the provider takes credits from a
:class:`RateLimiter`; :class:`RedisRateLimiter` shares the budget between every app
replica and Huey consumer, :class:`InProcessRateLimiter` is the embedded default.

Failure policy: 429, 5xx, timeouts and connection errors are retried with exponential
backoff (``backoff * 2**attempt`` seconds, or the server's ``Retry-After``), only for
the symbols that failed; anything else (400/401/404, malformed or truncated JSON,
missing fields, non-numeric or non-positive closes) raises :class:`ProviderError`
naming the symbol at once. A fetch returns everything or raises -- never a silent
partial result. "No data is available on the specified dates" (what an incremental
refresh gets on a weekend) is not an error: that symbol simply has no new rows.
A symbol TwelveData does not know (code 404, or 400 "symbol ... not found/invalid", for
that symbol) is skipped and named in ``ProviderData.skipped`` with TwelveData's message,
so one unknown ticker never stops the others.

Market caps: ``/time_series`` carries none (only OHLCV), so this provider returns no
caps. TwelveData's ``/statistics`` endpoint reports today's market cap and shares
outstanding, but only as of now: multiplying historical closes by today's share count
would put future information into past weights, so it is not used; import a
``market_cap`` or ``shares_outstanding`` file for history (see
:mod:`core.infra.providers.files`). Without caps the market-cap sleeve is left out
and the engine says so.

The API key travels in the ``Authorization: apikey ...`` header, never in a URL, so it
cannot leak into exception messages or logs.
"""

from __future__ import annotations

import abc
import email.utils
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import requests

from core.errors import ProviderError
from core.infra.providers.base import (
    MarketDataProvider,
    ProgressCallback,
    ProviderData,
    empty_market_caps,
    empty_prices,
    normalise_long_frame,
    normalise_symbols,
    report,
)
from core.schemas.asset import AssetClass, AssetInfo

#: Most rows TwelveData returns per symbol and request; longer ranges are paged.
OUTPUTSIZE = 5000
#: Ceiling on a server-requested Retry-After, seconds.
MAX_RETRY_AFTER = 120.0
_NO_DATA_MARKER = "no data is available"


class _Unknown:
    """A per-symbol answer meaning "TwelveData does not know this symbol" (skipped, with its message)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _unknown_symbol(code: int, message: str) -> bool:
    """TwelveData's answer for a ticker it does not list: 404, or 400 saying the symbol is not found/invalid."""
    text = message.lower()
    return code == 404 or (code == 400 and "symbol" in text and ("not found" in text or "invalid" in text))


_TYPE_TO_CLASS: dict[str, AssetClass] = {
    "common stock": "equity",
    "preferred stock": "equity",
    "depositary receipt": "equity",
    "etf": "etf",
    "index": "index",
    "bond": "bond",
    "commodity": "commodity",
}


# --------------------------------------------------------------------------- rate limiting
class RateLimiter(abc.ABC):
    """A per-minute credit budget (fixed one-minute windows aligned on the wall clock,
    which is how TwelveData resets its counters)."""

    credits_per_minute: int

    @abc.abstractmethod
    def try_acquire(self, credits: int, *, now: float | None = None) -> float:
        """Take ``credits`` from the current window if they fit.

        Args:
            credits: credits wanted (1 per symbol), at most ``credits_per_minute``.
            now: Unix time in seconds (tests pass it); default the limiter's clock.

        Returns:
            ``0.0`` when the credits were taken, otherwise the seconds to wait until
            the next window (nothing is taken).
        """

    def acquire(self, credits: int, *, sleep: Callable[[float], None] = time.sleep, max_wait: float = 600.0) -> float:
        """Block (through ``sleep``) until ``credits`` are taken; return the total seconds waited.

        Raises:
            ValueError: ``credits`` exceeds the per-minute budget (it could never fit).
            ProviderError: (transient) still no room after ``max_wait`` seconds.
        """
        if credits > self.credits_per_minute:
            raise ValueError(f"{credits} credits never fit a budget of {self.credits_per_minute}/minute")
        waited = 0.0
        while True:
            wait = self.try_acquire(credits)
            if wait <= 0:
                return waited
            if waited >= max_wait:
                raise ProviderError(f"rate limit: no credits free after {waited:.0f} s", transient=True)
            # A few ms past the boundary so clock granularity never lands us in the old window.
            wait = wait + 0.005
            sleep(wait)
            waited += wait


class InProcessRateLimiter(RateLimiter):
    """Credit budget held in memory: correct for one process (threads share it).

    Args:
        credits_per_minute: credits available in each wall-clock minute.
        clock: returns Unix seconds; tests inject a fake one.
    """

    def __init__(self, credits_per_minute: int, clock: Callable[[], float] = time.time) -> None:
        if credits_per_minute < 1:
            raise ValueError("credits_per_minute must be at least 1")
        self.credits_per_minute = int(credits_per_minute)
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._used = 0

    def try_acquire(self, credits: int, *, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        window = int(now // 60)
        with self._lock:
            if window != self._window:
                self._window, self._used = window, 0
            if self._used + credits > self.credits_per_minute:
                return (window + 1) * 60 - now
            self._used += credits
            return 0.0


# KEYS[1] key prefix; ARGV limit, credits, now (Unix s; negative = use the Redis server clock).
_REDIS_ACQUIRE = """
local limit = tonumber(ARGV[1])
local credits = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window = math.floor(now / 60)
local key = KEYS[1] .. ':' .. window
local used = tonumber(redis.call('GET', key) or '0')
if used + credits > limit then
  return math.ceil(((window + 1) * 60 - now) * 1000)
end
redis.call('INCRBY', key, credits)
redis.call('EXPIRE', key, 120)
return 0
"""


class RedisRateLimiter(RateLimiter):
    """Credit budget in Redis, shared by every process using the same ``key``.

    The check-and-take runs as one Lua script, so concurrent callers can never
    overspend. The window key is ``{key}:{unix_minute}`` and expires after two
    minutes. Time comes from the Redis server (one clock for every host) unless
    ``clock`` is given.

    Args:
        redis_client: a ``redis.Redis`` instance.
        key: key prefix, e.g. ``"autoindex:ratelimit:twelvedata"``.
        credits_per_minute: credits available in each minute.
        clock: optional Unix-seconds clock (tests); default the Redis server's ``TIME``.
    """

    def __init__(
        self, redis_client: Any, key: str, credits_per_minute: int, clock: Callable[[], float] | None = None
    ) -> None:
        if credits_per_minute < 1:
            raise ValueError("credits_per_minute must be at least 1")
        self.redis = redis_client
        self.key = key
        self.credits_per_minute = int(credits_per_minute)
        self._clock = clock
        self._script = redis_client.register_script(_REDIS_ACQUIRE)

    def try_acquire(self, credits: int, *, now: float | None = None) -> float:
        if now is None and self._clock is not None:
            now = self._clock()
        millis = self._script(
            keys=[self.key], args=[self.credits_per_minute, int(credits), -1 if now is None else repr(float(now))]
        )
        return int(millis) / 1000.0

    def used(self, *, now: float) -> int:
        """Credits already taken in the window containing ``now`` (diagnostics)."""
        value = self.redis.get(f"{self.key}:{int(now // 60)}")
        return int(value or 0)


# --------------------------------------------------------------------------- parsing
def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse an HTTP ``Retry-After`` (seconds or HTTP date) into seconds, capped; None if absent/bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_time_series(symbol: str, payload: Any) -> pd.DataFrame:
    """Turn one symbol's ``time_series`` object into a frame ``[date, symbol, close]``.

    Pure. Raises :class:`ProviderError` (permanent, naming ``symbol``) when ``values`` is
    missing, an entry lacks ``datetime``/``close``, a date or close does not parse, a close
    is not strictly positive, or a date repeats.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("values"), list):
        raise ProviderError("response has no 'values' list", symbol)
    values = payload["values"]
    if not values:
        return empty_prices()
    if not all(isinstance(v, dict) and "datetime" in v and "close" in v for v in values):
        raise ProviderError("a value lacks 'datetime' or 'close'", symbol)
    raw = pd.DataFrame.from_records(values, columns=["datetime", "close"])
    dates = pd.to_datetime(raw["datetime"].astype(str), format="ISO8601", errors="coerce")
    closes = pd.to_numeric(raw["close"], errors="coerce")
    bad_date = dates.isna().to_numpy()
    if bad_date.any():
        raise ProviderError(f"unparsable datetime {raw['datetime'][bad_date].iloc[0]!r}", symbol)
    bad_close = (closes.isna() | ~np.isfinite(closes) | (closes <= 0)).to_numpy()
    if bad_close.any():
        raise ProviderError(f"close is not a positive number: {raw['close'][bad_close].iloc[0]!r}", symbol)
    frame = pd.DataFrame({"date": dates.dt.normalize(), "symbol": symbol, "close": closes.astype(float)})
    dup = frame["date"].duplicated().to_numpy()
    if dup.any():
        raise ProviderError(f"duplicate date {frame['date'][dup].iloc[0].date()}", symbol)
    return frame


def _asset_from_meta(symbol: str, meta: Any, known: AssetInfo | None) -> AssetInfo:
    if known is not None:
        return known.model_copy(update={"source": TwelveDataProvider.name})
    meta = meta if isinstance(meta, dict) else {}
    currency = str(meta.get("currency") or "USD").upper()
    asset_class: AssetClass = _TYPE_TO_CLASS.get(str(meta.get("type", "")).lower(), "other")
    return AssetInfo(
        symbol=symbol,
        name=symbol,
        asset_class=asset_class,
        currency=currency if len(currency) == 3 and currency.isalpha() else "USD",
        is_benchmark=asset_class == "index",
        source=TwelveDataProvider.name,
    )


# --------------------------------------------------------------------------- provider
class TwelveDataProvider(MarketDataProvider):
    """Daily closes from TwelveData's ``/time_series`` endpoint (no market caps).

    Args:
        api_key: TwelveData API key (sent as a header; never logged).
        base_url: API root; tests point it at tests/stubs/twelvedata_stub.py.
        credits_per_minute: budget for the default in-process limiter (free plan: 8).
        limiter: a shared :class:`RateLimiter` (e.g. :class:`RedisRateLimiter`); overrides the above.
        session: a ``requests.Session`` (tests may inject one); default a new session.
        max_retries: retries after the first attempt for transient failures.
        backoff: base delay in seconds; attempt ``n`` waits ``backoff * 2**n`` unless Retry-After says otherwise.
        timeout: per-request timeout in seconds (connect and read).
        sleep: how to wait (tests inject a recorder).
        batch_size: symbols per request, at most the limiter's budget.
        assets: known instruments (names, classes, sectors); also what :meth:`universe` returns.
        clock: Unix-seconds clock used for HTTP-date Retry-After and 429 waits.
    """

    name = "twelvedata"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.twelvedata.com",
        credits_per_minute: int = 8,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: float = 1.0,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
        *,
        batch_size: int = 8,
        assets: list[AssetInfo] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise ProviderError("TwelveData API key is missing")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or InProcessRateLimiter(credits_per_minute, clock=clock)
        self.session = session or requests.Session()
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.timeout = timeout
        self.sleep = sleep
        self.batch_size = max(1, min(int(batch_size), self.limiter.credits_per_minute))
        self._assets = {a.symbol: a for a in (assets or [])}
        self._clock = clock

    def __repr__(self) -> str:
        return f"<TwelveDataProvider base_url={self.base_url!r}>"  # never the key

    def universe(self) -> list[AssetInfo]:
        """Return the configured assets (TwelveData's own catalogue is not listed), sorted by symbol."""
        return sorted(self._assets.values(), key=lambda a: a.symbol)

    def fetch(
        self,
        symbols: list[str] | None,
        start: date | None = None,
        end: date | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> ProviderData:
        """Fetch daily closes for ``symbols`` over ``[start, end]`` (inclusive), batching requests.

        ``symbols=None`` means the configured ``assets``. ``end`` is sent one day later
        and the result filtered, so the inclusive contract holds whether the API treats
        ``end_date`` as inclusive or exclusive. Raises :class:`ProviderError` as
        described in the module docstring.
        """
        wanted = normalise_symbols(symbols)
        if wanted is None:
            wanted = list(self._assets)
            if not wanted:
                raise ProviderError("TwelveData needs explicit symbols (no assets configured)")
        if start and end and start > end:
            return ProviderData(
                empty_prices(),
                empty_market_caps(),
                [_asset_from_meta(s, None, self._assets.get(s)) for s in sorted(wanted)],
                self.name,
            )
        batches = [wanted[i : i + self.batch_size] for i in range(0, len(wanted), self.batch_size)]
        frames: list[pd.DataFrame] = []
        metas: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for n, batch in enumerate(batches):
            report(progress, n / len(batches), f"TwelveData: fetching {', '.join(batch)}")
            for symbol, (frame, meta) in self._fetch_batch(batch, start, end, skipped).items():
                frames.append(frame)
                metas[symbol] = meta
        report(progress, 1.0, f"TwelveData: {len(wanted)} symbol(s) fetched")
        prices = (
            pd.concat([f for f in frames if len(f)], ignore_index=True)
            if any(len(f) for f in frames)
            else empty_prices()
        )
        if len(prices):
            if start is not None:
                prices = prices[prices["date"] >= pd.Timestamp(start)]
            if end is not None:
                prices = prices[prices["date"] <= pd.Timestamp(end)]
        prices = normalise_long_frame(prices, "close")
        assets = [_asset_from_meta(s, metas.get(s), self._assets.get(s)) for s in sorted(wanted) if s not in skipped]
        generic = frozenset(s for s in wanted if s not in self._assets and s not in skipped)
        return ProviderData(prices, empty_market_caps(), assets, self.name, skipped=skipped, generic=generic)

    # -- one batch, paging past OUTPUTSIZE rows ----------------------------------------
    def _fetch_batch(
        self, batch: list[str], start: date | None, end: date | None, skipped: dict[str, str]
    ) -> dict[str, tuple[pd.DataFrame, Any]]:
        """Fetch one batch; a symbol that fills a whole page is asked again for the earlier part.
        Symbols TwelveData does not know are added to ``skipped`` (symbol -> its message) and left out.

        TwelveData returns the *latest* ``outputsize`` rows of the range, so paging walks
        backwards: the next request ends (exclusively) at the first date received, and rows
        on or after that date are dropped whichever way the API treats ``end_date``.
        """
        frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
        metas: dict[str, Any] = {}
        first_end = end + timedelta(days=1) if end is not None else None
        queue: list[tuple[list[str], date | None]] = [(batch, first_end)]
        while queue:
            group, end_exclusive = queue.pop(0)
            pages: dict[date, list[str]] = defaultdict(list)
            for symbol, payload in self._request(group, start, end_exclusive).items():
                if payload is None:  # "no data is available": nothing (more) in range
                    continue
                if isinstance(payload, _Unknown):
                    skipped[symbol] = payload.reason
                    continue
                frame = parse_time_series(symbol, payload)
                full_page = len(frame) >= OUTPUTSIZE
                if end_exclusive is not None and end_exclusive != first_end:
                    frame = frame[frame["date"] < pd.Timestamp(end_exclusive)]
                frames[symbol].append(frame)
                metas.setdefault(symbol, payload.get("meta"))
                if full_page and len(frame):
                    earliest = frame["date"].min().date()
                    if start is None or earliest > start:
                        pages[earliest].append(symbol)
            queue.extend((symbols, page_end) for page_end, symbols in pages.items())
        return {
            s: (pd.concat(frames[s], ignore_index=True) if frames[s] else empty_prices(), metas.get(s))
            for s in batch
            if s not in skipped
        }

    # -- one request with retries -------------------------------------------------------
    def _request(
        self, symbols: list[str], start: date | None, end: date | None
    ) -> dict[str, dict[str, Any] | _Unknown | None]:
        """Return ``{symbol: payload}`` (``None`` = no data in range, :class:`_Unknown` = not a TwelveData
        symbol); retry transient failures.

        ``end`` is sent as ``end_date`` verbatim (callers pass the exclusive bound).
        """
        pending = list(symbols)
        done: dict[str, dict[str, Any] | _Unknown | None] = {}
        for attempt in range(self.max_retries + 1):
            failure = self._attempt(pending, start, end, done)
            if failure is None:
                return done
            pending = [s for s in pending if s not in done]
            if attempt == self.max_retries:
                raise ProviderError(
                    f"{failure.message} (gave up after {attempt + 1} attempts)",
                    ",".join(pending),
                    transient=True,
                    status=failure.status,
                    retry_after=failure.retry_after,
                )
            delay = failure.retry_after
            if delay is None:
                delay = self.backoff * 2**attempt
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        pending: list[str],
        start: date | None,
        end: date | None,
        done: dict[str, dict[str, Any] | _Unknown | None],
    ) -> ProviderError | None:
        """One HTTP round trip. Fills ``done``; returns a transient failure to retry, or None.

        Permanent failures raise straight away.
        """
        label = ",".join(pending)
        params: dict[str, Any] = {
            "symbol": label,
            "interval": "1day",
            "outputsize": OUTPUTSIZE,
            "order": "ASC",
            "format": "JSON",
        }
        if start is not None:
            params["start_date"] = start.isoformat()
        if end is not None:
            params["end_date"] = end.isoformat()
        self.limiter.acquire(len(pending), sleep=self.sleep)
        try:
            response = self.session.get(
                f"{self.base_url}/time_series",
                params=params,
                headers={"Authorization": f"apikey {self._api_key}"},
                timeout=self.timeout,
            )
            status, text = response.status_code, response.text
        except requests.Timeout:
            return ProviderError(f"timed out after {self.timeout} s", label, transient=True)
        except requests.RequestException as exc:  # connection refused/reset, truncated transfer
            return ProviderError(f"network error ({type(exc).__name__})", label, transient=True)

        retry_after = _retry_after_seconds(response.headers.get("Retry-After"), self._clock())
        if status == 429 or status >= 500:
            return ProviderError(
                f"HTTP {status}{self._scrub(self._message_of(text))}",
                label,
                transient=True,
                status=status,
                retry_after=self._wait_for(status, retry_after),
            )
        if status >= 400:
            raise ProviderError(f"HTTP {status}{self._scrub(self._message_of(text))}", label, status=status)
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(
                f"malformed JSON in the response ({len(text)} bytes, truncated?)", label, status=status
            ) from None
        if not isinstance(body, dict):
            raise ProviderError("response is not a JSON object", label, status=status)

        if self._is_error(body) and (len(pending) == 1 or not any(s in body for s in pending)):
            per_symbol = {s: body for s in pending}
        elif len(pending) == 1:
            per_symbol = {pending[0]: body}
        else:
            upper = {str(k).upper(): v for k, v in body.items()}
            per_symbol = {}
            for s in pending:
                if s not in upper:
                    raise ProviderError("missing from the batch response", s, status=status)
                per_symbol[s] = upper[s]

        transient: list[str] = []
        codes: list[int] = []
        for symbol, payload in per_symbol.items():
            if not isinstance(payload, dict):
                raise ProviderError("response entry is not a JSON object", symbol)
            if not self._is_error(payload):
                done[symbol] = payload
                continue
            code = self._code(payload)
            message = self._scrub(str(payload.get("message", "")).strip()) or "error without message"
            if _NO_DATA_MARKER in message.lower():
                done[symbol] = None
            elif _unknown_symbol(code, message):
                done[symbol] = _Unknown(f"TwelveData error {code}: {message[:200]}")
            elif code == 429 or code >= 500:
                transient.append(symbol)
                codes.append(code)
            else:
                raise ProviderError(f"TwelveData error {code}: {message[:200]}", symbol, status=code)
        if not transient:
            return None
        code = max(codes)
        return ProviderError(
            f"TwelveData error {code}",
            ",".join(transient),
            transient=True,
            status=code,
            retry_after=self._wait_for(code, retry_after),
        )

    def _scrub(self, text: str) -> str:
        """A server message with the API key masked: some servers echo the key they refused, and these
        messages end up in errors shown on pages, stored on task runs and printed by the CLI."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def _wait_for(self, status: int, retry_after: float | None) -> float | None:
        """Retry-After if sent; for a bare 429, until the next minute (when credits reset)."""
        if retry_after is not None:
            return retry_after
        return None if status != 429 else min(60.0 - self._clock() % 60 + 0.5, MAX_RETRY_AFTER)

    @staticmethod
    def _is_error(payload: dict[str, Any]) -> bool:
        return payload.get("status") == "error" or (
            "code" in payload and "values" not in payload and "message" in payload
        )

    @staticmethod
    def _code(payload: dict[str, Any]) -> int:
        try:
            return int(payload.get("code", 0))
        except (TypeError, ValueError):
            return 0

    @staticmethod
    def _message_of(text: str) -> str:
        try:
            message = json.loads(text).get("message")
        except Exception:  # noqa: BLE001 - a message is a nicety, never a second failure
            return ""
        return f": {str(message)[:200]}" if message else ""
