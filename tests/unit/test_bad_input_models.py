"""Bad models and plans, and the configuration cases not covered in test_pipeline_config.py: each is a clear
error naming what is wrong and where, raised before anything is modified."""
from __future__ import annotations

import copy
import json
import os

import pytest
import torch

from amrlib.models import ModelError, build_model, load_model, model_arch, save_model
from amrlib.pruning import PruningError, channel_stage, rebuild
from settings.pipeline import REPO_ROOT, ConfigError, load_config


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_of_another_architecture(tmp_path):
    """The arch JSON says ResNet20, the weights are a CNN1D's (e.g. a checkpoint copied over another)."""
    cnn = build_model("cnn1d", 4, 128)
    path = tmp_path / "swapped.pt"
    torch.save({"arch": json.dumps(model_arch("resnet20", 4, 128)), "state_dict": cnn.state_dict(), "extra": "{}"},
               path)
    with pytest.raises(ModelError, match=r"swapped\.pt: weights do not fit the architecture \(missing \['conv1"):
        load_model(path)


def test_checkpoint_with_another_class_count(tmp_path):
    path = save_model(build_model("cnn1d", 11, 128), tmp_path / "eleven.pt")
    with pytest.raises(ModelError, match=r"eleven\.pt: architecture cnn1d \(11 classes\) does not match the "
                                         r"expected cnn1d \(4 classes\)"):
        load_model(path, expect_arch=model_arch("cnn1d", 4, 128))
    blob = torch.load(path, weights_only=True)                   # arch edited to 4 classes, weights for 11
    blob["arch"] = json.dumps(model_arch("cnn1d", 4, 128))
    torch.save(blob, tmp_path / "edited.pt")
    with pytest.raises(ModelError, match=r"edited\.pt: weights do not fit .*fc2\.weight: \(11, 128\) vs \(4, 128\)"):
        load_model(tmp_path / "edited.pt")


def test_checkpoint_that_tries_to_run_code_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"arch": _RunsCode(marker), "state_dict": {}, "extra": "{}"}, path)   # a pickle inside the zip
    with pytest.raises(ModelError, match=r"evil\.pt: refusing to load: the file holds a Python object other than "
                                         r"tensors and plain containers \((posix|os|nt)\.system\), .* nothing in it "
                                         r"was executed"):
        load_model(path)
    assert not marker.exists()


def test_truncated_training_checkpoint_is_refused_not_trained_over(tmp_path, toy):
    from amrlib.train import fit
    state = tmp_path / "train_state"
    state.mkdir()
    (state / "train_state.pt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ValueError, match=r"train_state\.pt: unreadable training checkpoint .* remove it to restart"):
        fit(build_model("cnn1d", 3, 128), toy, toy, epochs=1, checkpoint_dir=state)
    assert (state / "train_state.pt").read_bytes() == b"PK\x03\x04 cut short"


@pytest.fixture(scope="module")
def pruned_plan():
    torch.manual_seed(0)
    parent = build_model("cnn1d", 4, 128).eval()
    _, plan = channel_stage(parent, keep_ratio=0.5)
    plan = json.loads(json.dumps(plan))
    plan["stages"].append({"stage": "layer", "method": "lacd", "settings": {}, "removed": ["stacks.2.units.1"]})
    plan["arch"] = None
    return parent, plan


def _tampered(plan, fn):
    p = copy.deepcopy(plan)
    fn(p)
    return p


def _out_of_range(p):
    p["stages"][0]["groups"][0]["clusters"][0].append(64)


def _unknown_block(p):
    p["stages"][1]["removed"] = ["stacks.9.units.0"]


def _stem_block(p):
    p["stages"][1]["removed"] = ["stacks.0.conv"]


@pytest.mark.parametrize("tamper, message", [
    (_out_of_range, r"plan group 'stacks\.0\.units\.0\.conv1': channel index out of range 0\.\.31: \[64\]"),
    (_unknown_block, r"cannot remove block 'stacks\.9\.units\.0': the model has no such unit"),
    (_stem_block, r"cannot remove block 'stacks\.0\.conv': stack entry conv ends a stream"),
])
def test_tampered_plan_is_refused_and_the_parent_is_untouched(pruned_plan, tamper, message):
    parent, plan = pruned_plan
    assert rebuild(parent, plan).arch["stacks"][2]["units"][1]["removed"]      # the untampered plan replays
    before = copy.deepcopy(parent.state_dict())
    with pytest.raises(PruningError, match=message):
        rebuild(parent, _tampered(plan, tamper))
    assert all(torch.equal(v, parent.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("override, message", [
    ({"method": "fcos2"}, "method: unknown pruning method 'fcos2'; choose one of fcos, "),
    ({"finetune": {"epochs": -3}}, "finetune.epochs: Input should be greater than or equal to 1"),
    ({"pretrain": {"epochs": 0}}, "pretrain.epochs: Input should be greater than or equal to 1"),
    ({"channel_stage": {"keep_ratio": -0.2}}, "channel_stage: keep_ratio must be in (0, 1)"),
    ({"channel_stage": {"keep_ratio": None, "target_macs_reduction": 1.0}},
     "target_macs_reduction must be in (0, 1)"),
    ({"peer": {"target_macs_reduction": 0}}, "peer.target_macs_reduction must be in (0, 1)"),
    ({"gate": {"max_accuracy_drop": 1.5, "min_macs_reduction": -1}}, "max_accuracy_drop must be in [0, 1)"),
    ({"model": {"name": "resnet18"}}, "model.name: unknown model 'resnet18'; choose one of resnet20"),
])
def test_more_bad_settings_are_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(REPO_ROOT / "configs" / "default.yaml", override)
    assert message in str(err.value) and "default.yaml: invalid configuration" in str(err.value)


def test_compression_target_that_would_empty_a_layer_is_refused_before_pruning():
    """The configuration admits any target < 1; what empties a layer depends on the model, so the channel
    stage refuses it (the flow-level version: tests/test_flow_bad_input.py)."""
    model = build_model("cnn1d", 4, 128).eval()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(PruningError, match="would empty a layer"):
        channel_stage(model, target_macs_reduction=0.9999)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
