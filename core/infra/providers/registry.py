"""Choosing a market-data provider by name from the settings."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core.config import Settings, get_settings
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.infra.providers.base import MarketDataProvider
    from core.infra.providers.twelvedata import RateLimiter

PROVIDER_NAMES = ("demo", "twelvedata")


def get_provider(name: str, settings: Settings | None = None, *, today: dt.date | None = None) -> MarketDataProvider:
    """A ready provider instance for ``name`` ("demo" or "twelvedata")."""
    settings = settings or get_settings()
    if name == "demo":
        from core.infra.providers.demo import DemoProvider

        return DemoProvider(seed=settings.demo_seed, today=today)
    if name == "twelvedata":
        from core.infra.providers.twelvedata import InProcessRateLimiter, RedisRateLimiter, TwelveDataProvider

        if not settings.twelvedata_api_key:
            raise ConfigurationError("TWELVEDATA_API_KEY", "is not set; the TwelveData provider needs an API key")
        limiter: RateLimiter
        if settings.redis_url:
            import redis

            limiter = RedisRateLimiter(
                redis.Redis.from_url(settings.redis_url),
                "autoindex:twelvedata:credits",
                settings.twelvedata_credits_per_minute,
            )
        else:
            limiter = InProcessRateLimiter(settings.twelvedata_credits_per_minute)
        return TwelveDataProvider(
            settings.twelvedata_api_key,
            base_url=settings.twelvedata_base_url,
            credits_per_minute=settings.twelvedata_credits_per_minute,
            limiter=limiter,
        )
    raise ConfigurationError("provider", f"unknown provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}")
