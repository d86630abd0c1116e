"""Unit tests of the StrategyConfig schema: defaults, every rejection with its field, helpers."""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from core.schemas.strategy import (DEFAULT_CONFIG, FIELD_HELP, StrategyConfig, describe_config,
                                   validate_config)


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


@pytest.mark.parametrize("data, fields", [
    ({"equal": 0.5, "momentum": 0.4}, {"equal", "momentum", "market_cap", "risk_parity"}),
    ({"equal": 1.2, "momentum": -0.2}, {"momentum"}),
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
])
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
    cfg = StrategyConfig(momentum=0.5, risk_parity=0.5, max_weight=0.2, drift_band=0.05,
                         outlier_z=4, min_price=1, cost_bps=10)
    assert StrategyConfig.model_validate(cfg.model_dump()) == cfg
    lines = describe_config(cfg)
    rules = [name for name, _ in lines]
    assert rules[0] == "Sleeves" and "Momentum" in rules and "Risk parity" in rules
    assert "Market cap" not in rules and "Equal weight" not in rules
    text = dict(lines)
    assert "20%" in text["Weight cap"] and "5%" in text["Drift band"] and "10 bps" in text["Costs"]
    assert "week" in dict(describe_config(DEFAULT_CONFIG))["Rebalancing"]
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in describe_config({}))
