"""Pruning plans: JSON documents from which a pruned model is rebuilt from its parent.

``{"version": 1, "parent_arch": {...}, "arch": {...}, "stages": [stage, ...]}`` where a stage is
``{"stage": "channel", "settings": {"fusion": ...}, "groups": [...]}`` (see
:mod:`amrlib.pruning.surgery`) or ``{"stage": "layer", "removed": [block names], ...}``.
Stages are replayed in order on a copy of the parent.
"""
from __future__ import annotations

import copy
import json

from torch import nn

from .api import PruningError
from .surgery import apply_channel_mapping


def add_layer_stage(plan: dict, diagnosis: dict, compact: nn.Module, removed: list[str] | None = None,
                    **extra) -> dict:
    """Append LaCD's layer stage to ``plan`` (the removed blocks, default ``diagnosis["removed"]``, and the
    diagnosis's settings; ``extra`` keys after them) and set the plan's ``arch`` to ``compact``'s. The one
    place an FCOS plan's "layer" entry is written (fcos(), the final-target re-fit and the pipeline's LaCD
    stage all call it)."""
    plan["stages"].append({"stage": "layer", "method": "lacd", "settings": diagnosis.get("settings", {}),
                           "removed": list(diagnosis["removed"] if removed is None else removed), **extra})
    plan["arch"] = copy.deepcopy(compact.arch)
    return plan


def rebuild(parent: nn.Module, plan: dict | str) -> nn.Module:
    """Replay ``plan`` on a copy of ``parent``; raises PruningError for a plan that does not fit."""
    if isinstance(plan, str):
        plan = json.loads(plan)
    if not isinstance(plan, dict) or plan.get("version") != 1 or "stages" not in plan:
        raise PruningError("not an amr-prune pruning plan (version 1 with 'stages' expected)")
    if plan.get("parent_arch") is not None and plan["parent_arch"] != parent.arch:
        raise PruningError(f"plan was made for a {plan['parent_arch'].get('name')} parent with a different "
                           f"architecture than the given {parent.arch.get('name')}")
    model = copy.deepcopy(parent)
    for stage in plan["stages"]:
        kind = stage.get("stage")
        if kind == "channel":
            settings = stage["settings"]
            apply_channel_mapping(model, stage["groups"], settings["fusion"], settings.get("scale_aware", False))
        elif kind == "layer":
            from .layers import remove_blocks
            model = remove_blocks(model, stage["removed"])
        else:
            raise PruningError(f"unknown plan stage {kind!r}")
    if plan.get("arch") is not None and model.arch != plan["arch"]:
        raise PruningError("replaying the plan did not give the architecture it records")
    return model.eval()
