"""Evaluation: overall, per-SNR and high-SNR accuracy, confusion matrix."""
from __future__ import annotations

import numpy as np
import torch

from .batches import predict

HIGH_SNR_DB = 10


def evaluate(model: torch.nn.Module, ds, batch_size: int = 512, high_snr: int = HIGH_SNR_DB) -> dict:
    """Accuracy of ``model`` on ``ds``.

    Returns ``accuracy`` (all frames), ``per_snr`` ({snr dB: accuracy}), ``high_snr_accuracy``
    (frames with SNR >= ``high_snr`` dB; None if there are none), ``confusion`` (rows = true class,
    columns = predicted, counts), ``classes`` and ``frames``.
    """
    if len(ds) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    pred = predict(model, ds, batch_size).argmax(1).numpy()
    true = ds.labels
    correct = pred == true
    per_snr = {int(s): float(correct[ds.snrs == s].mean()) for s in np.unique(ds.snrs)}
    hi = ds.snrs >= high_snr
    k = ds.num_classes
    confusion = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    return {"accuracy": float(correct.mean()), "per_snr": per_snr,
            "high_snr_accuracy": float(correct[hi].mean()) if hi.any() else None,
            "confusion": confusion.tolist(), "classes": list(ds.classes), "frames": int(len(ds))}
