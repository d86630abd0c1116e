"""Refreshing market data from a provider, and importing price files."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import unit_of_work, write_lock
from core.errors import AutoIndexError, ProviderError
from core.infra.locks import REFRESH, hold
from core.infra.providers.base import MarketDataProvider, ProviderData, empty_market_caps, empty_prices
from core.infra.providers.registry import get_provider
from core.models import Asset
from core.schemas.asset import AssetInfo
from core.services import audit, prices
from core.services.access import username_of

log = logging.getLogger(__name__)

#: Longest a refresh that waits (the CLI, demo seeding) waits for another one, seconds.
REFRESH_LOCK_WAIT_S = 900.0

Progress = Callable[[float, str], None]


def _noop(_f: float, _m: str) -> None:
    return None


def refresh_prices(
    provider_name: str = "demo",
    symbols: list[str] | None = None,
    *,
    full: bool = False,
    provider: MarketDataProvider | None = None,
    progress: Progress | None = None,
    actor: object = None,
    today: dt.date | None = None,
    wait: bool = True,
    lock_timeout_s: float | None = REFRESH_LOCK_WAIT_S,
    recompute: bool = True,
) -> dict[str, object]:
    """Fetch prices (incremental by default) and upsert them; queue a recompute when they changed.

    ``symbols`` may be any valid tickers (``^GSPC``, ``BRK.B``, ``RDS-A``; checked and upper-cased by the one
    symbol rule, :func:`core.infra.providers.base.normalise_symbols`); ``None`` means the stored active
    assets (plus the demo universe for the demo provider).

    Incremental: each symbol is fetched from the day after **its own** last stored date (a symbol with no
    prices from the provider's first date), symbols sharing a start date in one provider call; ``full``
    fetches every symbol's whole history.

    A symbol the provider does not know is skipped (``ProviderData.skipped``): the others are stored, and the
    summary's ``warnings`` names each skipped symbol (a refresh job then ends "succeeded with warnings"). When
    every requested symbol is unknown the refresh fails (ProviderError) and stores nothing.

    Everything is written in one transaction: a failure leaves the database as it was.
    One refresh runs at a time (the ``refresh`` lock of :mod:`core.infra.locks`, also held by demo
    seeding): with ``wait`` (the CLI) a second refresh waits up to ``lock_timeout_s`` seconds and then runs
    (incrementally: it usually finds nothing new); without it (jobs) it raises AlreadyRunning naming the holder.

    When prices (or caps) changed and ``recompute`` is set, a compute job of the active config is queued
    after the commit, queued by ``actor`` (see :func:`queue_recompute`): exactly one per changing refresh, none
    when nothing changed. Returns the ingest summary as a plain dict, plus ``warnings``, ``skipped_symbols``
    (``{symbol: reason}``) and ``recompute`` (what :func:`queue_recompute` did, or None).
    """
    from core.infra.providers.base import normalise_symbols

    progress = progress or _noop
    provider = provider or get_provider(provider_name, today=today)
    symbols = normalise_symbols(symbols)
    actor_name = username_of(actor)

    def waiting(holder: str | None) -> None:
        progress(0.0, f"waiting for another refresh (held by {holder or 'an unknown holder'})")

    with (
        hold(REFRESH, wait=wait, timeout_s=lock_timeout_s, holder=actor_name or "system", on_wait=waiting),
        unit_of_work() as session,
    ):
        if symbols is None:
            known = session.scalars(select(Asset.symbol).where(Asset.is_active.is_(True))).all()
            universe = [a.symbol for a in provider.universe()]
            symbols = sorted(set(known) | set(universe)) if provider_name == "demo" else sorted(known)
        last = {} if full else prices.last_price_dates(session)
        groups = fetch_groups(symbols, last)
        data = _fetch_groups(provider, groups, today, progress)
        if data.skipped and len(data.skipped) == len(symbols):
            raise ProviderError(
                f"none of the {len(symbols)} symbol(s) is known to {provider.name}: " + _skipped_text(data.skipped),
                ",".join(sorted(data.skipped))[:200],
            )
        progress(0.7, f"storing {len(data.prices)} prices")
        summary = prices.ingest(
            session,
            prices=data.prices,
            market_caps=data.market_caps,
            assets=_asset_infos(session, data),
            source=data.source,
            dividends=data.dividends,
        )
        if summary.changed:
            prices.mark_refreshed(session)
        warnings = [
            f"{symbol}: skipped, not known to {provider.name} ({reason})"
            for symbol, reason in sorted(data.skipped.items())
        ]
        audit.record(
            session,
            actor_name,
            "data.refresh",
            provider.name,
            {
                "symbols": len(symbols),
                "new": summary.rows_new,
                "updated": summary.rows_updated,
                "full": full,
                "skipped": sorted(data.skipped),
            },
        )
        session.commit()
    result = summary.as_dict()
    follow = queue_recompute(actor) if recompute and summary.changed else None
    if follow is not None and not follow.get("queued") and follow.get("reason") != NO_ACTIVE_CONFIG:
        # a stale index must not look like a plain success
        warnings.append(f"index not recomputed: {follow.get('reason')}; run `python -m core compute`")
    result.update(warnings=warnings, skipped_symbols=dict(sorted(data.skipped.items())), recompute=follow)
    progress(
        1.0,
        f"{summary.rows_new} new, {summary.rows_updated} updated prices"
        + (f"; {len(warnings)} symbol(s) skipped" if warnings else ""),
    )
    return result


def fetch_groups(symbols: list[str], last: dict[str, dt.date]) -> dict[dt.date | None, list[str]]:
    """Symbols grouped by the first date to fetch: the day after each one's last stored date (``last``), or
    ``None`` (the provider's whole history) for a symbol with no stored price. Groups are in date order,
    ``None`` first; symbols sorted within a group."""
    groups: dict[dt.date | None, list[str]] = {}
    for symbol in sorted(symbols):
        start = last[symbol] + dt.timedelta(days=1) if symbol in last else None
        groups.setdefault(start, []).append(symbol)
    return dict(sorted(groups.items(), key=lambda item: (item[0] is not None, item[0] or dt.date.min)))


def _fetch_groups(
    provider: MarketDataProvider,
    groups: dict[dt.date | None, list[str]],
    today: dt.date | None,
    progress: Progress,
) -> ProviderData:
    """One provider call per start date; the answers joined into one ProviderData."""
    price_frames: list[pd.DataFrame] = []
    cap_frames: list[pd.DataFrame] = []
    dividend_frames: list[pd.DataFrame] = []
    assets: list[AssetInfo] = []
    skipped: dict[str, str] = {}
    generic: set[str] = set()
    source = provider.name
    total = max(1, sum(len(g) for g in groups.values()))
    done = 0
    for start, group in groups.items():
        since = f" since {start}" if start else " (whole history)"
        progress(0.05 + 0.6 * done / total, f"fetching {len(group)} symbol(s) from {provider.name}{since}")

        def fetch_progress(fraction: float, message: str, offset: int = done, size: int = len(group)) -> None:
            progress(0.05 + 0.6 * (offset + fraction * size) / total, message)

        data = provider.fetch(group, start=start, end=today, progress=fetch_progress)
        price_frames.append(data.prices)
        cap_frames.append(data.market_caps)
        if data.dividends is not None and len(data.dividends):
            dividend_frames.append(data.dividends)
        assets.extend(data.assets)
        skipped.update(data.skipped)
        generic.update(data.generic)
        source = data.source or source
        done += len(group)
    joined = ProviderData(
        pd.concat(price_frames, ignore_index=True) if price_frames else empty_prices(),
        pd.concat(cap_frames, ignore_index=True) if cap_frames else empty_market_caps(),
        assets,
        source,
        skipped=skipped,
        generic=frozenset(generic),
        dividends=pd.concat(dividend_frames, ignore_index=True) if dividend_frames else None,
    )
    return joined


def _asset_infos(session: Session, data: ProviderData) -> list[AssetInfo]:
    """The asset infos to store: a placeholder info (``data.generic``) only creates a new asset; a stored
    asset keeps its name, class and sector (typed on the Data page or imported) and takes the new source."""
    placeholders = {a.symbol for a in data.assets if a.symbol in data.generic}
    stored = (
        {row.symbol: row for row in session.scalars(select(Asset).where(Asset.symbol.in_(sorted(placeholders))))}
        if placeholders
        else {}
    )
    infos = []
    for info in data.assets:
        row = stored.get(info.symbol)
        if row is not None:
            # the column is a plain string holding an AssetClass (validated when stored, and again by AssetInfo)
            info = AssetInfo(
                symbol=row.symbol,
                name=row.name,
                asset_class=row.asset_class,  # type: ignore[arg-type]
                sector=row.sector,
                currency=row.currency,
                is_benchmark=row.is_benchmark,
                source=data.source,
            )
        infos.append(info)
    return infos


def _skipped_text(skipped: dict[str, str]) -> str:
    shown = [f"{symbol} ({reason})" for symbol, reason in sorted(skipped.items())[:5]]
    return "; ".join(shown) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")


#: Why no recompute follows a change when there is nothing to recompute (not a warning).
NO_ACTIVE_CONFIG = "no active strategy config"


def queue_recompute(actor: object = None) -> dict[str, object]:
    """Queue a compute job of the active config after prices changed; return what happened (JSON-ready).

    The job is queued through :func:`core.services.runs.enqueue` (so it is a run on the Tasks page) by the
    same actor, or by the system for the command line, the scheduler and start-up (``None``, ``"cli"``,
    ``"scheduler"``, ``"system"`` or a :class:`~core.services.access.SystemActor`). The workers run it: the
    app's embedded worker (SQLite queue, the default) or ``python -m core worker`` processes (REDIS_URL).

    Never raises: the prices are already stored. When the user who caused the change may no longer queue jobs
    (deactivated or demoted while their refresh ran), the system queues the recompute instead: prices that
    changed are always followed by a recompute. When there is no active config, or the queue refuses the job
    (QueueUnavailable: Redis down), the result says so (``queued`` False with the ``reason``) and a warning is
    logged; the callers add it to the run's warnings, and ``python -m core compute`` computes it by hand.
    """
    from core.errors import PermissionDenied
    from core.services import runs
    from core.services.access import RESERVED_USERNAMES, SystemActor
    from core.services.strategies import active_version

    name = username_of(actor)
    user = SystemActor((name or "system").lower()) if name is None or name.lower() in RESERVED_USERNAMES else actor
    try:
        active = active_version()
        if active is None:
            return {"queued": False, "reason": NO_ACTIVE_CONFIG}
        try:
            run_id = runs.enqueue("compute", {"config_id": active.id}, user=user)
        except PermissionDenied as exc:  # the user's account changed meanwhile: the index must still follow
            log.warning("recompute queued by the system: %s may no longer queue jobs (%s)", name, exc)
            run_id = runs.enqueue("compute", {"config_id": active.id}, user=SystemActor("system"))
    except AutoIndexError as exc:
        log.warning("prices changed but the recompute was not queued: %s", exc)
        return {"queued": False, "reason": str(exc)[:500]}
    return {"queued": True, "run_id": run_id, "config_id": active.id, "config": active.label}


def import_price_file(
    content: bytes,
    filename: str,
    *,
    actor: object = None,
    allow_new_symbols: bool = False,
    today: dt.date | None = None,
    recompute: bool = True,
) -> dict[str, object]:
    """Validate a CSV/XLSX price file as a whole and store it; ImportValidationError leaves the DB unchanged.

    Admins only (``actor`` checked on fresh state; None is the system, e.g. the CLI). An import writes prices,
    so it takes the ``refresh`` lock like a refresh: it waits for a running refresh, and a refresh waits for it.
    The file may carry ``market_cap`` or ``shares_outstanding`` (caps = close x shares) columns
    (:mod:`core.infra.providers.files`). When it changed prices or caps and ``recompute`` is set, a compute
    job of the active config is queued by the same actor (:func:`queue_recompute`); the summary's
    ``recompute`` says what happened (None when nothing changed).
    """
    from core.config import get_settings
    from core.infra.providers.files import parse_price_file
    from core.services.access import ADMIN_ONLY, check, resolve

    requested_by = actor

    check(actor, ADMIN_ONLY, action="importing prices")  # refuse before waiting for the lock
    with (
        hold(REFRESH, wait=True, timeout_s=REFRESH_LOCK_WAIT_S, holder=username_of(actor) or "system"),
        unit_of_work() as session,
    ):
        write_lock(session)
        actor = resolve(session, actor, ADMIN_ONLY, action="importing prices", lock=True).username
        known = set(session.scalars(select(Asset.symbol)).all())
        data = parse_price_file(
            content,
            filename,
            known_symbols=None if allow_new_symbols else known,
            today=today,
            max_bytes=get_settings().import_max_bytes,
        )
        new_symbols = sorted(set(data.prices["symbol"]) - known)
        assets = [AssetInfo(symbol=s, name=s, asset_class="other", source="file") for s in new_symbols]
        summary = prices.ingest(
            session,
            prices=data.prices,
            market_caps=data.market_caps,
            assets=assets,
            source="file",
            dividends=data.dividends,
        )
        if summary.changed:
            prices.mark_refreshed(session)
        audit.record(
            session,
            actor,
            "data.import",
            filename,
            {"rows": int(len(data.prices)), "new": summary.rows_new, "updated": summary.rows_updated},
        )
        session.commit()
    result = summary.as_dict()
    result["recompute"] = queue_recompute(requested_by) if recompute and summary.changed else None
    return result
