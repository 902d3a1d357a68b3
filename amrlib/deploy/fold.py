"""Fold every BatchNorm into the layer that feeds it, for inference.

In eval mode a BatchNorm is an affine map per channel, ``y = (x - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. When ``x`` is the output of a convolution or a linear layer ``W x + b``,
the pair is one layer with ``W' = s * W`` (row by row) and ``b' = (b - mean) * s + beta``. Folding removes
one operator and one pass over the activations per layer, which is what a thin pruned layer pays most for
at batch 1.

The pairs come from the model itself, never from guessing at a traced graph: every producer of the
model's :meth:`structure` that names its BatchNorm, plus the head pairs a family declares in
``HEAD_BN`` (VGG's Linear + BatchNorm1d). Each BatchNorm becomes ``nn.Identity``; the folded copy
gives the same logits as the original in eval mode (to float rounding) and is for inference only:
it can no longer be pruned or trained as the original.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


def folding_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, BatchNorm) names of every pair :func:`fold_batchnorm` folds, in the model's order."""
    pairs = [(p.module, p.bn) for g in model.structure().groups for p in g.producers if p.bn]
    pairs += [tuple(p) for p in getattr(model, "HEAD_BN", ())]
    return list(dict.fromkeys(pairs))


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm folded into its producer (see the module doc)."""
    folded = copy.deepcopy(model).eval()
    modules = dict(folded.named_modules())
    for layer_name, bn_name in folding_pairs(folded):
        layer, bn = modules[layer_name], modules[bn_name]
        if not isinstance(layer, _FOLDABLE) or not isinstance(bn, _BN):
            raise TypeError(f"cannot fold {bn_name} ({type(bn).__name__}) into {layer_name} "
                            f"({type(layer).__name__})")
        if bn.running_mean is None or not bn.affine:
            raise ValueError(f"{bn_name}: folding needs running statistics and an affine BatchNorm")
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        layer.weight.mul_(scale.reshape(shape))
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * scale + bn.bias
        layer.bias = nn.Parameter(new_bias, requires_grad=False)
        parent_name, _, attr = bn_name.rpartition(".")
        setattr(modules[parent_name] if parent_name else folded, attr, nn.Identity())
    folded.folded_batchnorm = True
    return folded
