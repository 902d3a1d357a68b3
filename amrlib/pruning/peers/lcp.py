"""Linear-classifier-probe (LCP) layer pruning: the plain layer-removal baseline.

Every unit of ``model.structure().blocks`` gets a linear probe on its globally average-pooled output
— the project's :func:`amrlib.pruning.probes.probe_blocks` (standardised features; ``probe="ridge"``,
closed form, default, or ``"softmax"``, LBFGS; L2 ``l2``) fitted on up to ``probe_frames`` (2000)
frames of ``train`` and scored on up to ``probe_frames`` frames of ``val``. A unit's *gain* is its
probe accuracy minus the previous unit's (the first unit's: minus chance).

Removable units are taken in order of increasing gain (ties: the later unit first) and removed until
the MAC reduction reaches the target, skipping a unit whose removal would overshoot the target by
more than ``tolerance`` (units differ a lot in MACs); if the skips leave the target unmet, the
skipped units are removed after all, in the same order, and then removed units no longer needed for
the target are put back, highest gain first. If removing every removable unit does not reach the
target, that network is returned with ``target_met: false``.

``prune_lcp(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``;
options: probe ("ridge"), probe_frames (2000), l2 (1e-3), tolerance (0.02).
"""
from __future__ import annotations

import time

from ..api import PruneResult, PruningError, check_options, register_method
from ..probes import PROBES, probe_blocks
from .common import check_target, working_copy
from .depth import DEFAULT_LAYER_TOLERANCE, DepthCost, finish_removal

OPTIONS = {"probe", "probe_frames", "l2", "tolerance"}


def greedy_removal(order: list[str], cost: DepthCost, target: float, tolerance: float) -> list[str]:
    """Remove along ``order`` until ``target``, skipping overshooting units unless they are needed."""
    removed, skipped = [], []
    for u in order:
        if cost.reduction(removed) >= target:
            return removed
        (removed if cost.reduction(removed + [u]) <= target + tolerance else skipped).append(u)
    added = False
    for u in skipped:
        if cost.reduction(removed) >= target - tolerance:
            break
        removed.append(u)
        added = True
    if added:                                   # a big unit went in: give back what is no longer needed
        for u in sorted(removed, key=order.index, reverse=True):
            rest = [v for v in removed if v != u]
            if cost.reduction(rest) >= target:
                removed = rest
    return removed


@register_method("lcp", kind="layer", options=OPTIONS)
def prune_lcp(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    check_options("lcp", options)
    target = check_target(target_macs_reduction)
    probe = options.get("probe", "ridge")
    n_probe = int(options.get("probe_frames", 2000))
    tolerance = float(options.get("tolerance", DEFAULT_LAYER_TOLERANCE))
    if probe not in PROBES or n_probe < 2:
        raise PruningError(f"lcp: probe must be one of {PROBES} and probe_frames >= 2")
    t0 = time.perf_counter()
    work = working_copy(model)
    blocks = work.structure().blocks
    units = [b.name for b in blocks]
    removable = [b.name for b in blocks if b.removable]
    if not removable:
        raise PruningError(f"lcp: {model.arch.get('name')} has no removable unit")
    probes = probe_blocks(work, train, val, max_train_frames=n_probe, max_val_frames=n_probe, probe=probe,
                          l2=float(options.get("l2", 1e-3)), seed=seed)
    acc = [p["probe_accuracy"] for p in probes]
    chance = 1.0 / int(model.arch["num_classes"])
    gain = {u: acc[i] - (acc[i - 1] if i else chance) for i, u in enumerate(units)}
    order = sorted(removable, key=lambda u: (gain[u], -units.index(u)))
    cost = DepthCost(work, units)
    removed = greedy_removal(order, cost, target, tolerance)
    details = {"probe_accuracy": dict(zip(units, acc)), "gain": gain, "removal_order": order}
    return finish_removal("lcp", model, work, removed, cost, target, t0, train, val, finetune,
                          {"seed": seed, **options}, details, tolerance)
