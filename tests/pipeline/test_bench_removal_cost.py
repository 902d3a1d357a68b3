"""The comparison's removal-cost fit: accuracy change per removed block at equal MACs, per-target intercepts."""
import sys

import pytest

from conftest import ROOT


def _fit():
    sys.path.insert(0, str(ROOT / "bench"))
    from compare_removals import removal_cost, removal_table
    return removal_cost, removal_table


def test_a_known_slope_is_recovered_with_per_target_intercepts():
    removal_cost, removal_table = _fit()
    done = {(s, "m", "__parent__", 0.0): {"accuracy": 0.5 + 0.01 * s} for s in range(3)}
    noise = [0.0005, -0.0005, 0.0003, -0.0002, 0.0001, -0.0004, 0.0002, 0.0, -0.0001, 0.0004, -0.0003, 0.0]
    i = 0
    for s in range(3):
        for t, offset in ((0.9, -0.01), (0.95, -0.03)):
            for meth, n in (("fcos", 5), ("fcos:confident", 2)):
                acc = 0.5 + 0.01 * s + offset - 0.004 * n + noise[i]    # -0.4 pt per removed block
                done[(s, "m", meth, t)] = {"accuracy": acc, "removed_blocks": ["b"] * n, "target_met": True}
                i += 1
    done[(0, "m", "fcos:channel", 0.9)] = {"accuracy": 0.1, "removed_blocks": ["b"] * 9, "target_met": False}
    cost = removal_cost(done, "__parent__", "m")
    assert cost["rows"] == 12 and cost["dof"] == 12 - 3
    assert cost["slope_pt"] == pytest.approx(-0.4, abs=0.02)
    assert cost["low"] < cost["slope_pt"] < cost["high"] and cost["high"] - cost["low"] < 0.1
    assert cost["count_by_removed"] == {2: 6, 5: 6}
    assert "Per removed block, at equal MACs: -0.39 [-0.41, -0.38] pt" in removal_table(cost, "m")


def test_too_few_rows_give_no_fit():
    removal_cost, removal_table = _fit()
    done = {(0, "m", "__parent__", 0.0): {"accuracy": 0.5},
            (0, "m", "fcos", 0.9): {"accuracy": 0.49, "removed_blocks": [], "target_met": True}}
    assert removal_cost(done, "__parent__", "m") is None and removal_table(None, "m") == ""
