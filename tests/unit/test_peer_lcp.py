"""LCP layer pruning: units with the least probe-accuracy gain go first, to the MAC target."""
import pytest
import torch

from amrlib.measure import count_macs
from amrlib.models import build_from_arch, build_model
from amrlib.pruning.peers import prune_lcp
from amrlib.pruning.peers.depth import DepthCost
from amrlib.pruning.peers.lcp import greedy_removal
from conftest import toy_dataset


@pytest.mark.parametrize("name,target", [("resnet20", 0.3), ("cnn1d", 0.3)])
def test_prunes_by_least_gain(name, target):
    data = toy_dataset(200)
    torch.manual_seed(0)
    parent = build_model(name, 3, 128).eval()
    res = prune_lcp(parent, data, data, target, probe_frames=150)
    rep, plan, pruned = res.report, res.plan, res.model
    assert rep["target_met"] and rep["macs_after"] == count_macs(pruned) < rep["macs_before"]
    assert rep["macs_reduction"] >= target - rep["tolerance"]
    gains = plan["gain"]
    assert plan["removal_order"] == sorted(plan["removal_order"], key=lambda u: gains[u])
    twin = build_from_arch(pruned.arch)
    twin.load_state_dict(pruned.state_dict())


def test_greedy_removal_skips_overshooting_units():
    class Cost(DepthCost):
        def __init__(self, savings):
            self.total, self.savings = 100, savings
    # order a, big, b, c: 'big' would overshoot a 30% target, the small ones reach it
    cost = Cost({"a": 10, "big": 50, "b": 10, "c": 10, "d": 10})
    assert greedy_removal(["a", "big", "b", "c", "d"], cost, 0.3, 0.02) == ["a", "b", "c"]
    # only a big unit reaches the target: it goes in, and the small ones no longer needed come back
    cost = Cost({"a": 5, "b": 5, "big": 40})
    assert greedy_removal(["a", "b", "big"], cost, 0.3, 0.02) == ["big"]
