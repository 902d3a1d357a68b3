"""Physical channel surgery shared by every channel method: apply a per-group cluster mapping.

A mapping entry is ``{"name": group, "size_before": n, "clusters": [[members], ...], "kept": [...]}``;
producers of the group are fused cluster by cluster, consumers sum the members' input weights
(:mod:`amrlib.pruning.fuse`). The model is changed in place — callers pass a copy — and its
``arch`` is refreshed, so ``build_from_arch(model.arch)`` + its state dict reproduce it.
"""
from __future__ import annotations

from torch import nn

from .api import PruningError
from .cluster import channel_features
from .fuse import fuse_cluster, fuse_consumer, member_scales


def check_partition(entry: dict, size: int) -> None:
    members = sorted(i for c in entry["clusters"] for i in c)
    if not entry["clusters"] or any(not c for c in entry["clusters"]):
        raise PruningError(f"plan group {entry['name']!r}: empty cluster list or empty cluster")
    if members != list(range(size)):
        bad = [i for i in members if not 0 <= i < size]
        what = f"channel index out of range 0..{size - 1}: {bad[:5]}" if bad else "clusters are not a partition"
        raise PruningError(f"plan group {entry['name']!r}: {what}")
    kept = entry.get("kept")
    if kept is not None and (len(kept) != len(entry["clusters"]) or
                             any(k not in c for k, c in zip(kept, entry["clusters"]))):
        raise PruningError(f"plan group {entry['name']!r}: 'kept' must name one member of each cluster")


def apply_channel_mapping(model: nn.Module, entries: list[dict], fusion: str, scale_aware: bool = False) -> nn.Module:
    """Fuse every entry's clusters in place. ``scale_aware``: members are weighted by the norm of their
    BN-folded map (measured on the network as it is when the group is fused), so positive multiples of a
    channel fuse exactly (:mod:`amrlib.pruning.fuse`)."""
    structure = model.structure()
    modules = dict(model.named_modules())
    resolved = []
    for entry in entries:                      # validate everything before touching any tensor
        try:
            group = structure.group(entry["name"])
        except KeyError as e:
            raise PruningError(f"plan names an unknown channel group: {e}") from None
        if group.size != entry["size_before"]:
            raise PruningError(f"plan group {entry['name']!r} expects {entry['size_before']} channels, "
                               f"the model has {group.size}")
        check_partition(entry, group.size)
        resolved.append((group, entry))
    for group, entry in resolved:
        clusters, kept = entry["clusters"], entry.get("kept")
        if len(clusters) == group.size:
            continue
        scales = None
        if scale_aware:
            norms = (channel_features(modules, group, "folded") ** 2).sum(1) ** 0.5
            scales = member_scales(norms, clusters)
        for p in group.producers:
            fuse_cluster(modules[p.module], modules[p.bn] if p.bn else None, clusters, fusion, kept, scales)
        for c in group.consumers:
            fuse_consumer(modules[c.module], clusters, c.features_per_channel, fusion, kept, scales)
    model.arch = model.current_arch()
    return model
