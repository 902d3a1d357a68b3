"""One interface for FCOS and every peer: prune(method, ...) with the shared report keys."""
import json

import pytest
import torch

from amrlib.measure import count_macs
from amrlib.models import build_model
from amrlib.pruning import rebuild
from amrlib.pruning.api import PruningError
from amrlib.pruning.methods import METHOD_KINDS, METHODS, prune
from amrlib.pruning.peers import PEER_METHODS
from amrlib.train import TrainConfig
from conftest import toy_dataset

SHARED_KEYS = {"method", "model", "target", "target_met", "macs_before", "macs_after", "params_before",
               "params_after", "macs_reduction", "params_reduction", "prune_seconds"}


def test_registry_has_fcos_and_every_peer():
    assert set(METHODS) == {"fcos", *PEER_METHODS}
    assert set(METHOD_KINDS) == set(METHODS)


def test_the_tables_are_views_of_one_registry():
    from amrlib.pruning.api import registered
    from amrlib.pruning.peers import CHANNEL_METHODS, LAYER_METHODS
    reg = registered()
    assert list(reg) == list(METHODS) == ["fcos", *CHANNEL_METHODS, *LAYER_METHODS]      # the order of --help
    for name, m in reg.items():
        assert METHODS[name] is m.fn and METHOD_KINDS[name] == m.kind == m.fn.kind and m.fn.method_name == name
    assert METHOD_KINDS["fcos"] == "channel+layer" and set(CHANNEL_METHODS) == {"l1", "bn_scale", "fpgm", "random",
                                                                                  "ssbn"}


def test_register_method_refuses_a_second_function_under_a_name_and_an_unknown_kind():
    from amrlib.pruning.api import register_method
    with pytest.raises(ValueError, match="registered twice"):
        register_method("l1", kind="channel")(lambda *a, **k: None)
    with pytest.raises(ValueError, match="kind"):
        register_method("x", kind="depth")


def test_unknown_method_and_bad_target_are_refused():
    m = build_model("resnet20", 3, 128)
    with pytest.raises(PruningError, match="unknown pruning method 'nope'"):
        prune("nope", m, None, None, 0.5)
    with pytest.raises(PruningError, match="target_macs_reduction"):
        prune("fcos", m, None, None, 1.5)
    with pytest.raises(PruningError, match="unknown option"):
        prune("fcos", m, None, None, 0.5, keep_ratio=0.3)      # the target is the one way to size FCOS here
    with pytest.raises(PruningError, match="interim_epochs"):
        prune("fcos", m, None, None, 0.5, interim_epochs=1)


def test_fcos_channel_scope_reaches_at_least_the_target():
    ds = toy_dataset(n=400)
    train, val = ds.subset(range(280)), ds.subset(range(280, 400))
    torch.manual_seed(0)
    parent = build_model("resnet20", 3, 128).eval()
    res = prune("fcos", parent, train, val, 0.6, finetune=TrainConfig(epochs=1, batch_size=64),
                interim_epochs=1, lacd_margin=0.01, target_scope="channel")
    rep = res.report
    assert rep["target_scope"] == "channel" and "diagnosis_pass" not in rep
    assert SHARED_KEYS <= set(rep) and rep["method"] == "fcos"
    assert rep["macs_after"] == count_macs(res.model)
    assert rep["macs_reduction"] >= rep["channel_stage_macs_reduction"] >= 0.6 - rep["tolerance"]
    assert rep["target_met"] is True
    assert {"accuracy_before", "accuracy_pruned", "accuracy_after", "finetune_seconds", "interim_seconds"} <= set(rep)
    plan = json.loads(json.dumps(res.plan))
    assert plan["method"] == "fcos" and plan["options"]["target_macs_reduction"] == 0.6
    assert rebuild(parent, plan).arch == res.model.arch
