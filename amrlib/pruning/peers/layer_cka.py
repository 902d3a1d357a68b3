"""Layer pruning for AMR by representation similarity (Lu et al., arXiv 2406.07929; docs/METHOD.md).

1. Unit features: outputs of ``model.structure().blocks`` in forward order on ``batches`` random
   batches of ``train`` (hooks; flattened per frame).
2. Similarity of every pair of units (:mod:`.similarity`; ``similarity="unbiased_cka"`` default,
   ``"linear_cka"``, ``"cosine"``), averaged over batches.
3. One scalar per unit — the column sum of that matrix — segmented by Fisher's optimal segmentation
   (:mod:`.segmentation`), k chosen automatically (first k where one more segment lowers the loss by
   no more than ``threshold`` = 5% of the one-segment loss; ``relative_to="previous"``: of the current
   loss, the reference's ratio); ``k`` forces a number, ``k_max`` caps it.
4. SynFlow score per unit (:mod:`.synflow`). In each segment the units that are not removable
   (stem, shape-changing layers) are kept first, then removable ones by SynFlow: ``keep="max"``
   (default: highest saliency kept) or ``keep="min"`` (the reference code's choice).
5. MAC target: every segment starts with one kept unit (its best); units are then given back, one
   at a time, to the segment with the most units per kept unit (proportional allocation, ties to
   the earlier segment) as long as the MAC reduction stays >= the target. If one unit per segment
   does not reach the target, that network is returned with ``target_met: false`` (report ``note``).
6. Rebuild by unit removal (:mod:`.blocks`) and, with ``finetune``, fine-tune.

``prune_layer_cka(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``;
options: similarity, batch_size (64), batches (5), threshold (0.05), relative_to ("total"), k, k_max,
keep ("max"), tolerance (0.02).
"""
from __future__ import annotations

import time

import numpy as np

from ..api import PruneResult, PruningError, check_options, register_method
from .common import check_target, working_copy
from .depth import DEFAULT_LAYER_TOLERANCE, DepthCost, finish_removal
from .segmentation import auto_segments, fisher_segments, loss_curve
from .similarity import SIMILARITIES, similarity_matrix
from .synflow import synflow_scores

OPTIONS = {"similarity", "batch_size", "batches", "threshold", "relative_to", "k", "k_max", "keep", "tolerance"}


def order_in_segment(segment: list[str], removable: set[str], score: dict[str, float], keep: str) -> list[str]:
    """Keep-priority order: non-removable units first, then removable by SynFlow (best first)."""
    fixed = [u for u in segment if u not in removable]
    rest = sorted((u for u in segment if u in removable), key=lambda u: -score[u] if keep == "max" else score[u])
    return fixed + rest


def allocate(segments: list[list[str]], removable: set[str], score: dict[str, float], keep: str,
             cost: DepthCost, target: float) -> tuple[list[str], list[int]]:
    """Units to remove, and how many units each segment keeps (see the module docstring, step 5)."""
    ordered = [order_in_segment(s, removable, score, keep) for s in segments]
    quota = [max(1, sum(u not in removable for u in s)) for s in segments]

    def removed_with(q):
        return [u for seg, k in zip(ordered, q) for u in seg[k:]]

    full = set()
    while True:
        cands = [i for i, s in enumerate(ordered) if quota[i] < len(s) and i not in full]
        if not cands:
            break
        i = max(cands, key=lambda i: (len(ordered[i]) / quota[i], -i))
        trial = quota[:i] + [quota[i] + 1] + quota[i + 1:]
        if cost.reduction(removed_with(trial)) >= target:
            quota = trial
        else:
            full.add(i)
    return removed_with(quota), quota


@register_method("layer_cka", kind="layer", options=OPTIONS)
def prune_layer_cka(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None,
                    **options) -> PruneResult:
    check_options("layer_cka", options)
    target = check_target(target_macs_reduction)
    kind = options.get("similarity", "unbiased_cka")
    keep = options.get("keep", "max")
    if kind not in SIMILARITIES:
        raise PruningError(f"layer_cka: similarity must be one of {sorted(SIMILARITIES)}, got {kind!r}")
    if keep not in ("max", "min"):
        raise PruningError(f"layer_cka: keep must be 'max' or 'min', got {keep!r}")
    threshold = float(options.get("threshold", 0.05))
    t0 = time.perf_counter()
    work = working_copy(model)
    blocks = work.structure().blocks
    units = [b.name for b in blocks]
    removable = {b.name for b in blocks if b.removable}
    if not removable:
        raise PruningError(f"layer_cka: {model.arch.get('name')} has no removable unit")
    sim = similarity_matrix(work, units, train, kind, int(options.get("batch_size", 64)),
                            int(options.get("batches", 5)), seed)
    values = sim.sum(axis=0)
    if options.get("k") is not None:
        segs, loss = fisher_segments(values, int(options["k"]))
        seg_info = {"k": len(segs), "loss": loss, "loss_curve": [float(v) for v in loss_curve(values)],
                    "threshold": None}
    else:
        try:
            segs, seg_info = auto_segments(values, threshold, options.get("k_max"),
                                           options.get("relative_to", "total"))
        except ValueError as e:
            raise PruningError(f"layer_cka: {e}") from None
    segments = [[units[i] for i in s] for s in segs]
    score = synflow_scores(work, units)
    cost = DepthCost(work, units)
    removed, quota = allocate(segments, removable, score, keep, cost, target)
    details = {"segments": segments, "segment_keep": quota, "segmentation": seg_info,
               "similarity": np.round(sim, 6).tolist(), "column_sums": [float(v) for v in values],
               "synflow": score}
    return finish_removal("layer_cka", model, work, removed, cost, target, t0, train, val, finetune,
                          {"seed": seed, **options}, details,
                          float(options.get("tolerance", DEFAULT_LAYER_TOLERANCE)))
