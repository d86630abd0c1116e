"""Issue 11, case 7: migrations, first refreshes and first starts at the same moment on an empty database
(no schema), on SQLite and on a fresh PostgreSQL database. Real processes (``python -m core``) and threads."""

from __future__ import annotations

import re
import threading

from tests.concurrency.conftest import assert_clean, count, run_at_once

#: Assets of the demo seed universe and their prices since 2018 (what one seeding stores).
DEMO_ASSETS = 14
START_UP = (
    "from core.services.bootstrap import start_up\n"
    "report = start_up(seed_if_empty=True)\n"
    "print('seeded' if 'seeded' in report else 'found', 'computed' if 'computed' in report else '-')\n"
)


def _head() -> str:
    from core.db import migration_status

    return str(migration_status()["head"])


def test_two_migrates_at_once_on_a_fresh_database(empty_db):
    results = run_at_once([["migrate"]] * 2)
    assert_clean(results)
    head = _head()
    assert [r.stdout.strip() for r in results] == [f"database at migration head {head}"] * 2
    assert count("SELECT COUNT(*) FROM alembic_version") == 1
    from core.db import migration_status

    assert migration_status()["at_head"]


def test_three_first_refreshes_at_once_on_an_empty_database(empty_db):
    results = run_at_once([["refresh"]] * 3)
    assert_clean(results)
    new = sorted(int(re.search(r": (\d+) new", r.stdout).group(1)) for r in results)  # type: ignore[union-attr]
    # one refresh stored the universe; the others waited for it, then found nothing new
    assert new[:2] == [0, 0] and new[2] > 0
    assert count("SELECT COUNT(*) FROM prices") == new[2]
    assert count("SELECT COUNT(*) FROM assets") == DEMO_ASSETS
    assert count("SELECT COUNT(DISTINCT symbol) FROM assets") == DEMO_ASSETS


def test_three_first_starts_and_a_refresh_at_once_seed_one_universe(empty_db):
    """Three app start-ups (what Home.py runs) and a CLI refresh on an empty database: one universe, one default
    config, one compute, and no error anywhere."""
    results = run_at_once([["-c", START_UP]] * 3 + [["refresh"]])
    assert_clean(results)
    starts = [r.stdout.split() for r in results[:3]]
    assert sum(s[0] == "seeded" for s in starts) <= 1  # the refresh may have stored the universe first
    assert sum(s[1] == "computed" for s in starts) == 1
    assert count("SELECT COUNT(*) FROM assets") == DEMO_ASSETS
    one_universe = count("SELECT COUNT(*) FROM prices")
    assert one_universe == count("SELECT COUNT(*) FROM (SELECT DISTINCT asset_id, date FROM prices) AS p") > 0
    assert count("SELECT COUNT(*) FROM strategy_configs") == 1
    assert count("SELECT COUNT(*) FROM audit_events WHERE action = 'config.compute'") == 1
    assert count("SELECT COUNT(*) FROM index_values") > 0


def test_three_first_starts_in_threads_of_one_process(empty_db):
    """As Streamlit sessions of one app process do on a first visit."""
    from core.services.bootstrap import start_up

    reports: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def first_visit() -> None:
        try:
            reports.append(start_up(seed_if_empty=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_visit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum("seeded" in r for r in reports) == 1 and sum("computed" in r for r in reports) == 1
    assert len({r["active_config"] for r in reports}) == 1
    assert count("SELECT COUNT(*) FROM assets") == DEMO_ASSETS
    assert count("SELECT COUNT(*) FROM strategy_configs") == 1
