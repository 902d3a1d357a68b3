"""Classic channel criteria (docs/METHOD.md, "Peer methods") through Torch-Pruning 1.6.1.

Scores are Torch-Pruning's *group* criteria over the coupled layers of each channel group (producer
filters, their BatchNorm, consumers' input columns), with the frozen shortcut maps left out, averaged
over the group's layers (``group_reduction="mean"``; ``"first"`` scores the root producer's filters
only, the single-layer textbook form), no normalisation (ranking is per group, so it would not matter):

* ``l1``: ``MagnitudeImportance(p=1)`` — L1 norm of the filters (Li et al. 2017).
* ``bn_scale``: ``BNScaleImportance`` — |gamma| of the BatchNorms (network slimming, Liu et al. 2017);
  a model without BatchNorm (cnn1d) has no BN-scale score: :class:`PruningError`.
* ``fpgm``: ``FPGMImportance(p=2)`` — sum of distances to the layer's other filters
  (filters near the geometric median are redundant; He et al. 2019).
* ``random``: :class:`SeededRandomImportance`, uniform scores from a generator seeded by ``seed``.

Each ``prune_<name>(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``
keeps the top channels of every group with a uniform per-group ratio chosen for the MAC target
(see :mod:`.channels`). Options: ``tolerance`` (0.02), ``min_channels`` (1), ``scope``
(``"all"`` | ``"internal"``: leave residual streams whole), ``group_reduction`` (not for random).
"""
from __future__ import annotations

import torch
import torch_pruning as tp

from ..api import PruneResult, PruningError, check_options, register_method
from .channels import DEFAULT_TOLERANCE, WithoutShortcutMaps, run_channel_method

_COMMON = {"tolerance", "min_channels", "scope"}


class SeededRandomImportance(tp.importance.Importance):
    """Uniform random scores, one per channel, reproducible from ``seed``."""

    def __init__(self, seed: int = 0):
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, group):
        return torch.rand(len(group[0].idxs), generator=self.gen)


def make_importance(method: str, seed: int = 0, group_reduction: str = "mean"):
    if method == "l1":
        inner = tp.importance.MagnitudeImportance(p=1, group_reduction=group_reduction, normalizer=None)
    elif method == "bn_scale":
        inner = tp.importance.BNScaleImportance(group_reduction=group_reduction, normalizer=None)
    elif method == "fpgm":
        inner = tp.importance.FPGMImportance(p=2, group_reduction=group_reduction, normalizer=None)
    elif method == "random":
        return SeededRandomImportance(seed)
    else:
        raise ValueError(f"unknown classic criterion {method!r}")
    return WithoutShortcutMaps(inner)


def _prune(method, model, train, val, target_macs_reduction, seed, finetune, options) -> PruneResult:
    check_options(method, options)
    if method == "bn_scale" and not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise PruningError(f"bn_scale needs BatchNorm layers to score channels; {model.arch.get('name')} has none")
    imp = make_importance(method, seed, options.get("group_reduction", "mean"))
    return run_channel_method(method, model, train, val, target_macs_reduction, lambda _: imp, finetune=finetune,
                              options={"seed": seed, **options},
                              tolerance=options.get("tolerance", DEFAULT_TOLERANCE),
                              min_channels=options.get("min_channels", 1), scope=options.get("scope", "all"))


@register_method("l1", kind="channel", options=_COMMON | {"group_reduction"})
def prune_l1(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    return _prune("l1", model, train, val, target_macs_reduction, seed, finetune, options)


@register_method("bn_scale", kind="channel", options=_COMMON | {"group_reduction"})
def prune_bn_scale(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    return _prune("bn_scale", model, train, val, target_macs_reduction, seed, finetune, options)


@register_method("fpgm", kind="channel", options=_COMMON | {"group_reduction"})
def prune_fpgm(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    return _prune("fpgm", model, train, val, target_macs_reduction, seed, finetune, options)


@register_method("random", kind="channel", options=_COMMON)
def prune_random(model, train, val, target_macs_reduction: float, *, seed=0, finetune=None, **options) -> PruneResult:
    return _prune("random", model, train, val, target_macs_reduction, seed, finetune, options)
