"""Storing and loading market data: assets, prices and market caps.

Writes are bulk and idempotent: one transaction per refresh, rows compared with
what is stored first, and only new or changed rows written with the database's
native upsert (``INSERT ... ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL;
on PostgreSQL the rows travel by ``COPY`` into a temporary table first).
"""
from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.models import Asset
from core.models.base import utcnow
from core.schemas.asset import AssetInfo

log = logging.getLogger(__name__)


@dataclass
class SymbolSummary:
    symbol: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    caps_new: int = 0
    caps_updated: int = 0
    first_date: str | None = None
    last_date: str | None = None
    gaps: int = 0


@dataclass
class IngestSummary:
    """What a refresh or import changed; ``per_symbol`` maps a symbol to its counts."""

    source: str
    assets_created: int = 0
    rows_new: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    caps_new: int = 0
    caps_updated: int = 0
    per_symbol: dict[str, SymbolSummary] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.rows_new or self.rows_updated or self.caps_new or self.caps_updated or self.assets_created)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "assets_created": self.assets_created, "rows_new": self.rows_new,
            "rows_updated": self.rows_updated, "rows_unchanged": self.rows_unchanged,
            "caps_new": self.caps_new, "caps_updated": self.caps_updated,
            "gaps": int(sum(s.gaps for s in self.per_symbol.values())),
            "per_symbol": {k: vars(v) for k, v in self.per_symbol.items()},
        }


def upsert_assets(session: Session, assets: Iterable[AssetInfo], *, source: str | None = None) -> tuple[dict[str, int], int]:
    """Insert unknown assets and refresh the metadata of known ones; return ({symbol: id}, created)."""
    infos = {a.symbol: a for a in assets}
    existing = {a.symbol: a for a in session.scalars(select(Asset).where(Asset.symbol.in_(list(infos))))} if infos else {}
    created = 0
    for symbol, info in infos.items():
        row = existing.get(symbol)
        if row is None:
            row = Asset(symbol=symbol, name=info.name, asset_class=info.asset_class, sector=info.sector,
                        currency=info.currency, is_benchmark=info.is_benchmark, source=source or info.source)
            session.add(row)
            created += 1
        else:
            row.name, row.asset_class, row.sector = info.name, info.asset_class, info.sector
            row.currency, row.is_benchmark = info.currency, info.is_benchmark
            row.source = source or info.source
    session.flush()
    return asset_ids(session), created


def asset_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Asset.symbol, Asset.id)).all())


def _existing(session: Session, table: str, column: str, ids: list[int], start: str, end: str) -> pd.DataFrame:
    if not ids:
        return pd.DataFrame({"asset_id": np.array([], dtype=np.int64), "date": np.array([], dtype=object),
                             column: np.array([], dtype=float)})
    conn = session.connection()
    placeholders = ",".join(str(int(i)) for i in ids)
    rows = conn.exec_driver_sql(
        f"SELECT asset_id, date, {column} FROM {table} WHERE asset_id IN ({placeholders}) "
        f"AND date >= %(s)s AND date <= %(e)s" if conn.dialect.name == "postgresql" else
        f"SELECT asset_id, date, {column} FROM {table} WHERE asset_id IN ({placeholders}) AND date >= ? AND date <= ?",
        {"s": start, "e": end} if conn.dialect.name == "postgresql" else (start, end),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["asset_id", "date", column])
    if len(frame):
        frame["date"] = frame["date"].astype(str)
        frame["asset_id"] = frame["asset_id"].astype(np.int64)
    return frame


def _write_rows(session: Session, table: str, column: str, rows: pd.DataFrame) -> None:
    """Upsert (asset_id, date, value) rows with the dialect's native ON CONFLICT."""
    if rows.empty:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection  # psycopg connection inside the session's transaction
        tmp = f"tmp_{table}"
        with raw.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (asset_id integer, date date, {column} double precision) ON COMMIT DELETE ROWS")
            cur.execute(f"TRUNCATE {tmp}")
            buf = io.StringIO()
            rows[["asset_id", "date", column]].to_csv(buf, index=False, header=False, float_format="%.17g")
            buf.seek(0)
            with cur.copy(f"COPY {tmp} (asset_id, date, {column}) FROM STDIN WITH (FORMAT csv)") as copy:
                while chunk := buf.read(1 << 20):
                    copy.write(chunk)
            cur.execute(
                f"INSERT INTO {table} (asset_id, date, {column}) SELECT asset_id, date, {column} FROM {tmp} "
                f"ON CONFLICT (asset_id, date) DO UPDATE SET {column} = EXCLUDED.{column} "
                f"WHERE {table}.{column} IS DISTINCT FROM EXCLUDED.{column}"
            )
            cur.execute(f"TRUNCATE {tmp}")
    else:
        dbapi = conn.connection.driver_connection
        data = list(zip(rows["asset_id"].tolist(), rows["date"].tolist(), rows[column].tolist()))
        dbapi.executemany(
            f"INSERT INTO {table} (asset_id, date, {column}) VALUES (?, ?, ?) "
            f"ON CONFLICT (asset_id, date) DO UPDATE SET {column} = excluded.{column} "
            f"WHERE {table}.{column} IS NOT excluded.{column}",
            data,
        )


def _diff(session: Session, table: str, column: str, incoming: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split incoming rows into (new, changed, unchanged) against what is stored."""
    ids = sorted(incoming["asset_id"].unique().tolist())
    stored = _existing(session, table, column, ids, incoming["date"].min(), incoming["date"].max())
    if stored.empty:
        return incoming, incoming.iloc[0:0], incoming.iloc[0:0]
    merged = incoming.merge(stored, on=["asset_id", "date"], how="left", suffixes=("", "_old"), indicator=True)
    is_new = (merged["_merge"] == "left_only").to_numpy()
    old = merged[f"{column}_old"].to_numpy()
    is_changed = ~is_new & (merged[column].to_numpy() != old)
    cols = ["asset_id", "date", column]
    return merged.loc[is_new, cols], merged.loc[is_changed, cols], merged.loc[~is_new & ~is_changed, cols]


def _prepare(frame: pd.DataFrame, column: str, ids: dict[str, int]) -> pd.DataFrame:
    out = pd.DataFrame({
        "symbol": frame["symbol"].astype(str).to_numpy(),
        "date": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
        column: frame[column].astype(float).to_numpy(),
    })
    out["asset_id"] = out["symbol"].map(ids)
    missing = out.loc[out["asset_id"].isna(), "symbol"].unique().tolist()
    if missing:
        raise KeyError(f"unknown symbols: {', '.join(map(str, missing[:10]))}")
    out["asset_id"] = out["asset_id"].astype(np.int64)
    return out.drop_duplicates(["asset_id", "date"], keep="last")


def _gaps(dates: pd.Series) -> int:
    """Business days missing between a symbol's first and last stored date in this batch."""
    if len(dates) < 2:
        return 0
    d = pd.to_datetime(dates)
    expected = np.busday_count(d.min().date(), d.max().date()) + 1
    return int(max(expected - d.nunique(), 0))


def ingest(session: Session, *, prices: pd.DataFrame, market_caps: pd.DataFrame | None = None,
           assets: Iterable[AssetInfo] = (), source: str = "demo") -> IngestSummary:
    """Upsert assets, prices and caps inside the caller's transaction (the caller commits).

    ``prices``: long frame [date, symbol, close]; ``market_caps``: [date, symbol, market_cap].
    Returns counts of new / updated / unchanged rows per symbol and business-day gaps.
    """
    summary = IngestSummary(source=source)
    ids, summary.assets_created = upsert_assets(session, assets, source=source)
    if prices is not None and len(prices):
        incoming = _prepare(prices, "close", ids)
        new, changed, same = _diff(session, "prices", "close", incoming)
        _write_rows(session, "prices", "close", pd.concat([new, changed]))
        summary.rows_new, summary.rows_updated, summary.rows_unchanged = len(new), len(changed), len(same)
        by_id = {v: k for k, v in ids.items()}
        counts = pd.DataFrame({
            "new": new.groupby("asset_id").size(), "updated": changed.groupby("asset_id").size(),
            "unchanged": same.groupby("asset_id").size(),
        }).fillna(0).astype(int)
        span = incoming.groupby("asset_id")["date"].agg(["min", "max", "count"])
        for asset_id, row in span.iterrows():
            symbol = by_id[int(asset_id)]
            c = counts.loc[asset_id] if asset_id in counts.index else None
            first, last = dt.date.fromisoformat(row["min"]), dt.date.fromisoformat(row["max"])
            expected = int(np.busday_count(first, last)) + 1
            summary.per_symbol[symbol] = SymbolSummary(
                symbol=symbol,
                new=int(c["new"]) if c is not None else 0,
                updated=int(c["updated"]) if c is not None else 0,
                unchanged=int(c["unchanged"]) if c is not None else 0,
                first_date=row["min"], last_date=row["max"], gaps=max(expected - int(row["count"]), 0),
            )
    if market_caps is not None and len(market_caps):
        incoming = _prepare(market_caps, "market_cap", ids)
        new, changed, _same = _diff(session, "market_caps", "market_cap", incoming)
        _write_rows(session, "market_caps", "market_cap", pd.concat([new, changed]))
        summary.caps_new, summary.caps_updated = len(new), len(changed)
        by_id = {v: k for k, v in ids.items()}
        for asset_id, n in new.groupby("asset_id").size().items():
            summary.per_symbol.setdefault(by_id[int(asset_id)], SymbolSummary(by_id[int(asset_id)])).caps_new = int(n)
        for asset_id, n in changed.groupby("asset_id").size().items():
            summary.per_symbol.setdefault(by_id[int(asset_id)], SymbolSummary(by_id[int(asset_id)])).caps_updated = int(n)
    return summary


def _read_long(session: Session, table: str, column: str, symbols: list[str] | None,
               start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    sql = (f"SELECT a.symbol, p.date, p.{column} FROM {table} p JOIN assets a ON a.id = p.asset_id WHERE 1=1")
    params: dict[str, object] = {}
    if symbols is not None:
        names = [f"s{i}" for i in range(len(symbols))]
        sql += f" AND a.symbol IN ({','.join(':' + n for n in names)})" if symbols else " AND 1=0"
        params.update(dict(zip(names, symbols)))
    if start is not None:
        sql += " AND p.date >= :start"
        params["start"] = start.isoformat()
    if end is not None:
        sql += " AND p.date <= :end"
        params["end"] = end.isoformat()
    rows = session.execute(text(sql), params).fetchall()
    return pd.DataFrame(rows, columns=["symbol", "date", column])


def _pivot(long: pd.DataFrame, column: str) -> pd.DataFrame:
    if long.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype=float)
    dates = pd.to_datetime(long["date"].astype(str))
    date_codes, date_uniques = pd.factorize(dates, sort=True)
    sym_codes, sym_uniques = pd.factorize(long["symbol"], sort=True)
    matrix = np.full((len(date_uniques), len(sym_uniques)), np.nan)
    matrix[date_codes, sym_codes] = long[column].to_numpy(dtype=float)
    out = pd.DataFrame(matrix, index=pd.DatetimeIndex(date_uniques, name="date"),
                       columns=pd.Index(sym_uniques, name="symbol"))
    return out


def load_price_matrix(session: Session, symbols: list[str] | None = None, start: dt.date | None = None,
                      end: dt.date | None = None) -> pd.DataFrame:
    """Daily closes as a frame dates × symbols (NaN where an asset has no price)."""
    return _pivot(_read_long(session, "prices", "close", symbols, start, end), "close")


def load_market_caps(session: Session, symbols: list[str] | None = None, start: dt.date | None = None,
                     end: dt.date | None = None) -> pd.DataFrame:
    """Market caps as a frame dates × symbols (NaN where unknown)."""
    return _pivot(_read_long(session, "market_caps", "market_cap", symbols, start, end), "market_cap")


def last_price_dates(session: Session) -> dict[str, dt.date]:
    """The newest stored price date per symbol (for incremental refreshes)."""
    rows = session.execute(text(
        "SELECT a.symbol, MAX(p.date) FROM prices p JOIN assets a ON a.id = p.asset_id GROUP BY a.symbol"
    )).fetchall()
    return {s: (d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))) for s, d in rows}


def mark_refreshed(session: Session) -> None:
    """Bump the data version so caches keyed on it are invalidated."""
    from core.services import app_settings

    app_settings.bump_data_version(session, at=utcnow())
