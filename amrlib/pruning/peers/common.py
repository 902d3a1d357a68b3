"""What every peer method shares: argument checks, the report, optional fine-tuning, the plan shell.

Plans follow :mod:`amrlib.pruning.plan` (version 1: ``parent_arch``, ``arch``, ``stages``) so that
:func:`amrlib.pruning.rebuild` can replay them; peers add ``method`` and ``options`` (and method
details) alongside. Reports carry at least: method, target, macs/params before and after,
macs_reduction, params_reduction, prune_seconds and, when fine-tuning is asked for, accuracy before
(parent), after pruning and after fine-tuning, from :func:`amrlib.train.evaluate` on ``val``.
"""
from __future__ import annotations

import copy
import time

from torch import nn

from ...measure import count_macs, count_params
from ..api import PruneResult, PruningError


def check_target(target: float) -> float:
    try:
        target = float(target)
    except (TypeError, ValueError):
        raise PruningError(f"target_macs_reduction must be a number in (0, 1), got {target!r}") from None
    if not 0.0 < target < 1.0:
        raise PruningError(f"target_macs_reduction must be in (0, 1) (a fraction of MACs to remove), got {target}")
    return target


def working_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode (the input model is never touched)."""
    if not hasattr(model, "structure") or not hasattr(model, "arch"):
        raise PruningError("peer methods need an amr-prune model (with .arch and .structure())")
    return copy.deepcopy(model).eval()


def plan_shell(method: str, options: dict, parent: nn.Module, pruned: nn.Module, stages: list[dict]) -> dict:
    return {"version": 1, "method": method, "options": jsonable(options),
            "parent_arch": copy.deepcopy(parent.arch), "arch": copy.deepcopy(pruned.arch), "stages": stages}


def jsonable(x):
    """Plain JSON types (numpy/torch scalars to Python numbers, tuples to lists)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def finish(method: str, target: float, parent: nn.Module, pruned: nn.Module, plan: dict, train, val,
           finetune, prune_seconds: float, extra: dict | None = None,
           macs_before: int | None = None, macs_after: int | None = None) -> PruneResult:
    """Measure, optionally fine-tune, and assemble the PruneResult."""
    macs0 = macs_before if macs_before is not None else count_macs(parent)
    params0 = count_params(parent)
    macs1 = macs_after if macs_after is not None else count_macs(pruned)
    params1 = count_params(pruned)
    report = {"method": method, "model": parent.arch.get("name"), "target": target,
              "macs_before": macs0, "macs_after": macs1, "params_before": params0, "params_after": params1,
              "macs_reduction": 1.0 - macs1 / macs0, "params_reduction": 1.0 - params1 / params0,
              "prune_seconds": prune_seconds}
    report.update(extra or {})
    if finetune is not None:
        from ...train import evaluate, fit
        before = evaluate(parent, val)
        pruned_eval = evaluate(pruned, val)
        t0 = time.perf_counter()
        fit(pruned, train, val, finetune, progress=False)
        report["finetune_seconds"] = time.perf_counter() - t0
        after = evaluate(pruned, val)
        for key, res in (("before", before), ("pruned", pruned_eval), ("after", after)):
            report[f"accuracy_{key}"] = res["accuracy"]
            report[f"high_snr_accuracy_{key}"] = res["high_snr_accuracy"]
    pruned.eval()
    return PruneResult(model=pruned, plan=jsonable(plan), report=jsonable(report))
