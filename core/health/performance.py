"""The app performance card: page render times and the slowest service calls (:mod:`core.infra.telemetry`)."""

from __future__ import annotations

from core.health.base import INFO, STATS_DAYS, WARNING, Check, Context, register

#: A page whose p95 render time is above this (ms) is a warning.
PAGE_P95_WARN_MS = 2000.0


PERFORMANCE_RULES = [
    f"warning if a page's p95 render time is above {PAGE_P95_WARN_MS / 1000:.0f} s (over {STATS_DAYS} days)"
]


@register(
    "performance",
    "App performance",
    shows="page render p50/p95 per page (recorded by Home.py), slowest service calls",
    rules=PERFORMANCE_RULES,
    needs_database=True,
    order=70,
)
def check_performance(ctx: Context, check: Check) -> None:
    from core.infra import telemetry

    stats = telemetry.timing_stats(STATS_DAYS, now=ctx.now)
    check.tables["page timings"] = stats.pages
    check.tables["slowest service calls"] = stats.slowest_services
    check.facts["samples"] = stats.samples
    if stats.pages.empty:
        check.status = INFO
        check.summary = f"no page timings recorded in the last {STATS_DAYS} days"
        return
    slow = stats.pages[stats.pages["p95_ms"] > PAGE_P95_WARN_MS]
    for _, row in slow.iterrows():
        check.raise_to(WARNING, f"{row['name']}: p95 {row['p95_ms'] / 1000:.1f} s")
    top = stats.pages.iloc[0]
    check.summary = (
        f"{len(stats.pages)} page(s) timed, {stats.samples} samples; slowest p95: {top['name']} {top['p95_ms']:.0f} ms"
    )
    return
