"""FCOS channel stage: keep ratios, global targets and thresholds are respected."""
import pytest
import torch

from amrlib.measure import count_macs, count_params
from amrlib.models import MODEL_NAMES, build_model
from amrlib.pruning import channel_stage


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return build_model("resnet20", 11, 128).eval()


@pytest.mark.parametrize("ratio", [0.7, 0.5, 0.1])
def test_uniform_keep_ratio_sets_every_width(resnet20, ratio):
    pruned, plan = channel_stage(resnet20, keep_ratio=ratio)
    for g in resnet20.structure().groups:
        assert pruned.structure().group(g.name).size == max(1, round(ratio * g.size))
    assert count_macs(pruned) < count_macs(resnet20)


def test_mapping_by_conv_name_prunes_only_named_groups(resnet20):
    pruned, _ = channel_stage(resnet20, keep_ratio={"layer2.1.conv1": 0.25, "layer3.2.conv2": 0.5})
    sizes = {g.name: g.size for g in pruned.structure().groups}
    assert sizes["layer2.1.conv1"] == 8
    assert sizes["stream:layer3"] == 32            # naming a producer of a stream prunes the stream
    untouched = {g.name: g.size for g in resnet20.structure().groups}
    assert sum(sizes[k] != untouched[k] for k in sizes) == 2


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_global_mac_target_is_met(resnet20, target):
    pruned, plan = channel_stage(resnet20, target_macs_reduction=target)
    achieved = 1 - count_macs(pruned) / count_macs(resnet20)
    assert target <= achieved < target + 0.005
    assert plan["stages"][0]["settings"]["target_macs_reduction"] == target


def test_fill_up_lands_where_the_uniform_rule_steps_over():
    """CNN1D's layers are all 32 channels wide: one uniform step moves ~6% of the MACs; the fill-up gives
    clusters back (widest dendrogram split first) until the target is met to a fraction of a point."""
    torch.manual_seed(0)
    m = build_model("cnn1d", 11, 128).eval()
    pruned, plan = channel_stage(m, target_macs_reduction=0.5)
    settings = plan["stages"][0]["settings"]
    uniform, _ = channel_stage(m, keep_ratio=settings["uniform_keep_ratio"])
    assert 1 - count_macs(uniform) / count_macs(m) > 0.51
    assert 0.5 <= 1 - count_macs(pruned) / count_macs(m) < 0.502
    assert settings["filled_up_clusters"] == sum(g["size_after"] for g in plan["stages"][0]["groups"]) - sum(
        max(1, round(settings["uniform_keep_ratio"] * g["size_before"])) for g in plan["stages"][0]["groups"])


def test_global_params_target_is_met(resnet20):
    pruned, _ = channel_stage(resnet20, target_params_reduction=0.7)
    achieved = 1 - count_params(pruned) / count_params(resnet20)
    assert 0.7 <= achieved < 0.705


def test_distance_threshold_monotone(resnet20):
    loose, _ = channel_stage(resnet20, distance_threshold=0.95)
    tight, _ = channel_stage(resnet20, distance_threshold=0.7)
    assert count_macs(loose) < count_macs(tight) <= count_macs(resnet20)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_family_goes_through(name):
    torch.manual_seed(0)
    m = build_model(name, 5, 128).eval()
    pruned, plan = channel_stage(m, keep_ratio=0.3)
    x = torch.randn(2, 2, 128)
    assert pruned(x).shape == (2, 5)
    assert count_params(pruned) < 0.3 * count_params(m)
    real = {n: p.shape for n, p in pruned.named_parameters()}
    assert any(real[n] != p.shape for n, p in m.named_parameters())   # tensors really shrank
