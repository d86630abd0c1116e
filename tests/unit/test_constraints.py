"""Constraints: hand-computed caps, minimum weight and holdings, exclusions, feasibility, no look-ahead."""
from __future__ import annotations

import numpy as np
import pytest

from core.quant.constraints import apply_caps, apply_min_weight, group_codes, universe_errors
from core.quant.engine import _apply_cap

SYMBOLS = ["A", "B", "C", "D"]
SECTORS = {"A": "Tech", "B": "Tech", "C": "Fin", "D": "Energy"}
CLASSES = {"A": "equity", "B": "equity", "C": "equity", "D": "bond"}


def test_sector_cap_redistributes_over_the_other_sectors_by_hand():
    w = np.array([0.4, 0.3, 0.2, 0.1])
    out = apply_caps(w, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.5})])
    # Tech 0.7 -> 0.5 (A, B scaled by 5/7); the 0.2 excess goes to C and D in proportion 2:1
    assert out == pytest.approx([0.4 * 5 / 7, 0.3 * 5 / 7, 0.2 + 0.2 * 2 / 3, 0.1 + 0.2 / 3], abs=1e-15)
    assert w.tolist() == [0.4, 0.3, 0.2, 0.1]  # input untouched


def test_sector_and_asset_class_caps_together_by_hand():
    w = np.array([0.4, 0.3, 0.2, 0.1])
    out = apply_caps(w, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.5}),
                                group_codes(SYMBOLS, CLASSES, {"equity": 0.8})])
    # round 1 as above -> [.285714, .214286, .333333, .166667]; round 2: equity .833333 -> .8 (x .96), D takes it
    assert out == pytest.approx([0.4 * 5 / 7 * 0.96, 0.3 * 5 / 7 * 0.96, (0.2 + 0.2 * 2 / 3) * 0.96, 0.2], abs=1e-12)
    assert out.sum() == pytest.approx(1.0)
    assert out[:3].sum() <= 0.8 + 1e-12 and out[:2].sum() <= 0.5 + 1e-12


def test_asset_cap_with_group_cap_and_infeasible_excess_stays_in_cash():
    w = np.array([0.7, 0.1, 0.1, 0.1])
    out = apply_caps(w, max_weight=0.4, groups=[group_codes(SYMBOLS, SECTORS, {"Tech": 0.45})])
    assert out[:2].sum() == pytest.approx(0.45) and out.max() <= 0.4 + 1e-12 and out.sum() == pytest.approx(1.0)
    # everything capped: 2 assets at 30 % each can hold only 60 %
    short = apply_caps(np.array([0.5, 0.5]), max_weight=0.3)
    assert short == pytest.approx([0.3, 0.3])


@pytest.mark.parametrize("seed", range(20))
def test_max_weight_alone_equals_the_engines_single_asset_cap(seed):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(12, 0.4))
    cap = float(rng.uniform(0.1, 0.3))
    assert apply_caps(w, max_weight=cap) == pytest.approx(_apply_cap(w.copy(), cap), abs=1e-12)


def test_min_weight_drops_the_smallest_first_and_keeps_min_holdings():
    w = np.array([0.5, 0.3, 0.12, 0.08])
    # 0.08 < 0.1: dropped; rescaled 0.12 / 0.92 = 0.1304 >= 0.1 stays
    assert apply_min_weight(w, 0.1) == pytest.approx(np.array([0.5, 0.3, 0.12, 0.0]) / 0.92)
    # 0.15: drop 0.08, then 0.12/0.92 = 0.13 < 0.15: drop too -> [0.625, 0.375]
    assert apply_min_weight(w, 0.15) == pytest.approx([0.625, 0.375, 0.0, 0.0])
    # min_holdings 3 stops after the first drop
    assert np.count_nonzero(apply_min_weight(w, 0.15, min_holdings=3)) == 3


def test_universe_errors_name_the_field():
    kwargs = dict(symbols=SYMBOLS, sectors=SECTORS, asset_classes=CLASSES, exclusions=[])
    assert universe_errors(sector_caps={"Tech": 0.5}, asset_class_caps=None, **kwargs) == {}
    errs = universe_errors(sector_caps={"Tech": 0.3, "Fin": 0.3, "Energy": 0.3}, asset_class_caps=None, **kwargs)
    assert "infeasible" in errs["sector_caps"] and "0.9" in errs["sector_caps"]
    errs = universe_errors(sector_caps=None, asset_class_caps={"equity": 0.9, "bond": 0.05}, **kwargs)
    assert "asset_class_caps" in errs
    errs = universe_errors(sector_caps={"Retail": 0.2}, asset_class_caps=None, **kwargs)
    assert "Retail" in errs["sector_caps"]
    kwargs["exclusions"] = ["ZZZ"]
    assert "ZZZ" in universe_errors(sector_caps=None, asset_class_caps=None, **kwargs)["exclusions"]
    kwargs["exclusions"] = SYMBOLS
    assert "every constituent" in universe_errors(sector_caps=None, asset_class_caps=None, **kwargs)["exclusions"]
    # with max_weight 0.2 one bond can hold only 20 %; equity capped at 0.7: 0.9 < 1
    errs = universe_errors(sector_caps=None, asset_class_caps={"equity": 0.7, "bond": 1.0}, max_weight=0.2,
                           symbols=SYMBOLS, sectors=SECTORS, asset_classes=CLASSES, exclusions=[])
    assert "asset_class_caps" in errs
