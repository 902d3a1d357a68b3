"""FCOS channel stage, ``allocation="threshold"``: one cosine-distance cut for every group at a global MAC
target — it meets the target like the uniform rule, and a group of redundant channels is cut deeper than a
group of distinct ones."""
import pytest
import torch

from amrlib.measure import count_macs
from amrlib.models import build_model
from amrlib.pruning import PruningError, channel_stage, rebuild


@pytest.fixture(scope="module")
def redundant_cnn():
    """A CNN1D whose first conv has only 4 distinct filters (each copied 16 times, scaled) and whose other
    layers keep their random (nearly orthogonal) filters."""
    torch.manual_seed(0)
    net = build_model("cnn1d", 11, 128).eval()
    first = net.structure().groups[0]
    conv = dict(net.named_modules())[first.producers[0].module]
    with torch.no_grad():
        base = conv.weight[:4].clone()
        for j in range(conv.out_channels):
            conv.weight[j] = base[j % 4] * (1 + 0.1 * (j // 4))
    return net, first.name


@pytest.mark.parametrize("target", [0.8])
def test_threshold_allocation_meets_the_target_and_cuts_redundancy_first(redundant_cnn, target):
    net, first = redundant_cnn
    uniform, _ = channel_stage(net, target_macs_reduction=target)
    pruned, plan = channel_stage(net, target_macs_reduction=target, allocation="threshold")
    achieved = 1 - count_macs(pruned) / count_macs(net)
    assert target <= achieved < target + 0.01
    settings = plan["stages"][0]["settings"]
    assert settings["allocation"] == "threshold" and 0 < settings["distance_threshold_at_target"] < 2
    size = {g.name: g.size for g in pruned.structure().groups}
    assert size[first] <= 4 < uniform.structure().group(first).size     # the duplicates fuse to their 4 filters
    replay = rebuild(net, plan)
    x = torch.randn(3, 2, 128)
    assert torch.allclose(replay(x), pruned(x), atol=1e-5)


def test_unknown_allocation_is_refused(redundant_cnn):
    with pytest.raises(PruningError, match="allocation must be one of"):
        channel_stage(redundant_cnn[0], target_macs_reduction=0.5, allocation="greedy")
