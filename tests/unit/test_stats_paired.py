"""Paired differences over seeds: the t-interval against a hand computation."""
import math

import pytest

from amrlib.stats import paired_difference, t_interval


def test_paired_interval_matches_hand_computation():
    # differences 0.01, 0.03, 0.02: mean 0.02, s = 0.01, t(0.975, 2) = 4.302653, half = 4.302653 * 0.01 / sqrt 3
    d = paired_difference([0.81, 0.83, 0.82], [0.80, 0.80, 0.80])
    assert d.n == 3 and d.mean == pytest.approx(0.02)
    assert d.sd == pytest.approx(0.01)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert d.low == pytest.approx(0.02 - half, abs=1e-6) and d.high == pytest.approx(0.02 + half, abs=1e-6)
    assert not d.excludes_zero                      # 0.02 +- 0.0248 straddles zero
    assert d.format() == "+2.0 [-0.5, +4.5] pt"


def test_consistent_difference_excludes_zero_and_one_seed_has_no_interval():
    d = t_interval([-0.05, -0.048, -0.052, -0.05])
    assert d.excludes_zero and d.high < 0
    one = t_interval([0.01])
    assert one.n == 1 and math.isnan(one.low) and not one.excludes_zero and "1 seed" in one.format()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        t_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="at least one"):
        t_interval([])
