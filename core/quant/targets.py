"""Target weights of the engine at a rebalance: sleeves, blend and constraints (internal to the engine).

:class:`_Targets` computes, at the close of a row and from the cleaned data only (trailing statistics), the four
sleeves (equal, momentum, market cap, risk parity), their blend, the ``top_n`` selection and the constraints
(:func:`_apply_cap` for ``max_weight`` alone, :mod:`core.quant.constraints` for the rest); :func:`_caps` and
:func:`_missing_caps` prepare the market caps the market-cap sleeve uses. Conventions: "Sleeves", "Blend" and
"Constraints" in the :mod:`core.quant.engine` docstring. Pure: no database, clock, network or Streamlit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.quant.constraints import apply_caps, apply_min_weight, group_codes
from core.quant.hygiene import CleanedPrices
from core.quant.result import BacktestInputError
from core.schemas.strategy import StrategyConfig


def _caps(market_caps: pd.DataFrame, prices: pd.DataFrame) -> np.ndarray:
    """Market caps aligned to ``prices`` (a view when already aligned; never modified)."""
    aligned = market_caps
    if not (market_caps.index.equals(prices.index) and market_caps.columns.equals(prices.columns)):
        aligned = market_caps.reindex(index=prices.index, columns=prices.columns)
    try:
        caps: np.ndarray = aligned.to_numpy(dtype=np.float64)
        return caps
    except (TypeError, ValueError) as exc:
        raise BacktestInputError({"market_caps": f"market caps must be numeric ({exc})"}) from None


def _missing_caps(caps: np.ndarray | None, symbols: pd.Index, cfg: StrategyConfig) -> tuple[bool, list[str]]:
    """``(no caps at all, warnings)``: warnings naming the market-cap sleeve when no constituent has a positive cap (``caps`` None counts as
    none), or the constituents that never have one (they are left out of that sleeve only)."""
    with np.errstate(invalid="ignore"):
        has_cap = (
            np.asarray((caps > 0).any(axis=0)) if caps is not None and caps.size else np.zeros(len(symbols), dtype=bool)
        )
    if not has_cap.any():
        return True, [
            f"no market caps: the market_cap sleeve (weight {cfg.market_cap:g}) was left out on every date "
            "and the other sleeves were scaled up to fill it (import market caps or shares outstanding "
            "to use it)"
        ]
    missing = [str(s) for s, ok in zip(symbols, has_cap) if not ok]
    if not missing:
        return False, []
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return False, [
        f"no market caps for {shown}: left out of the market_cap sleeve (they keep their weight in the other sleeves)"
    ]


def _apply_cap(w: np.ndarray, cap: float) -> np.ndarray:
    """Cap weights at ``cap``, spreading the excess proportionally over the uncapped ones."""
    capped = np.zeros(w.shape, dtype=bool)
    limit = cap * (1 + 1e-12)
    for _ in range(w.size + 1):
        over = w > limit
        if not over.any():
            break
        capped |= over
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = ~capped & (w > 0)
        free_sum = float(w[free].sum())
        if free_sum <= 0:
            break  # infeasible: the excess stays in cash
        w[free] *= 1.0 + excess / free_sum
    w[capped] = cap
    return w


class _Targets:
    """Target weights at a row, from the cleaned data (closes over trailing statistics only)."""

    def __init__(
        self,
        cfg: StrategyConfig,
        cleaned: CleanedPrices,
        caps: np.ndarray | None,
        caps_id: int | None = None,
        symbols: pd.Index | None = None,
        asset_info: pd.DataFrame | None = None,
    ) -> None:
        self.cfg = cfg
        names = [str(s) for s in symbols] if symbols is not None else []
        # issue 15 constraints (core.quant.constraints): exclusions, group caps, minimum weight and holdings
        self.included = ~np.isin(np.array(names, dtype=object), list(cfg.exclusions)) if cfg.exclusions else None
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []
        for column, group_caps in (("sector", cfg.sector_caps), ("asset_class", cfg.asset_class_caps)):
            if group_caps:
                labels: dict[str, str | None] = {}
                if asset_info is not None and column in asset_info.columns:
                    labels = {str(k): (None if pd.isna(v) else str(v)) for k, v in asset_info[column].items()}
                self.groups.append(group_codes(names, labels, group_caps))
        self.min_holdings_dates = 0
        self.short_of_holdings = False
        self.r0, self.rvalid, self.pvalid = cleaned.r0, cleaned.rvalid, cleaned.pvalid
        self.eligible_from = cleaned.eligible_from
        self.caps = caps
        self.caps_id = caps_id
        self.memo = cleaned.memo
        self.sleeves = [(s, w) for s, w in cfg.sleeve_weights.items() if w > 0]
        # Causal cumulative statistics: growth index and count of invalid returns.
        self.growth = cleaned.growth() if cfg.momentum > 0 else None
        needs_counts = cfg.momentum > 0 or cfg.risk_parity > 0
        self.invalid_cum = cleaned.invalid_cum() if needs_counts else None
        self.empty_sleeve_dates: dict[str, int] = {s: 0 for s, _ in self.sleeves}
        self.cap_shortfall_dates = 0

    def _momentum(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        lb = self.cfg.momentum_lookback
        if k < lb:
            return None
        # both are set whenever the momentum sleeve has a weight (see __init__)
        assert self.invalid_cum is not None and self.growth is not None
        key = ("momentum", lb, k)
        signal = self.memo.get(key)
        if signal is None:  # one lookback's signal at one row, shared by every config with that lookback
            signal = self.memo[key] = (
                (self.invalid_cum[k] - self.invalid_cum[k - lb]) == 0,
                self.growth[k] / self.growth[k - lb] - 1.0,
            )
        full, mom = signal
        score = np.where(elig & full, mom - self.cfg.momentum_threshold, 0.0)
        score[score < 0] = 0.0
        total = float(score.sum())
        return score / total if total > 0 else None

    def _risk_parity(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        key = ("risk_parity", self.cfg.risk_parity_lookback, k)  # eligibility is part of the cleaned data
        if key not in self.memo:
            self.memo[key] = self._risk_parity_at(k, elig)
        weights: np.ndarray | None = self.memo[key]
        return weights

    def _risk_parity_at(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        lb = self.cfg.risk_parity_lookback
        lo = max(k - lb + 1, 0)
        assert self.invalid_cum is not None  # set whenever the risk_parity sleeve has a weight
        invalid = self.invalid_cum[k] - (self.invalid_cum[lo - 1] if lo > 0 else 0)
        n = ((k - lo + 1) - invalid).astype(np.float64)
        ok = elig & (n >= 2)
        if not ok.any():
            return None
        window = self.r0[lo : k + 1]  # invalid returns are stored as 0, so plain sums are sums over valid ones
        s1 = window.sum(axis=0)
        s2 = np.einsum("ij,ij->j", window, window)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss = s2 - s1 * s1 / n
            var = ss / (n - 1.0)
            # A variance below 1e-12 of the mean square is rounding noise of a constant series.
            ok &= ss > 1e-12 * s2
        if not ok.any():
            return None
        inv = np.zeros(var.size)
        inv[ok] = 1.0 / np.sqrt(var[ok])
        return inv / float(inv.sum())

    def _market_cap(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        if self.caps is None:  # no caps at all: the sleeve is empty (the empty-sleeve rule)
            return None
        key = ("market_cap", self.caps_id, self.cfg.market_cap_sqrt, k)
        if self.caps_id is None:
            return self._market_cap_at(k, elig)
        if key not in self.memo:
            self.memo[key] = self._market_cap_at(k, elig)
        weights: np.ndarray | None = self.memo[key]
        return weights

    def _market_cap_at(self, k: int, elig: np.ndarray) -> np.ndarray | None:
        assert self.caps is not None
        # Latest positive cap within the forward-fill limit (causal, no filled copy kept).
        c = self.caps[k].copy()
        with np.errstate(invalid="ignore"):
            missing = ~(c > 0)
            back = 1
            while missing.any() and back <= self.cfg.ffill_limit and k - back >= 0:
                older = self.caps[k - back]
                take = missing & (older > 0)
                c[take] = older[take]
                missing &= ~take
                back += 1
        ok = elig & ~missing
        if not ok.any():
            return None
        w = np.where(ok, np.sqrt(c) if self.cfg.market_cap_sqrt else c, 0.0)
        return w / float(w.sum())

    def at(self, k: int) -> np.ndarray | None:
        """Target weights at the close of row ``k`` or ``None`` when nothing is eligible."""
        elig = self.pvalid[k] & (self.eligible_from <= k)
        self.short_of_holdings = False
        if self.included is not None:
            elig = elig & self.included
        if not elig.any():
            return None
        blend = np.zeros(elig.size)
        used = 0.0
        empty = []
        for sleeve, share in self.sleeves:
            if sleeve == "equal":
                w = elig / float(elig.sum())
            elif sleeve == "momentum":
                w = self._momentum(k, elig)
            elif sleeve == "market_cap":
                w = self._market_cap(k, elig)
            else:
                w = self._risk_parity(k, elig)
            if w is None:
                empty.append(sleeve)
                continue
            blend += share * w
            used += share
        if used == 0.0:
            return None
        for sleeve in empty:
            self.empty_sleeve_dates[sleeve] += 1
        blend /= used
        top_n = self.cfg.top_n
        if top_n is not None and np.count_nonzero(blend) > top_n:
            keep = np.argsort(-blend, kind="stable")[:top_n]
            selected = np.zeros_like(blend)
            selected[keep] = blend[keep]
            blend = selected / selected.sum()
        cfg = self.cfg
        if cfg.min_weight is not None:
            blend = apply_min_weight(blend, cfg.min_weight, cfg.min_holdings or 1)
        if cfg.min_holdings is not None and np.count_nonzero(blend) < cfg.min_holdings:
            self.short_of_holdings = True  # the engine keeps the current holdings (:mod:`core.quant.engine` docstring)
            return None
        if self.groups:
            blend = apply_caps(blend, cfg.max_weight, self.groups)
            if blend.sum() < 1.0 - 1e-9:
                self.cap_shortfall_dates += 1
        elif cfg.max_weight is not None:
            blend = _apply_cap(blend, cfg.max_weight)
            if blend.sum() < 1.0 - 1e-9:
                self.cap_shortfall_dates += 1
        return blend
