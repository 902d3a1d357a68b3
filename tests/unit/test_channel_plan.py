"""FCOS channel stage: the JSON plan rebuilds the pruned model; tampered plans are rejected."""
import copy
import json

import pytest
import torch

from amrlib.models import build_from_arch, build_model
from amrlib.pruning import PruningError, channel_stage, rebuild


@pytest.fixture(scope="module")
def parent():
    torch.manual_seed(1)
    return build_model("resnet20", 11, 128).eval()


def test_plan_rebuilds_identical_logits(parent):
    pruned, plan = channel_stage(parent, keep_ratio=0.4)
    plan = json.loads(json.dumps(plan))                      # survives a JSON round trip
    again = rebuild(parent, plan)
    x = torch.randn(8, 2, 128)
    with torch.no_grad():
        assert torch.equal(again(x), pruned(x))
    fresh = build_from_arch(plan["arch"])                     # the arch alone gives the skeleton
    fresh.load_state_dict(pruned.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), pruned(x))


def test_plan_records_membership_and_settings(parent):
    _, plan = channel_stage(parent, keep_ratio=0.5, linkage="complete", fusion="mean")
    st = plan["stages"][0]
    assert st["settings"] == {"linkage": "complete", "represent": "folded", "fusion": "mean", "scale_aware": True,
                              "keep_ratio": 0.5}
    for e in st["groups"]:
        assert sorted(i for c in e["clusters"] for i in c) == list(range(e["size_before"]))
        assert len(e["kept"]) == e["size_after"] == len(e["clusters"])


def _tamper(plan, fn):
    p = copy.deepcopy(plan)
    fn(p["stages"][0]["groups"][0])
    return p


@pytest.mark.parametrize("fn,msg", [
    (lambda e: e["clusters"][0].append(999), "out of range"),
    (lambda e: e["clusters"].pop(), "not a partition"),
    (lambda e: e.update(name="layer9.0.conv1"), "unknown channel group"),
    (lambda e: e.update(size_before=3), "expects 3 channels"),
])
def test_tampered_plan_is_rejected(parent, fn, msg):
    _, plan = channel_stage(parent, keep_ratio=0.5)
    before = copy.deepcopy(parent.state_dict())
    with pytest.raises(PruningError, match=msg):
        rebuild(parent, _tamper(plan, fn))
    assert all(torch.equal(v, parent.state_dict()[k]) for k, v in before.items())


def test_plan_for_another_parent_is_rejected(parent):
    _, plan = channel_stage(parent, keep_ratio=0.5)
    with pytest.raises(PruningError, match="different architecture"):
        rebuild(build_model("resnet20", 5, 128), plan)
