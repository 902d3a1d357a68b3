"""FCOS with a final-network MAC target: re-fit the channel stage around LaCD's diagnosis (*ours*).

LaCD removes collapsed blocks *after* the channel stage has met its MAC target, so FCOS's network ends
smaller than asked. For a target on the final network, the diagnosis (which blocks collapsed when the
network was compressed to the target) is kept and the channel stage is re-fitted from the parent — the
same clustering, a lighter cut — so that channel cut + removal of those blocks land on the target:

* :func:`final_removals` picks the collapsed blocks to remove: most collapsed first (smallest probe
  gain), as many as fit while block removal alone stays short of the target, among those the parent can
  lose (a VGG layer only where its input and output widths agree in the parent);
* :func:`match_final_target` runs the channel stage with those ``planned_removals``, re-estimates
  BatchNorm statistics, removes the blocks, and returns the diagnosis with the blocks it did not need
  marked as kept. ``amrlib.pruning.fcos(..., target_scope="final")`` and the pipeline's ``match_target``
  stage both use it.
"""
from __future__ import annotations

from torch import nn

from ..measure import count_macs
from .channel_stage import channel_stage
from .layers import remove_blocks
from .plan import add_layer_stage
from .recalibrate import recalibrate_bn


def final_removals(parent: nn.Module, diagnosis: dict, target: float) -> list[str]:
    """The diagnosed blocks to remove for a final MAC target (see the module's docstring)."""
    budget = (1 - target) * count_macs(parent)
    removable = {b.name for b in parent.structure().blocks if b.removable}   # e.g. a VGG layer 256 -> 512 is not,
    ranked = sorted((b for b in diagnosis["blocks"] if b["removed"] and b["block"] in removable),   # even if the
                    key=lambda b: b["gain"])                                  # narrowed one had equal widths
    chosen: list[str] = []
    for b in ranked:
        if count_macs(remove_blocks(parent, chosen + [b["block"]])) <= budget:
            break
        chosen.append(b["block"])
    return chosen


def keep_unremoved(diagnosis: dict, removals: list[str]) -> dict:
    """The diagnosis with the collapsed blocks that the final target does not need marked as kept."""
    blocks = []
    for b in diagnosis["blocks"]:
        b = dict(b)
        if b["removed"] and b["block"] not in removals:
            b["removed"] = False
            b["decision"] = "collapsed but kept: the final MAC target is reached without removing it"
        blocks.append(b)
    return {**diagnosis, "blocks": blocks, "removed": list(removals)}


def match_final_target(parent: nn.Module, train, diagnosis: dict, target: float, *, linkage: str = "average",
                       represent: str = "folded", fusion: str = "bn_aware", scale_aware: bool = True,
                       width_multiple: int = 1, allocation: str = "uniform", recalibrate_frames: int = 2048,
                       seed: int = 0):
    """``(narrow, compact, plan, diagnosis)`` for the final MAC ``target``, or ``None`` when no diagnosed
    block fits under it (then the channel stage at the target, without removals, is the answer).
    ``plan`` holds the re-fitted channel stage and the layer stage; ``narrow`` is the channel-pruned network
    before the removals."""
    removals = final_removals(parent, diagnosis, target)
    if not removals:
        return None
    narrow, plan = channel_stage(parent, target_macs_reduction=target, planned_removals=removals,
                                 linkage=linkage, represent=represent, fusion=fusion, scale_aware=scale_aware,
                                 width_multiple=width_multiple, allocation=allocation)
    narrow = recalibrate_bn(narrow, train, recalibrate_frames, seed=seed)
    compact = recalibrate_bn(remove_blocks(narrow, removals), train, recalibrate_frames, seed=seed).eval()
    diagnosis = keep_unremoved(diagnosis, removals)
    add_layer_stage(plan, diagnosis, compact, removals, target_scope="final")
    return narrow, compact, plan, diagnosis
