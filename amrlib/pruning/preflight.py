"""What can be known impossible about a pruning request before any training: :func:`preflight` looks at the
method and an (untrained) network of the architecture it will prune, and raises a :class:`PruningError` with a
hint that names a request that would work.

* ``bn_scale`` scores channels by their BatchNorm scales: a network without BatchNorm (cnn1d) has none;
* a layer method (``layer_cka``, ``lcp``) removes whole units: it needs removable units, and no removal it can
  make cuts more MACs than removing every removable unit (exact, from :func:`.peers.macs.block_savings`), so a
  target above that bound (plus the method's tolerance) cannot be met;
* an option the method does not accept (``peer.options``: "did you mean" the closest accepted one);
* an unknown method.

Nothing here depends on the weights: the same architecture gives the same answer trained or not.
"""
from __future__ import annotations

import math

from torch import nn

from .api import PruningError, check_options, registered
from .peers.depth import DEFAULT_LAYER_TOLERANCE, DepthCost

#: channel methods that work on any network (bn_scale needs BatchNorm)
_ANY_NETWORK = ("l1", "fpgm", "ssbn", "random")


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def max_layer_reduction(model: nn.Module) -> float:
    """The MAC reduction of removing every removable unit: the most any layer method can reach."""
    blocks = model.structure().blocks
    removable = [b.name for b in blocks if b.removable]
    if not removable:
        return 0.0
    return DepthCost(model, [b.name for b in blocks]).reduction(removable)


def preflight(method: str, model: nn.Module, target_macs_reduction: float | None = None,
              options: dict | None = None) -> None:
    """Raise a :class:`PruningError` (with a hint) when ``method`` cannot prune ``model``'s architecture to
    ``target_macs_reduction`` whatever the weights; return None when nothing rules it out."""
    methods = registered()
    if method not in methods:
        raise PruningError(f"unknown pruning method {method!r}; choose one of {', '.join(methods)}")
    check_options(method, options or {})
    name = (getattr(model, "arch", None) or {}).get("name", "this model")
    if method == "bn_scale" and not has_batchnorm(model):
        raise PruningError(f"bn_scale cannot prune {name}: it scores channels by their BatchNorm scales and "
                           f"{name} has no BatchNorm layer",
                           hint=f"use a channel method that scores the weights ({', '.join(_ANY_NETWORK)}), e.g. "
                                f"--method l1, or a model with BatchNorm (--set model.name=resnet20)")
    if methods[method].kind != "layer":
        return
    best = max_layer_reduction(model)
    if best <= 0:
        raise PruningError(f"{method} cannot prune {name}: it removes whole units and {name} has no removable one",
                           hint="use a channel method (--method l1, fpgm, bn_scale, ssbn) or fcos")
    if target_macs_reduction is None:
        return
    tolerance = float((options or {}).get("tolerance", DEFAULT_LAYER_TOLERANCE))
    if target_macs_reduction > best + tolerance:
        reachable = math.floor(best * 100) / 100
        raise PruningError(f"{method} cannot cut {target_macs_reduction:.0%} of {name}'s MACs: it removes whole "
                           f"units, and removing every removable unit cuts {best:.1%}",
                           hint=f"ask for at most that (--set peer.target_macs_reduction={reachable}), or use a "
                                f"channel method (--method l1) or fcos for deeper cuts")
