import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CI", "1")  # no progress bars in test output
torch.set_num_threads(min(2, os.cpu_count() or 1))


def toy_dataset(n=600, classes=3, length=128, seed=0, snrs=(-10, 0, 10)):
    """Linearly separable-ish random IQ frames: class k shifts the I row by 0.5 k."""
    from amrlib.data import SignalDataset
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, 2, length)).astype(np.float32)
    x[:, 0, :] += y[:, None] * 0.5
    return SignalDataset(x, y, rng.choice(list(snrs), n), [f"c{i}" for i in range(classes)])


@pytest.fixture
def toy():
    return toy_dataset()
