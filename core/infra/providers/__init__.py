"""Market-data providers: one documented base class, one subclass per source.

``DemoProvider`` (synthetic, the embedded default), ``TwelveDataProvider`` (HTTP API)
and ``FileImportProvider``/``parse_price_file`` (CSV/XLSX uploads) all return a
:class:`ProviderData`; see :mod:`core.infra.providers.base` for the contract.
"""

from core.infra.providers.base import (
    DATE_DTYPE,
    MarketDataProvider,
    ProgressCallback,
    ProviderData,
    empty_market_caps,
    empty_prices,
)
from core.infra.providers.demo import DemoProvider
from core.infra.providers.files import FileImportProvider, parse_price_file
from core.infra.providers.twelvedata import (
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    TwelveDataProvider,
    parse_time_series,
)

__all__ = [
    "DATE_DTYPE",
    "DemoProvider",
    "FileImportProvider",
    "InProcessRateLimiter",
    "MarketDataProvider",
    "ProgressCallback",
    "ProviderData",
    "RateLimiter",
    "RedisRateLimiter",
    "TwelveDataProvider",
    "empty_market_caps",
    "empty_prices",
    "parse_price_file",
    "parse_time_series",
]
