"""Every pruning method amr-prune offers, behind one interface: FCOS and its peers.

The interface is :class:`~amrlib.pruning.api.PruningMethod`; each method registers itself with
``@register_method(name, kind=...)`` (FCOS here, the peers in amrlib/pruning/peers/), and
:func:`~amrlib.pruning.api.registered` is the one registry; :data:`METHODS` and :data:`METHOD_KINDS` are views.

``prune(method, model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``
returns a :class:`~amrlib.pruning.api.PruneResult` (physically smaller copy of ``model``, a JSON plan
that :func:`amrlib.pruning.rebuild` replays on the parent, a report). The report always carries
``method``, ``model``, ``target``, ``target_met``, ``macs_before/after``, ``params_before/after``,
``macs_reduction``, ``params_reduction`` and ``prune_seconds`` (the structural work, fine-tuning
excluded); with ``finetune`` also ``finetune_seconds`` and ``accuracy_before/pruned/after`` on ``val``.

FCOS and the target (*ours*): by default (``target_scope`` unset, i.e. "final" since there is a target:
:func:`amrlib.names.resolve_target_scope`) the MAC target is the final
network's, as for every peer: a diagnosis pass (channel stage at the target, LaCD) finds the collapsed
blocks, then the channel stage is re-fitted so that channel cut + removal of those blocks land on the
target (:func:`amrlib.pruning.fcos`). ``target_scope="channel"`` gives the target to the channel stage
alone and LaCD removes blocks on top of it, so the final reduction exceeds the target; the report says by
how much (``macs_reduction`` vs ``target``). ``target_met`` means "reached or exceeded within tolerance".
FCOS options are :func:`amrlib.pruning.fcos`'s keyword arguments (``interim_epochs``, ``lacd_margin``,
``linkage``, ``target_scope``, ...).
"""
from __future__ import annotations

import time

from ..measure import count_params
from .api import PruneResult, PruningError, PruningMethod, check_options, register_method, registered
from .fcos import fcos
from .peers.common import check_target, jsonable  # importing .peers registers every peer

FCOS_OPTIONS = {"linkage", "represent", "fusion", "lacd_margin", "lacd_max_removed", "probe", "probe_frames",
                "recalibrate_frames", "interim_epochs", "distill", "tolerance", "target_scope", "scale_aware",
                "lacd_confidence", "lacd_resamples", "diagnose_at", "removal_guard", "width_multiple",
                "allocation"}
DEFAULT_FCOS_TOLERANCE = 0.02


@register_method("fcos", kind="channel+layer", options=FCOS_OPTIONS)
def prune_fcos(model, train, val, target_macs_reduction: float, *, seed: int = 0, finetune=None,
               **options) -> PruneResult:
    """FCOS (channel stage at the MAC target, LaCD on top, optional fine-tuning) in the shared interface."""
    check_options("fcos", options)
    target = check_target(target_macs_reduction)
    tolerance = float(options.pop("tolerance", DEFAULT_FCOS_TOLERANCE))
    if not hasattr(model, "structure") or not hasattr(model, "arch"):
        raise PruningError("fcos needs an amr-prune model (with .arch and .structure())")
    if int(options.get("interim_epochs", 0) or 0) > 0 and finetune is None:
        raise PruningError("fcos: interim_epochs > 0 needs a finetune configuration (its recipe is reused)")
    t0 = time.perf_counter()
    res = fcos(model, train, val, target_macs_reduction=target, finetune=finetune, seed=seed, **options)
    wall = time.perf_counter() - t0
    rep = res.report
    seconds = rep["seconds"]
    prune_seconds = seconds.get("channel_stage", 0.0) + seconds.get("lacd", 0.0) + seconds.get("match_target", 0.0)
    macs0, macs1 = rep["parent"]["macs"], rep["model"]["macs"]
    report = {"method": "fcos", "model": model.arch.get("name"), "target": target,
              "target_met": rep["macs_reduction"] >= target - tolerance, "tolerance": tolerance,
              "macs_before": macs0, "macs_after": macs1,
              "params_before": rep["parent"]["params"], "params_after": count_params(res.model),
              "macs_reduction": rep["macs_reduction"], "params_reduction": rep["params_reduction"],
              "prune_seconds": prune_seconds, "wall_seconds": wall,
              "channel_stage_macs_reduction": 1 - rep["channel_stage"]["macs"] / macs0,
              "removed_blocks": rep["removed_blocks"], "diagnosis": rep["diagnosis"],
              "target_scope": rep["target_scope"], "stage_seconds": seconds}
    if "diagnosis_pass" in rep:
        dp = rep["diagnosis_pass"]
        report["diagnosis_pass"] = {"macs_reduction": 1 - dp["macs"] / macs0, "removed_blocks": dp["removed_blocks"],
                                    "channel_stage_macs_reduction": 1 - dp["channel_stage"]["macs"] / macs0}
    if "removal_guard" in rep:
        report["removal_guard"] = rep["removal_guard"]
    if "interim_finetune" in seconds:
        report["interim_seconds"] = seconds["interim_finetune"]
    if finetune is not None:
        accs, high = rep["accuracy"], rep["high_snr_accuracy"]
        report.update({"finetune_seconds": seconds.get("finetune", 0.0),
                       "accuracy_before": accs["parent"], "accuracy_pruned": accs["lacd"],
                       "accuracy_after": accs["finetuned"], "high_snr_accuracy_before": high["parent"],
                       "high_snr_accuracy_pruned": high["lacd"], "high_snr_accuracy_after": high["finetuned"],
                       "finetune_provenance": rep["finetune"]["provenance"]})
    plan = {**res.plan, "method": "fcos", "options": jsonable({"target_macs_reduction": target, **options})}
    return PruneResult(model=res.model, plan=jsonable(plan), report=jsonable(report))


#: views of the registry (:func:`~amrlib.pruning.api.registered`): name -> function, name -> kind
METHODS: dict[str, PruningMethod] = {name: m.fn for name, m in registered().items()}
METHOD_KINDS: dict[str, str] = {name: m.kind for name, m in registered().items()}


def prune(method: str, model, train, val, target_macs_reduction: float, *, seed: int = 0, finetune=None,
          **options) -> PruneResult:
    """Prune ``model`` with the method named ``method`` (one of :data:`METHODS`) to the MAC target."""
    methods = registered()
    if method not in methods:
        raise PruningError(f"unknown pruning method {method!r}; choose one of {', '.join(methods)}")
    return methods[method].fn(model, train, val, target_macs_reduction, seed=seed, finetune=finetune, **options)
