"""Refreshing market data from a provider, and importing price files."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select

from core.db import unit_of_work, write_lock
from core.models import Asset
from core.services import audit, prices
from core.services.locks import REFRESH, hold
from core.services.providers.registry import get_provider

log = logging.getLogger(__name__)

#: Longest a refresh that waits (the CLI, demo seeding) waits for another one, seconds.
REFRESH_LOCK_WAIT_S = 900.0

Progress = Callable[[float, str], None]


def _noop(_f: float, _m: str) -> None:
    return None


def refresh_prices(provider_name: str = "demo", symbols: list[str] | None = None, *, full: bool = False,
                   provider=None, progress: Progress | None = None, actor: str | None = None,  # type: ignore[no-untyped-def]
                   today: dt.date | None = None, wait: bool = True,
                   lock_timeout_s: float | None = REFRESH_LOCK_WAIT_S) -> dict[str, object]:
    """Fetch prices (incremental by default: only dates after the newest stored one) and upsert them.

    Everything is written in one transaction: a failure leaves the database as it was.
    One refresh runs at a time (the ``refresh`` lock of :mod:`core.services.locks`, also held by demo
    seeding): with ``wait`` (the CLI) a second refresh waits up to ``lock_timeout_s`` seconds and then runs
    (incrementally: it usually finds nothing new); without it (jobs) it raises AlreadyRunning naming the holder.
    Returns the ingest summary as a plain dict.
    """
    progress = progress or _noop
    provider = provider or get_provider(provider_name, today=today)

    def waiting(holder: str | None) -> None:
        progress(0.0, f"waiting for another refresh (held by {holder or 'an unknown holder'})")

    with hold(REFRESH, wait=wait, timeout_s=lock_timeout_s, holder=actor or "system", on_wait=waiting), \
            unit_of_work() as session:
        if symbols is None:
            known = session.scalars(select(Asset.symbol).where(Asset.is_active.is_(True))).all()
            universe = [a.symbol for a in provider.universe()]
            symbols = sorted(set(known) | set(universe)) if provider_name == "demo" else sorted(known)
        start = None
        if not full:
            last = prices.last_price_dates(session)
            stored = [last[s] for s in symbols if s in last]
            if stored and len(stored) == len(symbols):
                start = min(stored) + dt.timedelta(days=1)
        progress(0.05, f"fetching {len(symbols)} symbols from {provider.name}" + (f" since {start}" if start else ""))

        def fetch_progress(fraction: float, message: str) -> None:
            progress(0.05 + 0.6 * fraction, message)

        data = provider.fetch(symbols, start=start, end=today, progress=fetch_progress)
        progress(0.7, f"storing {len(data.prices)} prices")
        summary = prices.ingest(session, prices=data.prices, market_caps=data.market_caps,
                                assets=data.assets, source=data.source)
        if summary.changed:
            prices.mark_refreshed(session)
        audit.record(session, actor, "data.refresh", provider.name,
                     {"symbols": len(symbols), "new": summary.rows_new, "updated": summary.rows_updated, "full": full})
        session.commit()
    progress(1.0, f"{summary.rows_new} new, {summary.rows_updated} updated prices")
    return summary.as_dict()


def import_price_file(content: bytes, filename: str, *, actor: object = None,
                      allow_new_symbols: bool = False, today: dt.date | None = None) -> dict[str, object]:
    """Validate a CSV/XLSX price file as a whole and store it; ImportValidationError leaves the DB unchanged.

    Admins only (``actor`` checked on fresh state; None is the system, e.g. the CLI). An import writes prices,
    so it takes the ``refresh`` lock like a refresh: it waits for a running refresh, and a refresh waits for it.
    """
    from core.config import get_settings
    from core.schemas.asset import AssetInfo
    from core.services.access import ADMIN_ONLY, check, resolve, username_of
    from core.services.providers.files import parse_price_file

    check(actor, ADMIN_ONLY, action="importing prices")  # refuse before waiting for the lock
    with hold(REFRESH, wait=True, timeout_s=REFRESH_LOCK_WAIT_S, holder=username_of(actor) or "system"), \
            unit_of_work() as session:
        write_lock(session)
        actor = resolve(session, actor, ADMIN_ONLY, action="importing prices", lock=True).username
        known = set(session.scalars(select(Asset.symbol)).all())
        data = parse_price_file(content, filename, known_symbols=None if allow_new_symbols else known,
                                today=today, max_bytes=get_settings().import_max_bytes)
        new_symbols = sorted(set(data.prices["symbol"]) - known)
        assets = [AssetInfo(symbol=s, name=s, asset_class="other", source="file") for s in new_symbols]
        summary = prices.ingest(session, prices=data.prices, market_caps=data.market_caps, assets=assets,
                                source="file")
        if summary.changed:
            prices.mark_refreshed(session)
        audit.record(session, actor, "data.import", filename,
                     {"rows": int(len(data.prices)), "new": summary.rows_new, "updated": summary.rows_updated})
        session.commit()
    return summary.as_dict()

