"""FCOS stage 1: channel pruning by hierarchical clustering and parameter fusion.

How many clusters each channel group keeps — exactly one of:

* ``keep_ratio``: a float for every group, or a mapping from a conv's qualified name (or a group name
  such as ``"stream:layer2"``) to its ratio; groups not named are kept whole. Naming any producer of a
  residual stream sets the ratio of the whole stream. ``round(ratio * n)`` clusters, at least one.
* ``target_macs_reduction`` / ``target_params_reduction``: a global target, distributed by the
  **uniform rule** (ours): the same keep ratio in every group, the largest one whose measured
  reduction reaches the target (bisection on the real MAC/parameter counter); then a **fill-up**
  (ours): while the target still holds, one more cluster is given back to the group whose next
  dendrogram split is the widest (the fusion joining the least similar channels is undone first), so
  the reduction lands on the target instead of the uniform rule's coarse steps (a 32-channel layer
  moves ~6% of its MACs per channel). ``allocation="threshold"`` (ours) replaces the uniform rule by one
  **cosine-distance threshold for every group** (the smallest whose cut reaches the target, bisection):
  a group whose channels are redundant (close in the dendrogram) is cut deeply, a group of distinct
  channels keeps its width; the fill-up follows as above.
* ``distance_threshold``: cut every group's dendrogram at this cosine distance (data-driven widths).

``planned_removals`` (block names) tells a global target which units will be removed *after* this
stage (FCOS's final-target scope: LaCD's diagnosis is known, the channel stage is re-fitted so that
channel cut + block removal together land on the target). The reduction is then measured on the network
without those blocks, against the whole parent; the stage itself still clusters every group and removes
nothing — the caller removes the blocks (:func:`amrlib.pruning.remove_blocks`).
"""
from __future__ import annotations

import copy
import time

from torch import nn

from ..measure import count_macs, count_params
from .api import PruningError
from .cluster import LINKAGES, REPRESENTATIONS, channel_features, cluster_channels, medoid, merge_heights
from .fuse import FUSIONS
from .layers import remove_blocks
from .surgery import apply_channel_mapping

PLAN_VERSION = 1
ALLOCATIONS = ("uniform", "threshold")      # how a global target is spread over the groups (module docstring)


def _resolve_ratios(structure, keep_ratio) -> dict[str, float]:
    def check(r, where):
        if not isinstance(r, (int, float)) or not 0 < r < 1:
            raise PruningError(f"keep ratio for {where} must be in (0, 1), got {r!r} "
                               f"(1 keeps everything: leave the layer out instead)")
        return float(r)

    if isinstance(keep_ratio, (int, float)):
        r = check(keep_ratio, "every layer")
        return {g.name: r for g in structure.groups}
    ratios: dict[str, float] = {}
    for key, r in dict(keep_ratio).items():
        try:
            g = structure.group(key)
        except KeyError:
            try:
                g = structure.group_of_conv(key)
            except KeyError:
                known = [p for g in structure.groups for p in g.convs]
                raise PruningError(f"unknown layer {key!r}: not a prunable conv or channel group "
                                   f"(prunable convs: {', '.join(known[:6])}, ...)") from None
        r = check(r, key)
        if g.name in ratios and ratios[g.name] != r:
            raise PruningError(f"conflicting keep ratios for {g.name} (its producers are tied by residual adds)")
        ratios[g.name] = r
    return ratios


def _round_width(k: int, size: int, multiple: int) -> int:
    """``k`` clusters rounded to the nearest multiple of ``multiple`` (at least one multiple, at most ``size``)."""
    if multiple <= 1:
        return k
    return min(size, max(multiple, multiple * round(k / multiple)))


def _counts(structure, ratios: dict[str, float], multiple: int = 1) -> dict[str, int]:
    return {g.name: _round_width(max(1, round(ratios[g.name] * g.size)), g.size, multiple)
            for g in structure.groups if g.name in ratios}


def _cost_at(model, structure, counts: dict[str, int], measure) -> int:
    entries = []
    for g in structure.groups:
        k = counts.get(g.name, g.size)
        if k < g.size:
            clusters = [[i] for i in range(k - 1)] + [list(range(k - 1, g.size))]
            entries.append({"name": g.name, "size_before": g.size, "clusters": clusters, "kept": list(range(k))})
    return measure(apply_channel_mapping(copy.deepcopy(model), entries, "select"))


def _threshold_counts(structure, heights, t: float, least: dict, multiple: int) -> dict[str, int]:
    """Clusters per group when every dendrogram is cut at cosine distance ``t`` (at least ``least``)."""
    out = {}
    for g in structure.groups:
        k = g.size - int((heights[g.name] <= t).sum())
        out[g.name] = max(least[g.name], _round_width(k, g.size, multiple))
    return out


def _bisect(reaches, counts_at, lo: float, hi: float, low_reaches: bool) -> float:
    """30 halvings between ``lo`` and ``hi``; keeps the end at which ``counts_at`` still reaches the target."""
    for _ in range(30):
        mid = (lo + hi) / 2
        if reaches(counts_at(mid)) == low_reaches:
            lo = mid
        else:
            hi = mid
    return lo if low_reaches else hi


def _target_counts(model, structure, target: float, measure, what: str, removals, heights,
                   multiple: int = 1, allocation: str = "uniform") -> tuple[dict, float, int]:
    """Per-group cluster counts for a global target: the uniform rule (or one distance threshold for every
    group, ``allocation="threshold"``), then the fill-up. Returns ``(counts, the uniform keep ratio or the
    threshold, clusters added back by the fill-up)``."""
    if not 0 < target < 1:
        raise PruningError(f"target {what} reduction must be in (0, 1), got {target!r}")
    base = measure(model)
    if removals:
        removals, whole = list(removals), measure
        measure = lambda m: whole(remove_blocks(m, removals))      # noqa: E731 (cost after the planned removal)
        if 1 - measure(model) / base >= target:
            raise PruningError(f"removing the planned blocks alone already cuts {1 - measure(model) / base:.2%} "
                               f"of the {what} (target {target:.2%}): nothing is left for the channel stage")

    seen: dict[tuple, bool] = {}        # the bisection's coarse steps repeat counts: measure each once

    def reaches(counts) -> bool:
        key = tuple(sorted(counts.items()))
        if key not in seen:
            try:
                seen[key] = 1 - _cost_at(model, structure, counts, measure) / base >= target
            except PruningError:   # a planned removal needs equal widths around it (a VGG layer): not these
                seen[key] = False
        return seen[key]

    least = {g.name: _round_width(1, g.size, multiple) for g in structure.groups}
    if not reaches(least):
        floor = _cost_at(model, structure, least, measure)
        per = "one channel" if multiple <= 1 else f"{multiple} channels (width_multiple)"
        raise PruningError(f"a {target:.2%} {what} reduction would empty a layer: with {per} per group "
                           f"this model reaches at most {1 - floor / base:.2%}")
    if allocation == "threshold":             # reduction(hi) >= target > reduction(lo); distances lie in [0, 2]
        def counts_at(t):
            return _threshold_counts(structure, heights, t, least, multiple)
        ratio = _bisect(reaches, counts_at, 0.0, 2.0, low_reaches=False)
    else:                                     # reduction(lo) >= target > reduction(hi)
        def counts_at(r):
            return _counts(structure, {g.name: r for g in structure.groups}, multiple)
        ratio = max(_bisect(reaches, counts_at, 0.0, 1.0, low_reaches=True), 1e-9)
    counts = counts_at(ratio)
    sizes = {g.name: g.size for g in structure.groups}
    open_groups, added = {n for n in counts if counts[n] < sizes[n]}, 0
    while open_groups:   # costs only grow as clusters come back: a group that does not fit now never will
        name = max(sorted(open_groups), key=lambda n: heights[n][sizes[n] - counts[n] - 1])
        trial = {**counts, name: _round_width(counts[name] + max(multiple, 1), sizes[name], multiple)}
        if reaches(trial):
            counts, added = trial, added + 1
            if counts[name] >= sizes[name]:
                open_groups.discard(name)
        else:
            open_groups.discard(name)
    return counts, ratio, added


def channel_stage(model: nn.Module, keep_ratio: float | dict | None = None, *,
                  target_macs_reduction: float | None = None, target_params_reduction: float | None = None,
                  distance_threshold: float | None = None, linkage: str = "average",
                  represent: str = "folded", fusion: str = "bn_aware", scale_aware: bool = True,
                  planned_removals: list[str] | tuple = (), width_multiple: int = 1,
                  allocation: str = "uniform") -> tuple[nn.Module, dict]:
    """Cluster and fuse channels; returns ``(pruned_model, plan)`` and leaves ``model`` untouched.
    ``scale_aware`` (default) fuses positive multiples of a channel exactly (:mod:`amrlib.pruning.fuse`).
    ``width_multiple`` (ours, for latency): every group keeps a multiple of this many clusters (or all its
    channels), for keep ratios and global targets alike; the fill-up then gives clusters back that many at a
    time. CPU runtimes block channels by 8 or 16 (ONNX Runtime's NCHWc layout): odd widths fall off their
    fast kernels (docs/EDGE.md)."""
    t0 = time.perf_counter()
    given = [x is not None for x in (keep_ratio, target_macs_reduction, target_params_reduction, distance_threshold)]
    if sum(given) > 1:
        raise PruningError("give one of keep_ratio, target_macs_reduction, target_params_reduction, distance_threshold")
    if sum(given) == 0:
        keep_ratio = 0.5
    if linkage not in LINKAGES or represent not in REPRESENTATIONS or fusion not in FUSIONS:
        raise PruningError(f"linkage must be one of {LINKAGES}, represent one of {REPRESENTATIONS}, "
                           f"fusion one of {FUSIONS} (got {linkage!r}, {represent!r}, {fusion!r})")
    if not isinstance(width_multiple, int) or isinstance(width_multiple, bool) or width_multiple < 1:
        raise PruningError(f"width_multiple must be a positive integer, got {width_multiple!r}")
    if allocation not in ALLOCATIONS:
        raise PruningError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if width_multiple > 1 and distance_threshold is not None:
        raise PruningError("width_multiple applies to keep ratios and global targets, not to distance_threshold")
    structure = model.structure()
    if planned_removals and (target_macs_reduction is None and target_params_reduction is None):
        raise PruningError("planned_removals only applies to a global target_macs_reduction / target_params_reduction")
    modules = dict(model.named_modules())
    settings = {"linkage": linkage, "represent": represent, "fusion": fusion, "scale_aware": bool(scale_aware)}
    if width_multiple > 1:
        settings["width_multiple"] = width_multiple
    counts: dict[str, int] | None = None
    if keep_ratio is not None:
        counts = _counts(structure, _resolve_ratios(structure, keep_ratio), width_multiple)
        settings["keep_ratio"] = keep_ratio
    elif distance_threshold is not None:
        if not 0 < distance_threshold < 2:
            raise PruningError(f"distance_threshold must be in (0, 2), got {distance_threshold!r}")
        settings["distance_threshold"] = distance_threshold
    else:
        measure, what, target = ((count_macs, "MACs", target_macs_reduction) if target_macs_reduction is not None
                                 else (count_params, "params", target_params_reduction))
        heights = {g.name: merge_heights(channel_features(modules, g, represent), linkage) for g in structure.groups}
        counts, r, added = _target_counts(model, structure, target, measure, what, planned_removals, heights,
                                          width_multiple, allocation)
        settings.update({f"target_{what.lower()}_reduction": target, "filled_up_clusters": added})
        if allocation == "threshold":
            settings.update({"allocation": allocation, "distance_threshold_at_target": r})
        else:
            settings["uniform_keep_ratio"] = r
        if planned_removals:
            settings["planned_removals"] = list(planned_removals)

    entries = []
    for g in structure.groups:
        if counts is not None and counts.get(g.name, g.size) >= g.size:
            continue
        feats = channel_features(modules, g, represent)
        clusters = cluster_channels(feats, n_clusters=counts[g.name] if counts is not None else None,
                                    distance_threshold=distance_threshold, linkage=linkage)
        if len(clusters) == g.size:
            continue
        entries.append({"name": g.name, "kind": g.kind, "size_before": g.size, "size_after": len(clusters),
                        "clusters": clusters, "kept": [medoid(feats, c) for c in clusters]})
    pruned = apply_channel_mapping(copy.deepcopy(model), entries, fusion, bool(scale_aware))
    plan = {"version": PLAN_VERSION, "parent_arch": copy.deepcopy(model.arch), "arch": copy.deepcopy(pruned.arch),
            "stages": [{"stage": "channel", "method": "fcos", "settings": settings, "groups": entries,
                        "seconds": time.perf_counter() - t0}]}
    return pruned.eval() if not model.training else pruned, plan
