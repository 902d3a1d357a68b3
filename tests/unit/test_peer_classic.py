"""Classic channel criteria (L1, BN-scale, FPGM, random) through Torch-Pruning: smaller, on target, rebuildable."""
import json

import pytest
import torch

from amrlib.measure import count_macs, count_params
from amrlib.models import build_from_arch, build_model
from amrlib.models.layers import ChannelMap
from amrlib.pruning.api import PruningError
from amrlib.pruning.peers import PEER_METHODS
from amrlib.pruning.peers.channels import apply_kept

TARGET = 0.5


def _model(name):
    torch.manual_seed(0)
    m = build_model(name, 3, 128)
    with torch.no_grad():                      # a "trained-looking" net: BN scales and stats spread out
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.weight.uniform_(0.1, 1.5)
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.fixture(scope="module")
def models():
    return {n: _model(n) for n in ("resnet20", "cnn1d")}


@pytest.mark.parametrize("name", ["resnet20", "cnn1d"])
@pytest.mark.parametrize("method", ["l1", "bn_scale", "fpgm", "random"])
def test_physically_smaller_on_target_and_rebuildable(models, name, method):
    parent = models[name]
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    if method == "bn_scale" and name == "cnn1d":
        with pytest.raises(PruningError, match="BatchNorm"):
            PEER_METHODS[method](parent, None, None, TARGET)
        return
    res = PEER_METHODS[method](parent, None, None, TARGET, seed=1)
    pruned, rep = res.model, res.report
    # the input model is untouched
    assert all(torch.equal(before[k], v) for k, v in parent.state_dict().items())
    # physically smaller: counts and real tensor shapes
    assert count_params(pruned) < count_params(parent) and count_macs(pruned) < count_macs(parent)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in parent.parameters())
    # the measured reduction is within the documented tolerance of the target
    assert rep["macs_after"] == count_macs(pruned)
    assert abs(rep["macs_reduction"] - TARGET) <= rep["tolerance"] == 0.02
    assert rep["predicted_macs_reduction"] == pytest.approx(rep["macs_reduction"], abs=1e-9)
    for key in ("method", "target", "macs_before", "params_before", "params_after", "params_reduction",
                "prune_seconds"):
        assert key in rep
    # the spec rebuilds it, weights load, same function
    twin = build_from_arch(pruned.arch)
    twin.load_state_dict(pruned.state_dict())
    x = torch.randn(4, 2, 128)
    assert torch.allclose(twin.eval()(x), pruned(x), atol=1e-6)
    # the plan is JSON and names kept channels per group; replaying the kept indices gives the same net
    plan = json.loads(json.dumps(res.plan))
    assert plan["method"] == method and plan["arch"] == pruned.arch
    kept = {g["name"]: g["kept"] for g in plan["stages"][0]["groups"]}
    replay = apply_kept(_model(name), kept)
    assert torch.allclose(replay(x), pruned(x), atol=1e-6)


def test_shortcut_maps_follow_the_streams(models):
    pruned = PEER_METHODS["l1"](models["resnet20"], None, None, 0.6).model
    blk = pruned.layer2[0]
    assert isinstance(blk.shortcut, ChannelMap)
    assert blk.shortcut.in_channels == pruned.layer1[-1].conv2.out_channels < 16
    assert blk.shortcut.out_channels == blk.conv2.out_channels < 32
    assert not blk.shortcut.weight.requires_grad


def test_plan_replays_through_the_shared_rebuild(models):
    rebuild = pytest.importorskip("amrlib.pruning.plan").rebuild
    parent = models["resnet20"]
    res = PEER_METHODS["fpgm"](parent, None, None, 0.4)
    x = torch.randn(3, 2, 128)
    assert torch.allclose(rebuild(parent, res.plan)(x), res.model(x), atol=1e-5)


def test_random_is_seeded(models):
    a = PEER_METHODS["random"](models["cnn1d"], None, None, 0.3, seed=3).plan
    b = PEER_METHODS["random"](models["cnn1d"], None, None, 0.3, seed=3).plan
    c = PEER_METHODS["random"](models["cnn1d"], None, None, 0.3, seed=4).plan
    assert a["stages"] == b["stages"] != c["stages"]


def test_l1_keeps_the_largest_filters(models):
    parent = models["cnn1d"]
    res = PEER_METHODS["l1"](parent, None, None, 0.5, group_reduction="first")
    conv = parent.stacks[2].units[0].conv1
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    kept = next(g["kept"] for g in res.plan["stages"][0]["groups"] if g["name"] == "stacks.2.units.0.conv1")
    assert sorted(kept) == sorted(norms.argsort(descending=True)[:len(kept)].tolist())


def test_unreachable_target_is_refused(models):
    # internal channels only, at least half of each kept: most of the MACs cannot go
    with pytest.raises(PruningError, match="unreachable"):
        PEER_METHODS["l1"](models["resnet20"], None, None, 0.8, scope="internal", min_channels=8)
