"""A real local HTTP server speaking TwelveData's ``/time_series`` JSON, with scriptable faults.

Usage::

    base_url, controller, stop = start_stub()
    controller.push(Fault(status=429, retry_after="3"), Fault())   # next two requests
    controller.symbol_errors["BAD"] = (404, "symbol not found")     # every request
    ...
    stop()

or the ``twelvedata_stub`` pytest fixture (import it into the test module or a conftest).

Prices are :class:`DemoProvider` closes (seed 7, 2015-01-01 .. :data:`STUB_TODAY`) for the demo
universe, so answers are deterministic. Semantics follow the real API closely enough for
the provider's tests: ``start_date`` inclusive, ``end_date`` exclusive, ``outputsize``
(default 30) keeps the rows nearest the end, ``order`` (default DESC), one symbol -> one
object, several (comma-separated) -> an object keyed by symbol, errors as
``{"code", "message", "status": "error"}``, per symbol inside a batch. The key is accepted
as ``Authorization: apikey KEY`` or ``?apikey=KEY``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from core.infra.providers.demo import DemoProvider

STUB_TODAY = date(2024, 12, 31)
STUB_START = date(2015, 1, 1)
STUB_SEED = 7
DEFAULT_API_KEY = "stub-key"
NO_DATA_MESSAGE = "No data is available on the specified dates. Try setting different start/end dates."

_META_TYPE = {"equity": "Common Stock", "etf": "ETF", "commodity": "ETF", "bond": "ETF", "index": "Index"}


@dataclass
class Fault:
    """How to answer one request. The default answers normally.

    Attributes:
        status: HTTP status to send (the body stays whatever it would be, unless ``body``/``error`` set).
        body: raw body sent verbatim (str) or as JSON (dict/list) instead of the normal one.
        error: ``(code, message)``: answer the whole request with that error payload.
        symbol_errors: ``{symbol: (code, message)}``: error payloads for those symbols only.
        retry_after: value of a ``Retry-After`` header.
        delay: seconds to wait before answering (provoke client timeouts).
        hold: an event the answer waits for (at most 60 s): the test decides when the request ends, so
            "while this request is in flight" lasts exactly as long as the test needs, on any machine.
        truncate: send only the first N bytes of the body (with a matching Content-Length):
            the client receives malformed JSON.
        drop_connection: announce the full Content-Length, send half, close the socket.
    """

    status: int = 200
    body: str | dict | list | None = None
    error: tuple[int, str] | None = None
    symbol_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    retry_after: str | None = None
    delay: float = 0.0
    hold: threading.Event | None = None
    truncate: int | None = None
    drop_connection: bool = False


@dataclass
class RecordedRequest:
    """One request as the stub saw it."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float

    @property
    def symbols(self) -> list[str]:
        return [s for s in self.params.get("symbol", "").split(",") if s]


class StubController:
    """Shared state between the test and the server thread (guarded by a lock)."""

    def __init__(self, api_key: str | None = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.symbol_errors: dict[str, tuple[int, str]] = {}
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        provider = DemoProvider(seed=STUB_SEED, start=STUB_START, end=STUB_TODAY, today=STUB_TODAY)
        data = provider.fetch(None)
        self.assets = {a.symbol: a for a in data.assets}
        self.series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for symbol, group in data.prices.groupby("symbol", sort=True):
            self.series[str(symbol)] = (
                group["date"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
                group["close"].to_numpy(),
            )

    def push(self, *faults: Fault) -> None:
        """Queue faults; each request consumes one (then answers normally when the queue is empty)."""
        with self.lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        """Forget queued faults, persistent symbol errors and recorded requests."""
        with self.lock:
            self.faults.clear()
            self.symbol_errors.clear()
            self.requests.clear()

    def closes(self, symbol: str) -> dict[str, float]:
        """Every close the stub serves for ``symbol`` as ``{"YYYY-MM-DD": close}`` (rounded as served)."""
        dates, closes = self.series[symbol]
        return {d: round(float(c), 5) for d, c in zip(dates, closes)}

    # -- answering ---------------------------------------------------------------------
    def _next_fault(self, request: RecordedRequest) -> Fault:
        with self.lock:
            self.requests.append(request)
            return self.faults.popleft() if self.faults else Fault()

    def _series_payload(self, symbol: str, params: dict[str, str], fault: Fault) -> dict[str, Any]:
        errors = {**self.symbol_errors, **fault.symbol_errors}
        if symbol in errors:
            code, message = errors[symbol]
            return {"code": code, "message": message, "status": "error"}
        if symbol not in self.series:
            return {
                "code": 404,
                "message": f"**symbol** not found: {symbol}. Please specify it correctly.",
                "status": "error",
            }
        dates, closes = self.series[symbol]
        lo = np.searchsorted(dates, params["start_date"], "left") if "start_date" in params else 0
        hi = np.searchsorted(dates, params["end_date"], "left") if "end_date" in params else len(dates)
        size = int(params.get("outputsize", 30))
        lo = max(lo, hi - size)
        if hi <= lo:
            return {"code": 400, "message": NO_DATA_MESSAGE, "status": "error"}
        values = [
            {
                "datetime": d,
                "open": f"{c:.5f}",
                "high": f"{c * 1.01:.5f}",
                "low": f"{c * 0.99:.5f}",
                "close": f"{c:.5f}",
                "volume": "1000000",
            }
            for d, c in zip(dates[lo:hi], closes[lo:hi])
        ]
        if params.get("order", "DESC").upper() == "DESC":
            values.reverse()
        asset = self.assets[symbol]
        meta = {
            "symbol": symbol,
            "interval": "1day",
            "currency": asset.currency,
            "exchange_timezone": "America/New_York",
            "exchange": "NYSE",
            "mic_code": "XNYS",
            "type": _META_TYPE.get(asset.asset_class, "Common Stock"),
        }
        return {"meta": meta, "values": values, "status": "ok"}

    def answer(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[Fault, int, bytes]:
        """Compute ``(fault, http_status, body)`` for one request."""
        fault = self._next_fault(RecordedRequest(path, params, headers, time.time()))
        status = fault.status
        if fault.body is not None:
            body: Any = fault.body
        elif fault.error is not None:
            body = {"code": fault.error[0], "message": fault.error[1], "status": "error"}
        elif path != "/time_series":
            status, body = 404, {"code": 404, "message": f"unknown endpoint {path}", "status": "error"}
        elif self.api_key and self.api_key not in (
            headers.get("authorization", "").removeprefix("apikey ").strip(),
            params.get("apikey"),
        ):
            status = 401 if status == 200 else status
            body = {"code": 401, "message": "**apikey** parameter is incorrect or not specified.", "status": "error"}
        else:
            symbols = [s for s in params.get("symbol", "").split(",") if s]
            if not symbols:
                body = {"code": 400, "message": "**symbol** parameter is missing.", "status": "error"}
            elif len(symbols) == 1:
                body = self._series_payload(symbols[0], params, fault)
            else:
                body = {s: self._series_payload(s, params, fault) for s in symbols}
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return fault, status, raw


def _handler_for(controller: StubController) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            url = urlparse(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault, status, body = controller.answer(url.path, params, headers)
            if fault.delay:
                time.sleep(fault.delay)
            if fault.hold is not None:
                fault.hold.wait(60)
            sent = body[: fault.truncate] if fault.truncate is not None else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body if fault.drop_connection else sent)))
            if fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            self.end_headers()
            try:
                if fault.drop_connection:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.wfile.write(sent)
            except OSError:  # the client gave up (timeout): nothing to do
                self.close_connection = True

    return Handler


def start_stub(api_key: str | None = DEFAULT_API_KEY) -> tuple[str, StubController, Callable[[], None]]:
    """Start the stub on 127.0.0.1 (free port) in a daemon thread.

    Returns:
        ``(base_url, controller, stop)``; call ``stop()`` to shut the server down.
    """
    controller = StubController(api_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(controller))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="twelvedata-stub", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    host, port = server.server_address[:2]
    return f"http://{host}:{port}", controller, stop


try:  # the fixture is optional so the module also works outside pytest
    import pytest

    @pytest.fixture(scope="module")
    def twelvedata_stub() -> Iterator[tuple[str, StubController]]:
        """Module-scoped ``(base_url, controller)``; faults and records are reset before each use."""
        base_url, controller, stop = start_stub()
        try:
            yield base_url, controller
        finally:
            stop()
except ImportError:  # pragma: no cover
    pass
