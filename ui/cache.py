"""The one cache helper: the only place in the app that touches ``st.cache_data`` / ``st.cache_resource``.

One key: every cached read takes a ``token`` argument, :func:`token`, which is the database URL and the
**data version** (:func:`core.services.app_settings.data_version`). Every write that changes what a page shows
(prices, an import, a compute, an asset added or (de)activated, a config version saved or activated) bumps
the data version in its own transaction, so the next run computes a new key and reads fresh data; nothing is
ever stale and nothing needs explicit clearing (old entries leave by TTL and ``max_entries``).

The market inputs of the Strategy lab (every asset's prices and caps) are the exception: one object per data
version per process (:func:`market_data`), shared by every session rather than copied into each, and loaded
ahead by a background thread once a page has been drawn at a new data version (:func:`prewarm_market_inputs`).
The Dashboard Risk section's view is the same kind of shared value (:func:`risk_view`, computed ahead with the
section's default inputs by :func:`prewarm_risk_view`).

Raw data is cached with ``st.cache_data`` (each session gets its own copy); filtering (date range, log scale,
selected asset) happens outside the cache in the pages. Built Plotly figures are cached with
``st.cache_resource`` by :func:`figure` (one object shared by every session: :func:`ui.plotly_element.show`
only reads it), so a rerun that draws the same chart again skips building it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.config import get_settings
from core.errors import one_line
from core.schemas.strategy import StrategyConfig
from core.schemas.strategy_version import ConfigVersionOut
from core.services import dashboard

if TYPE_CHECKING:
    from core.quant.engine import CleanedPrices
    from core.quant.stress import Shock
    from core.services.market import MarketInputs
    from core.services.risk_views import MonteCarloParams, RiskView

log = logging.getLogger(__name__)

TTL_SECONDS = 3600
MAX_ENTRIES = 64
#: Built figures kept (per process, every session together).
MAX_FIGURES = 256


def token() -> str:
    """The current cache key: the database URL and its data version (one primary-key read)."""
    from core.db import unit_of_work
    from core.services import app_settings

    with unit_of_work() as session:
        version = app_settings.data_version(session)
    return f"{get_settings().effective_database_url}|{version}"


@st.cache_resource(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_FIGURES)
def _figure(token: str, key: tuple[Hashable, ...], _build: Callable[[], object]) -> object:
    return _build()


def figure(token: str, key: tuple[Hashable, ...], build: Callable[[], object]) -> object:
    """The figure ``build()`` returns, built once per data version and ``key`` (every argument the figure
    depends on: config id, chart name, window start, log scale, theme). The returned object is shared: draw
    it, never change it."""
    return _figure(token, key, build)


def clear() -> None:
    """Forget every cached read and figure of this process (tests; admins clear nothing: keys follow data)."""
    st.cache_data.clear()
    _figure.clear()
    _risk.clear()
    _market.clear()
    _backtests.clear()
    _lab_plans.clear()
    _prewarm.clear()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def versions(token: str) -> list[ConfigVersionOut]:
    from core.services import strategies

    return strategies.list_versions()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def demo_data_shown(token: str) -> bool:
    return dashboard.demo_data_shown()


@st.cache_data(show_spinner="Loading the dashboard…", ttl=TTL_SECONDS, max_entries=16)
def dashboard_data(token: str, config_id: int) -> dashboard.DashboardData:
    return dashboard.dashboard_data(config_id)


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def freshness(token: str) -> pd.DataFrame:
    return dashboard.freshness()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def stored_index(token: str, config_id: int) -> pd.Series:
    from core.services import compute

    return compute.stored_index(config_id)


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def stored_metrics(token: str, config_id: int) -> dict[str, tuple[float | None, str | None]]:
    from core.services import compute

    return compute.stored_metrics(config_id)


class MarketData:
    """One data version's market inputs and their cleaned prices, shared by every session of the process.

    Loaded once per data version (a background thread may load it ahead, :func:`prewarm_market_inputs`), never
    copied per session: pandas' copy-on-write keeps the shared frames unchanged, and the engine never writes
    to its inputs. ``cleaned`` keeps the prices cleaned per set of data-hygiene fields with their memoised
    signals (:class:`core.quant.batch.SharedCleaning`), so a field change that keeps those fields skips the
    cleaning: the same numbers (``backtest(..., cleaned=...)``)."""

    def __init__(self, inputs: MarketInputs) -> None:
        from core.quant.batch import SharedCleaning

        self.inputs = inputs
        self._cleaning = SharedCleaning(inputs.prices)
        self._lock = threading.Lock()

    def cleaned(self, cfg: StrategyConfig) -> CleanedPrices:
        with self._lock:  # SharedCleaning's order of use is a plain OrderedDict
            return self._cleaning.for_config(cfg)


#: What a load abandoned before it started hands to those already waiting for it: "claim the key again".
_AGAIN = object()


class SharedLoads:
    """Values computed once per key by the whole process and shared by every session (read them, never change
    them): the first caller computes in its own thread and later callers wait for the same :class:`Future`. A
    failed load is handed to whoever waited and forgotten at once (the next call loads again; the store never keeps
    a failure, nor the frames its traceback holds). The ``kept`` most recently used keys stay (the current data
    version and the one before, while sessions move on)."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._lock = threading.Lock()
        self._futures: OrderedDict[Hashable, Future[Any]] = OrderedDict()

    def _claim(self, key: Hashable) -> tuple[Future[Any], bool]:
        """The key's future, and whether the caller must compute it (none yet)."""
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._futures[key] = Future()
                while len(self._futures) > self.kept:
                    self._futures.popitem(last=False)
                return future, True
            self._futures.move_to_end(key)
            return future, False

    def _forget(self, key: Hashable, future: Future[Any]) -> None:
        with self._lock:
            if self._futures.get(key) is future:
                del self._futures[key]

    def get(self, key: Hashable, load: Callable[[], Any], *, on_claim: Callable[[], None] | None = None) -> Any:
        """The key's value: computed now by this thread, or waited for when another thread is computing it.

        ``on_claim`` is called first by the one caller that computes (a rate limit charging exactly the runs
        started: two callers arriving together are charged once, a retry after a failure again); if it raises,
        nothing is computed, the error is this caller's, and whoever was waiting claims the key afresh."""
        while True:
            future, mine = self._claim(key)
            if mine:
                try:
                    if on_claim is not None:
                        on_claim()
                except BaseException:
                    self._forget(key, future)
                    future.set_result(_AGAIN)
                    raise
                try:
                    future.set_result(load())
                except BaseException as exc:  # handed to whoever waits; forgotten, so the next call loads again
                    self._forget(key, future)
                    future.set_exception(exc)
            value = future.result()
            if value is not _AGAIN:
                return value

    def has(self, key: Hashable) -> bool:
        """Whether the key is loaded or loading."""
        with self._lock:
            return key in self._futures

    def ready(self, key: Hashable) -> bool:
        """Whether the key is loaded (reading it will not wait)."""
        with self._lock:
            future = self._futures.get(key)
            return future is not None and future.done() and future.exception() is None

    def clear(self) -> None:
        with self._lock:
            self._futures.clear()


#: Data versions whose market data a process keeps (the current one and the one before, while sessions move on).
MARKET_KEPT = 2
#: Risk views a process keeps (data versions x the Risk section's inputs).
RISK_KEPT = 32
#: Strategy-lab backtests a process keeps (data versions x params previewed or compared).
BACKTEST_KEPT = 32
_market = SharedLoads(MARKET_KEPT)
_risk = SharedLoads(RISK_KEPT)
_backtests = SharedLoads(BACKTEST_KEPT)


#: Failed prewarm keys remembered (so they are not retried ahead) before the set starts afresh.
FAILED_KEPT = 256


class Prewarmer:
    """One daemon thread that computes ahead what a page will probably ask for next, one thing at a time (it
    never competes with itself for the cores; a request that asks first computes the value in its own thread and
    the queued job then finds it loaded). A key queued or running is not queued again, so however many sessions
    redraw the Dashboard, each key waits once; a job whose data version is no longer current when its turn comes
    is dropped; a failure is logged once per key (the request that asks computes again and shows the error).
    The thread is a daemon: stopping the app never waits for queued work."""

    def __init__(self, current_token: Callable[[], str]) -> None:
        self._current_token = current_token
        self._lock = threading.Lock()
        self._waiting: set[Hashable] = set()
        self._jobs: queue.SimpleQueue[tuple[Hashable, str, Callable[[], object]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failed: set[Hashable] = set()

    def submit(self, key: Hashable, token: str, compute: Callable[[], object]) -> None:
        with self._lock:
            if key in self._waiting or key in self._failed:
                return
            self._waiting.add(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="autoindex-prewarm", daemon=True)
                self._thread.start()
        self._jobs.put((key, token, compute))

    def idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until nothing is queued or running (tests); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._waiting:
                    return True
            time.sleep(0.01)
        return False

    def clear(self) -> None:
        with self._lock:
            self._failed.clear()

    def _run(self) -> None:
        while True:
            key, token, compute = self._jobs.get()
            try:
                if token == self._current_token():
                    compute()
            except Exception as exc:  # noqa: BLE001 - logged once per key; the request that asks shows it
                with self._lock:
                    if len(self._failed) >= FAILED_KEPT:
                        self._failed.clear()
                    self._failed.add(key)
                log.warning("computing ahead %s failed (the page computes it when asked): %s", key, one_line(exc))
            finally:
                with self._lock:
                    self._waiting.discard(key)


_prewarm = Prewarmer(lambda: token())


def _load_market() -> MarketData:
    from core.db import unit_of_work
    from core.services.market import load_market_inputs

    with unit_of_work() as session:
        return MarketData(load_market_inputs(session))


def market_data(token: str) -> MarketData:
    """The data version's :class:`MarketData` (loaded now, or waited for when a prewarm is loading it)."""
    return _market.get(token, _load_market)  # type: ignore[no-any-return]


def market_inputs(token: str) -> MarketInputs:
    """Prices, caps and the benchmark the engine needs (for the Strategy preview), shared: read, never change."""
    return market_data(token).inputs


def _ahead(store: SharedLoads, key: Hashable, token: str, compute: Callable[[], object]) -> None:
    """Queue ``compute`` on the prewarm thread (:class:`Prewarmer`) unless the key is loaded or loading."""
    if not store.has(key):
        _prewarm.submit(key, token, compute)


def prewarm_market_inputs(token: str) -> None:
    """Load the data version's market inputs ahead on the prewarm thread, so the first Strategy preview after a
    data change does not wait for them. Only in a served app (:func:`served`): an AppTest or a script keeps
    loading on first use."""
    if served():
        _ahead(_market, token, token, lambda: market_data(token))


def prewarm_figures(plan_key: Hashable, token: str, build_all: Callable[[], object]) -> None:
    """Build ahead, on the prewarm thread, the figures ``build_all()`` puts in the figure cache (:func:`figure`),
    so the first visit of a section after a data change sends figures already built. Queued on every call (once
    while queued): a figure still cached is a lookup, and one the cache let go (its size bound, its hour) is built
    again, which a plan remembered as done would never do. Served app only."""
    if served():
        _prewarm.submit(("figures", token, plan_key), token, build_all)


def _backtest_key(token: str, params: dict[str, Any]) -> tuple[str, str]:
    return token, json.dumps(params, sort_keys=True, default=str)


def _run_backtest(params_json: str, token: str) -> dict[str, Any]:
    """A config run over the data version's market data: the same pipeline as the stored compute
    (:func:`core.services.compute.run_backtest`), so the numbers agree with it. Prices are cleaned once per set
    of data-hygiene fields and shared (a total-return run cleans its own levels, as ``run_backtest`` says)."""
    from core.db import unit_of_work
    from core.services import strategies
    from core.services.compute import at_risk_free_rate, run_backtest

    market = market_data(token)  # one shared object per data version, maybe loaded ahead
    inputs = market.inputs
    cfg = strategies.parse_params(json.loads(params_json))
    total_return = cfg.basis == "total_return" and inputs.dividends is not None
    run = run_backtest(cfg, inputs, cleaned=None if total_return or inputs.prices.empty else market.cleaned(cfg))
    with unit_of_work() as session:  # the stored compute's risk-free rate, so the preview's metrics are its
        run = at_risk_free_rate(run, session)
    return {
        "values": run.values,
        "metrics": run.metrics,
        "warnings": list(run.result.warnings)[:10],
        "rebalances": len(run.result.rebalance_dates),
        "benchmark": run.benchmark,
        "benchmark_symbol": run.benchmark_label,
        "benchmark_metrics": run.benchmark_metrics,
        "turnover_per_year": run.turnover_per_year,
        "total_costs": run.total_costs,
    }


def backtest(token: str, params: dict[str, Any], *, on_compute: Callable[[], None] | None = None) -> dict[str, Any]:
    """The Strategy lab's run of ``params`` over the data version's market data, computed once per data version
    and params by the whole process and shared by every session (read it, never change it). ``on_compute`` is
    called first by the one call that starts the computation (the caller's rate limit; a retry after a failure
    starts one too): a refusal computes nothing."""
    key = _backtest_key(token, params)
    return _backtests.get(key, lambda: _run_backtest(key[1], token), on_claim=on_compute)  # type: ignore[no-any-return]


def backtest_ready(token: str, params: dict[str, Any]) -> bool:
    """Whether :func:`backtest` of ``params`` is computed (reading it will not wait)."""
    return _backtests.ready(_backtest_key(token, params))


#: Strategy-lab prewarm plans done or under way (data versions x versions).
_lab_plans = SharedLoads(BACKTEST_KEPT)


def prewarm_backtests(plan_key: Hashable, token: str, params_of: Callable[[], Sequence[dict[str, Any]]]) -> None:
    """Run ahead, on the prewarm thread, each of the params ``params_of()`` gives (the Strategy lab's first
    preview and comparison after a data change), once per ``plan_key``. ``params_of`` itself runs there too (it
    may read the database): a request only queues the plan, and a failure is logged, never shown. Served app
    only."""
    if not served():
        return
    key = (token, plan_key)

    def plan() -> bool:
        for params in params_of():
            backtest(token, params)
        return True

    _ahead(_lab_plans, key, token, lambda: _lab_plans.get(key, plan))


def served() -> bool:
    """Whether this run answers a client over HTTP (a browser, or bench/wire.py's client): its request had a Host
    header. AppTest and bare runs have none."""
    try:
        return bool(st.context.headers.get("Host"))
    except Exception:  # no request context at all
        return False


def risk_view(
    token: str,
    config_id: int,
    *,
    actor: object,
    monte_carlo: MonteCarloParams,
    shocks: Sequence[Shock] = (),
    newey_west: bool = False,
) -> RiskView:
    """:func:`core.services.risk_views.risk_view`, the actor checked on fresh state at every call, the view itself
    computed once per data version and inputs, and shared (read it, never change it): the Monte Carlo, stress
    replay and held prices cost seconds of CPU, and the Dashboard's Risk section asked for them again on every run
    of every session. A factor import moves the data version (:func:`core.services.factors.store_factors`)."""
    from core.db import unit_of_work
    from core.services.access import ALL_ROLES, resolve

    with unit_of_work() as session:
        resolve(session, actor, ALL_ROLES, action="reading risk views")
    key, compute = _risk_load(token, config_id, actor, monte_carlo, tuple(shocks), bool(newey_west))
    with st.spinner("Computing the risk views…", show_time=True):
        return _risk.get(key, compute)  # type: ignore[no-any-return]


def prewarm_risk_view(
    token: str, config_id: int, *, actor: object, monte_carlo: MonteCarloParams, shocks: Sequence[Shock] = ()
) -> None:
    """Compute ahead, on the prewarm thread, the Risk section's view with its default inputs (``monte_carlo``,
    ``shocks``), so the first Risk view of a data version is read, not computed. Served app only."""
    if served():
        key, compute = _risk_load(token, config_id, actor, monte_carlo, tuple(shocks), False)
        _ahead(_risk, key, token, lambda: _risk.get(key, compute))


def _risk_load(
    token: str,
    config_id: int,
    actor: object,
    monte_carlo: MonteCarloParams,
    shocks: tuple[Shock, ...],
    newey_west: bool,
) -> tuple[Hashable, Callable[[], RiskView]]:
    from core.services.risk_views import risk_view as compute_risk_view

    # Computed as the system: the value is shared by every session, and each caller was checked on fresh state
    # before asking (risk views are readable by every role and hold nothing of the user), so one user's session
    # ending never fails another user's view.
    key = (token, repr((config_id, monte_carlo, shocks, newey_west)))
    return key, lambda: compute_risk_view(
        config_id, actor=None, monte_carlo=monte_carlo, shocks=shocks, newey_west=newey_west
    )


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def universe(token: str) -> pd.DataFrame:
    from core.services import universe as universe_service

    return universe_service.list_assets()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def asset_history(token: str, symbol: str):  # type: ignore[no-untyped-def]
    from core.services import universe as universe_service

    return universe_service.asset_history(symbol)
