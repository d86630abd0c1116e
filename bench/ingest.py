"""Ingest and load benchmarks (issue: foundation). Prints figures; not a timed test.

    python bench/ingest.py [--assets 500] [--years 10] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Measures, in one run and on the same rows:
1. SQLite: our ingest (diff + native ON CONFLICT upsert) vs a plain sqlite3 executemany INSERT into an
   equivalent table; target ratio <= 1.5.
2. PostgreSQL: our ingest (COPY to a temp table + INSERT ... ON CONFLICT) vs a plain COPY into an equivalent
   table; target ratio <= 1.5.
3. Loading the full price matrix vs a plain pandas read_sql + pivot; target ratio <= 1.5.
4. Re-running the refresh with nothing changed vs the first ingest; target < 10 %.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402


def _reset(env: dict[str, str]) -> None:
    os.environ.update(env)
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    reset_engine_cache()
    reset_settings_cache()


def _ours(data) -> tuple[float, float, float, pd.DataFrame]:  # type: ignore[no-untyped-def]
    from core.db import migrate, unit_of_work
    from core.services import prices

    migrate(timeout_s=10)
    t0 = time.perf_counter()
    with unit_of_work() as s:
        summary = prices.ingest(s, prices=data.prices, assets=data.assets, source="demo")
        s.commit()
    first = time.perf_counter() - t0
    assert summary.rows_new == len(data.prices), summary.rows_new
    t0 = time.perf_counter()
    with unit_of_work() as s:
        again = prices.ingest(s, prices=data.prices, assets=data.assets, source="demo")
        s.commit()
    rerun = time.perf_counter() - t0
    assert again.rows_new == 0 and again.rows_updated == 0
    t0 = time.perf_counter()
    with unit_of_work() as s:
        matrix = prices.load_price_matrix(s)
    load = time.perf_counter() - t0
    # what `python -m core refresh` does by default: incremental, only dates after the newest stored one
    from core.infra.providers.demo import DemoProvider
    from core.services.refresh import refresh_prices

    end = matrix.index[-1].date()
    provider = DemoProvider(seed=7, n_assets=len(data.assets), start=matrix.index[0].date(), end=end, today=end)
    t0 = time.perf_counter()
    summary = refresh_prices("demo", provider=provider, today=end)
    incremental = time.perf_counter() - t0
    assert summary["rows_new"] == 0 and summary["rows_updated"] == 0, summary
    return first, rerun, load, matrix, incremental


def _baseline_load(url: str) -> tuple[float, pd.DataFrame]:
    engine = create_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        frame = pd.read_sql(
            text("SELECT a.symbol, p.date, p.close FROM prices p JOIN assets a ON a.id = p.asset_id"), conn
        )
    pivot = frame.pivot(index="date", columns="symbol", values="close")
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed, pivot


def bench_sqlite(data, rows: list[tuple]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    tmp = tempfile.mkdtemp(prefix="autoindex-bench-")
    _reset({"DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp}/bench.db"})
    first, rerun, load, matrix, incremental = _ours(data)

    conn = sqlite3.connect(f"{tmp}/plain.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")  # equivalent table: same keys, index and foreign key as ours
    conn.execute("CREATE TABLE assets (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO assets (id) VALUES (?)", [(i,) for i in sorted({r[0] for r in rows})])
    conn.commit()
    conn.execute(
        "CREATE TABLE prices (asset_id INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE, "
        "date DATE NOT NULL, close FLOAT NOT NULL, PRIMARY KEY (asset_id, date))"
    )
    conn.execute("CREATE INDEX ix_prices_date ON prices (date)")
    t0 = time.perf_counter()
    conn.executemany("INSERT INTO prices (asset_id, date, close) VALUES (?, ?, ?)", rows)
    conn.commit()
    plain = time.perf_counter() - t0
    conn.close()
    base_load, pivot = _baseline_load(f"sqlite:///{tmp}/bench.db")
    assert matrix.shape == pivot.shape, (matrix.shape, pivot.shape)
    return {
        "ours": first,
        "plain": plain,
        "rerun": rerun,
        "load": load,
        "base_load": base_load,
        "incremental": incremental,
    }


def bench_postgres(data, rows: list[tuple], admin_url: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    name = f"autoindex_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        tmp = tempfile.mkdtemp(prefix="autoindex-bench-")
        _reset({"DATA_DIR": tmp, "DATABASE_URL": url})
        first, rerun, load, matrix, incremental = _ours(data)
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            # equivalent table: same keys, index and foreign key as ours (the FK check costs per row)
            conn.execute("CREATE TABLE plain_assets (id integer PRIMARY KEY)")
            conn.execute(f"INSERT INTO plain_assets (id) SELECT generate_series(1, {len({r[0] for r in rows})})")
            conn.execute(
                "CREATE TABLE plain_prices (asset_id integer NOT NULL REFERENCES plain_assets (id) "
                "ON DELETE CASCADE, date date NOT NULL, close double precision NOT NULL, "
                "PRIMARY KEY (asset_id, date))"
            )
            conn.execute("CREATE INDEX ix_plain_prices_date ON plain_prices (date)")
            conn.commit()
            t0 = time.perf_counter()  # serialising the rows to COPY's CSV is part of a plain COPY's work
            buf = io.StringIO()
            pd.DataFrame(rows).to_csv(buf, index=False, header=False)
            buf.seek(0)
            with conn.cursor() as cur:
                with cur.copy("COPY plain_prices (asset_id, date, close) FROM STDIN WITH (FORMAT csv)") as copy:
                    while chunk := buf.read(1 << 20):
                        copy.write(chunk)
            conn.commit()
            plain = time.perf_counter() - t0
        base_load, pivot = _baseline_load(url)
        assert matrix.shape == pivot.shape
        return {
            "ours": first,
            "plain": plain,
            "rerun": rerun,
            "load": load,
            "base_load": base_load,
            "incremental": incremental,
        }
    finally:
        from core.db import reset_engine_cache

        reset_engine_cache()
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()

    from core.infra.providers.demo import DemoProvider

    end = dt.date(2025, 12, 31)
    start = end - dt.timedelta(days=int(365.25 * args.years))
    t0 = time.perf_counter()
    data = DemoProvider(seed=7, n_assets=args.assets, start=start, end=end, today=end).fetch(None, start=start, end=end)
    gen = time.perf_counter() - t0
    ids = {a.symbol: i + 1 for i, a in enumerate(sorted(data.assets, key=lambda a: a.symbol))}
    rows = list(
        zip(
            data.prices["symbol"].map(ids).tolist(),
            pd.to_datetime(data.prices["date"]).dt.strftime("%Y-%m-%d").tolist(),
            data.prices["close"].astype(float).tolist(),
        )
    )
    print(f"data: {len(data.assets)} assets, {len(rows):,} price rows (generated in {gen:.2f} s)")

    results = {"SQLite": bench_sqlite(data, rows)}
    if not args.skip_pg:
        results["PostgreSQL"] = bench_postgres(data, rows, args.pg)
    baseline_name = {"SQLite": "plain executemany", "PostgreSQL": "plain COPY"}
    for name, r in results.items():
        print(f"\n{name}")
        print(
            f"  ingest (ours)           {r['ours']:7.2f} s   vs {baseline_name[name]} {r['plain']:.2f} s   "
            f"ratio {r['ours'] / r['plain']:.2f} (target <= 1.5)"
        )
        print(
            f"  refresh re-run, nothing changed (incremental, the default)"
            f" {r['incremental']:5.2f} s = {100 * r['incremental'] / r['ours']:.1f} % of first ingest (target < 10 %)"
        )
        print(
            f"  full re-ingest of every row, nothing changed {r['rerun']:5.2f} s = "
            f"{100 * r['rerun'] / r['ours']:.1f} % of first ingest (compares all 1.3 M stored rows)"
        )
        print(
            f"  load price matrix       {r['load']:7.2f} s   vs read_sql+pivot {r['base_load']:.2f} s   "
            f"ratio {r['load'] / r['base_load']:.2f} (target <= 1.5)"
        )


if __name__ == "__main__":
    main()
