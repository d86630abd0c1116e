"""Strategy configuration: the validated parameters of one index methodology.

:class:`StrategyConfig` is the contract between the Strategy page, the stored
config versions and the pure engine (:func:`core.quant.engine.backtest`).
Every rule is described in docs/methodology.md ("Index construction", "Parameter bounds"); the engine module
docstring documents the exact conventions chosen where the brief leaves room.

Validation errors are located at field names (``loc == (field,)``) so that a UI
can put each message beside its input; cross-field rules report on every field
involved (the sleeve-sum rule on all four sleeve weights, the infeasible cap on
``top_n`` and ``max_weight``). :func:`validate_config` flattens them to a
``{field: message}`` dict.

Units: weights and thresholds are fractions (0.1 = 10 %), lookbacks and windows
are trading days (rows of the price matrix), costs are basis points.

Bounds (:data:`BOUNDS`) are the ranges a real methodology uses, not merely what the
arithmetic tolerates: ten years of trading days (2520) for every lookback and window,
a base value of 1 to 1,000,000, a momentum threshold of -100 % to +1000 %, daily
returns clipped at 1 % to 1000 %, an outlier test of 1 to 100 standard deviations,
and so on. Values outside them are refused with "<field> must be between <low> and
<high>; got <value>", so that no schema-valid config can overflow the engine or
produce a degenerate index (the engine checks its own results as well, see
:func:`core.quant.engine.check_result`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

RebalancePeriod = Literal["daily", "weekly", "monthly", "quarterly", "yearly"]
PriceBasis = Literal["price", "total_return"]


def basis_label(basis: str | None) -> str:
    """How every chart title and report cover names a version's price basis (issue 15, item 7)."""
    return "total return" if basis == "total_return" else "price return"


#: Most extra comparison series a version shows beside its benchmark (issue 15).
MAX_COMPARISONS = 3
#: Most components of a benchmark blend, and of the sector / asset-class caps and exclusions lists.
MAX_BLEND_COMPONENTS = 5
MAX_GROUP_CAPS = 50
MAX_EXCLUSIONS = 500

#: The four sleeve-weight fields, in display order.
SLEEVES: tuple[str, ...] = ("equal", "momentum", "market_cap", "risk_parity")

#: Tolerance for the sleeve weights summing to one.
SLEEVE_SUM_TOLERANCE = 1e-9
#: The start of the message each sleeve carries when the four do not sum to 1 (forms show it once, in their terms).
SLEEVE_SUM_RULE = "sleeve weights must sum to 1"

_SLEEVE_LABELS = {
    "equal": "Equal weight",
    "momentum": "Momentum",
    "market_cap": "Market cap",
    "risk_parity": "Risk parity",
}


#: Inclusive ``(low, high)`` of every numeric field: what a real methodology uses (units as above).
BOUNDS: dict[str, tuple[float, float]] = {
    "equal": (0.0, 1.0),
    "momentum": (0.0, 1.0),
    "market_cap": (0.0, 1.0),
    "risk_parity": (0.0, 1.0),
    "momentum_lookback": (2, 2520),  # trading days: 2 days .. 10 years
    "momentum_threshold": (-1.0, 10.0),  # a trailing return: -100 % .. +1000 %
    "risk_parity_lookback": (2, 2520),
    "top_n": (1, 10_000),  # assets
    "max_weight": (0.001, 1.0),  # 0.1 % .. 100 %
    "min_history": (1, 2520),
    "drift_band": (0.001, 0.5),  # absolute weight drift: 0.1 % .. 50 %
    "cost_bps": (0.0, 1000.0),  # 0 .. 10 % of traded value
    "min_price": (0.0, 1_000_000.0),  # currency units
    "ffill_limit": (0, 252),  # trading days: at most a year
    "return_clip": (0.01, 10.0),  # daily return: 1 % .. 1000 %
    "outlier_z": (1.0, 100.0),  # standard deviations
    "outlier_window": (2, 2520),
    "base_value": (1.0, 1_000_000.0),  # index points
    "min_weight": (0.0001, 0.5),  # 0.01 % .. 50 %
    "min_holdings": (1, 10_000),  # assets
}

#: Pydantic error types that mean "outside the bounds" (reworded to name the field and the range).
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


def _bound(name: str, default: float | int | None, *, finite: bool = True) -> Any:
    low, high = BOUNDS[name]
    extra: dict[str, Any] = {"allow_inf_nan": False} if finite else {}
    return Field(default, ge=low, le=high, **extra)


def _number(x: float) -> str:
    """1,000,000 rather than 1e+06 for whole bounds; fractions as they are (0.001, 0.5)."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        digits = str(abs(value))  # a huge integer (JSON from PostgreSQL turns 1e308 into one) in short form
        mantissa = digits[1:6].rstrip("0")
        return f"{'-' if value < 0 else ''}{digits[0]}{'.' + mantissa if mantissa else ''}e+{len(digits) - 1:02d}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class StrategyConfig(BaseModel):
    """Parameters of a rules-based index (see the engine for their exact meaning).

    When none of the four sleeve weights is given the config is pure equal
    weight (``equal=1``); as soon as one sleeve weight is given, the others
    default to 0, so ``StrategyConfig(momentum=1)`` is a pure momentum index.
    """

    model_config = ConfigDict(extra="forbid")

    # --- sleeves (fractions, >= 0, summing to 1) ---
    equal: float = _bound("equal", 0.0)
    momentum: float = _bound("momentum", 0.0)
    market_cap: float = _bound("market_cap", 0.0)
    risk_parity: float = _bound("risk_parity", 0.0)

    # --- sleeve parameters ---
    momentum_lookback: int = _bound("momentum_lookback", 126, finite=False)
    momentum_threshold: float = _bound("momentum_threshold", 0.0)
    risk_parity_lookback: int = _bound("risk_parity_lookback", 63, finite=False)
    market_cap_sqrt: bool = False

    # --- constraints ---
    top_n: int | None = _bound("top_n", None, finite=False)
    max_weight: float | None = _bound("max_weight", None)
    min_history: int = _bound("min_history", 63, finite=False)

    # --- rebalancing and costs ---
    rebalance: RebalancePeriod = "monthly"
    drift_band: float | None = _bound("drift_band", None)
    cost_bps: float = _bound("cost_bps", 0.0)

    # --- data hygiene (all trailing) ---
    min_price: float | None = _bound("min_price", None)
    ffill_limit: int = _bound("ffill_limit", 5, finite=False)
    return_clip: float | None = _bound("return_clip", 0.5)
    outlier_z: float | None = _bound("outlier_z", None)
    outlier_window: int = _bound("outlier_window", 63, finite=False)

    base_value: float = _bound("base_value", 100.0)

    # --- issue 15: benchmark, comparisons, more constraints, price basis (docs/methodology.md) ---
    benchmark: str | None = Field(default=None, min_length=1, max_length=32)
    benchmark_blend: dict[str, float] | None = None
    comparisons: list[str] = Field(default_factory=list)
    sector_caps: dict[str, float] | None = None
    asset_class_caps: dict[str, float] | None = None
    min_weight: float | None = _bound("min_weight", None)
    min_holdings: int | None = _bound("min_holdings", None, finite=False)
    exclusions: list[str] = Field(default_factory=list)
    basis: PriceBasis = "price"

    @field_validator(*BOUNDS, mode="wrap")
    @classmethod
    def _name_the_range(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Reword a bounds error as "<field> must be between <low> and <high>; got <value>"."""
        try:
            return handler(value)
        except ValidationError as exc:
            if not any(e["type"] in _RANGE_ERRORS for e in exc.errors()):
                raise
            low, high = BOUNDS[str(info.field_name)]
            raise PydanticCustomError(
                "out_of_range",
                "{field} must be between {low} and {high}; got {got}",
                {"field": info.field_name, "low": _number(low), "high": _number(high), "got": _show(value)},
            ) from None

    @model_validator(mode="before")
    @classmethod
    def _default_sleeves(cls, data: Any) -> Any:
        if isinstance(data, dict) and not any(k in data for k in SLEEVES):
            data = {**data, "equal": 1.0}
        return data

    @model_validator(mode="after")
    def _cross_field_rules(self) -> StrategyConfig:
        problems: list[InitErrorDetails] = []
        total = math.fsum(getattr(self, s) for s in SLEEVES)
        if abs(total - 1.0) > SLEEVE_SUM_TOLERANCE:
            message = f"{SLEEVE_SUM_RULE} (equal + momentum + market_cap + risk_parity = {total:.6g})"
            for sleeve in SLEEVES:
                problems.append(
                    InitErrorDetails(
                        type=PydanticCustomError("sleeve_sum", message), loc=(sleeve,), input=getattr(self, sleeve)
                    )
                )
        if (
            self.top_n is not None
            and self.max_weight is not None
            and self.top_n * self.max_weight < 1 - SLEEVE_SUM_TOLERANCE
        ):
            message = (
                f"infeasible cap: top_n ({self.top_n}) x max_weight ({self.max_weight:g}) "
                f"= {self.top_n * self.max_weight:.6g} < 1, the index could not be fully invested"
            )
            for name in ("top_n", "max_weight"):
                problems.append(
                    InitErrorDetails(
                        type=PydanticCustomError("infeasible_cap", message), loc=(name,), input=getattr(self, name)
                    )
                )
        problems.extend(self._issue15_problems())
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def _issue15_problems(self) -> list[InitErrorDetails]:
        """Benchmark, comparisons, caps, minimum weight / holdings and exclusions (each beside its field)."""
        found: list[tuple[str, str, Any]] = []
        if self.benchmark is not None and self.benchmark_blend:
            found.append(("benchmark_blend", "choose a benchmark symbol or a blend, not both", self.benchmark_blend))
        if self.benchmark_blend is not None:
            blend = self.benchmark_blend
            total = math.fsum(blend.values()) if blend else 0.0
            if not blend or len(blend) > MAX_BLEND_COMPONENTS:
                found.append(("benchmark_blend", f"a blend has 1 to {MAX_BLEND_COMPONENTS} symbols", blend))
            elif any(not (math.isfinite(w) and 0 < w <= 1) for w in blend.values()):
                found.append(("benchmark_blend", "blend weights must be fractions above 0 and at most 1", blend))
            elif abs(total - 1.0) > 1e-6:
                found.append(("benchmark_blend", f"blend weights must sum to 1 (they sum to {total:.6g})", blend))
        if len(self.comparisons) > MAX_COMPARISONS:
            found.append(
                (
                    "comparisons",
                    f"at most {MAX_COMPARISONS} comparison series; got {len(self.comparisons)}",
                    self.comparisons,
                )
            )
        elif len(set(self.comparisons)) != len(self.comparisons):
            found.append(("comparisons", "a comparison series is listed twice", self.comparisons))
        for name in ("sector_caps", "asset_class_caps"):
            caps = getattr(self, name)
            if caps is None:
                continue
            if len(caps) > MAX_GROUP_CAPS:
                found.append((name, f"at most {MAX_GROUP_CAPS} caps", caps))
            bad = [k for k, v in caps.items() if not k.strip() or not (math.isfinite(v) and 0 < v <= 1)]
            if bad:
                found.append(
                    (
                        name,
                        "caps are fractions above 0 and at most 1 (0.4 = 40 %) for named groups; "
                        f"check {', '.join(map(repr, bad[:5]))}",
                        caps,
                    )
                )
        if len(self.exclusions) > MAX_EXCLUSIONS:
            found.append(("exclusions", f"at most {MAX_EXCLUSIONS} symbols", self.exclusions))
        if self.min_weight is not None and self.max_weight is not None and self.min_weight > self.max_weight:
            message = f"min_weight ({self.min_weight:g}) is above max_weight ({self.max_weight:g})"
            found += [("min_weight", message, self.min_weight), ("max_weight", message, self.max_weight)]
        if self.min_holdings is not None and self.top_n is not None and self.min_holdings > self.top_n:
            message = f"min_holdings ({self.min_holdings}) is above top_n ({self.top_n}): never met"
            found += [("min_holdings", message, self.min_holdings), ("top_n", message, self.top_n)]
        if (
            self.min_holdings is not None
            and self.min_weight is not None
            and self.min_holdings * self.min_weight > 1 + SLEEVE_SUM_TOLERANCE
        ):
            message = (
                f"infeasible: min_holdings ({self.min_holdings}) x min_weight ({self.min_weight:g}) "
                f"= {self.min_holdings * self.min_weight:.6g} > 1"
            )
            found += [("min_holdings", message, self.min_holdings), ("min_weight", message, self.min_weight)]
        return [
            InitErrorDetails(type=PydanticCustomError("constraint", message), loc=(field,), input=value)
            for field, message, value in found
        ]

    @property
    def sleeve_weights(self) -> dict[str, float]:
        """``{sleeve: weight}`` for the four sleeves, in display order."""
        return {s: getattr(self, s) for s in SLEEVES}


#: The demo/default methodology: momentum 40 %, market cap 30 %, risk parity 30 %, weekly.
DEFAULT_CONFIG = StrategyConfig(momentum=0.4, market_cap=0.3, risk_parity=0.3, rebalance="weekly")

#: One line of help per field, for UI tooltips.
FIELD_HELP: dict[str, str] = {
    "equal": "Share of the index in the equal-weight sleeve (fraction; the four sleeves sum to 1).",
    "momentum": "Share in the momentum sleeve: weights proportional to trailing return above the threshold.",
    "market_cap": "Share in the market-cap sleeve: weights proportional to market cap; assets without "
    "a market cap are left out of it, and with no caps at all the sleeve is left out and the others "
    "scaled up (a warning says so).",
    "risk_parity": "Share in the risk-parity sleeve: weights proportional to 1 / volatility of daily returns.",
    "momentum_lookback": "Trailing window of the momentum signal, in trading days (126 = about 6 months).",
    "momentum_threshold": "Assets whose trailing return is at or below this fraction get no momentum weight.",
    "risk_parity_lookback": "Window of daily returns used for the risk-parity volatility, in trading days.",
    "market_cap_sqrt": "Weight by the square root of market cap, damping the largest companies.",
    "top_n": "Keep only the N assets with the largest blended weight (empty = no limit).",
    "max_weight": "Maximum weight per asset (fraction); the excess is spread over the other holdings.",
    "min_history": "Trading days of valid prices an asset needs before it can enter the index.",
    "rebalance": "Rebalance at the close of the last trading day of each period.",
    "drift_band": "Also rebalance when any weight drifts further than this (absolute fraction) from target.",
    "cost_bps": "Trading cost in basis points of traded value, taken from the index at each rebalance.",
    "min_price": "Prices below this are treated as missing (e.g. to exclude penny stocks).",
    "ffill_limit": "Carry a missing price forward for at most this many trading days.",
    "return_clip": "Clip daily returns to +/- this fraction (0.5 = 50 %) to limit bad ticks.",
    "outlier_z": "Treat a daily return further than this many trailing standard deviations as a bad tick.",
    "outlier_window": "Trailing window (trading days) for the outlier test's mean and standard deviation.",
    "base_value": "Index level before the first allocation.",
    "benchmark": "Benchmark of this version: a stored symbol (empty = the default benchmark rule).",
    "benchmark_blend": "Or a fixed-weight blend of stored symbols (e.g. SPY 0.6, IEF 0.4), rebalanced monthly.",
    "comparisons": f"Up to {MAX_COMPARISONS} extra symbols shown beside the index and its benchmark.",
    "sector_caps": "Maximum weight per sector (fraction); the excess is spread over sectors with room.",
    "asset_class_caps": "Maximum weight per asset class (fraction); the excess is spread over classes with room.",
    "min_weight": "Holdings below this weight are dropped (smallest first) and the rest scaled up.",
    "min_holdings": "The index trades only into targets holding at least this many assets.",
    "exclusions": "Symbols never held by this version.",
    "basis": "price: closes only; total_return: dividends reinvested (adjusted prices).",
}
for _name, (_low, _high) in BOUNDS.items():
    FIELD_HELP[_name] += f" Range {_number(_low)} to {_number(_high)}."


def validate_config(data: dict[str, Any] | StrategyConfig) -> tuple[StrategyConfig | None, dict[str, str]]:
    """Validate ``data`` without raising.

    Returns ``(config, {})`` when valid, else ``(None, {field: message})``; messages
    for the same field are joined with "; ". Errors not tied to one field (e.g. the
    input is not a mapping) are reported under the key ``"config"``.
    """
    if isinstance(data, StrategyConfig):
        return data, {}
    try:
        return StrategyConfig.model_validate(data), {}
    except ValidationError as exc:
        return None, errors_by_field(exc)


def errors_by_field(exc: ValidationError) -> dict[str, str]:
    """Flatten a pydantic ValidationError to ``{field: message}``."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else "config"
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors[field] = f"{errors[field]}; {message}" if field in errors else message
    return errors


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def describe_config(cfg: StrategyConfig | dict[str, Any]) -> list[tuple[str, str]]:
    """Human-readable methodology, one ``(rule name, rule text)`` per rule, for reports and the UI."""
    if not isinstance(cfg, StrategyConfig):
        cfg = StrategyConfig.model_validate(cfg)
    lines: list[tuple[str, str]] = []
    sleeves = ", ".join(f"{_SLEEVE_LABELS[s]} {_pct(w)}" for s, w in cfg.sleeve_weights.items() if w > 0)
    lines.append(
        (
            "Sleeves",
            f"{sleeves}. A sleeve with no eligible asset on a rebalance date is "
            "left out and the other sleeves are scaled up.",
        )
    )
    if cfg.equal > 0:
        lines.append(("Equal weight", "Every eligible asset gets the same weight."))
    if cfg.momentum > 0:
        lines.append(
            (
                "Momentum",
                f"Trailing return over {cfg.momentum_lookback} trading days; assets at or "
                f"below {_pct(cfg.momentum_threshold)} get nothing, the others are weighted "
                "in proportion to their return in excess of that threshold.",
            )
        )
    if cfg.market_cap > 0:
        lines.append(
            (
                "Market cap",
                "Weights proportional to "
                + ("the square root of market cap" if cfg.market_cap_sqrt else "market cap")
                + "; assets without a market cap are left out of this sleeve, and without any market "
                "cap the sleeve is left out and the other sleeves are scaled up.",
            )
        )
    if cfg.risk_parity > 0:
        lines.append(
            (
                "Risk parity",
                "Weights proportional to 1 / volatility of daily returns over "
                f"{cfg.risk_parity_lookback} trading days.",
            )
        )
    lines.append(
        (
            "Eligibility",
            f"An asset needs {cfg.min_history} trading days of valid prices and a price on the rebalance date.",
        )
    )
    if cfg.top_n is not None:
        lines.append(("Selection", f"Only the {cfg.top_n} assets with the largest blended weight are kept."))
    if cfg.max_weight is not None:
        lines.append(
            (
                "Weight cap",
                f"No asset above {_pct(cfg.max_weight)}; the excess is redistributed "
                "proportionally over the uncapped assets until nothing breaches.",
            )
        )
    rebalance = f"At the close of the last trading day of each {cfg.rebalance.removesuffix('ly')}"
    if cfg.rebalance == "daily":
        rebalance = "At the close of every trading day"
    lines.append(
        (
            "Rebalancing",
            rebalance + "; weights set at a close earn returns from the next day, and drift with prices in between.",
        )
    )
    if cfg.drift_band is not None:
        lines.append(
            (
                "Drift band",
                f"Also rebalance when any weight drifts more than {_pct(cfg.drift_band)} (absolute) from its target.",
            )
        )
    lines.append(
        (
            "Costs",
            f"{cfg.cost_bps:g} bps of turnover (sum of absolute weight changes) "
            "deducted from the index level at each rebalance.",
        )
    )
    hygiene = [f"prices carried forward at most {cfg.ffill_limit} trading days"]
    if cfg.min_price is not None:
        hygiene.insert(0, f"prices below {cfg.min_price:g} treated as missing")
    if cfg.return_clip is not None:
        hygiene.append(f"daily returns clipped to +/-{_pct(cfg.return_clip)}")
    if cfg.outlier_z is not None:
        hygiene.append(
            f"returns beyond {cfg.outlier_z:g} standard deviations of the trailing "
            f"{cfg.outlier_window}-day window treated as zero"
        )
    hygiene.append("an asset that stops trading is sold at its last price")
    lines.append(("Data hygiene", "; ".join(hygiene).capitalize() + "."))
    lines.append(("Base value", f"The index starts at {cfg.base_value:g}."))
    lines.extend(_issue15_rules(cfg))
    return lines


def _issue15_rules(cfg: StrategyConfig) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = [
        (
            "Basis",
            "Total return: dividends reinvested (dividend-adjusted prices)."
            if cfg.basis == "total_return"
            else "Price return: closes only.",
        )
    ]
    if cfg.benchmark_blend:
        blend = ", ".join(f"{s} {_pct(w)}" for s, w in cfg.benchmark_blend.items())
        lines.append(("Benchmark", f"Blend of {blend}, rebalanced monthly."))
    elif cfg.benchmark:
        lines.append(("Benchmark", cfg.benchmark))
    if cfg.comparisons:
        lines.append(("Comparisons", ", ".join(cfg.comparisons)))
    for label, caps in (("Sector caps", cfg.sector_caps), ("Asset-class caps", cfg.asset_class_caps)):
        if caps:
            lines.append(
                (
                    label,
                    ", ".join(f"{k} {_pct(v)}" for k, v in sorted(caps.items()))
                    + "; the excess is redistributed over the groups with room.",
                )
            )
    if cfg.min_weight is not None:
        lines.append(("Minimum weight", f"Holdings below {_pct(cfg.min_weight)} are dropped, smallest first."))
    if cfg.min_holdings is not None:
        lines.append(
            (
                "Minimum holdings",
                f"A rebalance needs at least {cfg.min_holdings} holdings; otherwise the current holdings are kept.",
            )
        )
    if cfg.exclusions:
        lines.append(("Exclusions", ", ".join(cfg.exclusions[:20]) + (" ..." if len(cfg.exclusions) > 20 else "")))
    return lines
