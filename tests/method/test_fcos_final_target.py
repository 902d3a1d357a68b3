"""FCOS with a final-network MAC target (target_scope="final"): channel cut + LaCD removals land on it."""
import json

import pytest
import torch

from amrlib.measure import count_macs
from amrlib.models import build_model
from amrlib.pruning import PruningError, channel_stage, fcos, final_removals, rebuild, remove_blocks
from amrlib.pruning.methods import prune
from amrlib.train import TrainConfig
from conftest import toy_dataset

REMOVE = ["layer1.1", "layer2.2", "layer3.1"]


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return build_model("resnet20", 3, 128).eval()


@pytest.fixture(scope="module")
def data():
    ds = toy_dataset(n=400)
    return ds.subset(range(280)), ds.subset(range(280, 400))


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_planned_removals_count_in_the_channel_target(resnet20, target):
    base = count_macs(resnet20)
    narrow, plan = channel_stage(resnet20, target_macs_reduction=target, planned_removals=REMOVE)
    final = 1 - count_macs(remove_blocks(narrow, REMOVE)) / base
    assert target <= final < target + 0.03
    alone, _ = channel_stage(resnet20, target_macs_reduction=target)
    assert count_macs(narrow) > count_macs(alone)          # a lighter channel cut: the removals do the rest
    settings = plan["stages"][0]["settings"]
    assert settings["planned_removals"] == REMOVE and settings["target_macs_reduction"] == target
    assert [b.name for b in narrow.structure().blocks] == [b.name for b in resnet20.structure().blocks]


def test_planned_removals_are_checked(resnet20):
    with pytest.raises(PruningError, match="only applies to a global"):
        channel_stage(resnet20, keep_ratio=0.5, planned_removals=REMOVE)
    with pytest.raises(PruningError, match="no such unit"):
        channel_stage(resnet20, target_macs_reduction=0.5, planned_removals=["layer9.0"])
    many = [b.name for b in resnet20.structure().blocks if b.removable]
    with pytest.raises(PruningError, match="removing the planned blocks alone"):
        channel_stage(resnet20, target_macs_reduction=0.3, planned_removals=many)


def test_final_removals_take_the_most_collapsed_first_and_stop_short_of_the_target(resnet20):
    blocks = [{"block": "stem", "removed": False, "gain": None},
              {"block": "layer1.0", "removed": True, "gain": -0.01},
              {"block": "layer1.1", "removed": True, "gain": -0.20},
              {"block": "layer2.1", "removed": True, "gain": 0.00},
              {"block": "layer3.0", "removed": False, "gain": 0.10}]
    diagnosis = {"blocks": blocks}
    assert final_removals(resnet20, diagnosis, 0.9) == ["layer1.1", "layer1.0", "layer2.1"]
    one = 1 - count_macs(remove_blocks(resnet20, ["layer1.1"])) / count_macs(resnet20)
    two = 1 - count_macs(remove_blocks(resnet20, ["layer1.1", "layer1.0"])) / count_macs(resnet20)
    target = (one + two) / 2          # the second-most collapsed block would pass the target by itself
    assert final_removals(resnet20, diagnosis, target) == ["layer1.1"]


def test_fcos_final_scope_lands_on_the_target_and_replays(resnet20, data):
    train, val = data
    target = 0.6
    # a large margin makes LaCD call most blocks collapsed: the channel-scoped run overshoots the target
    over = fcos(resnet20, train, val, target_macs_reduction=target, lacd_margin=0.3, recalibrate_frames=64,
                target_scope="channel")
    assert over.report["removed_blocks"] and over.report["macs_reduction"] > target + 0.05
    res = fcos(resnet20, train, val, target_macs_reduction=target, lacd_margin=0.3, recalibrate_frames=64)
    rep = res.report
    assert rep["target_scope"] == "final"                               # the default with a MAC target
    assert target <= rep["macs_reduction"] < target + 0.03
    assert rep["diagnosis_pass"]["macs"] == count_macs(over.model)      # the same diagnosis pass
    assert rep["removed_blocks"] and set(rep["removed_blocks"]) <= set(rep["diagnosis_pass"]["removed_blocks"])
    kept = [b for b in rep["diagnosis"] if b["collapsed"] and b["removable"] and not b["removed"]]
    assert all("final MAC target" in b["decision"] for b in kept)
    plan = json.loads(json.dumps(res.plan))
    assert plan["stages"][0]["settings"]["planned_removals"] == rep["removed_blocks"]
    assert plan["stages"][1]["removed"] == rep["removed_blocks"]
    rebuilt = rebuild(resnet20, plan)
    assert rebuilt.arch == res.model.arch
    rebuilt.load_state_dict(res.model.state_dict())
    x = torch.randn(4, 2, 128)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), res.model(x))


def test_final_scope_needs_a_mac_target(resnet20, data):
    with pytest.raises(PruningError, match="needs target_macs_reduction"):
        fcos(resnet20, *data, keep_ratio=0.5, target_scope="final")
    with pytest.raises(PruningError, match="target_scope must be one of"):
        fcos(resnet20, *data, target_macs_reduction=0.5, target_scope="everything")


def test_shared_interface_defaults_to_the_final_scope(resnet20, data):
    train, val = data
    res = prune("fcos", resnet20, train, val, 0.6, finetune=TrainConfig(epochs=1, batch_size=64),
                interim_epochs=1, lacd_margin=0.3, recalibrate_frames=64)
    rep = res.report
    assert rep["target_scope"] == "final" and rep["target_met"] is True
    assert abs(rep["macs_reduction"] - 0.6) <= rep["tolerance"]
    assert rep["diagnosis_pass"]["macs_reduction"] > rep["macs_reduction"]
    assert rep["macs_after"] == count_macs(res.model)


def test_vgg_removals_keep_equal_widths_around_the_removed_layer():
    """A VGG layer can go only where its input and output widths agree: the parent decides which may, and the
    fill-up never unbalances the widths around a planned removal."""
    torch.manual_seed(0)
    vgg = build_model("vgg16", 3, 64).eval()
    blocks = [{"block": "features.3.0", "removed": True, "gain": -0.3},      # 256 -> 512: not in the parent
              {"block": "features.3.1", "removed": True, "gain": -0.2},      # 512 -> 512
              {"block": "features.2.2", "removed": True, "gain": -0.1}]      # 256 -> 256
    removals = final_removals(vgg, {"blocks": blocks}, 0.8)
    assert removals == ["features.3.1", "features.2.2"]
    narrow, _ = channel_stage(vgg, target_macs_reduction=0.8, planned_removals=removals)
    compact = remove_blocks(narrow, removals)
    assert 0.8 <= 1 - count_macs(compact) / count_macs(vgg) < 0.81
    assert compact(torch.randn(2, 2, 64)).shape == (2, 3)


def test_removal_guard_keeps_the_better_of_removals_and_channel_only():
    from amrlib.models import build_model
    from amrlib.pruning import fcos
    from amrlib.train import fit
    from conftest import toy_dataset
    ds = toy_dataset(n=400)
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 128)
    train, val = ds.subset(range(300)), ds.subset(range(300, 400))
    fit(m, train, val, epochs=1, batch_size=50, progress=False)
    res = fcos(m, train, val, target_macs_reduction=0.8, target_scope="final", lacd_margin=0.5,
               removal_guard=True)                 # margin 0.5: every block is diagnosed collapsed
    g = res.report["removal_guard"]
    assert g["kept_removals"] == (g["val_accuracy_with_removals"] > g["val_accuracy_channel_only"])
    assert bool(res.report["removed_blocks"]) == g["kept_removals"]
    assert abs(res.report["macs_reduction"] - 0.8) <= 0.02
    assert res.plan["stages"][-1]["removed"] == res.report["removed_blocks"]
