"""BatchNorm folding for inference: the folded copy gives the same logits (1e-5) as the original for
ResNet, VGG and CNN1D, unpruned and pruned (narrow odd widths, removed blocks), with no BatchNorm left."""
import pytest
import torch

from amrlib.deploy import fold_batchnorm, folding_pairs
from amrlib.models import build_model
from amrlib.pruning import channel_stage, remove_blocks


def _trained_like(model):
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def _model(name, pruned):
    torch.manual_seed(0)
    length = 64 if name == "vgg16" else 128
    model = _trained_like(build_model(name, 5, length))
    if pruned:
        model, _ = channel_stage(model, keep_ratio=0.45)
        removable = [b.name for b in model.structure().blocks if b.removable][1:3]
        model = _trained_like(remove_blocks(model, removable))
    return model, length


@pytest.mark.parametrize("pruned", [False, True], ids=["unpruned", "pruned"])
@pytest.mark.parametrize("name", ["resnet20", "vgg16", "cnn1d"])
def test_folded_model_gives_the_same_logits(name, pruned):
    model, length = _model(name, pruned)
    x = torch.randn(9, 2, length, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5), (got - ref).abs().max()
    assert not any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in folded.modules())
    pairs = folding_pairs(model)
    if name == "cnn1d":
        assert pairs == []                                   # CNN1D has no BatchNorm: nothing to fold
    else:
        n_bn = sum(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in model.modules())
        assert len(pairs) == n_bn > 0
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) or name == "cnn1d"  # original intact


def test_a_pair_that_is_not_a_layer_and_a_batchnorm_is_refused():
    model, _ = _model("resnet20", False)
    model.HEAD_BN = (("fc", "layer1"),)
    with pytest.raises(TypeError, match="cannot fold layer1"):
        fold_batchnorm(model)
