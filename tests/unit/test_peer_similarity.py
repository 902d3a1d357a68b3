"""Unit similarity: CKA (unbiased, linear) invariances and bias; cosine as the reference computes it."""
import numpy as np
import pytest
import torch

from amrlib.models import build_model
from amrlib.pruning.peers.similarity import cosine, linear_cka, similarity_matrix, unbiased_cka, unbiased_hsic
from conftest import toy_dataset


@pytest.fixture
def feats():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 12, generator=g) @ torch.randn(12, 30, generator=g)      # low-rank, correlated
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    return x.double(), q


@pytest.mark.parametrize("cka", [unbiased_cka, linear_cka])
def test_cka_self_one_and_invariances(feats, cka):
    x, q = feats
    assert cka(x, x) == pytest.approx(1.0, abs=1e-10)
    assert cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)                  # orthogonal transform
    assert cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-10)                # isotropic scaling
    noise = torch.randn(40, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tanh(x[:, :10]) + 0.5 * noise
    assert cka(x @ q * 3.0, y) == pytest.approx(cka(x, y), abs=1e-10)
    assert cka(x, y) == pytest.approx(cka(y, x), abs=1e-12)
    assert cka(x, y) < 1 - 1e-3


def test_unbiased_removes_the_small_sample_bias():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 500, generator=g), torch.randn(32, 500, generator=g)   # independent
    assert linear_cka(x, y) > 0.5          # biased: high for few frames, many features
    assert abs(unbiased_cka(x, y)) < 0.15


def test_unbiased_hsic_formula_by_hand():
    k = torch.tensor([[2.0, 1, 0, 1], [1, 3, 1, 0], [0, 1, 1, 2], [1, 0, 2, 4]], dtype=torch.float64)
    l = torch.tensor([[1.0, 0, 2, 1], [0, 2, 1, 1], [2, 1, 3, 0], [1, 1, 0, 1]], dtype=torch.float64)
    kt, lt = k - torch.diag(torch.diag(k)), l - torch.diag(torch.diag(l))
    n = 4
    by_hand = ((torch.trace(kt @ lt) + kt.sum() * lt.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (kt @ lt).sum())
               / (n * (n - 3)))
    assert float(unbiased_hsic(k, l)) == pytest.approx(float(by_hand))
    with pytest.raises(ValueError):
        unbiased_hsic(k[:3, :3], l[:3, :3])


def test_cosine_sanity():
    x = torch.randn(10, 20, dtype=torch.float64)
    assert cosine(x, x) == pytest.approx(1.0)
    assert cosine(x, -x) == pytest.approx(-1.0)
    assert cosine(x, 3 * x) == pytest.approx(1.0)
    # shorter side zero-padded (reference): only the common prefix of normalised vectors counts
    z = torch.cat([x, torch.zeros(10, 5, dtype=torch.float64)], 1)
    assert cosine(x, z) == pytest.approx(1.0)
    e1, e2 = torch.eye(2, dtype=torch.float64)
    assert cosine(e1[None], e2[None]) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["unbiased_cka", "linear_cka", "cosine"])
def test_unit_matrix_on_a_model(kind):
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 128).eval()
    units = [b.name for b in m.structure().blocks]
    sim = similarity_matrix(m, units, toy_dataset(64), kind, batch_size=16, batches=2)
    assert sim.shape == (len(units), len(units))
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1.0)
    assert np.all(np.abs(sim) <= 1 + 1e-9)
