"""Scale-aware fusion: channels that are positive multiples of each other (cosine distance 0) fuse exactly."""
import pytest
import torch

from amrlib.pruning import channel_stage, rebuild
from conftest import toy_dataset
from helpers.tiny_models import one_epoch_models
from helpers.widen import widen


@pytest.fixture(scope="module")
def trained():
    return one_epoch_models(("resnet20", "cnn1d"), toy_dataset(n=400))


# internal channels, residual streams (every producer and reader of the stream) and the classifier's inputs
CASES = {
    "resnet20": ["layer1.0.conv1", "stream:layer1", "stream:layer2", "layer2.1.conv1", "stream:layer3"],
    "cnn1d": ["stream:stacks.0", "stacks.0.units.0.conv1", "stacks.3.units.1.conv1", "stream:stacks.5"],
}


def _scaled_copies(model, groups):
    """Each group gets a 2x copy of one channel and a 0.5x copy of another."""
    for i, g in enumerate(groups):
        model = widen(model, g, [i % 8], share=0.4, scale=2.0)
        model = widen(model, g, [(i + 3) % 8], share=0.6, scale=0.5)
    return model


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fusion", ["bn_aware", "mean", "select"])
def test_scaled_copies_fuse_to_identical_logits(trained, name, fusion):
    base = trained[name]
    wide = _scaled_copies(base, CASES[name])
    x = torch.randn(16, 2, 128)
    with torch.no_grad():
        ref = base(x)
        assert torch.allclose(wide(x), ref, atol=1e-5)      # the scaled copies are function-preserving
    pruned, plan = channel_stage(wide, distance_threshold=1e-6, fusion=fusion)
    fused = {e["name"]: e for e in plan["stages"][0]["groups"]}
    assert set(fused) == set(CASES[name])
    assert all(sum(len(c) > 1 for c in e["clusters"]) == 2 for e in fused.values())
    assert pruned.arch == base.arch and plan["stages"][0]["settings"]["scale_aware"] is True
    with torch.no_grad():
        assert torch.allclose(pruned(x), ref, atol=1e-5)
        assert torch.allclose(rebuild(wide, plan)(x), ref, atol=1e-5)     # the plan replays the same fusion


def test_plain_fusion_leaves_an_error_on_scaled_copies(trained):
    """The ablation: without scale awareness a 2x copy fused by the mean changes the function."""
    base = trained["resnet20"]
    wide = _scaled_copies(base, CASES["resnet20"])
    x = torch.randn(16, 2, 128)
    pruned, plan = channel_stage(wide, distance_threshold=1e-6, scale_aware=False)
    assert plan["stages"][0]["settings"]["scale_aware"] is False
    with torch.no_grad():
        assert not torch.allclose(pruned(x), base(x), atol=1e-3)
        assert torch.allclose(rebuild(wide, plan)(x), pruned(x), atol=1e-6)


def test_old_plans_replay_without_scale_awareness(trained):
    """A plan written before the option existed (no 'scale_aware' setting) replays the plain rule."""
    wide = _scaled_copies(trained["cnn1d"], CASES["cnn1d"])
    pruned, plan = channel_stage(wide, distance_threshold=1e-6, scale_aware=False)
    del plan["stages"][0]["settings"]["scale_aware"]
    x = torch.randn(4, 2, 128)
    with torch.no_grad():
        assert torch.allclose(rebuild(wide, plan)(x), pruned(x), atol=1e-6)
