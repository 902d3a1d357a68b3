"""FCOS stage 1, part 2: fuse each cluster of channels into one channel ("parameter fusion").

Rules (``fusion=``):

* ``"bn_aware"`` (default, ours): each member's channel computes the affine map
  ``y_m = s_m (w_m * x) + t_m`` (BN folded: ``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``).
  The survivor computes the mean of those maps. It is written back into conv + BN with the cluster's
  mean BN statistics (gamma, running mean/var averaged; the filter and beta solved so the folded map is
  exactly the mean), so BN keeps a sensible scale for fine-tuning. Without BN: mean of filters and biases.
* ``"mean"``: plain mean of every raw tensor (filter, gamma, beta, running stats).
* ``"select"``: no fusion: the survivor is the cluster's medoid, consumers read it alone
  (cluster-guided pruning, an ablation).

Consumers (next conv's input slice, the shortcut map's columns, the classifier's features) receive the
**sum** of the members' input weights (for ``"select"``: the survivor's alone). Hence, when the members
of a cluster produce identical outputs, the fused network computes exactly the same function.

**Scale-aware fusion** (``scales=``, ours, FCOS's default): channels that differ by a positive factor sit
at cosine distance 0 and are clustered together, but a plain mean leaves an error on their contribution
(a 2x copy fused with the original by the mean computes 1.5x of one and 0.75x of the other). With a
per-channel scale ``a_j`` (the norm of the channel's BN-folded affine map over the cluster's mean norm,
:func:`member_scales`), every member is first brought to the cluster's common scale (``map_j / a_j``), the
survivor computes the mean of those, and every consumer receives ``sum_j a_j * w_j`` — the scale-weighted
sum of the members' input weights (``a_j / a_m`` for ``"select"``'s survivor ``m``). ReLU, max-pooling and
residual adds preserve positive scale, so members that are exact positive multiples of each other fuse
to the same function; with all ``a_j = 1`` it is the plain rule above.
"""
from __future__ import annotations

import torch
from torch import nn

from .api import PruningError
from .cluster import bn_scale

FUSIONS = ("bn_aware", "mean", "select")


def _param(t: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.to(like.dtype).contiguous(), requires_grad=like.requires_grad)


def _stack_mean(t: torch.Tensor, clusters) -> torch.Tensor:
    return torch.stack([t[c].mean(0) for c in clusters])


def _per_row(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def member_scales(norms, clusters: list[list[int]]) -> torch.Tensor:
    """Per-channel scale ``a_j = norm_j / mean(norms of j's cluster)`` (1 where a cluster's norms are all 0)."""
    norms = torch.as_tensor(norms, dtype=torch.float64)
    scales = torch.ones_like(norms)
    for c in clusters:
        ref = norms[c].mean()
        if ref > 0:
            scales[c] = torch.where(norms[c] > 0, norms[c] / ref, torch.ones_like(norms[c]))
    return scales


def fuse_cluster(conv: nn.Module, bn: nn.Module | None, clusters: list[list[int]], fusion: str = "bn_aware",
                 survivors: list[int] | None = None, scales: torch.Tensor | None = None) -> None:
    """Shrink a producer (conv or shortcut map, plus its BN) in place: one output channel per cluster.
    ``scales`` (one per input channel of the group, :func:`member_scales`) makes the fusion scale-aware."""
    if fusion not in FUSIONS:
        raise PruningError(f"unknown fusion rule {fusion!r}; choose one of {FUSIONS}")
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else None
    k = len(clusters)
    inv = None if scales is None else 1.0 / scales.double()     # brings each member to its cluster's scale
    if fusion == "select":
        idx = torch.as_tensor(survivors)
        new_w, new_b = w[idx], (b[idx] if b is not None else None)
        if bn is not None:
            _set_bn(bn, *(getattr(bn, n).detach().double()[idx]
                          for n in ("weight", "bias", "running_mean", "running_var")))
    elif fusion == "mean" or bn is None:
        if bn is None:       # the channel's map is the filter (and bias) itself
            new_w = _stack_mean(w if inv is None else w * _per_row(inv, w), clusters)
            new_b = None if b is None else _stack_mean(b if inv is None else b * inv, clusters)
        else:                # BN's affine output carries the scale: gamma and beta are brought to it
            new_w = _stack_mean(w, clusters)
            new_b = _stack_mean(b, clusters) if b is not None else None
            gamma, beta = bn.weight.detach().double(), bn.bias.detach().double()
            if inv is not None:
                gamma, beta = gamma * inv, beta * inv
            _set_bn(bn, _stack_mean(gamma, clusters), _stack_mean(beta, clusters),
                    *(_stack_mean(getattr(bn, n).detach().double(), clusters) for n in ("running_mean", "running_var")))
    else:  # bn_aware
        s, t = bn_scale(bn)
        if b is not None:
            t = t + b * s
        if inv is not None:
            s, t = s * inv, t * inv
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_eff = _stack_mean(w * s.reshape(shape), clusters)
        t_eff = _stack_mean(t, clusters)
        gamma = bn.weight.detach().double()
        gamma = _stack_mean(gamma if inv is None else gamma * inv, clusters)
        gamma = torch.where(gamma.abs() < 1e-12, torch.ones_like(gamma), gamma)
        mean = _stack_mean(bn.running_mean.double(), clusters)
        var = _stack_mean(bn.running_var.double(), clusters)
        s_new = gamma / torch.sqrt(var + bn.eps)
        new_w = w_eff / s_new.reshape(shape)
        beta = t_eff + mean * s_new
        new_b = torch.zeros(k, dtype=torch.float64) if b is not None else None
        _set_bn(bn, gamma, beta, mean, var)
    conv.weight = _param(new_w, conv.weight)
    if new_b is not None:
        conv.bias = _param(new_b, conv.bias)
    if isinstance(conv, nn.Linear):
        conv.out_features = k
    else:
        conv.out_channels = k


def _set_bn(bn, gamma, beta, mean, var) -> None:
    bn.weight = _param(gamma, bn.weight)
    bn.bias = _param(beta, bn.bias)
    bn.running_mean = mean.to(bn.running_mean.dtype).contiguous()
    bn.running_var = var.to(bn.running_var.dtype).contiguous()
    bn.num_features = len(gamma)


def fuse_consumer(module: nn.Module, clusters: list[list[int]], features_per_channel: int = 1,
                  fusion: str = "bn_aware", survivors: list[int] | None = None,
                  scales: torch.Tensor | None = None) -> None:
    """Shrink a consumer's input in place: cluster members' input weights are summed into one (weighted by
    ``scales`` for scale-aware fusion; without it ``"select"`` keeps only the survivor's weights)."""
    w = module.weight.detach().double()
    linear = isinstance(module, nn.Linear)
    out = w.shape[0]
    if linear:
        w = w.reshape(out, -1, features_per_channel)
    if scales is None:
        weights = [([s], [1.0]) for s in survivors] if fusion == "select" else [(c, [1.0] * len(c)) for c in clusters]
    else:
        a = scales.double()
        ref = [a[s] for s in survivors] if fusion == "select" else [1.0] * len(clusters)
        weights = [(c, [float(a[j] / r) for j in c]) for c, r in zip(clusters, ref)]
    cols = []
    for members, coef in weights:
        coef_t = torch.tensor(coef, dtype=w.dtype).reshape((1, -1) + (1,) * (w.dim() - 2))
        cols.append((w[:, members] * coef_t).sum(1))
    new_w = torch.stack(cols, 1)
    if linear:
        new_w = new_w.reshape(out, -1)
        module.in_features = new_w.shape[1]
    else:
        module.in_channels = len(weights)
    module.weight = _param(new_w, module.weight)
