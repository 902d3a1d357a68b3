"""Fisher optimal segmentation: DP optimality against brute force, hand-checked cuts, choice of k."""
import itertools

import numpy as np
import pytest

from amrlib.pruning.peers.segmentation import auto_segments, choose_k, fisher_segments, loss_curve


def _sse(values, segments):
    return sum(float(((values[s] - values[s].mean()) ** 2).sum()) for s in map(np.array, segments))


def _brute(values, k):
    n = len(values)
    best = (np.inf, None)
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = (0,) + cuts + (n,)
        segs = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
        best = min(best, (_sse(values, segs), segs), key=lambda t: t[0])
    return best


def test_hand_checked_sequence():
    values = np.array([1, 1, 1, 5, 5, 5, 9, 9], dtype=float)
    segs, info = auto_segments(values)
    assert info["k"] == 3
    assert segs == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert info["loss"] == 0.0
    two, loss2 = fisher_segments(values, 2)
    assert two == [[0, 1, 2], [3, 4, 5, 6, 7]]                 # 19.2 beats cutting after the 5s (24.0)
    assert loss2 == pytest.approx(19.2)


@pytest.mark.parametrize("seed", range(4))
def test_dp_matches_brute_force(seed):
    values = np.random.default_rng(seed).normal(size=8)
    curve = loss_curve(values)
    for k in range(1, len(values) + 1):
        segs, loss = fisher_segments(values, k)
        best_loss, _ = _brute(values, k)
        assert loss == pytest.approx(best_loss, abs=1e-9)
        assert _sse(values, segs) == pytest.approx(best_loss, abs=1e-9)
        assert sorted(i for s in segs for i in s) == list(range(len(values))) and len(segs) == k
        assert curve[k - 1] == pytest.approx(best_loss, abs=1e-9)


def test_choose_k_rules():
    # drops as a fraction of L1 = 100: 50, 30, 4 -> stop at k=3 (the 4th segment buys only 4%)
    assert choose_k([100, 50, 20, 16, 15], 0.05) == 3
    assert choose_k([100, 50, 20, 16, 15], 0.02) == 4
    # relative to the current loss (the reference's ratio): 20 -> 16 is a 20% drop, 16 -> 15 6%
    assert choose_k([100, 50, 20, 16, 15], 0.05, relative_to="previous") == 5
    assert choose_k([10, 0, 0], 0.05) == 2
    # a smooth ramp has no plateaus: the previous-loss ratio never stops, the total ratio does
    ramp = np.linspace(0, 1, 20)
    assert auto_segments(ramp, relative_to="previous")[1]["k"] == 20
    assert 2 < auto_segments(ramp)[1]["k"] < 8
