"""SynFlow per-unit scores against a hand computation; data-free and non-destructive."""
import pytest
import torch
from torch import nn

from amrlib.models import build_model
from amrlib.pruning.peers.synflow import synflow_scores


def _net():
    net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=True), nn.ReLU(),
                        nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [-0.5, 1.0, 0.0]]))
        net[2].weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 2.0]]))
        net[2].bias.copy_(torch.tensor([-1.0, 0.5]))
        net[4].weight.copy_(torch.tensor([[2.0, -4.0]]))
    return net


def test_scores_match_hand_computation():
    # |theta|, input ones: h1 = |W1| 1 = [6, 1.5]; h2 = |W2| h1 + |b2| = [7.5 + 1, 3 + 0.5] = [8.5, 3.5]
    # R = |w3| h2 = 2 * 8.5 + 4 * 3.5 = 31.   dR/dh2 = |w3| = [2, 4]; dR/dh1 = |W2|' [2, 4] = [2, 2 + 8] = [2, 10]
    # S(layer 1) = sum |W1|_kj * dR/dh1_k = 6 * 2 + 1.5 * 10 = 27
    # S(layer 2) = sum |W2|_kj h1_j dR/dh2_k + |b2|_k dR/dh2_k
    #            = (6 + 1.5) * 2 + 3 * 4 + (1 * 2 + 0.5 * 4) = 15 + 12 + 4 = 31
    # S(layer 3) = sum |w3|_k h2_k = R = 31
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s = synflow_scores(net, ["0", "2", "4"], input_shape=(1, 3))
    assert s == pytest.approx({"0": 27.0, "2": 31.0, "4": 31.0})
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_sign_free_and_double_precision():
    net, flipped = _net(), _net()
    with torch.no_grad():
        flipped[0].weight.neg_()
        flipped[4].weight.neg_()
    assert synflow_scores(net, ["0", "2"], (1, 3)) == synflow_scores(flipped, ["0", "2"], (1, 3))
    # a 40-layer chain of x10 weights overflows float32 (1e40) but not float64
    deep = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(40)])
    with torch.no_grad():
        for layer in deep:
            layer.weight.fill_(10.0)
    s = synflow_scores(deep, ["0", "39"], (1, 1))
    assert s["0"] == pytest.approx(1e40, rel=1e-9) and s["39"] == pytest.approx(1e40, rel=1e-9)


def test_units_of_a_model():
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 128)
    units = [b.name for b in m.structure().blocks]
    s = synflow_scores(m, units)
    assert set(s) == set(units) and all(v > 0 for v in s.values())
    assert m.conv1.weight.dtype == torch.float32
