"""LaCD probes: on a model trained on the default synthetic data, separability rises with depth."""
import numpy as np
import torch

from amrlib.data import split, synthesize
from amrlib.models import build_model
from amrlib.pruning import probe_blocks
from amrlib.train import fit


def test_probe_accuracy_increases_with_depth():
    ds = synthesize(frames_per_key=12, snrs=range(0, 20, 2), seed=3)
    train, val, _ = split(ds, seed=0)
    torch.manual_seed(0)
    m = build_model("resnet20", ds.num_classes, 128)
    fit(m, train, val, epochs=3, batch_size=64, progress=False)
    probes = probe_blocks(m, train, val)
    acc = np.array([p["probe_accuracy"] for p in probes])
    assert len(acc) == 10                                  # stem + 9 blocks
    third = len(acc) // 3
    assert acc[-third:].mean() > acc[:third].mean() + 0.05, acc
    assert np.corrcoef(np.arange(len(acc)), acc)[0, 1] > 0.5, acc
