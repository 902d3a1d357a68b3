"""The training recipe: the L1 sparsity term, the convergence stop, named recipes, the device, divergence."""
import pytest
import torch

from amrlib.models import build_model
from amrlib.train import RECIPES, DivergedError, TrainConfig, fit, l1_penalty, recipe, resolve_device, training_loss


def test_l1_term_adds_exactly_coef_times_sum_abs_theta():
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    params = [p for p in m.parameters() if p.requires_grad]
    out, y = torch.randn(8, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    plain = training_loss(out, y, params=params, l1=0.0)
    sparse = training_loss(out, y, params=params, l1=1e-4)
    by_hand = sum(float(p.detach().abs().double().sum()) for p in params)
    assert float(l1_penalty(params).detach()) == pytest.approx(by_hand, rel=1e-6)
    assert float((sparse - plain).detach()) == pytest.approx(1e-4 * by_hand, rel=1e-5)
    assert float(plain) == pytest.approx(float(torch.nn.functional.cross_entropy(out, y)), rel=1e-6)


def test_l1_term_shrinks_weights(toy):
    def total_abs(l1):
        torch.manual_seed(0)
        m = build_model("cnn1d", 3, 128)
        fit(m, toy.subset(range(300)), toy.subset(range(300, 400)), epochs=2, batch_size=50, l1=l1, lr=1e-3,
            progress=False)
        with torch.no_grad():
            return float(l1_penalty(list(m.parameters())))
    assert total_abs(1e-2) < 0.9 * total_abs(0.0)


def test_plateau_stop_records_why_and_when(toy):
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    # lr tiny: nothing improves after the first epoch, so patience 2 stops at epoch 3
    r = fit(m, toy.subset(range(300)), toy.subset(range(300, 400)), epochs=10, lr=1e-12, patience=2,
            batch_size=100, progress=False)
    assert r.stop_reason == "plateau" and r.epochs_run == 3 and r.best_epoch == 1
    assert r.provenance["stop_reason"] == "plateau"
    assert r.provenance["stop_rule"] == "patience 2 on val accuracy (min_delta 0.0), cap 10 epochs"
    assert r.provenance["device"] == "cpu" and r.provenance["threads"] == torch.get_num_threads()


def test_cap_stop_records_max_epochs(toy):
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    r = fit(m, toy.subset(range(300)), toy.subset(range(300, 400)), epochs=2, patience=5, batch_size=100,
            progress=False)
    assert r.stop_reason == "max_epochs" and r.epochs_run == 2 and not r.stopped_early


def test_min_delta_counts_small_gains_as_plateau(toy):
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    # a gain must exceed 0.99 (impossible after epoch 1): patience 1 stops at epoch 2 whatever happens
    r = fit(m, toy.subset(range(300)), toy.subset(range(300, 400)), epochs=10, patience=1, min_delta=0.99,
            batch_size=100, progress=False)
    assert r.stop_reason == "plateau" and r.epochs_run == 2


def test_reference_recipe():
    cfg = recipe("reference")
    assert (cfg.lr, cfg.step_size, cfg.gamma, cfg.batch_size, cfg.l1, cfg.epochs) == (1e-3, 10, 0.8, 128, 1e-4, 50)
    assert recipe("reference", epochs=3, patience=2).epochs == 3
    assert RECIPES["plain"]["l1"] == 0
    with pytest.raises(ValueError, match="unknown training recipe"):
        recipe("nope")
    with pytest.raises(ValueError, match="unknown training setting"):
        recipe("reference", epoch=3)


def test_device_auto_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_device_auto_trains_on_cpu_here(toy, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    m = build_model("cnn1d", 3, 128)
    r = fit(m, toy.subset(range(200)), toy.subset(range(200, 300)), epochs=1, batch_size=100, device="auto",
            progress=False)
    assert r.provenance["device"] == "cpu" and r.provenance["amp"] is False
    assert next(m.parameters()).device.type == "cpu"


@pytest.mark.parametrize("bad", [{"lr": float("inf")}, {"lr": float("nan")}, {"lr": 1e6}, {"l1": -1.0},
                                 {"device": "tpu"}, {"min_delta": 2.0}])
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ValueError, match="invalid training configuration"):
        TrainConfig(**bad).validate()


def test_divergence_stops_training(toy):
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    with torch.no_grad():
        next(m.parameters()).fill_(float("nan"))
    with pytest.raises(DivergedError, match="diverged"):
        fit(m, toy.subset(range(200)), toy.subset(range(200, 300)), epochs=1, batch_size=100, progress=False)
