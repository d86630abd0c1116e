"""The job-queue suite, run against real consumer subprocesses by test_jobs_redis.py and test_jobs_sqlite.py.

Each importing module provides a ``jobs_env`` fixture (:class:`JobsEnv`): a migrated database holding the
14-asset demo universe and an active config, the TwelveData stub, the test process's ``jobs.huey`` pointed
at the same queue as the consumers, and a :class:`Consumers` launcher.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.integration.jobs_support import Consumers, audit_count, prices_checksum, run_history, wait_for
from tests.stubs.twelvedata_stub import Fault, StubController


@dataclass
class JobsEnv:
    consumers: Consumers
    stub: StubController
    huey: Any


def _svc():
    from core.services import runs

    return runs


def test_refresh_goes_queued_running_with_rising_progress_succeeded(jobs_env: JobsEnv):
    svc = _svc()
    jobs_env.stub.push(Fault(delay=0.6), Fault(delay=0.6))
    before = prices_checksum()
    run_id = svc.enqueue("refresh", {"provider": "twelvedata", "full": True}, user="anna")
    queued = svc.get_run(run_id)
    assert queued.state == "queued" and queued.started_at is None  # no worker yet
    jobs_env.consumers.start(workers=1)
    history = [("queued", queued.progress)] + run_history(run_id, timeout=30)
    states = [s for s, _ in history]
    assert states[0] == "queued" and states[-1] == "succeeded", history
    assert "running" in states
    order = {"queued": 0, "running": 1, "succeeded": 2}
    assert [order[s] for s in states] == sorted(order[s] for s in states), history
    running = [p for s, p in history if s == "running"]
    assert len({p for p in running if 0 < p < 1}) >= 2, history  # progress seen at several points
    assert running == sorted(running), history  # never backwards
    run = svc.get_run(run_id)
    assert run.progress == 1.0 and run.attempts == 1 and run.duration_s > 0 and run.worker
    assert prices_checksum() != before


def test_two_consumers_take_twenty_jobs_none_lost_or_run_twice(jobs_env: JobsEnv):
    from core.services.strategies import active_version, save_version

    svc = _svc()
    first = active_version()
    second = save_version("Second", first.params)
    jobs_env.consumers.start(workers=2)
    jobs_env.consumers.start(workers=2)
    computes_before = audit_count("config.compute")
    ids = [svc.enqueue("compute", {"config_id": (first.id, second.id)[i % 2]}, user="anna") for i in range(20)]

    def all_final():
        runs = [svc.get_run(i) for i in ids]
        return runs if all(r.is_final for r in runs) else None

    runs = wait_for(all_final, 60, 0.1, "20 computes to finish")
    assert [r.state for r in runs] == ["succeeded"] * 20, [(r.id, r.state, r.error) for r in runs]
    assert all(r.attempts == 1 for r in runs)
    assert audit_count("config.compute") - computes_before == 20  # each ran exactly once
    assert len({r.worker for r in runs}) == 2  # both consumers took work
    assert jobs_env.huey.pending_count() == 0


def test_kill9_during_refresh_leaves_prices_unchanged_and_the_retry_succeeds(jobs_env: JobsEnv):
    svc = _svc()
    before = prices_checksum()
    jobs_env.stub.push(Fault(delay=30))  # the first request hangs: the refresh is mid-flight
    victim = jobs_env.consumers.start(workers=1)
    run_id = svc.enqueue("refresh", {"provider": "twelvedata", "full": True}, user="anna")
    wait_for(lambda: svc.get_run(run_id).state == "running" and jobs_env.stub.requests, 20, what="refresh to start")
    jobs_env.consumers.kill9(victim)
    assert prices_checksum() == before
    assert svc.get_run(run_id).state == "running"  # nobody knows yet

    jobs_env.consumers.start(workers=1)  # a worker starting reconciles
    run = wait_for(lambda: (r := svc.get_run(run_id)).state == "failed" and r, 20, what="run marked interrupted")
    assert run.error.startswith("interrupted") and run.interrupted
    assert prices_checksum() == before

    retry_id = svc.retry(run_id, "anna")
    history = run_history(retry_id, timeout=30)
    assert history[-1][0] == "succeeded", (history, svc.get_run(retry_id).error)
    assert svc.get_run(retry_id).retry_of_id == run_id
    assert prices_checksum() != before


def test_provider_429_then_200_is_retried_and_succeeds(jobs_env: JobsEnv):
    svc = _svc()
    # the provider's own retries (4 attempts) all get 429, so the job itself must retry
    jobs_env.stub.push(
        *[Fault(status=429, retry_after="0", error=(429, "You have run out of API credits")) for _ in range(4)]
    )
    jobs_env.consumers.start(workers=1)
    run_id = svc.enqueue("refresh", {"provider": "twelvedata", "full": True}, user="anna")
    history = run_history(run_id, timeout=40)
    states = [s for s, _ in history]
    assert "retrying" in states and states[-1] == "succeeded", (history, svc.get_run(run_id).error)
    run = svc.get_run(run_id)
    assert run.attempts == 2 and run.error is None
    assert len(jobs_env.stub.requests) >= 6  # 4 refused + the 2 batches of the retry


def test_a_second_refresh_is_skipped_while_one_runs(jobs_env: JobsEnv):
    svc = _svc()
    in_flight = threading.Event()
    jobs_env.stub.push(Fault(hold=in_flight))  # the first refresh's request lasts until the second has finished
    jobs_env.consumers.start(workers=2)
    first = svc.enqueue("refresh", {"provider": "twelvedata"}, user="anna")
    try:
        wait_for(lambda: jobs_env.stub.requests, 20, what="first refresh to reach the provider")
        second = svc.enqueue("refresh", {"provider": "demo"}, user="bob")
        skipped = wait_for(lambda: (r := svc.get_run(second)).is_final and r, 20, what="second refresh to finish")
    finally:
        in_flight.set()
    assert skipped.state == "skipped" and f"run {first}" in skipped.message
    assert run_history(first, timeout=30)[-1][0] == "succeeded"


def test_cancel_a_queued_run_it_never_runs(jobs_env: JobsEnv):
    svc = _svc()
    run_id = svc.enqueue("refresh", {"provider": "demo"}, user="anna")
    svc.cancel(run_id, "anna")
    other = svc.enqueue("refresh", {"provider": "demo", "symbols": "SPY"}, user="anna")
    jobs_env.consumers.start(workers=1)
    assert run_history(other, timeout=30)[-1][0] == "succeeded"
    time.sleep(0.3)
    run = svc.get_run(run_id)
    assert run.state == "cancelled" and run.attempts == 0
