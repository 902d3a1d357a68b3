"""FCOS end to end on a tiny model: smaller, rebuildable from the plan, full report."""
import json

import torch

from amrlib.measure import count_macs
from amrlib.models import build_model
from amrlib.pruning import fcos, rebuild
from amrlib.train import fit
from conftest import toy_dataset


def test_fcos_tiny_end_to_end(tmp_path):
    ds = toy_dataset(n=500)
    train, val = ds.subset(range(350)), ds.subset(range(350, 500))
    torch.manual_seed(0)
    parent = build_model("resnet20", 3, 128)
    fit(parent, train, val, epochs=1, batch_size=50, progress=False)
    res = fcos(parent, train, val, keep_ratio=0.5, lacd_margin=0.01,
               finetune={"epochs": 1, "batch_size": 50}, distill=True, probe_parent=True)
    assert count_macs(res.model) < 0.5 * count_macs(parent)
    plan = json.loads(json.dumps(res.plan))
    assert [s["stage"] for s in plan["stages"]] == ["channel", "layer"]
    rebuilt = rebuild(parent, plan)
    assert rebuilt.arch == res.model.arch
    rebuilt.load_state_dict(res.model.state_dict())      # fine-tuned weights fit the rebuilt skeleton
    x = torch.randn(8, 2, 128)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), res.model(x))
    r = res.report
    for key in ("parent", "channel_stage", "lacd", "model", "macs_reduction", "params_reduction", "accuracy",
                "high_snr_accuracy", "per_snr", "accuracy_delta", "confusion", "diagnosis", "removed_blocks",
                "seconds", "finetune", "probes_parent"):
        assert key in r, key
    assert set(r["accuracy"]) == {"parent", "channel_stage", "lacd", "finetuned"}
    assert set(r["seconds"]) == {"channel_stage", "lacd", "finetune"}
    assert r["finetune"]["config"]["kd_alpha"] == 0.5
    assert 0.5 < r["macs_reduction"] < 1 and set(r["per_snr"]["finetuned"]) == {-10, 0, 10}
    assert len(r["diagnosis"]) == 10


def test_plan_without_finetune_rebuilds_compact_weights_exactly():
    ds = toy_dataset(n=300)
    torch.manual_seed(0)
    parent = build_model("cnn1d", 3, 128).eval()
    res = fcos(parent, ds.subset(range(200)), ds.subset(range(200, 300)), keep_ratio=0.5, lacd_margin=0.05)
    x = torch.randn(4, 2, 128)
    with torch.no_grad():
        assert torch.equal(rebuild(parent, res.plan)(x), res.model(x))
