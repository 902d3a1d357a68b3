"""FCOS stage 1, part 1: represent channels by their weights and cluster them hierarchically.

Each output channel ``j`` of a channel group is represented by its filter, ``vec(w_j)``. In a residual
stream the representation is the concatenation of the rows of every producer writing into the channel
(each producer's block scaled to unit RMS so that no single layer dominates). ``represent="folded"``
(ours, default) uses the BatchNorm-folded filter ``w_j * gamma_j / sigma_j`` plus the folded bias, i.e.
the affine function the channel really computes; ``represent="weight"`` uses the raw filter as in
the paper. Channels are clustered agglomeratively on cosine distance with SciPy.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from ..models.structure import ChannelGroup
from .api import PruningError

LINKAGES = ("average", "complete", "single", "weighted")
REPRESENTATIONS = ("folded", "weight")


def bn_scale(bn) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) with BN(x) = s * x + t in evaluation mode, in float64."""
    s = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    t = bn.bias.detach().double() - bn.running_mean.double() * s
    return s, t


def channel_features(modules: dict, group: ChannelGroup, represent: str = "folded") -> np.ndarray:
    """Matrix [group.size, d]: one row per channel, the concatenated (scaled) producer rows."""
    if represent not in REPRESENTATIONS:
        raise PruningError(f"unknown channel representation {represent!r}; choose one of {REPRESENTATIONS}")
    blocks = []
    for p in group.producers:
        conv = modules[p.module]
        w = conv.weight.detach().double().reshape(group.size, -1)
        if represent == "folded":
            if p.bn is not None:
                s, t = bn_scale(modules[p.bn])
                bias = conv.bias.detach().double() * s + t if conv.bias is not None else t
                w = torch.cat([w * s[:, None], bias[:, None]], 1)
            elif conv.bias is not None:
                w = torch.cat([w, conv.bias.detach().double()[:, None]], 1)
        rms = w.norm() / max(group.size, 1) ** 0.5
        blocks.append(w / rms if rms > 0 else w)
    return torch.cat(blocks, 1).numpy()


def cosine_distances(features: np.ndarray) -> np.ndarray:
    """Pairwise cosine distance 1 - cos in [0, 2]; all-zero channels are at 0 from each other, 1 from the rest."""
    norms = np.linalg.norm(features, axis=1)
    zero = norms == 0
    unit = features / np.where(zero, 1.0, norms)[:, None]
    d = 1.0 - unit @ unit.T
    d[zero, :] = 1.0
    d[:, zero] = 1.0
    d[np.ix_(zero, zero)] = 0.0
    np.fill_diagonal(d, 0.0)
    return np.clip((d + d.T) / 2, 0.0, 2.0)


def cluster_channels(features: np.ndarray, n_clusters: int | None = None, distance_threshold: float | None = None,
                     linkage: str = "average") -> list[list[int]]:
    """Agglomerative clustering of channels on cosine distance.

    Give exactly one of ``n_clusters`` (the dendrogram is cut to exactly that many clusters) or
    ``distance_threshold`` (merge while the linkage distance is <= the threshold). Returns clusters as
    sorted member lists, ordered by their smallest member.
    """
    n = len(features)
    if linkage not in LINKAGES:
        raise PruningError(f"unknown linkage {linkage!r}; choose one of {LINKAGES}")
    if (n_clusters is None) == (distance_threshold is None):
        raise PruningError("give exactly one of n_clusters or distance_threshold")
    if n_clusters is not None and not 1 <= n_clusters <= n:
        raise PruningError(f"cannot cut {n} channels into {n_clusters} clusters")
    if n == 1 or n_clusters == n:
        return [[i] for i in range(n)]
    z = hierarchy.linkage(squareform(cosine_distances(features), checks=False), method=linkage)
    if n_clusters is not None:
        labels = hierarchy.cut_tree(z, n_clusters=[n_clusters]).ravel()
    else:
        labels = hierarchy.fcluster(z, t=distance_threshold, criterion="distance")
    clusters: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        clusters.setdefault(int(lab), []).append(i)
    return sorted(clusters.values(), key=lambda c: c[0])


def merge_heights(features: np.ndarray, linkage: str = "average") -> np.ndarray:
    """The dendrogram's merge distances, ascending (length n - 1). Cutting to ``k`` clusters applies the
    ``n - k`` lowest merges, so going from ``k`` to ``k + 1`` clusters undoes the merge at ``heights[n - k - 1]``."""
    if len(features) < 2:
        return np.zeros(0)
    z = hierarchy.linkage(squareform(cosine_distances(features), checks=False), method=linkage)
    return np.sort(z[:, 2])


def medoid(features: np.ndarray, members: list[int]) -> int:
    """The member nearest (cosine) to the cluster's mean direction."""
    if len(members) == 1:
        return members[0]
    f = features[members]
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    centre = f.mean(0)
    return members[int(np.argmax(f @ centre))]
