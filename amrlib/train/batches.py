"""Feeding frames from a SignalDataset to a model, in memory or lazily from HDF5."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ..models import check_fits


def iter_batches(ds, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """Yield (iq float32 [b, 2, L], labels int64 [b], indices) in ``order`` (default: sequential)."""
    order = np.arange(len(ds)) if order is None else np.asarray(order)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(ds.iq[idx], dtype=np.float32))
        y = torch.from_numpy(ds.labels[idx])
        yield x, y, idx


def predict(model: torch.nn.Module, ds, batch_size: int = 512) -> torch.Tensor:
    """Logits [n, C] of ``model`` on every frame of ``ds`` (eval mode, no grad); ``ds`` must have the frame
    length and class count the model was built for (:func:`amrlib.models.check_fits`)."""
    check_fits(model, ds)
    was_training = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for x, _, _ in iter_batches(ds, batch_size):
            outs.append(model(x))
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0, 0)
