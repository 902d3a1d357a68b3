"""CKA + Fisher + SynFlow layer pruning: automatic, shallower, rebuildable, honest about its target."""
import json

import pytest
import torch

from amrlib.measure import count_macs, count_params
from amrlib.models import build_from_arch, build_model
from amrlib.pruning.layers import remove_blocks
from amrlib.pruning.peers import prune_layer_cka
from amrlib.pruning.peers.depth import DepthCost
from amrlib.pruning.peers.layer_cka import allocate, order_in_segment
from conftest import toy_dataset

OPTS = {"batch_size": 32, "batches": 2}


@pytest.fixture(scope="module")
def data():
    return toy_dataset(96)


@pytest.mark.parametrize("name,target", [("resnet20", 0.4), ("cnn1d", 0.3)])
def test_shallower_on_target_and_rebuildable(data, name, target):
    torch.manual_seed(0)
    parent = build_model(name, 3, 128).eval()
    res = prune_layer_cka(parent, data, data, target, **OPTS)
    pruned, rep, plan = res.model, res.report, res.plan
    assert rep["target_met"] and rep["macs_reduction"] >= target - rep["tolerance"]
    assert rep["macs_after"] == count_macs(pruned) < count_macs(parent)
    assert count_params(pruned) < count_params(parent)
    assert rep["predicted_macs_reduction"] == pytest.approx(rep["macs_reduction"], abs=1e-12)
    removed = rep["removed_units"]
    assert removed and len([b for b in pruned.structure().blocks if b.removable]) == \
        len([b for b in parent.structure().blocks if b.removable]) - len(removed)
    # every segment keeps at least one unit; the partition covers all units in order
    units = [b.name for b in parent.structure().blocks]
    assert [u for s in plan["segments"] for u in s] == units
    assert all(any(u not in removed for u in s) for s in plan["segments"])
    assert plan["segmentation"]["k"] == len(plan["segments"]) >= 2
    twin = build_from_arch(pruned.arch)
    twin.load_state_dict(pruned.state_dict())
    x = torch.randn(2, 2, 128)
    assert torch.allclose(twin.eval()(x), pruned(x), atol=1e-6)
    assert torch.allclose(remove_blocks(parent, plan["stages"][0]["removed"]).eval()(x), pruned(x), atol=1e-6)
    json.dumps(plan)


def test_unreachable_target_is_reported(data):
    torch.manual_seed(0)
    res = prune_layer_cka(build_model("cnn1d", 3, 128), data, data, 0.99, similarity="cosine", keep="min", **OPTS)
    assert res.report["target_met"] is False and "unreachable" in res.report["note"]
    assert res.report["macs_reduction"] < 0.99
    assert res.plan["options"]["similarity"] == "cosine" and res.plan["options"]["keep"] == "min"


def test_keep_option_and_allocation():
    score = {"a": 1.0, "b": 5.0, "c": 3.0, "s": 0.1}
    assert order_in_segment(["s", "a", "b", "c"], {"a", "b", "c"}, score, "max") == ["s", "b", "c", "a"]
    assert order_in_segment(["s", "a", "b", "c"], {"a", "b", "c"}, score, "min") == ["s", "a", "c", "b"]

    class Flat(DepthCost):                     # every removable unit is 10% of the MACs
        def __init__(self):
            self.total, self.savings = 100, {u: 10 for u in "abcdefg"}
    segs = [["a", "b", "c", "d"], ["e", "f"], ["g"]]
    sc = {u: float(i) for i, u in enumerate("abcdefg")}
    removed, quota = allocate(segs, set("abcdefg"), sc, "max", Flat(), 0.3)
    assert len(removed) == 3 and quota == [2, 1, 1]          # proportional: the long segment gets units back
    assert "d" not in removed and "f" not in removed         # highest SynFlow kept in each segment
