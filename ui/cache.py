"""The one cache helper: st.cache_data wrappers over service reads.

Every cached read takes a ``token`` argument: :func:`token` combines the database URL with
:func:`core.services.dashboard.cache_token` (data version, config versions, active config, compute
times), so a refresh, an import, a compute or a saved version changes the key and the next run reads
fresh data; nothing is ever stale and nothing needs explicit clearing. Raw data is cached; filtering
(date range, log scale, selected asset) happens outside the cache in the pages.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import get_settings
from core.schemas.strategy_version import ConfigVersionOut
from core.services import dashboard

TTL_SECONDS = 3600
MAX_ENTRIES = 64


def token() -> str:
    """The current cache key ingredient (one small query)."""
    return f"{get_settings().effective_database_url}|{dashboard.cache_token()}"


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
