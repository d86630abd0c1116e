"""The universe of assets: listing with data quality, adding and (de)activating assets, provider settings.

Quality conventions (per asset, over its stored daily closes):
``gaps`` = business days (Mon-Fri) between the first and last price that have no price;
``unchanged_days`` = days whose close equals the previous stored close (a stale quote);
``stale_days`` = :func:`core.services.freshness.business_days_stale` (the one freshness rule: business days
between the last price and the last completed business day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sqlalchemy import func, select

from core.db import unit_of_work, write_lock
from core.errors import NotFoundError, ValidationFailed
from core.models import Asset, Price
from core.quant.periods import as_date as _date
from core.schemas.asset import AssetInfo
from core.services import app_settings, audit
from core.services import prices as price_store
from core.services.access import ADMIN_ONLY, resolve
from core.services.freshness import business_days_stale
from core.services.prices import per_asset

PROVIDER_SETTINGS_KEY = "provider"
DEFAULT_PROVIDER = {"name": "demo", "symbols": ""}


def _busdays(start: dt.date | None, end: dt.date | None) -> int | None:
    if start is None or end is None:
        return None
    return int(np.busday_count(start, end)) if end > start else 0


def list_assets(today: dt.date | dt.datetime | None = None) -> pd.DataFrame:
    """Every asset with its price span, count, business-day gaps and staleness (``today``: the clock, now
    when None; see :mod:`core.services.freshness`)."""
    with unit_of_work() as session:
        found = session.execute(
            select(
                Asset,
                per_asset(func.min(Price.date)),
                per_asset(func.max(Price.date)),
                per_asset(func.count()),
            ).order_by(Asset.symbol)
        ).all()
        rows = []
        for a, lo, hi, n in found:
            lo, hi, n = _date(lo), _date(hi), n or 0
            expected = (_busdays(lo, hi) or 0) + 1 if lo and hi else 0
            rows.append(
                {
                    "symbol": a.symbol,
                    "name": a.name,
                    "asset_class": a.asset_class,
                    "sector": a.sector,
                    "currency": a.currency,
                    "benchmark": a.is_benchmark,
                    "active": a.is_active,
                    "source": a.source,
                    "first_date": lo,
                    "last_date": hi,
                    "prices": int(n),
                    "gaps": max(expected - int(n), 0) if n else None,
                    "stale_days": business_days_stale(hi, today),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "symbol",
            "name",
            "asset_class",
            "sector",
            "currency",
            "benchmark",
            "active",
            "source",
            "first_date",
            "last_date",
            "prices",
            "gaps",
            "stale_days",
        ],
    )


@dataclass
class AssetHistory:
    symbol: str
    prices: pd.Series  # daily closes by date
    quality: dict[str, Any]  # first_date, last_date, prices, gaps, longest_gap, unchanged_days, stale_days
    missing_dates: list[dt.date]  # business days without a price (at most the last 200)


def asset_history(symbol: str, today: dt.date | dt.datetime | None = None) -> AssetHistory:
    """One asset's closes and their quality (see the module docstring)."""
    with unit_of_work() as session:
        if session.scalar(select(Asset.id).where(Asset.symbol == symbol)) is None:
            raise NotFoundError(f"no asset {symbol!r}")
        matrix = price_store.load_price_matrix(session, [symbol])
    series = matrix[symbol].dropna() if symbol in matrix else pd.Series(dtype=float)
    quality: dict[str, Any] = {
        "first_date": None,
        "last_date": None,
        "prices": int(len(series)),
        "gaps": None,
        "longest_gap": None,
        "unchanged_days": None,
        "stale_days": None,
    }
    missing: list[dt.date] = []
    if len(series):
        first, last = series.index[0].date(), series.index[-1].date()
        business = pd.bdate_range(first, last)
        gap_days = business.difference(series.index)
        missing = [d.date() for d in gap_days[-200:]]
        longest = 0
        if len(gap_days):
            flags = pd.Series(1, index=business).where(business.isin(gap_days), 0)
            runs = flags.groupby((flags == 0).cumsum()).sum()
            longest = int(runs.max())
        quality.update(
            first_date=first,
            last_date=last,
            gaps=int(len(gap_days)),
            longest_gap=longest,
            unchanged_days=int((series.diff() == 0).sum()),
            stale_days=business_days_stale(last, today),
        )
    return AssetHistory(symbol, series, quality, missing)


def _asset_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else "asset"
        message = err["msg"].removeprefix("Value error, ")
        if field == "symbol" and err.get("type") == "string_pattern_mismatch":
            message = "1-32 characters: letters, digits and . - ^ = / : _"
        errors[field] = message
    return errors


def add_asset(
    symbol: str,
    name: str,
    *,
    asset_class: str = "equity",
    sector: str | None = None,
    currency: str = "USD",
    is_benchmark: bool = False,
    actor: Any = None,
) -> dict[str, Any]:
    """Add an asset to the universe (no prices yet; admins only, checked on fresh state); ValidationFailed
    names each bad field, nothing is written."""
    try:
        info = AssetInfo(
            symbol=(symbol or "").strip(),
            name=(name or "").strip(),
            asset_class=asset_class,  # type: ignore[arg-type]  # checked by AssetInfo: ValidationFailed
            sector=(sector or "").strip() or None,
            currency=(currency or "").strip().upper(),
            is_benchmark=is_benchmark,
            source="manual",
        )
    except ValidationError as exc:
        raise ValidationFailed(_asset_errors(exc)) from None
    with unit_of_work() as session:
        write_lock(session)
        actor = resolve(session, actor, ADMIN_ONLY, action="changing the universe", lock=True).username
        if session.scalar(select(Asset.id).where(func.upper(Asset.symbol) == info.symbol)) is not None:
            raise ValidationFailed({"symbol": f"{info.symbol} is already in the universe"})
        created = price_store.insert_assets_if_absent(
            session,
            [
                {
                    "symbol": info.symbol,
                    "name": info.name,
                    "asset_class": info.asset_class,
                    "sector": info.sector,
                    "currency": info.currency,
                    "is_benchmark": info.is_benchmark,
                    "is_active": True,
                    "source": "manual",
                }
            ],
        )
        if not created:  # added by someone else since the check above
            raise ValidationFailed({"symbol": f"{info.symbol} is already in the universe"})
        audit.record(session, actor, "asset.add", info.symbol, {"class": info.asset_class, "benchmark": is_benchmark})
        app_settings.bump_data_version(session)
        session.commit()
    return info.model_dump()


def set_active(symbol: str, active: bool, *, actor: Any = None) -> None:
    """Deactivate (leave out of every future compute) or reactivate an asset; its prices are kept (admins)."""
    with unit_of_work() as session:
        write_lock(session)
        actor = resolve(session, actor, ADMIN_ONLY, action="changing the universe", lock=True).username
        asset = session.scalar(select(Asset).where(Asset.symbol == symbol))
        if asset is None:
            raise NotFoundError(f"no asset {symbol!r}")
        if asset.is_active == active:
            return
        asset.is_active = active
        audit.record(session, actor, "asset.activate" if active else "asset.deactivate", symbol)
        app_settings.bump_data_version(session)
        session.commit()


def provider_settings() -> dict[str, Any]:
    """The market-data provider used by refreshes: {"name", "symbols"} (API keys stay in the environment)."""
    with unit_of_work() as session:
        return {**DEFAULT_PROVIDER, **app_settings.get(session, PROVIDER_SETTINGS_KEY, DEFAULT_PROVIDER)}


def refresh_source() -> tuple[str, list[str] | None]:
    """What scheduled refreshes fetch: the provider (and symbols) saved on the Data page; without a saved
    choice, TwelveData when an API key is configured, else the demo provider. ``None`` symbols = the universe."""
    from core.config import get_settings

    with unit_of_work() as session:
        saved = app_settings.get(session, PROVIDER_SETTINGS_KEY)
    if saved.get("name"):
        symbols = [s for s in str(saved.get("symbols") or "").split(",") if s]
        return str(saved["name"]), symbols or None
    return ("twelvedata" if get_settings().twelvedata_api_key else "demo"), None


def put_provider_settings(name: str, symbols: str = "", *, actor: Any = None) -> dict[str, Any]:
    """Save the provider (and symbols) scheduled refreshes use (admins only, checked on fresh state)."""
    from core.infra.providers.registry import PROVIDER_NAMES

    with unit_of_work() as session:
        resolve(session, actor, ADMIN_ONLY, action="changing the provider settings")

    errors: dict[str, str] = {}
    if name not in PROVIDER_NAMES:
        errors["provider"] = f"must be one of {', '.join(PROVIDER_NAMES)}"
    typed = [s.strip() for s in (symbols or "").replace("\n", ",").split(",") if s.strip()]
    bad = [s for s in typed if not _symbol_ok(s)]  # checked before upper-casing: ſpy must not become SPY
    cleaned = [s.upper() for s in typed]
    if bad:
        errors["symbols"] = f"not valid symbols: {', '.join(bad[:5])}"
    if errors:
        raise ValidationFailed(errors)
    value = {"name": name, "symbols": ",".join(cleaned)}
    with unit_of_work() as session:
        write_lock(session)
        actor = resolve(session, actor, ADMIN_ONLY, action="changing the provider settings", lock=True).username
        app_settings.put(session, PROVIDER_SETTINGS_KEY, value, by=actor)
        audit.record(session, actor, "settings.provider", name, value)
        session.commit()
    return value


def _symbol_ok(symbol: str) -> bool:
    from core.schemas.asset import symbol_problem

    return symbol_problem(symbol) is None
