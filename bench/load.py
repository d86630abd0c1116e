"""Load on 127.0.0.1 only, bounded in time: concurrent browser sessions while jobs run, and a Redis queue drill.

    python bench/load.py [--sessions 50] [--browsers 1] [--rounds 2] [--ramp-up 60] [--deadline 300] [--jobs 200] [--skip-browser]

Part 1 (browser, issue 17): a real ``streamlit run Home.py`` (SQLite, embedded worker) on a free port, pinned to
core 0 (``taskset -a -c -p 0``); SESSIONS browser contexts in ONE headless Chromium process pinned to core 1 (this
process pins itself before Playwright starts, and its children inherit it), so the figures measure the server, not
the browsers. Sessions arrive evenly over RAMP_UP seconds; each logs in and then ROUNDS times opens the Strategy page
(its backtest preview), the Dashboard, a range button and a section, while a full demo refresh job and a report
job run. Every step is timed until settled on the websocket (:mod:`bench.wire`: its last run finished, its charts
drawn). Prints errors, p50/p95/max settled time per step, reruns, the server's CPU per session (from ``/proc``;
it includes the two jobs the embedded worker runs), the browser's CPU, and the final state of both jobs (no job
lost). Target: 0 errors, 0 lost jobs, p95 <= 2 s (all three make "load held").

Part 2 (queue): PostgreSQL (a fresh database) + Redis db 10 + two ``huey_consumer`` processes; JOBS compute jobs
over four config versions are queued at once. Prints how many finished, in which state, attempts, and that the
audit log holds exactly one compute per job (each ran exactly once).

Everything is torn down at the end; the whole run aborts at --deadline seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = ("loadadmin", "Load Admin", "load admin password 2024")
ANALYST_PASSWORD = "load analyst password 2024"


def _reset() -> None:
    from core.config import reset_settings_cache
    from core.db import reset_engine_cache

    reset_engine_cache()
    reset_settings_cache()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- part 1: browsers
STEPS = ("login", "page Strategy", "page Dashboard", "range 1Y", "section Risk", "section Scenarios")


async def _session(
    browser, base_url: str, username: str, rounds: int, steps: dict[str, list], errors: list[str], delay_s: float = 0.0
) -> None:
    from bench.wire import Wire

    await asyncio.sleep(delay_s)  # ramp-up: sessions arrive one after another, as people do
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(90_000)
    wire = await Wire().aattach(page)

    async def act(name: str, do, charts: int = 0) -> None:  # type: ignore[no-untyped-def]
        wire.mark()
        await do()
        step = await wire.asettle(page, name, timeout_s=90, min_charts=charts)
        if step.timed_out:
            errors.append(f"{username}: {name} did not settle within 90 s")
        steps[name].append(step)

    try:
        await page.goto(base_url)
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password", exact=True).fill(ANALYST_PASSWORD)
        await act("login", page.get_by_role("button", name="Log in").click, 1)
        for _ in range(rounds):
            await act("page Strategy", page.get_by_role("link", name="Strategy").click)
            await page.get_by_text("Preview:").first.wait_for()
            await act("page Dashboard", page.get_by_role("link", name="Dashboard").click, 1)
            await act("range 1Y", page.get_by_role("radio", name="1Y", exact=True).click, 1)
            await act("section Risk", page.get_by_role("radio", name="Risk", exact=True).click, 2)
            await act("section Scenarios", page.get_by_role("radio", name="Scenarios", exact=True).click, 2)
            await page.get_by_role("radio", name="Max", exact=True).click()  # back for the next round
            await page.get_by_role("radio", name="Performance", exact=True).click()
            if await page.locator("[data-testid='stException']").count():
                errors.append(f"{username}: an exception box was drawn")
    except Exception as exc:  # noqa: BLE001 - counted and printed
        errors.append(f"{username}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await context.close()


#: The walk a recorded browser does once for the websocket-level client: (action, what to click, charts to wait for).
WIRE_ROUND = (
    "page Strategy",
    "page Dashboard",
    "range 1Y",
    "section Risk",
    "section Scenarios",
    "range Max",
    "section Performance",
)


async def record_walk(base_url: str, username: str, password: str):  # type: ignore[no-untyped-def]
    """One real browser session doing the walk, every run request it sends recorded per action
    (:class:`bench.wire.Recording`), for :class:`bench.wire.WireClient` to replay."""
    from playwright.async_api import async_playwright

    from bench.wire import Recording, Wire
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    recording = Recording(username=username)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(90_000)
            wire = await Wire().aattach(page)
            recording.attach(page)

            async def act(name: str, do, charts: int = 0) -> None:  # type: ignore[no-untyped-def]
                recording.mark(name)
                wire.mark()
                await do()
                step = await wire.asettle(page, name, timeout_s=90, min_charts=charts)
                if step.timed_out:
                    raise RuntimeError(f"recording: {name} did not settle")
                await page.wait_for_timeout(1500)  # late requests (the cookie component's report) belong here

            await act("open", lambda: page.goto(base_url), 0)
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password", exact=True).fill(password)
            await act("login", page.get_by_role("button", name="Log in").click, 1)
            await act("page Strategy", page.get_by_role("link", name="Strategy").click, 1)
            await act("page Dashboard", page.get_by_role("link", name="Dashboard").click, 1)
            await act("range 1Y", page.get_by_role("radio", name="1Y", exact=True).click, 1)
            await act("section Risk", page.get_by_role("radio", name="Risk", exact=True).click, 2)
            await act("section Scenarios", page.get_by_role("radio", name="Scenarios", exact=True).click, 2)
            await act("range Max", page.get_by_role("radio", name="Max", exact=True).click, 1)
            await act("section Performance", page.get_by_role("radio", name="Performance", exact=True).click, 1)
            await context.close()
        finally:
            await browser.close()
    return recording


async def _wire_session(
    base_url: str,
    username: str,
    recording,
    rounds: int,
    steps: dict[str, list],  # type: ignore[no-untyped-def]
    errors: list[str],
    delay_s: float = 0.0,
) -> None:
    """A session at the websocket level: the recorded browser's requests, as ``username``."""
    from bench.wire import WireClient

    await asyncio.sleep(delay_s)
    try:
        async with WireClient(base_url, username, recording) as client:
            for name in ("open", "login"):
                step = await client.step(name)
                if step.timed_out:
                    raise RuntimeError(f"{name} did not finish within 90 s")
                if name == "login":
                    steps[name].append(step)
            if not any(text.startswith(b"Dashboard") for text in client.texts):
                raise RuntimeError("the login did not reach the Dashboard")
            for _ in range(rounds):
                for name in WIRE_ROUND:
                    step = await client.step(name)
                    if step.timed_out:
                        errors.append(f"{username}: {name} did not finish within 90 s")
                    if name in steps:
                        steps[name].append(step)
            if client.exceptions:
                errors.append(f"{username}: {client.exceptions} exception box(es) drawn")
    except Exception as exc:  # noqa: BLE001 - counted and printed
        errors.append(f"{username}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


async def _wire_clients(
    base_url: str | list[str], sessions: int, rounds: int, deadline_s: float, ramp_up_s: float, recording
):  # type: ignore[no-untyped-def]
    """SESSIONS replaying clients arriving evenly over RAMP_UP seconds; with several base URLs (replicas), session
    ``i`` goes to replica ``i mod n`` (what a round-robin load balancer does)."""
    urls = [base_url] if isinstance(base_url, str) else base_url
    steps: dict[str, list] = {name: [] for name in STEPS}
    errors: list[str] = []
    gap = ramp_up_s / max(sessions - 1, 1)
    work = [
        _wire_session(urls[i % len(urls)], f"analyst{i:02d}", recording, rounds, steps, errors, i * gap)
        for i in range(sessions)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*work), timeout=deadline_s)
    except TimeoutError:
        errors.append(f"aborted at the {deadline_s:.0f} s deadline")
    return steps, errors


async def _browsers(
    base_url: str, sessions: int, n_browsers: int, rounds: int, deadline_s: float, ramp_up_s: float = 0.0
):
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    steps: dict[str, list] = {name: [] for name in STEPS}
    errors: list[str] = []
    async with async_playwright() as pw:
        browsers = [
            await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for _ in range(n_browsers)
        ]
        try:
            step = ramp_up_s / max(sessions - 1, 1)
            work = [
                _session(browsers[i % n_browsers], base_url, f"analyst{i:02d}", rounds, steps, errors, i * step)
                for i in range(sessions)
            ]
            try:
                await asyncio.wait_for(asyncio.gather(*work), timeout=deadline_s)
            except TimeoutError:
                errors.append(f"aborted at the {deadline_s:.0f} s deadline")
        finally:
            for browser in browsers:
                await browser.close()
    return steps, errors


def _pin(pid: int, core: int) -> bool:
    """Pin every thread of ``pid`` to ``core`` (taskset); False when there is no such core or no taskset."""
    import subprocess

    if core >= (os.cpu_count() or 1):
        return False
    done = subprocess.run(["taskset", "-a", "-c", "-p", str(core), str(pid)], capture_output=True, text=True)
    return done.returncode == 0


def _print_steps(steps: dict[str, list]) -> None:  # type: ignore[type-arg]
    for name, done in steps.items():
        values = [s.settled_s for s in done if not s.timed_out]
        runs = sum(s.app_runs for s in done), sum(s.fragment_runs for s in done)
        print(
            f"  {name:15s} n={len(values):3d}  p50={_pct(values, 0.5):6.2f} s  p95={_pct(values, 0.95):6.2f} s  "
            f"max={max(values, default=float('nan')):6.2f} s  runs app={runs[0]} fragment={runs[1]}  "
            f"received p50 {_pct([s.bytes_in / 1024 for s in done], 0.5):.0f} KiB"
        )


#: The issue-17 target for every step's 95th percentile, seconds.
P95_TARGET_S = 2.0


def _p95_held(steps: dict[str, list]) -> bool:  # type: ignore[type-arg]
    """Every step's p95 settled time within :data:`P95_TARGET_S` (printed when not)."""
    slow = {name: _pct([s.settled_s for s in done if not s.timed_out], 0.95) for name, done in steps.items()}
    slow = {name: p95 for name, p95 in slow.items() if not p95 <= P95_TARGET_S}
    for name, p95 in slow.items():
        print(f"  p95 of {name} is {p95:.2f} s (target <= {P95_TARGET_S} s)")
    return not slow


def _wait_jobs(run_ids: list[int], timeout_s: float = 120.0) -> list:  # type: ignore[type-arg]
    """The job runs once final (or as they are after ``timeout_s``), each printed; a run not succeeded is lost."""
    from core.services import runs as run_service

    deadline = time.monotonic() + timeout_s
    while True:
        runs = [run_service.get_run(i) for i in run_ids]
        if all(r.is_final for r in runs) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for run in runs:
        print(
            f"  job {run.kind:8s} run {run.id}: {run.state} after {run.attempts} attempt(s)"
            f"{', ' + str(run.duration_s and round(run.duration_s, 1)) + ' s' if run.duration_s else ''}"
            f"{' error: ' + run.error if run.error else ''}"
        )
    return runs


def replica_load(sessions: int, rounds: int, deadline_s: float, ramp_up_s: float, redis_db: int = 7) -> bool:
    """The websocket-level load on two replicas (issue 17, item 4): two ``streamlit run Home.py`` on one PostgreSQL
    database (created here, dropped at the end) and Redis DB ``redis_db`` (the cache, the job queue, the rate
    limits; only this project's keys are removed), each replica pinned to its own core, a ``huey_consumer`` worker
    (unpinned) running the refresh and the report; sessions alternate between the replicas."""
    import subprocess

    from sqlalchemy import create_engine, text

    from bench.wire import server_cpu_s
    from tests.e2e.conftest import free_port, stop_server, wait_for_health
    from tests.integration.conftest import flush_job_keys
    from tests.integration.jobs_support import Consumers

    pg_admin = os.environ.get("AUTOINDEX_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    name = f"autoindex_replicas_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_admin.rsplit("/", 1)[0] + "/" + name
    data_dir = Path(tempfile.mkdtemp(prefix="autoindex-replicas-"))
    os.environ.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "DEMO_ON_EMPTY": "true",
            "EMBEDDED_WORKER": "false",
            "LOG_LEVEL": "WARNING",
            "COOKIE_KEY": "load-replicas-cookie-key-" + "k" * 24,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    _reset()
    flush_job_keys(redis_url)
    processes: list[subprocess.Popen] = []
    consumers = Consumers(dict(os.environ), data_dir, mode="huey_consumer")
    ok = False
    try:
        import jobs
        from core.services import bootstrap, reports, users
        from core.services import runs as run_service

        bootstrap.start_up()
        users.create_user(*ADMIN, role="admin")
        for i in range(sessions):
            users.create_user(f"analyst{i:02d}", f"Analyst {i}", ANALYST_PASSWORD, role="analyst")
        users.create_user("recorder", "Recorder", ANALYST_PASSWORD, role="analyst")
        urls = []
        for core in (0, 1):
            port = free_port()
            log = open(data_dir / f"replica-{core}.log", "w")  # noqa: SIM115 - closed with the process
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    str(ROOT / "Home.py"),
                    "--server.port",
                    str(port),
                    "--server.address",
                    "127.0.0.1",
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_for_health(urls[-1], process)
            _pin(process.pid, core)
        consumers.start(workers=2)
        started = time.monotonic()
        recording = asyncio.run(record_walk(urls[0], "recorder", ANALYST_PASSWORD))
        print(
            f"[replicas] 2 replicas on cores 0 and 1 (PostgreSQL {name}, Redis DB {redis_db}), 1 worker; recorded "
            f"the walk in {time.monotonic() - started:.1f} s; load average before: {os.getloadavg()[0]:.1f}"
        )
        jobs.reconfigure()  # the Redis queue: the worker runs these
        refresh_id = run_service.enqueue("refresh", {"provider": "demo", "full": True}, user=ADMIN[0])
        report_id = reports.request_report("performance", "max", "pdf", owner=ADMIN[0])
        report_run = reports.get_report(report_id, None).task_run_id
        started = time.monotonic()
        cpu0 = [server_cpu_s(p.pid) for p in processes]
        steps, errors = asyncio.run(_wire_clients(urls, sessions, rounds, deadline_s, ramp_up_s, recording))
        took = time.monotonic() - started
        cpu = [server_cpu_s(p.pid) - c for p, c in zip(processes, cpu0)]
        print(f"[replicas] sessions done in {took:.1f} s; errors: {len(errors)}; load average {os.getloadavg()[0]:.1f}")
        for e in errors[:20]:
            print(f"  error: {e}")
        _print_steps(steps)
        print(
            f"  replicas' CPU {cpu[0]:.1f} + {cpu[1]:.1f} s for {sessions} sessions: "
            f"{sum(cpu) / max(sessions, 1):.2f} s per session (jobs run by the worker, not counted)"
        )
        runs = _wait_jobs([refresh_id, report_run])
        lost = [r.id for r in runs if r.state != "succeeded"]
        print(f"[replicas] jobs lost or failed: {lost or 'none'}")
        ok = not errors and not lost and _p95_held(steps)
    finally:
        for process in processes:
            stop_server(process)
        consumers.close()
        flush_job_keys(redis_url)
        _reset()
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        for key in ("DATABASE_URL", "REDIS_URL", "COOKIE_KEY"):
            os.environ.pop(key, None)
    return ok


def browser_load(
    sessions: int, n_browsers: int, rounds: int, deadline_s: float, ramp_up_s: float = 0.0, client: str = "browser"
) -> bool:
    from tests.e2e.conftest import start_server, stop_server

    data_dir = Path(tempfile.mkdtemp(prefix="autoindex-load-"))
    os.environ.update({"DATA_DIR": str(data_dir), "DEMO_ON_EMPTY": "true", "EMBEDDED_WORKER": "false"})
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    _reset()
    from core.services import bootstrap, users

    t0 = time.monotonic()
    bootstrap.start_up()
    users.create_user(*ADMIN, role="admin")
    for i in range(sessions):
        users.create_user(f"analyst{i:02d}", f"Analyst {i}", ANALYST_PASSWORD, role="analyst")
    if client == "wire":
        users.create_user("recorder", "Recorder", ANALYST_PASSWORD, role="analyst")
    print(f"[browser] database seeded and computed in {time.monotonic() - t0:.1f} s ({data_dir})")
    process, base_url = start_server(data_dir, {"EMBEDDED_WORKER": "true"})
    from bench.wire import server_cpu_s

    pinned = _pin(process.pid, 0)
    if pinned and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # this process, Playwright's driver and Chromium: core 1
    recording = None
    if client == "wire":  # one real browser walks once, before the load; every session replays what it sent
        started = time.monotonic()
        recording = asyncio.run(record_walk(base_url, "recorder", ANALYST_PASSWORD))
        print(
            f"[wire] recorded one browser's walk in {time.monotonic() - started:.1f} s: "
            + ", ".join(f"{name} {len(sent)}" for name, sent in recording.steps)
            + " run request(s)"
        )
    print(
        f"[browser] server pid {process.pid} {'pinned to core 0, browser to core 1' if pinned else 'not pinned'}; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    ok = True
    try:
        import jobs
        from core.services import reports
        from core.services import runs as run_service

        jobs.reconfigure()  # the server's SqliteHuey queue in DATA_DIR: its embedded worker runs these
        refresh_id = run_service.enqueue("refresh", {"provider": "demo", "full": True}, user=ADMIN[0])
        report_id = reports.request_report("performance", "max", "pdf", owner=ADMIN[0])
        report_run = reports.get_report(report_id, None).task_run_id
        print(
            f"[browser] queued refresh run {refresh_id} and report run {report_run}; "
            f"{sessions} sessions in {n_browsers} browsers, {rounds} rounds each, arriving over {ramp_up_s:.0f} s"
        )
        started = time.monotonic()
        cpu0, own0 = server_cpu_s(process.pid), os.times()
        if recording is not None:
            steps, errors = asyncio.run(_wire_clients(base_url, sessions, rounds, deadline_s, ramp_up_s, recording))
        else:
            steps, errors = asyncio.run(_browsers(base_url, sessions, n_browsers, rounds, deadline_s, ramp_up_s))
        took = time.monotonic() - started
        server_cpu, own = server_cpu_s(process.pid) - cpu0, os.times()
        browser_cpu = (own.children_user + own.children_system + own.user + own.system) - (
            own0.children_user + own0.children_system + own0.user + own0.system
        )
        print(f"[{client}] sessions done in {took:.1f} s; errors: {len(errors)}; load average {os.getloadavg()[0]:.1f}")
        for e in errors[:20]:
            print(f"  error: {e}")
        _print_steps(steps)
        print(
            f"  server CPU {server_cpu:.1f} s for {sessions} sessions: {server_cpu / max(sessions, 1):.2f} s per "
            f"session (the refresh and report jobs included); this process and the browser: {browser_cpu:.1f} s"
        )
        runs = _wait_jobs([refresh_id, report_run])
        lost = [r.id for r in runs if r.state != "succeeded"]
        print(
            f"[browser] jobs lost or failed: {lost or 'none'}; report status "
            f"{reports.get_report(report_id, None).status}"
        )
        ok = not errors and not lost and _p95_held(steps)
    finally:
        stop_server(process)
    return ok


# --------------------------------------------------------------------------- part 2: Redis queue
def queue_drill(n_jobs: int, deadline_s: float) -> bool:
    from sqlalchemy import create_engine, text

    pg_admin = os.environ.get("AUTOINDEX_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("AUTOINDEX_LOAD_REDIS", "redis://127.0.0.1:6379/10")
    name = f"autoindex_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_admin.rsplit("/", 1)[0] + "/" + name
    data_dir = Path(tempfile.mkdtemp(prefix="autoindex-queue-"))
    from tests.integration.conftest import flush_job_keys
    from tests.integration.jobs_support import Consumers, audit_count

    os.environ.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "DEMO_ON_EMPTY": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    _reset()
    flush_job_keys(redis_url)
    consumers = Consumers(dict(os.environ), data_dir, mode="huey_consumer")
    ok = False
    try:
        import jobs
        from core.db import migrate
        from core.services import runs as run_service
        from core.services.access import SystemActor
        from core.services.bootstrap import seed_demo
        from core.services.strategies import ensure_default_config, save_version

        migrate(timeout_s=10)
        seed_demo(years=0.5, end=dt.date(2024, 12, 31))
        first = ensure_default_config()
        params = dict(first.params)
        configs = [first.id] + [
            save_version(f"Load {i}", {**params, "rebalance": r}).id
            for i, r in enumerate(("monthly", "quarterly", "daily"))
        ]
        jobs.reconfigure()
        consumers.start(workers=2)
        consumers.start(workers=2)
        before = audit_count("config.compute")
        started = time.monotonic()
        ids = [
            run_service.enqueue("compute", {"config_id": configs[i % len(configs)]}, user=SystemActor("load"))
            for i in range(n_jobs)
        ]
        print(f"[queue] queued {n_jobs} compute jobs in {time.monotonic() - started:.1f} s on 2 consumers × 2 threads")
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            runs = [run_service.get_run(i) for i in ids]
            if all(r.is_final for r in runs):
                break
            time.sleep(0.5)
        took = time.monotonic() - started
        states: dict[str, int] = {}
        for r in runs:
            states[r.state] = states.get(r.state, 0) + 1
        executed = audit_count("config.compute") - before
        attempts = sorted({r.attempts for r in runs})
        workers = {r.worker for r in runs if r.worker}
        print(
            f"[queue] {sum(r.is_final for r in runs)}/{n_jobs} final in {took:.1f} s "
            f"({n_jobs / took:.1f} jobs/s): states {states}; attempts per run {attempts}; "
            f"computes executed (audit) {executed}; consumers used {len(workers)}; "
            f"still queued in Redis {jobs.huey.pending_count()}"
        )
        ok = states == {"succeeded": n_jobs} and executed == n_jobs and attempts == [1]
        print(f"[queue] every job finished exactly once: {'yes' if ok else 'NO'}")
    finally:
        consumers.close()
        flush_job_keys(redis_url)
        _reset()
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="AutoIndex load bench (127.0.0.1 only, bounded)")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--browsers", type=int, default=1, help="Chromium processes (1: every context in one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=300, help="seconds for each part before it aborts")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument(
        "--ramp-up",
        type=float,
        default=60.0,
        help="seconds over which the sessions start (0: all log in at the same instant)",
    )
    parser.add_argument(
        "--client",
        choices=("browser", "wire"),
        default="browser",
        help="browser: SESSIONS Chromium contexts; wire: one recorded browser walk replayed by SESSIONS "
        "websocket clients (bench/wire.py), when one core of Chromium cannot open them in time",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: the websocket-level load on two replicas (PostgreSQL + Redis DB --redis-db)",
    )
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-queue", action="store_true")
    args = parser.parse_args()
    results = []
    if args.replicas == 2:
        results.append(replica_load(args.sessions, args.rounds, args.deadline, args.ramp_up, args.redis_db))
    elif not args.skip_browser:
        results.append(
            browser_load(
                args.sessions,
                max(1, min(args.browsers, 4)),
                args.rounds,
                args.deadline,
                args.ramp_up,
                client=args.client,
            )
        )
    if not args.skip_queue:
        results.append(queue_drill(args.jobs, args.deadline))
    print("load held" if all(results) else "load NOT held")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
