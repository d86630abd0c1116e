"""The one cache helper: the only place in the app that touches ``st.cache_data`` / ``st.cache_resource``.

One key: every cached read takes a ``token`` argument, :func:`token`, which is the database URL and the
**data version** (:func:`core.services.app_settings.data_version`). Every write that changes what a page shows
(prices, an import, a compute, an asset added or (de)activated, a config version saved or activated) bumps
the data version in its own transaction, so the next run computes a new key and reads fresh data; nothing is
ever stale and nothing needs explicit clearing (old entries leave by TTL and ``max_entries``).

Raw data is cached with ``st.cache_data`` (each session gets its own copy); filtering (date range, log scale,
selected asset) happens outside the cache in the pages. Built Plotly figures are cached with
``st.cache_resource`` by :func:`figure` (one object shared by every session: ``st.plotly_chart`` only reads
it), so a rerun that draws the same chart again skips building it.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable

import pandas as pd
import streamlit as st

from core.config import get_settings
from core.schemas.strategy_version import ConfigVersionOut
from core.services import dashboard

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


@st.cache_data(show_spinner="Loading market data…", ttl=TTL_SECONDS, max_entries=4)
def market_inputs(token: str):  # type: ignore[no-untyped-def]
    """Prices, caps and the benchmark the engine needs (for the Strategy preview)."""
    from core.db import unit_of_work
    from core.services.market import load_market_inputs

    with unit_of_work() as session:
        return load_market_inputs(session)


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def universe(token: str) -> pd.DataFrame:
    from core.services import universe as universe_service

    return universe_service.list_assets()


@st.cache_data(show_spinner=False, ttl=TTL_SECONDS, max_entries=MAX_ENTRIES)
def asset_history(token: str, symbol: str):  # type: ignore[no-untyped-def]
    from core.services import universe as universe_service

    return universe_service.asset_history(symbol)
