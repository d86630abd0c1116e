"""The one cache helper: the only place in the app that touches ``st.cache_data`` / ``st.cache_resource``.

One key: every cached read takes a ``token`` argument, :func:`token`, which is the database URL and the
**data version** (:func:`core.services.app_settings.data_version`). Every write that changes what a page shows
(prices, an import, a compute, an asset added or (de)activated, a config version saved or activated) bumps
the data version in its own transaction, so the next run computes a new key and reads fresh data; nothing is
ever stale and nothing needs explicit clearing (old entries leave by TTL and ``max_entries``).

The market inputs of the Strategy lab (every asset's prices and caps) are the exception: one object per data
version per process (:func:`market_data`), shared by every session rather than copied into each, and loaded
ahead by a background thread once a page has been drawn at a new data version (:func:`prewarm_market_inputs`).

Raw data is cached with ``st.cache_data`` (each session gets its own copy); filtering (date range, log scale,
selected asset) happens outside the cache in the pages. Built Plotly figures are cached with
``st.cache_resource`` by :func:`figure` (one object shared by every session: ``st.plotly_chart`` only reads
it), so a rerun that draws the same chart again skips building it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.config import get_settings
from core.schemas.strategy import StrategyConfig
from core.schemas.strategy_version import ConfigVersionOut
from core.services import dashboard

if TYPE_CHECKING:
    from core.quant.engine import CleanedPrices
    from core.quant.stress import Shock
    from core.services.market import MarketInputs
    from core.services.risk_views import MonteCarloParams, RiskView

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
    _risk_view.clear()
    with _market_lock:
        _market.clear()


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


#: Data versions whose market data a process keeps (the current one and the one before, while sessions move on).
MARKET_KEPT = 2
_market_lock = threading.Lock()
_market: OrderedDict[str, Future[MarketData]] = OrderedDict()


def _load_market(token: str, future: Future[MarketData]) -> None:
    from core.db import unit_of_work
    from core.services.market import load_market_inputs

    try:
        with unit_of_work() as session:
            future.set_result(MarketData(load_market_inputs(session)))
    except BaseException as exc:  # handed to whoever waits; the next call loads again
        future.set_exception(exc)


def _market_future(token: str, *, background: bool) -> Future[MarketData]:
    with _market_lock:
        future = _market.get(token)
        failed = future is not None and future.done() and future.exception() is not None
        start = future is None or failed
        if start:
            future = _market[token] = Future()
            while len(_market) > MARKET_KEPT:
                _market.popitem(last=False)
        else:
            _market.move_to_end(token)
    assert future is not None
    if start:
        if background:
            threading.Thread(
                target=_load_market, args=(token, future), name="autoindex-market-prewarm", daemon=True
            ).start()
        else:
            _load_market(token, future)
    return future


def market_data(token: str) -> MarketData:
    """The data version's :class:`MarketData` (loaded now, or waited for when a prewarm is loading it)."""
    return _market_future(token, background=False).result()


def market_inputs(token: str) -> MarketInputs:
    """Prices, caps and the benchmark the engine needs (for the Strategy preview), shared: read, never change."""
    return market_data(token).inputs


def prewarm_market_inputs(token: str) -> None:
    """Start loading the data version's market inputs in a background thread unless loaded or loading, so the
    first Strategy preview after a data change does not wait for them. Only in a served app (:func:`served`): an
    AppTest or a script keeps loading on first use."""
    if served():
        _market_future(token, background=True)


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
    key = repr((config_id, monte_carlo, tuple(shocks), bool(newey_west)))
    return _risk_view(token, key, config_id, monte_carlo, tuple(shocks), bool(newey_west), actor)


@st.cache_resource(show_spinner="Computing the risk views…", ttl=TTL_SECONDS, max_entries=32)
def _risk_view(
    token: str,
    key: str,
    config_id: int,
    _monte_carlo: MonteCarloParams,
    _shocks: tuple[Shock, ...],
    _newey_west: bool,
    _actor: object,
) -> RiskView:
    from core.services.risk_views import risk_view as compute_risk_view

    return compute_risk_view(config_id, actor=_actor, monte_carlo=_monte_carlo, shocks=_shocks, newey_west=_newey_west)


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def universe(token: str) -> pd.DataFrame:
    from core.services import universe as universe_service

    return universe_service.list_assets()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def asset_history(token: str, symbol: str):  # type: ignore[no-untyped-def]
    from core.services import universe as universe_service

    return universe_service.asset_history(symbol)
