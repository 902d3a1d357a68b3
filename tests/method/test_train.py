import numpy as np
import pytest
import torch

from amrlib.data import SignalDataset
from amrlib.models import build_model
from amrlib.train import evaluate, fit


def test_fit_learns_and_selects_on_val(toy):
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 128)
    seen = []
    r = fit(m, toy.subset(range(400)), toy.subset(range(400, 600)), epochs=3, batch_size=64,
            callbacks=[seen.append], progress=False)
    assert [h["epoch"] for h in seen] == [1, 2, 3]
    assert r.best_val_accuracy == max(h["val_accuracy"] for h in r.history)
    assert r.best_val_accuracy > 0.5      # chance is 1/3
    assert evaluate(m, toy.subset(range(400, 600)))["accuracy"] == pytest.approx(r.best_val_accuracy)


def test_early_stopping(toy):
    torch.manual_seed(0)
    m = build_model("cnn1d", 3, 128)
    # lr tiny: nothing improves after the first epoch, so patience 1 stops at epoch 2
    r = fit(m, toy.subset(range(300)), toy.subset(range(300, 400)), epochs=10, lr=1e-12, patience=1,
            batch_size=100, progress=False)
    assert r.stopped_early and len(r.history) == 2


@pytest.mark.parametrize("bad", [{"epochs": -1}, {"batch_size": 0}, {"lr": 0}, {"kd_alpha": 2.0}])
def test_bad_config_is_rejected(bad, toy):
    with pytest.raises(ValueError, match="invalid training configuration"):
        fit(build_model("cnn1d", 3, 128), toy, toy, **bad)


def test_distillation_needs_teacher(toy):
    with pytest.raises(ValueError, match="teacher"):
        fit(build_model("cnn1d", 3, 128), toy, toy, kd_alpha=0.5)


class Oracle(torch.nn.Module):
    """Predicts the class written in the first sample, except frames at SNR 0 always predict class 0."""

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0, 0].long(), 3).float()


def test_evaluate_per_snr_and_confusion():
    labels = np.array([0, 1, 2, 1, 2, 0])
    snrs = np.array([10, 10, 10, 0, 0, 0])
    pred = np.array([0, 1, 2, 0, 0, 0])
    iq = np.zeros((6, 2, 8), np.float32)
    iq[:, 0, 0] = pred
    r = evaluate(Oracle(), SignalDataset(iq, labels, snrs, ["a", "b", "c"]))
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_snr"] == {0: pytest.approx(1 / 3), 10: 1.0}
    assert r["high_snr_accuracy"] == 1.0
    assert r["confusion"] == [[2, 0, 0], [1, 1, 0], [1, 0, 1]]
