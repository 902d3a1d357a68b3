"""Structural-similarity + BN-gamma channel pruning for AMR (Chen et al., IEEE TCCN 2024; docs/METHOD.md).

**Score (ours; the paper combines "redundancy" and "importance" without a formula we could reuse).**
For a conv layer with output filters ``W_j`` (flattened) and BatchNorm scales ``gamma_j``:

* importance ``m_j = |gamma_j|`` (without BatchNorm, e.g. cnn1d: ``m_j = ||W_j||_2``);
* channel ``i`` *outranks* ``j`` when ``m_i > m_j`` (ties: lower index);
* redundancy ``r_j = max(0, max over i outranking j of cos(W_i, W_j))`` (0 for the top channel);
* score ``s_j = m_j * (1 - r_j)``.

So a channel is worth its BN scale, discounted by how closely its filter duplicates a more important
channel of the same layer (a negatively correlated filter is not redundant after the ReLU, hence
the clip at 0). The score is closed-form, one per channel, computed once (one-shot). A residual
stream has several producers: its channels' score is the mean of the per-producer scores (shortcut
maps excluded). Ratios are local: every group keeps the same fraction (see :mod:`.channels`), and
surgery goes through Torch-Pruning's dependency graph.

``prune_ssbn(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``,
options: ``tolerance`` (0.02), ``min_channels`` (1), ``scope`` (``"all"`` | ``"internal"``).
"""
from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from ...models.layers import ChannelMap
from ..api import PruneResult, check_options, register_method
from .channels import DEFAULT_TOLERANCE, run_channel_method


def ssbn_scores(filters: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``s_j = m_j (1 - max(0, max_{i outranks j} cos(W_i, W_j)))`` for filters [C, ...], magnitudes [C]."""
    w = filters.detach().double().flatten(1)
    m = magnitude.detach().double().abs().flatten()
    c = len(m)
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (wn @ wn.T).clamp_min(0.0)
    idx = torch.arange(c)
    outranks = (m[:, None] > m[None, :]) | ((m[:, None] == m[None, :]) & (idx[:, None] < idx[None, :]))
    redundancy = torch.where(outranks, cos, torch.zeros_like(cos)).max(dim=0).values
    return m * (1.0 - redundancy)


class SSBNImportance(tp.importance.Importance):
    """Torch-Pruning importance: one SSBN score per channel of a group (mean over its producer convs)."""

    def __init__(self, bn_of: dict[nn.Module, nn.Module | None]):
        self.bn_of = bn_of          # producer conv -> its BatchNorm (None: fall back to the filter L2 norm)

    @torch.no_grad()
    def __call__(self, group):
        total, n = None, 0
        for item in group.items:
            layer, idxs = item.dep.target.module, item.idxs
            if item.dep.handler is not tp.prune_conv_out_channels or isinstance(layer, ChannelMap) \
                    or layer not in self.bn_of:
                continue
            w = layer.weight.detach()[idxs]
            bn = self.bn_of[layer]
            mag = bn.weight.detach()[idxs] if bn is not None and bn.affine else w.flatten(1).norm(dim=1)
            s = torch.zeros(len(group[0].idxs), dtype=torch.float64)
            s.scatter_add_(0, torch.as_tensor(item.root_idxs), ssbn_scores(w, mag))
            total = s if total is None else total + s
            n += 1
        return None if total is None else total / n


def producer_bns(model: nn.Module) -> dict[nn.Module, nn.Module | None]:
    modules = dict(model.named_modules())
    return {modules[p.module]: (modules[p.bn] if p.bn else None)
            for g in model.structure().groups for p in g.producers}


@register_method("ssbn", kind="channel", options={"tolerance", "min_channels", "scope"})
def prune_ssbn(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    check_options("ssbn", options)
    return run_channel_method("ssbn", model, train, val, target_macs_reduction,
                              lambda copy: SSBNImportance(producer_bns(copy)), finetune=finetune,
                              options={"seed": seed, **options},
                              tolerance=options.get("tolerance", DEFAULT_TOLERANCE),
                              min_channels=options.get("min_channels", 1), scope=options.get("scope", "all"))
