"""Channel selection driven by an importance criterion, executed through Torch-Pruning's dependency graph.

The explicit ``model.structure()`` names the channel groups; for each group Torch-Pruning's
``DependencyGraph`` gives the coupled group rooted at the group's first real producer conv (the
fixed :class:`~amrlib.models.layers.ChannelMap` shortcuts are pruned with their streams but never
scored). We check that Torch-Pruning's coupled layers are exactly the structure's producers, BNs and
consumers before anything is cut.

**Per-layer ratio and the MAC target.** One importance call per group ranks its channels (one
score per channel; the highest are kept). A uniform pruning ratio ``r`` keeps
``floor(C (1 - r))`` channels of a C-channel group (at least ``min_channels``). The single-channel
removals this implies are put in one order — by the ratio at which they happen, ``i / C`` for the
i-th channel of a group, ties in structure order — and the number of removals is found by bisection
on the predicted MACs (exact, see :mod:`.macs`), then the closer of the two bracketing counts is
taken. So every group is within one channel of the uniform ratio and the MAC reduction lands within
one channel's worth of the target. The pruned network is then measured with ``count_macs``; a
reduction more than ``tolerance`` (default 0.02, i.e. 2 percentage points) from the target raises
:class:`PruningError`, as does a target beyond what ``min_channels`` per group allows.
"""
from __future__ import annotations

import bisect

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from ...models.layers import ChannelMap
from ..api import PruningError
from .macs import ChannelMacModel

DEFAULT_TOLERANCE = 0.02


class WithoutShortcutMaps(tp.importance.Importance):
    """Wrap a Torch-Pruning importance so that the frozen shortcut maps of a group are not scored."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, group):
        kept = tp.dependency.Group()
        kept._DG = group._DG
        kept._group = [it for it in group.items if not isinstance(it.dep.target.module, ChannelMap)]
        return self.inner(kept)


def build_graph(model: nn.Module) -> tp.DependencyGraph:
    return tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 2, model.arch["frame_length"]))


def _root(group, modules) -> nn.Module:
    for p in group.producers:
        if not isinstance(modules[p.module], ChannelMap):
            return modules[p.module]
    raise PruningError(f"channel group {group.name!r} has no prunable producer")


def _check_coverage(DG, group, tp_group, modules) -> None:
    got = set()
    for it in tp_group.items:
        name = DG._module2name.get(it.dep.target.module)
        if name is not None and isinstance(modules.get(name), (nn.modules.conv._ConvNd, nn.Linear,
                                                                 nn.modules.batchnorm._BatchNorm)):
            got.add((name, "out" if DG.is_out_channel_pruning_fn(it.dep.handler) else "in"))
    want = {(p.module, "out") for p in group.producers} | {(p.bn, "out") for p in group.producers if p.bn}
    want |= {(c.module, "in") for c in group.consumers}
    if got != want:
        raise PruningError(f"Torch-Pruning couples {sorted(got - want)} / misses {sorted(want - got)} "
                           f"for channel group {group.name!r}: the model's structure and its graph disagree")


def score_groups(model: nn.Module, importance, groups=None, DG=None) -> dict[str, np.ndarray]:
    """One score per channel for each structure group (higher = more important)."""
    DG = DG or build_graph(model)
    modules = dict(model.named_modules())
    scores = {}
    for g in groups if groups is not None else model.structure().groups:
        tg = DG.get_pruning_group(_root(g, modules), tp.prune_conv_out_channels, idxs=list(range(g.size)))
        _check_coverage(DG, g, tg, modules)
        s = importance(tg)
        if s is None:
            crit = type(getattr(importance, "inner", importance)).__name__
            raise PruningError(f"{crit} gives no score for channel group {g.name!r} "
                               f"(the criterion needs layers this group does not have, e.g. BatchNorm)")
        s = torch.as_tensor(s).detach().double().flatten().cpu().numpy()
        if s.shape != (g.size,) or not np.all(np.isfinite(s)):
            raise PruningError(f"{type(importance).__name__} gave {s.shape} / non-finite scores for {g.name!r}")
        scores[g.name] = s
    return scores


def ranking(scores: np.ndarray) -> np.ndarray:
    """Channel indices, most important first (ties: lower index first)."""
    return np.lexsort((np.arange(len(scores)), -scores))


def apply_kept(model: nn.Module, kept: dict[str, list[int]], DG=None) -> nn.Module:
    """Physically keep only ``kept[group]`` channels of each named group (in place); refresh ``arch``."""
    DG = DG or build_graph(model)
    modules = dict(model.named_modules())
    structure = model.structure()
    for name, idx in kept.items():
        g = structure.group(name)
        keep = sorted(set(int(i) for i in idx))
        if not keep or keep[0] < 0 or keep[-1] >= g.size:
            raise PruningError(f"channel group {name!r}: kept indices must be a non-empty subset of 0..{g.size - 1}")
        drop = [i for i in range(g.size) if i not in set(keep)]
        if drop:
            DG.get_pruning_group(_root(g, modules), tp.prune_conv_out_channels, idxs=drop).prune()
    for m in model.modules():            # Torch-Pruning re-creates weights as trainable: shortcut maps stay frozen
        if isinstance(m, ChannelMap):
            m.weight.requires_grad_(False)
    model.arch = model.current_arch()
    return model


def removal_order(sizes: list[int], min_channels: int) -> list[int]:
    """Group index of each successive single-channel removal under a growing uniform ratio."""
    events = [(i / c, gi) for gi, c in enumerate(sizes) for i in range(1, c - min(min_channels, c) + 1)]
    return [gi for _, gi in sorted(events)]


def counts_after(sizes: list[int], order: list[int], n: int) -> list[int]:
    counts = list(sizes)
    for gi in order[:n]:
        counts[gi] -= 1
    return counts


def search_counts(macs: ChannelMacModel, sizes: list[int], target: float, min_channels: int,
                  tolerance: float) -> tuple[list[int], float]:
    """Channel count per group meeting ``target`` (predicted); raises if it cannot be reached."""
    order = removal_order(sizes, min_channels)
    red = lambda n: 1.0 - macs.predict(counts_after(sizes, order, n)) / macs.total  # noqa: E731
    best = red(len(order))
    if best < target - tolerance:
        raise PruningError(f"target MAC reduction {target:.1%} is unreachable: keeping {min_channels} channel(s) "
                           f"per group removes at most {best:.1%} (min_channels={min_channels})")
    n = bisect.bisect_left(range(len(order) + 1), target, key=red)
    n = min(n, len(order))
    if n > 0 and abs(red(n - 1) - target) <= abs(red(n) - target):
        n -= 1
    return counts_after(sizes, order, n), red(n)


def selection_stage(structure, kept: dict[str, list[int]]) -> dict:
    """A plan stage replayable by :func:`amrlib.pruning.rebuild` (``select`` fusion: survivors only).

    ``clusters`` must partition each group there; with ``select`` only ``kept`` matters, so each kept
    channel is its own cluster and the removed channels are attached to the first one.
    """
    entries = []
    for name, keep in kept.items():
        size = structure.group(name).size
        keep = sorted(int(i) for i in keep)
        dropped = [i for i in range(size) if i not in set(keep)]
        clusters = [[k] for k in keep]
        clusters[0] = sorted(clusters[0] + dropped)
        entries.append({"name": name, "size_before": size, "kept": keep, "clusters": clusters})
    return {"stage": "channel", "settings": {"fusion": "select"}, "groups": entries}


def run_channel_method(method: str, model: nn.Module, train, val, target: float, make_importance, *,
                       finetune=None, options: dict, tolerance: float = DEFAULT_TOLERANCE,
                       min_channels: int = 1, scope: str = "all"):
    """Score, pick the per-group counts for the MAC target, cut through Torch-Pruning, report.

    ``make_importance(working_copy)`` returns the Torch-Pruning importance used to score the groups.
    """
    import time

    from ...measure import count_macs
    from .common import check_target, finish, plan_shell, working_copy

    target = check_target(target)
    if scope not in ("all", "internal"):
        raise PruningError(f"{method}: scope must be 'all' (every channel group) or 'internal' "
                           f"(block-internal groups only), got {scope!r}")
    if not 0 <= tolerance < 1 or int(min_channels) < 1:
        raise PruningError(f"{method}: need 0 <= tolerance < 1 and min_channels >= 1")
    t0 = time.perf_counter()
    pruned = working_copy(model)
    structure = pruned.structure()
    groups = [g for g in structure.groups if scope == "all" or g.kind != "stream"]
    if not groups:
        raise PruningError(f"{method}: {model.arch.get('name')} has no channel group in scope {scope!r}")
    DG = build_graph(pruned)
    scores = score_groups(pruned, make_importance(pruned), groups, DG)
    macs = ChannelMacModel(pruned, groups)
    counts, predicted = search_counts(macs, [g.size for g in groups], target, int(min_channels), tolerance)
    kept = {g.name: sorted(int(i) for i in ranking(scores[g.name])[:k]) for g, k in zip(groups, counts)}
    apply_kept(pruned, kept, DG)
    seconds = time.perf_counter() - t0
    macs_after = count_macs(pruned)
    achieved = 1.0 - macs_after / macs.total
    if abs(achieved - target) > tolerance:
        raise PruningError(f"{method}: reached a {achieved:.2%} MAC reduction, more than {tolerance:.0%} "
                           f"from the {target:.2%} target (channel steps too coarse for this model)")
    plan = plan_shell(method, options, model, pruned, [selection_stage(structure, kept)])
    extra = {"tolerance": tolerance, "target_met": True, "predicted_macs_reduction": predicted,
             "channels_kept_fraction": sum(counts) / sum(g.size for g in groups), "scope": scope}
    return finish(method, target, model, pruned, plan, train, val, finetune, seconds, extra,
                  macs_before=macs.total, macs_after=macs_after)
