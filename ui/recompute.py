"""What followed an activation, as one line for the user. The service decides and queues
(:func:`core.services.strategies.activate`, :func:`~core.services.strategies.save_and_activate`); this only words
its answer."""

from __future__ import annotations

from typing import Any

from core.schemas.task import SUCCEEDED_STATES


def recompute_line(recompute: dict[str, Any]) -> str:
    """One line for the user about what followed an activation (:func:`queue_compute`'s result)."""
    if not recompute.get("queued"):
        return f"Recompute not queued: {recompute.get('reason')}; run `python -m core compute` to compute it."
    if not recompute.get("inline"):
        return f"Recompute queued as task {recompute['run_id']}; follow it on the Tasks page."
    result = recompute.get("result") or {}
    if recompute.get("state") in SUCCEEDED_STATES and "final_level" in result:
        return (
            f"The job queue is unavailable, so it was computed here (run {recompute['run_id']}): "
            f"{result['dates']} dates to {result['end']}, final level {float(result['final_level']):.2f}."
        )
    return f"Computing it failed (run {recompute['run_id']}): {recompute.get('error') or recompute.get('state')}"
