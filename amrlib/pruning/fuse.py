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


def fuse_cluster(conv: nn.Module, bn: nn.Module | None, clusters: list[list[int]], fusion: str = "bn_aware",
                 survivors: list[int] | None = None) -> None:
    """Shrink a producer (conv or shortcut map, plus its BN) in place: one output channel per cluster."""
    if fusion not in FUSIONS:
        raise PruningError(f"unknown fusion rule {fusion!r}; choose one of {FUSIONS}")
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else None
    k = len(clusters)
    if fusion == "select":
        idx = torch.as_tensor(survivors)
        new_w, new_b = w[idx], (b[idx] if b is not None else None)
        if bn is not None:
            _set_bn(bn, *(getattr(bn, n).detach().double()[idx] for n in ("weight", "bias", "running_mean", "running_var")))
    elif fusion == "mean" or bn is None:
        new_w = _stack_mean(w, clusters)
        new_b = _stack_mean(b, clusters) if b is not None else None
        if bn is not None:
            _set_bn(bn, *(_stack_mean(getattr(bn, n).detach().double(), clusters)
                          for n in ("weight", "bias", "running_mean", "running_var")))
    else:  # bn_aware
        s, t = bn_scale(bn)
        if b is not None:
            t = t + b * s
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_eff = _stack_mean(w * s.reshape(shape), clusters)
        t_eff = _stack_mean(t, clusters)
        gamma = _stack_mean(bn.weight.detach().double(), clusters)
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
                  fusion: str = "bn_aware", survivors: list[int] | None = None) -> None:
    """Shrink a consumer's input in place: cluster members' input weights are summed into one."""
    w = module.weight.detach().double()
    if isinstance(module, nn.Linear):
        out, f = w.shape[0], features_per_channel
        w = w.reshape(out, -1, f)
        groups = [[s] for s in survivors] if fusion == "select" else clusters
        new_w = torch.stack([w[:, c].sum(1) for c in groups], 1).reshape(out, -1)
        module.in_features = new_w.shape[1]
    else:
        groups = [[s] for s in survivors] if fusion == "select" else clusters
        new_w = torch.stack([w[:, c].sum(1) for c in groups], 1)
        module.in_channels = len(groups)
    module.weight = _param(new_w, module.weight)
