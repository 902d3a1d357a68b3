"""Representation similarity between units: unbiased CKA (default), linear CKA, cosine.

Features of a unit are its output on a batch of frames, flattened per frame: ``X`` is [n, d].

* ``unbiased_cka``: CKA built on the unbiased HSIC estimator of Song et al. (2012), as used by
  Nguyen et al. (2021): with linear Gram matrices ``K = X X^T``, ``L = Y Y^T`` and their diagonals
  zeroed (``K~``, ``L~``), ``HSIC_1 = [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))``
  and ``CKA = HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L))``. Needs n >= 4.
* ``linear_cka``: Kornblith et al. (2019), ``||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)`` with
  column-centred features (= biased HSIC with centred Grams).
* ``cosine``: as the reference code: each frame's feature vector is L2-normalised, the shorter of the
  two is zero-padded to the longer, and the per-frame cosines are averaged.

``unit_features`` collects the outputs of named modules with forward hooks; ``similarity_matrix``
averages the unit-by-unit matrix over batches (diagonal 1 by definition).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...train import iter_batches


def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.double().flatten(1)
    return x @ x.T


def unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    if n < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 frames, got {n}")
    k = k - torch.diag(torch.diag(k))
    l = l - torch.diag(torch.diag(l))
    kl = k @ l
    return (torch.trace(kl) + k.sum() * l.sum() / ((n - 1) * (n - 2)) - 2.0 * kl.sum() / (n - 2)) / (n * (n - 3))


def _cka_from_grams(k, l, hsic) -> float:
    denom = torch.sqrt(hsic(k, k) * hsic(l, l))
    return float(hsic(k, l) / denom) if denom > 0 else 0.0


def _centred_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype) - 1.0 / n
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def unbiased_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    return _cka_from_grams(_gram(x), _gram(y), unbiased_hsic)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    return _cka_from_grams(_gram(x), _gram(y), _centred_hsic)


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    x = nn.functional.normalize(x.double().flatten(1), dim=1)
    y = nn.functional.normalize(y.double().flatten(1), dim=1)
    d = min(x.shape[1], y.shape[1])      # zero-padding the shorter one = dropping the longer's tail
    return float((x[:, :d] * y[:, :d]).sum(1).mean())


SIMILARITIES = {"unbiased_cka": unbiased_cka, "linear_cka": linear_cka, "cosine": cosine}


def _pairwise(feats: list[torch.Tensor], kind: str) -> np.ndarray:
    u = len(feats)
    out = np.eye(u)
    if kind == "cosine":
        pair = lambda i, j: cosine(feats[i], feats[j])  # noqa: E731
    else:
        grams = [_gram(f) for f in feats]
        hsic = unbiased_hsic if kind == "unbiased_cka" else _centred_hsic
        self_h = [hsic(g, g) for g in grams]

        def pair(i, j):
            denom = torch.sqrt(self_h[i] * self_h[j])
            return float(hsic(grams[i], grams[j]) / denom) if denom > 0 else 0.0
    for i in range(u):
        for j in range(i + 1, u):
            out[i, j] = out[j, i] = pair(i, j)
    return out


def unit_features(model: nn.Module, names: list[str], x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of the named modules on ``x`` (eval, no grad), flattened per frame."""
    modules = dict(model.named_modules())
    got: dict[str, torch.Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda _m, _i, out, n=n: got.__setitem__(n, out.detach()))
             for n in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [got[n].flatten(1) for n in names]


def similarity_matrix(model: nn.Module, names: list[str], ds, kind: str = "unbiased_cka",
                      batch_size: int = 64, batches: int = 5, seed: int = 0) -> np.ndarray:
    """Unit-by-unit similarity averaged over ``batches`` random batches of ``ds``."""
    if kind not in SIMILARITIES:
        raise ValueError(f"unknown similarity {kind!r}; choose one of {sorted(SIMILARITIES)}")
    n = len(ds)
    if n < 4:
        raise ValueError(f"similarity needs at least 4 frames, the dataset has {n}")
    order = np.random.default_rng(seed).permutation(n)[: batch_size * batches]
    mats = []
    for x, _, idx in iter_batches(ds, batch_size, order):
        if len(idx) >= 4:
            mats.append(_pairwise(unit_features(model, names, x), kind))
    return np.mean(mats, axis=0)
