"""Unit tests of the StrategyConfig schema: defaults, every rejection with its field, helpers."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from core.schemas.strategy import DEFAULT_CONFIG, FIELD_HELP, StrategyConfig, describe_config, validate_config


def test_defaults():
    cfg = StrategyConfig()
    assert cfg.equal == 1.0 and cfg.momentum == 0.0
    assert cfg.momentum_lookback == 126 and cfg.risk_parity_lookback == 63 and cfg.min_history == 63
    assert cfg.rebalance == "monthly" and cfg.ffill_limit == 5 and cfg.return_clip == 0.5
    assert cfg.base_value == 100 and cfg.cost_bps == 0 and cfg.top_n is None and cfg.max_weight is None
    assert (DEFAULT_CONFIG.momentum, DEFAULT_CONFIG.market_cap, DEFAULT_CONFIG.risk_parity) == (0.4, 0.3, 0.3)
    assert DEFAULT_CONFIG.equal == 0.0 and DEFAULT_CONFIG.rebalance == "weekly"
    # Naming one sleeve makes the others default to zero.
    assert StrategyConfig(momentum=1).equal == 0.0


def test_field_help_covers_every_field():
    assert set(FIELD_HELP) == set(StrategyConfig.model_fields)
    assert all(isinstance(v, str) and v for v in FIELD_HELP.values())


@pytest.mark.parametrize(
    "data, fields",
    [
        ({"equal": 0.5, "momentum": 0.4}, {"equal", "momentum", "market_cap", "risk_parity"}),
        ({"equal": 1.2, "momentum": -0.2}, {"equal", "momentum"}),  # each sleeve is a fraction 0..1
        ({"equal": math.nan}, {"equal"}),
        ({"equal": math.inf}, {"equal"}),
        ({"momentum_lookback": 1}, {"momentum_lookback"}),
        ({"risk_parity_lookback": 0}, {"risk_parity_lookback"}),
        ({"momentum_lookback": 12.5}, {"momentum_lookback"}),
        ({"momentum_threshold": math.nan}, {"momentum_threshold"}),
        ({"rebalance": "hourly"}, {"rebalance"}),
        ({"top_n": 0}, {"top_n"}),
        ({"max_weight": 0}, {"max_weight"}),
        ({"max_weight": 1.5}, {"max_weight"}),
        ({"top_n": 5, "max_weight": 0.1}, {"top_n", "max_weight"}),
        ({"min_history": 0}, {"min_history"}),
        ({"drift_band": 0}, {"drift_band"}),
        ({"drift_band": 1}, {"drift_band"}),
        ({"cost_bps": -1}, {"cost_bps"}),
        ({"cost_bps": 1001}, {"cost_bps"}),
        ({"min_price": -0.01}, {"min_price"}),
        ({"ffill_limit": -1}, {"ffill_limit"}),
        ({"return_clip": 0}, {"return_clip"}),
        ({"outlier_z": -2}, {"outlier_z"}),
        ({"outlier_window": 1}, {"outlier_window"}),
        ({"base_value": 0}, {"base_value"}),
        ({"colour": "red"}, {"colour"}),
    ],
)
def test_each_invalid_value_is_rejected_at_its_field(data, fields):
    with pytest.raises(ValidationError) as info:
        StrategyConfig(**data)
    assert {str(e["loc"][0]) for e in info.value.errors()} == fields
    cfg, errors = validate_config(data)
    assert cfg is None and set(errors) == fields
    assert all(isinstance(m, str) and m for m in errors.values())


def test_messages_are_readable():
    _, errors = validate_config({"equal": 0.5, "momentum": 0.4})
    assert "sum to 1" in errors["equal"] and "0.9" in errors["equal"]
    _, errors = validate_config({"top_n": 5, "max_weight": 0.1})
    assert "infeasible" in errors["max_weight"]
    _, errors = validate_config({"rebalance": "hourly"})
    assert "monthly" in errors["rebalance"]


def test_valid_configs_pass_and_sum_tolerance():
    cfg, errors = validate_config({"equal": 0.1, "momentum": 0.2, "market_cap": 0.3, "risk_parity": 0.4})
    assert errors == {} and cfg is not None
    cfg, errors = validate_config({"equal": 1 - 1e-10})
    assert errors == {}
    _, errors = validate_config({"equal": 1 - 1e-8})
    assert "equal" in errors
    assert validate_config({"top_n": 10, "max_weight": 0.1})[1] == {}
    assert validate_config(DEFAULT_CONFIG) == (DEFAULT_CONFIG, {})
    _, errors = validate_config("not a dict")
    assert "config" in errors


def test_round_trip_and_describe():
    cfg = StrategyConfig(
        momentum=0.5, risk_parity=0.5, max_weight=0.2, drift_band=0.05, outlier_z=4, min_price=1, cost_bps=10
    )
    assert StrategyConfig.model_validate(cfg.model_dump()) == cfg
    lines = describe_config(cfg)
    rules = [name for name, _ in lines]
    assert rules[0] == "Sleeves" and "Momentum" in rules and "Risk parity" in rules
    assert "Market cap" not in rules and "Equal weight" not in rules
    text = dict(lines)
    assert "20%" in text["Weight cap"] and "5%" in text["Drift band"] and "10 bps" in text["Costs"]
    assert "week" in dict(describe_config(DEFAULT_CONFIG))["Rebalancing"]
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in describe_config({}))


# --- bounds: the ranges a real methodology uses (issue 11, case 13) ----------------------------

from core.schemas.strategy import BOUNDS, SLEEVES  # noqa: E402

NUMERIC = [
    name
    for name, f in StrategyConfig.model_fields.items()
    if any(t in (int, float) for t in (f.annotation, *getattr(f.annotation, "__args__", ())))
]


def _with(name, value) -> dict:
    """A config that is valid except (perhaps) for ``name`` = ``value``."""
    data = {name: value}
    if name in SLEEVES:  # the other sleeves take the rest, so only the bound can fail
        other = next(s for s in SLEEVES if s != name)
        if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1:
            data[other] = 1 - value
    return data


def test_every_numeric_field_has_documented_bounds():
    assert set(BOUNDS) == set(NUMERIC)
    for name, (low, high) in BOUNDS.items():
        assert low < high
        assert "Range " in FIELD_HELP[name]


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_bounds_are_inclusive_and_the_message_names_field_and_range(name):
    low, high = BOUNDS[name]
    is_int = StrategyConfig.model_fields[name].annotation in (int, int | None)
    for inside in (low, high):
        value = int(inside) if is_int else float(inside)
        cfg, errors = validate_config(_with(name, value))
        assert errors == {}, (name, value, errors)
        assert getattr(cfg, name) == value
    step = 1 if is_int else max(abs(high), 1) * 1e-9
    for outside in (low - (1 if is_int else max(abs(low), 1e-3) * 1e-6), high + step):
        _, errors = validate_config(_with(name, int(outside) if is_int else outside))
        assert name in errors, (name, outside)
        message = errors[name]
        assert message.startswith(f"{name} must be between "), message
        assert "; got " in message


@pytest.mark.parametrize("value", [1e308, -1e308, 5e-324, -5e-324, math.inf, -math.inf, math.nan, 10**30, -(10**30)])
@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_extreme_numbers_are_refused_at_their_field(name, value):
    low, high = BOUNDS[name]
    finite = isinstance(value, int) or math.isfinite(value)
    if finite and low <= value <= high:
        return  # e.g. 5e-324 is a valid (if tiny) sleeve weight or cost
    is_int = StrategyConfig.model_fields[name].annotation in (int, int | None)
    if is_int and isinstance(value, float) and finite:
        value = int(value) if abs(value) >= 1 else value
    cfg, errors = validate_config(_with(name, value))
    assert cfg is None and name in errors, (name, value, errors)
    with pytest.raises(ValidationError):
        StrategyConfig(**_with(name, value))


def test_negative_zero_counts_as_zero():
    assert validate_config({"cost_bps": -0.0, "min_price": -0.0})[1] == {}
    _, errors = validate_config({"base_value": -0.0})
    assert errors["base_value"] == "base_value must be between 1 and 1,000,000; got -0"


@pytest.mark.parametrize(
    "data, field, text",
    [
        ({"base_value": 1e308, "top_n": 1}, "base_value", "base_value must be between 1 and 1,000,000; got 1e+308"),
        (
            {"momentum": 1, "momentum_threshold": -1e308},
            "momentum_threshold",
            "momentum_threshold must be between -1 and 10; got -1e+308",
        ),
        ({"base_value": 5e-324}, "base_value", "base_value must be between 1 and 1,000,000; got 4.94066e-324"),
        ({"return_clip": 1e308}, "return_clip", "return_clip must be between 0.01 and 10; got 1e+308"),
        ({"top_n": 10**30}, "top_n", "top_n must be between 1 and 10,000; got "),
        ({"drift_band": 0.9}, "drift_band", "drift_band must be between 0.001 and 0.5; got 0.9"),
    ],
)
def test_issue_cases_are_refused_with_a_readable_message(data, field, text):
    _, errors = validate_config(data)
    assert errors[field].startswith(text), errors


def test_return_clip_may_be_switched_off():
    assert StrategyConfig(return_clip=None).return_clip is None
