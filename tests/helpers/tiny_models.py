"""Networks trained for one epoch on the toy dataset: real (non-random) weights for exactness tests, in seconds."""
from __future__ import annotations

import torch

from amrlib.models import build_model
from amrlib.train import fit


def one_epoch_models(names, ds, n_train: int = 300, n_val: int = 100) -> dict:
    """{name: model in eval mode}: each built with seed 0 and fitted one epoch on the first frames of ``ds``."""
    out = {}
    for name in names:
        torch.manual_seed(0)
        m = build_model(name, ds.num_classes, 128)
        fit(m, ds.subset(range(n_train)), ds.subset(range(n_train, n_train + n_val)), epochs=1, batch_size=50,
            progress=False)
        out[name] = m.eval()
    return out
