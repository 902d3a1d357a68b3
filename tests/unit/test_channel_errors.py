"""FCOS channel stage: impossible requests fail clearly, before anything is modified."""
import copy

import pytest
import torch

from amrlib.models import build_model
from amrlib.pruning import PruningError, channel_stage


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("resnet20", 11, 128).eval()


@pytest.mark.parametrize("kwargs,msg", [
    ({"keep_ratio": 1.0}, r"in \(0, 1\)"),
    ({"keep_ratio": 0.0}, r"in \(0, 1\)"),
    ({"keep_ratio": -0.5}, r"in \(0, 1\)"),
    ({"keep_ratio": {"layer1.0.conv1": 1.2}}, r"in \(0, 1\)"),
    ({"keep_ratio": {"layer7.0.conv1": 0.5}}, "unknown layer"),
    ({"keep_ratio": {"layer1.0.conv2": 0.5, "layer1.1.conv2": 0.25}}, "conflicting"),
    ({"target_macs_reduction": 0.9999}, "would empty a layer"),
    ({"target_macs_reduction": 1.5}, r"in \(0, 1\)"),
    ({"distance_threshold": 3.0}, r"in \(0, 2\)"),
    ({"keep_ratio": 0.5, "target_macs_reduction": 0.5}, "give one of"),
    ({"keep_ratio": 0.5, "linkage": "ward"}, "linkage must be one of"),
    ({"keep_ratio": 0.5, "fusion": "max"}, "fusion one of"),
])
def test_bad_request_raises_and_leaves_model_untouched(model, kwargs, msg):
    before = copy.deepcopy(model.state_dict())
    arch = copy.deepcopy(model.arch)
    with pytest.raises(PruningError, match=msg):
        channel_stage(model, **kwargs)
    assert model.arch == arch
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_success_leaves_input_untouched(model):
    before = copy.deepcopy(model.state_dict())
    channel_stage(model, keep_ratio=0.3)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.conv1.out_channels == 16
