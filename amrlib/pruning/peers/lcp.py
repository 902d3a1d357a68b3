"""Linear-classifier-probe (LCP) layer pruning: the plain layer-removal baseline.

For every unit of ``model.structure().blocks`` (forward order) a linear probe — multinomial logistic
regression on the unit's globally average-pooled output (one feature per channel, standardised with
train statistics), L2 penalty ``l2`` (1e-3), fitted with LBFGS (``probe_steps``, 100 iterations) on
up to ``probe_frames`` (2000) frames of ``train`` — is scored by its accuracy on up to ``probe_frames``
frames of ``val``. A unit's *gain* is its probe accuracy minus the previous unit's (the first unit's: minus chance).
Removable units are taken in order of increasing gain (ties: the later unit first) and removed until
the MAC reduction reaches the target, skipping a unit whose removal would overshoot the target by
more than ``tolerance`` (units differ a lot in MACs); if the skips leave the target unmet, the
skipped units are removed after all, in the same order. If removing every removable unit does not
reach the target, that network is returned with ``target_met: false``.

``prune_lcp(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``;
options: probe_frames, probe_steps, l2, batch_size (256), tolerance (0.02).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ...train import iter_batches
from ..api import PruneResult, PruningError
from .common import check_options, check_target, working_copy
from .depth import DEFAULT_LAYER_TOLERANCE, DepthCost, finish_removal
from .similarity import unit_features

OPTIONS = {"probe_frames", "probe_steps", "l2", "batch_size", "tolerance"}


def pooled_features(model, units: list[str], ds, frames: np.ndarray, batch_size: int = 256):
    """Per unit: [n, channels] global-average-pooled outputs; and the labels."""
    feats = [[] for _ in units]
    labels = []
    for x, y, _ in iter_batches(ds, batch_size, frames):
        modules = dict(model.named_modules())
        outs = []
        hooks = [modules[u].register_forward_hook(lambda _m, _i, o, k=k: outs.append((k, o.detach())))
                 for k, u in enumerate(units)]
        try:
            with torch.no_grad():
                model.eval()(x)
        finally:
            for h in hooks:
                h.remove()
        for k, o in outs:
            feats[k].append(o.flatten(2).mean(2) if o.dim() > 2 else o)
        labels.append(y)
    return [torch.cat(f).double() for f in feats], torch.cat(labels)


def probe_accuracy(xtr, ytr, xva, yva, classes: int, steps: int = 100, l2: float = 1e-3) -> float:
    """Accuracy on (xva, yva) of a softmax regression fitted on (xtr, ytr) with LBFGS."""
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-8)
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    w = torch.zeros(xtr.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=int(steps), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, ytr) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xva @ w + b).argmax(1) == yva).double().mean())


def greedy_removal(order: list[str], cost: DepthCost, target: float, tolerance: float) -> list[str]:
    removed, skipped = [], []
    for u in order:
        if cost.reduction(removed) >= target:
            return removed
        (removed if cost.reduction(removed + [u]) <= target + tolerance else skipped).append(u)
    for u in skipped:
        if cost.reduction(removed) >= target - tolerance:
            break
        removed.append(u)
    return removed


def prune_lcp(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    check_options("lcp", options, OPTIONS)
    target = check_target(target_macs_reduction)
    n_probe = int(options.get("probe_frames", 2000))
    if n_probe < 2:
        raise PruningError("lcp: probe_frames must be >= 2")
    t0 = time.perf_counter()
    work = working_copy(model)
    blocks = work.structure().blocks
    units = [b.name for b in blocks]
    removable = [b.name for b in blocks if b.removable]
    if not removable:
        raise PruningError(f"lcp: {model.arch.get('name')} has no removable unit")
    rng = np.random.default_rng(seed)
    pick = lambda ds: np.sort(rng.permutation(len(ds))[:n_probe])  # noqa: E731
    bs = int(options.get("batch_size", 256))
    ftr, ytr = pooled_features(work, units, train, pick(train), bs)
    fva, yva = pooled_features(work, units, val, pick(val), bs)
    classes = int(model.arch["num_classes"])
    acc = [probe_accuracy(a, ytr, b, yva, classes, options.get("probe_steps", 100), options.get("l2", 1e-3))
           for a, b in zip(ftr, fva)]
    gain = {u: acc[i] - (acc[i - 1] if i else 1.0 / classes) for i, u in enumerate(units)}
    order = sorted(removable, key=lambda u: (gain[u], -units.index(u)))
    cost = DepthCost(work, units)
    removed = greedy_removal(order, cost, target, float(options.get("tolerance", DEFAULT_LAYER_TOLERANCE)))
    details = {"probe_accuracy": dict(zip(units, acc)), "gain": gain, "removal_order": order}
    return finish_removal("lcp", model, work, removed, cost, target, t0, train, val, finetune,
                          {"seed": seed, **options}, details,
                          float(options.get("tolerance", DEFAULT_LAYER_TOLERANCE)))
