"""Unit removal as the layer peers use it (the shared remove_blocks): bypass semantics, exact MAC savings."""
import pytest
import torch
import torch.nn.functional as F

from amrlib.measure import count_macs, count_params
from amrlib.models import build_from_arch, build_model
from amrlib.models.layers import ChannelMap, Remnant
from amrlib.pruning.api import PruningError
from amrlib.pruning.layers import remove_blocks
from amrlib.pruning.peers import removable_blocks
from amrlib.pruning.peers.macs import block_savings


def _bypass(model, name, fn):
    """Make the unit ``name`` of ``model`` return fn(input) (a forward hook)."""
    mod = dict(model.named_modules())[name]
    return mod.register_forward_hook(lambda m, inp, out: fn(m, inp[0]))


def test_resnet_block_removal_equals_bypassing_it():
    torch.manual_seed(0)
    parent = build_model("resnet20", 3, 128).eval()
    drop = ["layer1.1", "layer2.0", "layer3.2"]
    child = remove_blocks(parent, drop).eval()
    assert isinstance(child.layer2[0], Remnant) and isinstance(child.layer2[0].shortcut, ChannelMap)
    assert torch.equal(child.layer2[0].shortcut.weight, parent.layer2[0].shortcut.weight)
    assert [b.name for b in child.structure().blocks if not b.removable] == ["conv1"] + drop
    hooks = [_bypass(parent, "layer1.1", lambda m, x: F.relu(x)),
             _bypass(parent, "layer2.0", lambda m, x: F.relu(m.shortcut(x))),
             _bypass(parent, "layer3.2", lambda m, x: F.relu(x))]
    x = torch.randn(4, 2, 128)
    try:
        assert torch.allclose(child(x), parent(x), atol=1e-6)
    finally:
        for h in hooks:
            h.remove()
    assert count_params(child) < count_params(parent)
    assert child.arch["stages"][1]["blocks"][0]["removed"] is True
    twin = build_from_arch(child.arch)
    twin.load_state_dict(child.state_dict())


@pytest.mark.parametrize("name,drop", [("resnet20", ["layer2.0", "layer3.1"]),
                                       ("cnn1d", ["stacks.0.units.1", "stacks.4.units.0"])])
def test_predicted_savings_are_exact(name, drop):
    m = build_model(name, 3, 128).eval()
    total, savings = block_savings(m, [b.name for b in m.structure().blocks])
    assert total == count_macs(m)
    assert count_macs(remove_blocks(m, drop)) == total - sum(savings[u] for u in drop)


def test_cnn1d_unit_and_vgg_layer_removal():
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128).eval()
    child = remove_blocks(m, ["stacks.2.units.0"]).eval()
    h = _bypass(m, "stacks.2.units.0", lambda mod, x: F.relu(x))
    x = torch.randn(3, 2, 128)
    try:
        assert torch.allclose(child(x), m(x), atol=1e-6)
    finally:
        h.remove()
    vgg = build_model("vgg16", 3, 128)
    assert removable_blocks(vgg) == ["features.2.1", "features.2.2", "features.3.1", "features.3.2"]
    slim = remove_blocks(vgg, ["features.3.1"])
    assert isinstance(slim.features[3][1], torch.nn.Identity)
    assert slim.arch["blocks"][3]["layers"][1]["removed"] is True


def test_refusals():
    m = build_model("resnet20", 3, 128)
    with pytest.raises(PruningError, match="stem"):
        remove_blocks(m, ["conv1"])
    with pytest.raises(PruningError, match="no such unit"):
        remove_blocks(m, ["layer9.0"])
    once = remove_blocks(m, ["layer1.0"])
    with pytest.raises(PruningError, match="already removed"):
        remove_blocks(once, ["layer1.0"])
