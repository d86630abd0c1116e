"""Portfolio constraints of the index engine: docs/methodology.md "Constraints".

Pure numpy (no database, clock or I/O); called by :mod:`core.quant.engine` at every rebalance on the
blended target, after the ``top_n`` selection. Inputs are never modified.

Order at each rebalance (exclusions are applied earlier: an excluded symbol is never eligible)
    1. **Minimum weight** (:func:`apply_min_weight`): while some holding is below ``min_weight`` and more
       than ``min_holdings`` assets are held, the smallest such holding (ties: the later column) is dropped
       and the rest are rescaled to the same total. The largest ``min_holdings`` holdings are therefore never
       dropped by this rule.
    2. **Minimum holding count**: a target with fewer than ``min_holdings`` positive weights is not traded;
       the engine keeps the current holdings (no turnover, no cost) and counts the date in a warning. The
       first allocation waits for the first date that can meet it.
    3. **Caps** (:func:`apply_caps`): the per-asset ``max_weight`` and every per-sector and per-asset-class
       cap. Repeat until nothing breaches: every group (or asset) above its cap is scaled down to the cap
       and *frozen*; the excess is spread over the unfrozen holdings in proportion to their weights (the
       feasible set: assets whose every group still has room). When no unfrozen holding is left the excess
       is held in cash and the engine warns. Each round freezes at least one group or asset, so it ends in
       at most ``assets + groups`` rounds, and frozen groups never receive weight again, so they never breach
       again. With only ``max_weight`` this is exactly the engine's single-asset cap.
    Assets without a sector (or asset class) belong to no sector (asset-class) group and are never capped by
    one. Caps are fractions of the index (0.4 = 40 %).

Feasibility (:func:`universe_errors`): a config whose caps cannot be met by the universe (every sector
present is capped and the caps add up to less than 1; likewise asset classes), whose exclusions name unknown
symbols or leave no constituent, is refused with the message beside the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["CAP_TOLERANCE", "apply_caps", "apply_min_weight", "group_codes", "universe_errors"]

#: Weights may exceed a cap by this relative amount (rounding of the redistribution).
CAP_TOLERANCE = 1e-12


def group_codes(
    symbols: Sequence[str], labels: Mapping[str, str | None], caps: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per asset the index of its capped group (-1: none) and the caps by group index."""
    names = sorted(caps)
    position = {name: i for i, name in enumerate(names)}
    codes = np.array(
        [position.get(str(labels.get(s)), -1) if labels.get(s) is not None else -1 for s in symbols], dtype=np.int64
    )
    return codes, np.array([float(caps[n]) for n in names], dtype=np.float64)


def apply_min_weight(w: np.ndarray, min_weight: float, min_holdings: int = 1) -> np.ndarray:
    """Drop holdings below ``min_weight`` one by one, smallest first, keeping at least ``min_holdings``."""
    out = w.astype(np.float64, copy=True)
    total = float(out.sum())
    if total <= 0:
        return out
    while True:
        held = np.flatnonzero(out > 0)
        if held.size <= max(min_holdings, 1):
            break
        scaled = out[held] / float(out.sum()) * total
        small = held[scaled < min_weight * (1 - CAP_TOLERANCE)]
        if small.size == 0:
            break
        # the smallest; among equals the last column (stable sort on the negated column order)
        order = np.lexsort((-small, out[small]))
        out[small[order[0]]] = 0.0
    s = float(out.sum())
    if s > 0:
        out *= total / s
    return out


def apply_caps(
    w: np.ndarray, max_weight: float | None = None, groups: Sequence[tuple[np.ndarray, np.ndarray]] = ()
) -> np.ndarray:
    """Cap assets at ``max_weight`` and groups at their caps, redistributing within the feasible set.

    ``groups``: pairs ``(codes, caps)`` from :func:`group_codes` (sectors, asset classes). Returns the capped
    weights (a new array); their sum is below the input's sum only when nothing could take the excess.
    """
    out = w.astype(np.float64, copy=True)
    frozen = np.zeros(out.size, dtype=bool)
    frozen_groups = [np.zeros(caps.size, dtype=bool) for _, caps in groups]
    for _ in range(out.size + sum(c.size for _, c in groups) + 1):
        excess = 0.0
        breach = False
        for g, (codes, caps) in enumerate(groups):
            member = codes >= 0
            if not member.any():
                continue
            sums = np.bincount(codes[member], weights=out[member], minlength=caps.size)
            over = sums > caps * (1 + CAP_TOLERANCE) + CAP_TOLERANCE
            for gi in np.flatnonzero(over):
                idx = codes == gi
                excess += float(sums[gi] - caps[gi])
                out[idx] *= caps[gi] / sums[gi]
                frozen[idx] = True
                frozen_groups[g][gi] = True
                breach = True
        if max_weight is not None:
            over_asset = out > max_weight * (1 + CAP_TOLERANCE)
            if over_asset.any():
                excess += float((out[over_asset] - max_weight).sum())
                out[over_asset] = max_weight
                frozen |= over_asset
                breach = True
        if not breach:
            break
        free = ~frozen & (out > 0)
        free_sum = float(out[free].sum())
        if free_sum <= 0:
            break  # nothing can take the excess: it stays in cash
        out[free] *= 1.0 + excess / free_sum
    return out


def universe_errors(
    *,
    symbols: Sequence[str],
    sectors: Mapping[str, str | None],
    asset_classes: Mapping[str, str | None],
    sector_caps: Mapping[str, float] | None,
    asset_class_caps: Mapping[str, float] | None,
    exclusions: Sequence[str],
    max_weight: float | None = None,
) -> dict[str, str]:
    """Field -> message for constraints the universe ``symbols`` cannot meet (empty when feasible)."""
    errors: dict[str, str] = {}
    known = set(symbols)
    unknown = sorted(set(exclusions) - known)
    if unknown:
        errors["exclusions"] = "unknown symbol(s): " + ", ".join(unknown[:10])
    members = [s for s in symbols if s not in set(exclusions)]
    if symbols and not members:
        errors["exclusions"] = "excludes every constituent: the index could not hold anything"
    for field, labels, caps, what in (
        ("sector_caps", sectors, sector_caps, "sector"),
        ("asset_class_caps", asset_classes, asset_class_caps, "asset class"),
    ):
        if not caps or not members:
            continue
        present = {labels.get(s) for s in members}
        uncapped = [p for p in present if p is None or p not in caps]
        room = sum(float(caps[p]) for p in present if p is not None and p in caps)
        if max_weight is not None:
            # each capped group holds at most its cap and at most max_weight per member
            room = sum(
                min(float(caps[p]), max_weight * sum(1 for s in members if labels.get(s) == p))
                for p in present
                if p is not None and p in caps
            )
        if not uncapped and room < 1 - 1e-9:
            errors[field] = (
                f"infeasible: every {what} in the universe is capped and the caps allow only "
                f"{room:.4g} of the index (need 1)"
            )
        absent = sorted(set(caps) - {p for p in present if p is not None})
        if absent and field not in errors:
            errors[field] = f"no constituent in {what}(s): " + ", ".join(absent[:10])
    return errors
