"""FCOS channel stage: exact copies of channels are found and fused back with the same logits."""
import pytest
import torch

from amrlib.models import build_model
from amrlib.pruning import channel_stage
from conftest import toy_dataset
from helpers.tiny_models import one_epoch_models
from helpers.widen import widen


@pytest.fixture(scope="module")
def trained():
    return one_epoch_models(("resnet20", "cnn1d"), toy_dataset(n=400))


def _widen_all(model, groups, copies=3):
    """Duplicate `copies` channels of each listed group (different channels per group)."""
    for i, g in enumerate(groups):
        model = widen(model, g, [(i + 2 * k) % 8 for k in range(copies)], share=0.25 + 0.1 * i)
    return model


CASES = {
    "resnet20": ["layer1.0.conv1", "stream:layer1", "stream:layer2", "layer2.1.conv1", "stream:layer3"],
    "cnn1d": ["stream:stacks.0", "stacks.0.units.0.conv1", "stacks.3.units.1.conv1", "stream:stacks.5"],
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", ["n_clusters", "threshold"])
def test_copies_are_fused_back_exactly(trained, name, mode):
    base = trained[name]
    wide = _widen_all(base, CASES[name])
    x = torch.randn(16, 2, 128)
    with torch.no_grad():
        ref = base(x)
        assert torch.allclose(wide(x), ref, atol=1e-5)      # widening itself is function-preserving
    if mode == "n_clusters":
        sizes = {g.name: g.size for g in base.structure().groups}
        ratios = {g: sizes[g] / (sizes[g] + 3) for g in CASES[name]}
        pruned, plan = channel_stage(wide, keep_ratio=ratios)
    else:
        pruned, plan = channel_stage(wide, distance_threshold=1e-6)
    fused = {e["name"]: e for e in plan["stages"][0]["groups"]}
    assert set(fused) == set(CASES[name])
    for e in fused.values():
        pairs = [c for c in e["clusters"] if len(c) > 1]
        assert len(pairs) == 3 and all(len(c) == 2 and c[1] >= e["size_after"] for c in pairs)
    assert pruned.arch == base.arch
    with torch.no_grad():
        assert torch.allclose(pruned(x), ref, atol=1e-5)


def test_vgg_copies_feeding_the_classifier():
    torch.manual_seed(0)
    base = build_model("vgg16", 3, 128).eval()
    with torch.no_grad():  # make BN statistics non-trivial so BN-aware fusion is exercised
        for mod in base.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
    wide = widen(base, "features.3.2.conv", [1, 7, 100])       # the last conv feeds fc1 (9 features/channel)
    wide = widen(wide, "features.0.1.conv", [0, 5])
    x = torch.randn(4, 2, 128)
    pruned, _ = channel_stage(wide, distance_threshold=1e-6)
    with torch.no_grad():
        assert torch.allclose(pruned(x), base(x), atol=1e-5)
