"""Linear classifier probes on every block output (Alain & Bengio, arXiv 1610.01644).

Features: each unit's output, globally average-pooled over the signal axes (one value per channel),
extracted in one forward pass per batch with hooks. Probe: multinomial logistic regression on
standardised features, fitted in closed form as ridge regression onto one-hot targets
(``probe="ridge"``, default: milliseconds per unit, deterministic) or as multinomial logistic
regression fitted full-batch with L-BFGS (``probe="softmax"``, ~1 s per unit on 2 cores); accuracy on
the validation frames.

The probe's own noise (which training frames it saw, which validation frames score it) is of the order of
a point of accuracy. ``resamples=B`` > 0 also scores every unit on ``B`` bootstrap replicates: replicate ``r``
draws the probe's training frames and its validation frames with replacement (the same draw for every unit,
so that units stay comparable within a replicate) and refits. The records then carry
``probe_accuracy_resamples`` (``B`` values), from which :func:`amrlib.pruning.lacd.diagnose_collapse`
judges a gain with its uncertainty.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..train.batches import iter_batches
from .api import PruningError

PROBES = ("softmax", "ridge")


def _take(ds, max_frames: int | None, seed: int):
    if max_frames is None or len(ds) <= max_frames:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), max_frames, replace=False))
    return ds.subset(idx)


def block_features(model: torch.nn.Module, ds, names: list[str], batch_size: int = 512) -> dict[str, np.ndarray]:
    """{unit name: [n, channels]} pooled outputs of the named units on every frame of ``ds``."""
    store: dict[str, list] = {n: [] for n in names}
    hooks = []
    for n in names:
        def hook(_m, _i, out, n=n):
            store[n].append(out.flatten(2).mean(2) if out.dim() > 2 else out)
        hooks.append(model.get_submodule(n).register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, _, _ in iter_batches(ds, batch_size):
                model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {n: torch.cat(v).double().numpy() for n, v in store.items()}


def fit_probe(xtr, ytr, xva, yva, num_classes: int, probe: str = "ridge", l2: float = 1e-3,
              iters: int = 100) -> float:
    """Validation accuracy of a linear probe trained on (xtr, ytr)."""
    if probe not in PROBES:
        raise PruningError(f"unknown probe {probe!r}; choose one of {PROBES}")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
    a = torch.from_numpy((xtr - mu) / sd)
    b = torch.from_numpy((xva - mu) / sd)
    a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
    b = torch.cat([b, torch.ones(len(b), 1, dtype=b.dtype)], 1)
    y = torch.from_numpy(ytr)
    if probe == "ridge":
        t = F.one_hot(y, num_classes).double()
        w = torch.linalg.solve(a.T @ a + l2 * len(a) * torch.eye(a.shape[1], dtype=a.dtype), a.T @ t)
    else:
        w = torch.zeros(a.shape[1], num_classes, dtype=a.dtype, requires_grad=True)
        opt = torch.optim.LBFGS([w], lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(a @ w, y) + l2 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
    with torch.no_grad():
        return float(((b @ w).argmax(1).numpy() == yva).mean())


def probe_blocks(model: torch.nn.Module, train, val, *, max_train_frames: int | None = 4000,
                 max_val_frames: int | None = 4000, probe: str = "ridge", l2: float = 1e-3,
                 seed: int = 0, resamples: int = 0) -> list[dict]:
    """Probe accuracy of every unit of ``model.structure().blocks``, in forward order (see the module doc)."""
    if resamples < 0:
        raise PruningError(f"resamples must be >= 0, got {resamples}")
    blocks = model.structure().blocks
    names = [b.name for b in blocks]
    tr, va = _take(train, max_train_frames, seed), _take(val, max_val_frames, seed + 1)
    ftr, fva = block_features(model, tr, names), block_features(model, va, names)
    ytr, yva = np.asarray(tr.labels), np.asarray(va.labels)
    rng = np.random.default_rng([seed, 7919])
    draws = [(rng.integers(0, len(ytr), len(ytr)), rng.integers(0, len(yva), len(yva))) for _ in range(resamples)]
    out = []
    for b in blocks:
        a, v = ftr[b.name], fva[b.name]
        rec = {"block": b.name, "kind": b.kind, "removable": b.removable, "reason": b.reason,
               "channels": int(a.shape[1]),
               "probe_accuracy": fit_probe(a, ytr, v, yva, train.num_classes, probe, l2)}
        if resamples:
            rec["probe_accuracy_resamples"] = [fit_probe(a[i], ytr[i], v[j], yva[j], train.num_classes, probe, l2)
                                               for i, j in draws]
        out.append(rec)
    return out
