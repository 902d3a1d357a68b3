"""What the layer (unit-removal) peers share: MAC bookkeeping, the removal, the result.

Removal itself is the project's shared :func:`amrlib.pruning.layers.remove_blocks` (a residual block
leaves its shortcut and ReLU, a VGG layer an identity), so plans replay through
:func:`amrlib.pruning.rebuild`.

Removing whole units is coarse: a method proposes units to remove, the MAC reduction that gives is
exact from :func:`.macs.block_savings` (verified on the rebuilt network with ``count_macs``). When
even the largest removal the method allows falls short of the target, the network is still returned
with ``target_met: false`` and a ``note`` in the report saying so — no error.
"""
from __future__ import annotations

import time

from torch import nn

from ..api import PruneResult, PruningError
from ..layers import remove_blocks
from .common import finish, plan_shell
from .macs import block_savings

DEFAULT_LAYER_TOLERANCE = 0.02


def removable_blocks(model: nn.Module) -> list[str]:
    return [b.name for b in model.structure().blocks if b.removable]


class DepthCost:
    """MAC reduction of removing a set of units (exact: each unit's own MACs, its shortcut map survives)."""

    def __init__(self, model: nn.Module, units: list[str]):
        self.total, self.savings = block_savings(model, units)

    def reduction(self, removed) -> float:
        return sum(self.savings[u] for u in removed) / self.total


def finish_removal(method: str, model: nn.Module, working: nn.Module, removed: list[str], cost: DepthCost,
                   target: float, t0: float, train, val, finetune, options: dict, details: dict,
                   tolerance: float = DEFAULT_LAYER_TOLERANCE) -> PruneResult:
    if not removed:
        raise PruningError(f"{method}: nothing to remove for a {target:.1%} MAC reduction "
                           f"({model.arch.get('name')} has removable units: "
                           f"{[b.name for b in model.structure().blocks if b.removable]})")
    order = [b.name for b in model.structure().blocks]
    removed = sorted(removed, key=order.index)
    pruned = remove_blocks(working, removed).eval()
    seconds = time.perf_counter() - t0
    predicted = cost.reduction(removed)
    met = predicted >= target - tolerance
    extra = {"tolerance": tolerance, "target_met": met, "predicted_macs_reduction": predicted,
             "removed_units": removed, "units_before": len(order),
             "units_removed": len(removed)}
    if not met:
        extra["note"] = (f"target {target:.1%} unreachable by removing units alone under this method's rule; "
                         f"achieved {predicted:.1%}")
    elif predicted > target + tolerance:
        extra["note"] = f"unit granularity: removed {predicted:.1%} of MACs for a {target:.1%} target"
    plan = plan_shell(method, options, model, pruned, [{"stage": "layer", "removed": removed}])
    plan.update(details)
    return finish(method, target, model, pruned, plan, train, val, finetune, seconds, extra,
                  macs_before=cost.total)
