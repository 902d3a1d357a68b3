"""Latency-friendly widths: with ``width_multiple`` the channel stage keeps a multiple of that many channels
in every group (or the whole group), under keep ratios, global MAC targets and FCOS's final-network target."""
import pytest
import torch

from amrlib.measure import count_macs
from amrlib.models import build_model
from amrlib.pruning import PruningError, channel_stage, rebuild
from amrlib.pruning.methods import prune
from amrlib.train import TrainConfig
from conftest import toy_dataset


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return build_model("resnet20", 3, 128).eval()


def _widths(model):
    return {g.name: g.size for g in model.structure().groups}


def _on_multiples(model, parent, k):
    full = _widths(parent)
    return all(w % k == 0 or w == full[n] for n, w in _widths(model).items())


def test_keep_ratio_widths_are_rounded_to_the_multiple(resnet20):
    plain, _ = channel_stage(resnet20, keep_ratio=0.3)
    assert not _on_multiples(plain, resnet20, 8)                      # 0.3 x 16 = 5, 0.3 x 32 = 10, ...
    rounded, plan = channel_stage(resnet20, keep_ratio=0.3, width_multiple=8)
    assert _on_multiples(rounded, resnet20, 8) and min(_widths(rounded).values()) == 8
    assert plan["stages"][0]["settings"]["width_multiple"] == 8
    x = torch.randn(4, 2, 128)
    with torch.no_grad():                                               # the plan replays to the same network
        assert torch.allclose(rebuild(resnet20, plan).eval()(x), rounded(x), atol=1e-5)


@pytest.mark.parametrize("target", [0.8, 0.9])
def test_a_mac_target_is_met_on_multiples_of_8(resnet20, target):
    rounded, _ = channel_stage(resnet20, target_macs_reduction=target, width_multiple=8)
    reduction = 1 - count_macs(rounded) / count_macs(resnet20)
    assert reduction >= target and reduction - target < 0.05          # coarser steps, still near the target
    assert _on_multiples(rounded, resnet20, 8)


def test_bad_multiples_and_an_unreachable_target_are_refused(resnet20):
    for bad in (0, -8, 2.5, True):
        with pytest.raises(PruningError, match="width_multiple must be a positive integer"):
            channel_stage(resnet20, keep_ratio=0.5, width_multiple=bad)
    with pytest.raises(PruningError, match="not to distance_threshold"):
        channel_stage(resnet20, distance_threshold=0.5, width_multiple=8)
    with pytest.raises(PruningError, match=r"with 16 channels \(width_multiple\) per group"):
        channel_stage(resnet20, target_macs_reduction=0.9, width_multiple=16)


def test_fcos_final_target_keeps_the_multiple(resnet20):
    ds = toy_dataset(n=400)
    train, val = ds.subset(range(280)), ds.subset(range(280, 400))
    res = prune("fcos", resnet20, train, val, 0.8, finetune=TrainConfig(epochs=1, batch_size=64),
                interim_epochs=1, lacd_margin=0.3, recalibrate_frames=64, width_multiple=8)
    assert res.report["target_met"] is True
    assert _on_multiples(res.model, resnet20, 8)


def test_fcos_reaches_a_cut_the_multiple_alone_cannot_through_its_removals(resnet20):
    """ResNet20 on multiples of 8 reaches at most a 90.7% cut by channels alone; FCOS's final scope diagnoses
    on free widths, removes blocks, and re-fits the channel stage on multiples of 8 around them."""
    with pytest.raises(PruningError, match="reaches at most 90.7"):
        channel_stage(resnet20, target_macs_reduction=0.95, width_multiple=8)
    ds = toy_dataset(n=400)
    train, val = ds.subset(range(280)), ds.subset(range(280, 400))
    res = prune("fcos", resnet20, train, val, 0.95, finetune=TrainConfig(epochs=1, batch_size=64),
                interim_epochs=1, lacd_margin=0.3, recalibrate_frames=64, width_multiple=8)
    assert res.report["target_met"] is True and res.report["removed_blocks"]
    assert _on_multiples(res.model, resnet20, 8)


def test_match_target_step_recuts_on_the_multiple_when_nothing_is_removed(resnet20):
    """The step fcos() and the pipeline's match_target stage share: a diagnosis pass on free widths that removes
    nothing is cut again at the target on the multiple (recut); without recut it stands (None)."""
    from amrlib.pruning.fcos_steps import diagnosis_kwargs, match_target_step
    assert diagnosis_kwargs({"width_multiple": 8}, "final") == {"width_multiple": 1}
    assert diagnosis_kwargs({"width_multiple": 8}, "channel") == {"width_multiple": 8}
    nothing = {"blocks": [{"block": b.name, "removed": False, "gain": 0.1} for b in resnet20.structure().blocks],
               "removed": []}
    assert match_target_step(resnet20, None, nothing, 0.8, width_multiple=8) is None
    narrow, compact, plan, diagnosis = match_target_step(resnet20, None, nothing, 0.8, recut=True, width_multiple=8)
    assert narrow is compact and diagnosis["removed"] == [] and _on_multiples(compact, resnet20, 8)
    assert 0.8 <= 1 - count_macs(compact) / count_macs(resnet20) < 0.83
