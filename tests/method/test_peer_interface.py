"""The peer registry and the shared interface: names, argument checks, fine-tuning report."""
import pytest
import torch

from amrlib.models import build_model
from amrlib.pruning.api import PruneResult, PruningError
from amrlib.pruning.peers import CHANNEL_METHODS, LAYER_METHODS, PEER_METHODS
from amrlib.train import TrainConfig, evaluate
from conftest import toy_dataset


def test_registry():
    assert set(PEER_METHODS) == {"l1", "bn_scale", "fpgm", "random", "ssbn", "layer_cka", "lcp"}
    assert set(CHANNEL_METHODS) | set(LAYER_METHODS) == set(PEER_METHODS)


@pytest.mark.parametrize("method", sorted(PEER_METHODS))
def test_bad_arguments_are_refused_before_work(method):
    m = build_model("resnet20", 3, 128)
    for bad in (0.0, 1.0, -0.2, "half"):
        with pytest.raises(PruningError, match="target_macs_reduction"):
            PEER_METHODS[method](m, None, None, bad)
    with pytest.raises(PruningError, match="unknown option"):
        PEER_METHODS[method](m, None, None, 0.5, no_such_option=1)


def test_finetune_reports_accuracy_before_and_after():
    train, val = toy_dataset(192, seed=0), toy_dataset(96, seed=1)
    torch.manual_seed(0)
    parent = build_model("cnn1d", 3, 128).eval()
    cfg = TrainConfig(epochs=1, batch_size=64)
    res = PEER_METHODS["l1"](parent, train, val, 0.5, finetune=cfg)
    assert isinstance(res, PruneResult)
    rep = res.report
    assert rep["accuracy_before"] == pytest.approx(evaluate(parent, val)["accuracy"])
    assert rep["accuracy_after"] == pytest.approx(evaluate(res.model, val)["accuracy"])
    for key in ("accuracy_pruned", "high_snr_accuracy_before", "high_snr_accuracy_after", "finetune_seconds"):
        assert key in rep
    assert "accuracy_before" not in PEER_METHODS["l1"](parent, train, val, 0.5).report
