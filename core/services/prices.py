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
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from core.models import Asset, Price
from core.models.base import utcnow
from core.schemas.asset import AssetInfo

log = logging.getLogger(__name__)


def per_asset(aggregate: Any) -> Any:
    """``aggregate`` (e.g. ``func.max(Price.date)``) over one asset's prices, as a correlated scalar subquery to
    select beside :class:`Asset` columns. SQLite and PostgreSQL answer min and max from the ``(asset_id, date)``
    primary key per asset instead of grouping every price (500 assets x 10 years: about 4x faster)."""
    return select(aggregate).where(Price.asset_id == Asset.id).correlate(Asset).scalar_subquery()


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
    dividends_new: int = 0
    dividends_updated: int = 0
    per_symbol: dict[str, SymbolSummary] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(
            self.rows_new
            or self.rows_updated
            or self.caps_new
            or self.caps_updated
            or self.assets_created
            or self.dividends_new
            or self.dividends_updated
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "assets_created": self.assets_created,
            "rows_new": self.rows_new,
            "rows_updated": self.rows_updated,
            "rows_unchanged": self.rows_unchanged,
            "caps_new": self.caps_new,
            "caps_updated": self.caps_updated,
            "gaps": int(sum(s.gaps for s in self.per_symbol.values())),
            "per_symbol": {k: vars(v) for k, v in self.per_symbol.items()},
        }


def insert_assets_if_absent(session: Session, rows: list[dict[str, object]]) -> int:
    """Create the assets of ``rows`` (column values; ``symbol`` required) whose symbol is not stored yet; return
    how many were created.

    ``INSERT ... ON CONFLICT (symbol) DO NOTHING`` on both dialects: when another transaction creates the same
    symbol at the same moment (two refreshes, a seeding, an import), one row is created and nobody gets an
    IntegrityError (PostgreSQL makes the second insert wait for the first transaction, then skip the row).
    """
    if not rows:
        return 0
    now = utcnow()
    values = [{"created_at": now, **row} for row in rows]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(Asset).values(values).on_conflict_do_nothing(index_elements=["symbol"]).returning(Asset.id)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(Asset).values(values).on_conflict_do_nothing(index_elements=["symbol"]).returning(Asset.id)
    return len(session.execute(stmt).all())


def upsert_assets(
    session: Session, assets: Iterable[AssetInfo], *, source: str | None = None
) -> tuple[dict[str, int], int]:
    """Insert unknown assets (idempotently, see :func:`insert_assets_if_absent`) and refresh the metadata of
    known ones; return ({symbol: id}, created)."""
    infos = {a.symbol: a for a in assets}
    existing = (
        {a.symbol: a for a in session.scalars(select(Asset).where(Asset.symbol.in_(list(infos))))} if infos else {}
    )
    new_rows: list[dict[str, object]] = []
    for symbol, info in infos.items():
        row = existing.get(symbol)
        if row is None:
            new_rows.append(
                {
                    "symbol": symbol,
                    "name": info.name,
                    "asset_class": info.asset_class,
                    "sector": info.sector,
                    "currency": info.currency,
                    "is_benchmark": info.is_benchmark,
                    "is_active": True,
                    "source": source or info.source,
                }
            )
        else:
            row.name, row.asset_class, row.sector = info.name, info.asset_class, info.sector
            row.currency, row.is_benchmark = info.currency, info.is_benchmark
            row.source = source or info.source
    session.flush()
    created = insert_assets_if_absent(session, new_rows)
    return asset_ids(session), created


def asset_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Asset.symbol, Asset.id)).all())


_EPOCH = np.datetime64("1970-01-01", "D")


def _day_sql(dialect: str, column: str = "date") -> str:
    """SQL turning a DATE column into whole days since 1970-01-01 (fast to fetch and compare)."""
    if dialect == "postgresql":
        return f"({column} - DATE '1970-01-01')"
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def _driver_connection(conn: Connection) -> Any:
    """The driver's own connection (psycopg or sqlite3) under ``conn``, for COPY and executemany."""
    driver = conn.connection.driver_connection
    if driver is None:  # only once the pooled connection has been invalidated
        raise RuntimeError("the database connection is no longer usable")
    return driver


#: SQLite reads pack (asset id, day) as ``asset_id << 23 | day + 2**22``: days from about 9,500 BC to 13,400 AD.
_DAY_BITS = 23
_DAY_OFFSET = 1 << 22


def _fetch_numeric(
    session: Session, sql: str, params: tuple[Any, ...] | dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a query returning (asset_id, day, value) rows as three numpy arrays, at driver speed.

    PostgreSQL streams the rows with COPY ... TO STDOUT; SQLite uses the raw cursor.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = _driver_connection(conn)
        buf = io.BytesIO()
        with raw.cursor() as cur:
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                for block in copy:
                    buf.write(block)
        if buf.tell() == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, float)
        buf.seek(0)
        frame = pd.read_csv(
            buf, header=None, names=["a", "d", "v"], dtype={"a": np.int64, "d": np.int64, "v": float}
        )  # pandas 3's default parser round-trips floats
        return frame["a"].to_numpy(), frame["d"].to_numpy(), frame["v"].to_numpy()
    # two columns, the asset id and day packed into one integer (fewer Python objects per row), straight from the
    # cursor into typed arrays (no list of row tuples); SQLite flattens the CTE into the query
    packed = f"WITH q(a, d, v) AS ({sql}) SELECT (a << {_DAY_BITS}) + (d + {_DAY_OFFSET}), v FROM q"
    rows = np.fromiter(_driver_connection(conn).execute(packed, params), dtype=[("k", np.int64), ("v", float)])
    keys = rows["k"]
    return keys >> _DAY_BITS, (keys & ((1 << _DAY_BITS) - 1)) - _DAY_OFFSET, rows["v"].copy()


def _key(asset_id: np.ndarray, day: np.ndarray) -> np.ndarray:
    return (asset_id.astype(np.int64) << 22) | (day.astype(np.int64) + 1_000_000)


def _existing(
    session: Session, table: str, column: str, ids: list[int], start_day: int, end_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stored (key, value) pairs for the assets and day range, keys sorted."""
    if not ids:
        return np.empty(0, np.int64), np.empty(0, float)
    dialect = session.connection().dialect.name
    id_list = ",".join(str(int(i)) for i in ids)
    start = str(_EPOCH + np.timedelta64(int(start_day), "D"))
    end = str(_EPOCH + np.timedelta64(int(end_day), "D"))
    if dialect == "postgresql":
        sql = (
            f"SELECT asset_id, {_day_sql(dialect)}, {column} FROM {table} WHERE asset_id IN ({id_list}) "
            f"AND date >= %s AND date <= %s"
        )
    else:
        sql = (
            f"SELECT asset_id, {_day_sql(dialect)}, {column} FROM {table} WHERE asset_id IN ({id_list}) "
            f"AND date >= ? AND date <= ?"
        )
    a, d, v = _fetch_numeric(session, sql, (start, end))
    keys = _key(a, d)
    order = np.argsort(keys, kind="stable")
    return keys[order], v[order]


def _iso_dates(day: np.ndarray) -> np.ndarray:
    """ISO date strings for day numbers, formatting each distinct day once (thousands, not millions)."""
    uniques, inverse = np.unique(day, return_inverse=True)
    return (uniques.astype("timedelta64[D]") + _EPOCH).astype(str).astype(object)[inverse]


def _copy_csv(rows: pd.DataFrame, column: str) -> bytes:
    """COPY's CSV payload, written by Arrow's C++ writer (dates as ISO, floats as shortest round-trip text)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa.table(
        {
            "asset_id": pa.array(rows["asset_id"].to_numpy(np.int64)),
            "date": pa.array(rows["day"].to_numpy(np.int32)).cast(pa.date32()),
            column: pa.array(rows[column].to_numpy(float)),
        }
    )
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def _write_rows(session: Session, table: str, column: str, rows: pd.DataFrame, *, all_new: bool = False) -> None:
    """Upsert (asset_id, day, value) rows with the dialect's native ON CONFLICT.

    On PostgreSQL rows known to be new are COPYed straight into the table inside a savepoint (the fast path);
    if another writer inserted them meanwhile, the savepoint is rolled back and the upsert path runs instead.
    """
    if rows.empty:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = _driver_connection(conn)
        payload = _copy_csv(rows, column)
        if all_new:
            import psycopg

            try:
                with raw.transaction():  # a savepoint inside the session's transaction
                    with raw.cursor() as cur:
                        with cur.copy(f"COPY {table} (asset_id, date, {column}) FROM STDIN WITH (FORMAT csv)") as copy:
                            copy.write(payload)
                return
            except psycopg.errors.UniqueViolation:
                log.info("concurrent insert into %s; falling back to ON CONFLICT upsert", table)
        tmp = f"tmp_{table}"
        with raw.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (asset_id integer, date date, {column} double precision) ON COMMIT DELETE ROWS"
            )
            cur.execute(f"TRUNCATE {tmp}")
            with cur.copy(f"COPY {tmp} (asset_id, date, {column}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(payload)
            cur.execute(
                f"INSERT INTO {table} (asset_id, date, {column}) SELECT asset_id, date, {column} FROM {tmp} "
                f"ON CONFLICT (asset_id, date) DO UPDATE SET {column} = EXCLUDED.{column} "
                f"WHERE {table}.{column} IS DISTINCT FROM EXCLUDED.{column}"
            )  # the temporary rows go at commit (ON COMMIT DELETE ROWS)
    else:
        dbapi = _driver_connection(conn)
        dates = _iso_dates(rows["day"].to_numpy()).tolist()
        data = zip(rows["asset_id"].tolist(), dates, rows[column].tolist())
        dbapi.executemany(
            f"INSERT INTO {table} (asset_id, date, {column}) VALUES (?, ?, ?) "
            f"ON CONFLICT (asset_id, date) DO UPDATE SET {column} = excluded.{column} "
            f"WHERE {table}.{column} IS NOT excluded.{column}",
            data,
        )


def _diff(
    session: Session, table: str, column: str, incoming: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split incoming rows into (new, changed, unchanged) against what is stored."""
    ids = np.unique(incoming["asset_id"].to_numpy()).tolist()
    days = incoming["day"].to_numpy()
    stored_keys, stored_values = _existing(session, table, column, ids, int(days.min()), int(days.max()))
    if stored_keys.size == 0:
        return incoming, incoming.iloc[0:0], incoming.iloc[0:0]
    keys = _key(incoming["asset_id"].to_numpy(), days)
    pos = np.searchsorted(stored_keys, keys)
    pos_clipped = np.minimum(pos, stored_keys.size - 1)
    found = stored_keys[pos_clipped] == keys
    is_changed = found & (stored_values[pos_clipped] != incoming[column].to_numpy())
    is_new = ~found
    return incoming[is_new], incoming[is_changed], incoming[found & ~is_changed]


def _prepare(frame: pd.DataFrame, column: str, ids: dict[str, int]) -> pd.DataFrame:
    """Long frame -> [symbol, asset_id, day (days since 1970-01-01), value], one row per (asset, day)."""
    dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    codes, uniques = pd.factorize(frame["symbol"].astype(str))
    missing = [str(u) for u in uniques if u not in ids]
    if missing:
        raise KeyError(f"unknown symbols: {', '.join(missing[:10])}")
    id_of_code = np.array([ids[u] for u in uniques], dtype=np.int64)
    out = pd.DataFrame(
        {
            "asset_id": id_of_code[codes],
            "day": (dates - _EPOCH).astype(np.int64),
            column: frame[column].astype(float).to_numpy(),
        }
    )
    return out.drop_duplicates(["asset_id", "day"], keep="last")


def ingest(
    session: Session,
    *,
    prices: pd.DataFrame,
    market_caps: pd.DataFrame | None = None,
    assets: Iterable[AssetInfo] = (),
    source: str = "demo",
    dividends: pd.DataFrame | None = None,
) -> IngestSummary:
    """Upsert assets, prices and caps inside the caller's transaction (the caller commits).

    ``prices``: long frame [date, symbol, close]; ``market_caps``: [date, symbol, market_cap]; ``dividends``:
    [date, symbol, dividend] (cash per share going ex that day; the total-return basis reinvests it).
    Returns counts of new / updated / unchanged rows per symbol and business-day gaps.
    """
    summary = IngestSummary(source=source)
    ids, summary.assets_created = upsert_assets(session, assets, source=source)
    if prices is not None and len(prices):
        incoming = _prepare(prices, "close", ids)
        new, changed, same = _diff(session, "prices", "close", incoming)
        _write_rows(session, "prices", "close", new, all_new=True)
        _write_rows(session, "prices", "close", changed)
        summary.rows_new, summary.rows_updated, summary.rows_unchanged = len(new), len(changed), len(same)
        by_id = {v: k for k, v in ids.items()}
        counts = (
            pd.DataFrame(
                {
                    "new": new.groupby("asset_id").size(),
                    "updated": changed.groupby("asset_id").size(),
                    "unchanged": same.groupby("asset_id").size(),
                }
            )
            .fillna(0)
            .astype(int)
        )
        span = incoming.groupby("asset_id")["day"].agg(["min", "max", "count"])
        for asset_id, row in span.iterrows():
            symbol = by_id[int(asset_id)]
            c = counts.loc[asset_id] if asset_id in counts.index else None
            first = (_EPOCH + np.timedelta64(int(row["min"]), "D")).astype(dt.date)
            last = (_EPOCH + np.timedelta64(int(row["max"]), "D")).astype(dt.date)
            expected = int(np.busday_count(first, last)) + 1
            summary.per_symbol[symbol] = SymbolSummary(
                symbol=symbol,
                new=int(c["new"]) if c is not None else 0,
                updated=int(c["updated"]) if c is not None else 0,
                unchanged=int(c["unchanged"]) if c is not None else 0,
                first_date=first.isoformat(),
                last_date=last.isoformat(),
                gaps=max(expected - int(row["count"]), 0),
            )
    if market_caps is not None and len(market_caps):
        incoming = _prepare(market_caps, "market_cap", ids)
        new, changed, _same = _diff(session, "market_caps", "market_cap", incoming)
        _write_rows(session, "market_caps", "market_cap", new, all_new=True)
        _write_rows(session, "market_caps", "market_cap", changed)
        summary.caps_new, summary.caps_updated = len(new), len(changed)
        by_id = {v: k for k, v in ids.items()}
        for asset_id, n in new.groupby("asset_id").size().items():
            summary.per_symbol.setdefault(by_id[int(asset_id)], SymbolSummary(by_id[int(asset_id)])).caps_new = int(n)
        for asset_id, n in changed.groupby("asset_id").size().items():
            summary.per_symbol.setdefault(by_id[int(asset_id)], SymbolSummary(by_id[int(asset_id)])).caps_updated = int(
                n
            )
    if dividends is not None and len(dividends):
        incoming = _prepare(dividends, "dividend", ids)
        new, changed, _same = _diff(session, "dividends", "dividend", incoming)
        _write_rows(session, "dividends", "dividend", new, all_new=True)
        _write_rows(session, "dividends", "dividend", changed)
        summary.dividends_new, summary.dividends_updated = len(new), len(changed)
    return summary


def _read_matrix(
    session: Session, table: str, column: str, symbols: list[str] | None, start: dt.date | None, end: dt.date | None
) -> pd.DataFrame:
    """Read (asset, day, value) at driver speed and scatter it into a dates × symbols matrix."""
    dialect = session.connection().dialect.name
    id_by_symbol = asset_ids(session)
    if symbols is not None:
        id_by_symbol = {s: i for s, i in id_by_symbol.items() if s in set(symbols)}
    if not id_by_symbol:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), columns=pd.Index([], name="symbol"), dtype=float)
    mark = "%s" if dialect == "postgresql" else "?"
    sql = f"SELECT asset_id, {_day_sql(dialect)}, {column} FROM {table}"
    where, params = [], []
    if symbols is not None:
        where.append(f"asset_id IN ({','.join(str(i) for i in id_by_symbol.values())})")
    if start is not None:
        where.append(f"date >= {mark}")
        params.append(start.isoformat())
    if end is not None:
        where.append(f"date <= {mark}")
        params.append(end.isoformat())
    if where:
        sql += " WHERE " + " AND ".join(where)
    a, d, v = _fetch_numeric(session, sql, tuple(params))
    symbol_by_id = {i: s for s, i in id_by_symbol.items()}
    present_ids = _distinct(a)
    columns = sorted(symbol_by_id[int(i)] for i in present_ids if int(i) in symbol_by_id)
    if not columns:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), columns=pd.Index([], name="symbol"), dtype=float)
    col_of_id = np.full(int(present_ids.max()) + 1, -1, dtype=np.int64)
    for pos, symbol in enumerate(columns):
        col_of_id[id_by_symbol[symbol]] = pos
    cols = col_of_id[a]
    keep = cols >= 0
    if not keep.all():
        d, v, cols = d[keep], v[keep], cols[keep]
    days, day_codes = _codes(d)
    matrix = np.full((days.size, len(columns)), np.nan)
    matrix[day_codes, cols] = v
    index = pd.DatetimeIndex((days.astype("timedelta64[D]") + _EPOCH).astype("datetime64[ns]"), name="date")
    return pd.DataFrame(matrix, index=index, columns=pd.Index(columns, name="symbol"))


#: Widest span of day numbers (or asset ids) indexed by a lookup table rather than sorted (about 270 years).
_DENSE_SPAN = 100_000


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of small non-negative integers (asset ids): ``np.unique`` without the sort."""
    if values.size == 0 or int(values.min()) < 0 or int(values.max()) >= _DENSE_SPAN:
        return np.unique(values)
    return np.flatnonzero(np.bincount(values))


def _codes(day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(day, return_inverse=True)`` for day numbers, by a lookup table over their span (one pass, no
    sort of a million rows); the same arrays."""
    if day.size == 0:
        return np.unique(day, return_inverse=True)
    lo, hi = int(day.min()), int(day.max())
    if hi - lo >= _DENSE_SPAN:
        return np.unique(day, return_inverse=True)
    offset = day - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[offset] = True
    code_of = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present) + lo, code_of[offset]


def load_price_matrix(
    session: Session, symbols: list[str] | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    """Daily closes as a frame dates × symbols (NaN where an asset has no price)."""
    return _read_matrix(session, "prices", "close", symbols, start, end)


def load_market_caps(
    session: Session, symbols: list[str] | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    """Market caps as a frame dates × symbols (NaN where unknown)."""
    return _read_matrix(session, "market_caps", "market_cap", symbols, start, end)


def load_dividends(
    session: Session, symbols: list[str] | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    """Cash dividends per share as a frame ex-dates × symbols (NaN: none that day); empty when none stored."""
    return _read_matrix(session, "dividends", "dividend", symbols, start, end)


def last_price_dates(session: Session) -> dict[str, dt.date]:
    """The newest stored price date per symbol (for incremental refreshes)."""
    rows = session.execute(
        text("SELECT a.symbol, MAX(p.date) FROM prices p JOIN assets a ON a.id = p.asset_id GROUP BY a.symbol")
    ).fetchall()
    return {s: (d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))) for s, d in rows}


def mark_refreshed(session: Session) -> None:
    """Bump the data version so caches keyed on it are invalidated."""
    from core.services import app_settings

    app_settings.bump_data_version(session, at=utcnow())
