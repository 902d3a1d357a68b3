"""FCOS end to end: channel stage, LaCD, recovery fine-tuning — one call.

The steps are :mod:`amrlib.pruning.fcos_steps`' functions, the same ones the pipeline's stages call (the
sequence is written once). ``fcos(model, train, val)`` returns a :class:`~amrlib.pruning.api.PruneResult` whose ``plan``
rebuilds the compact architecture and its pre-fine-tuning weights from the parent
(:func:`amrlib.pruning.rebuild`); the fine-tuned weights are ``result.model.state_dict()``.
After each structural stage the BatchNorm statistics are re-estimated on ``recalibrate_frames``
training frames (:func:`recalibrate_bn`; 0 switches it off), so LaCD probes a consistently normalised
network; ``interim_epochs`` > 0 adds a short recovery fine-tune between the channel stage and LaCD.
The plan replays the structural stages; data-dependent steps (recalibration, fine-tuning) are in the
returned state dict. Fine-tuning can distil from the unpruned parent (``kd_alpha`` weight on the softened KL term,
temperature ``kd_temperature``; defaults 0.5 and 4 when ``distill=True``).

Where a MAC target lands (``target_scope``, *ours*; the default, :func:`amrlib.names.resolve_target_scope`,
is "final" whenever there is a MAC target, "channel" otherwise — one rule for this function, the method
interface and the pipeline):

* ``"channel"``: the target is the channel stage's; LaCD removes collapsed blocks on top, so the final
  network is smaller than the target asked for (the paper's order; keep-ratio and threshold runs).
* ``"final"``: the target is the final network's. The pass above is the *diagnosis pass*: it finds the
  collapsed blocks of a network compressed to the target. Then the channel stage is re-fitted from the
  parent — the same clustering, at the lighter uniform keep ratio at which channel cut + removal of
  those blocks together reach the target — and the blocks are removed from it. If removing every
  collapsed block would pass the target by itself, the most collapsed ones (smallest probe gain) are
  removed and the rest kept. The diagnosis pass's interim epochs are spent on a network that is then
  discarded (the report says so); the returned model is fine-tuned from the re-fitted one. The report's
  ``diagnosis_pass`` holds that pass's costs and removals; its ``accuracy`` entries ``channel_stage`` and
  ``interim_finetune`` are that pass's, ``lacd`` is the re-fitted network before fine-tuning.
  ``diagnose_at`` (a MAC reduction below the target) runs the diagnosis pass at that lighter cut instead:
  the blocks are diagnosed on a network that has lost less, then the re-fit meets the real target.
  ``removal_guard`` keeps the re-fitted network with its removals only when, after BatchNorm
  re-estimation and before fine-tuning, it is more accurate on ``val`` than the channel stage alone at the
  target; otherwise the channel-only network is the answer (the report's ``removal_guard`` says which).

Refinements (each an option, *ours*): ``scale_aware`` fusion (default on; channels that differ by a
positive scale fuse exactly, :mod:`amrlib.pruning.fuse`); the confident collapse rule
(``lacd_confidence`` with ``lacd_resamples`` bootstrap replicates, :mod:`amrlib.pruning.lacd`); ``distill``;
``allocation="threshold"`` (one cosine-distance cut for every layer at the MAC target, so redundant layers
shrink most: :mod:`amrlib.pruning.channel_stage`).
"""
from __future__ import annotations

import copy
import time

import torch

from ..measure import count_macs, count_params
from ..names import resolve_target_scope
from ..train import TrainConfig, evaluate, fit
from .api import PruneResult, PruningError
from .fcos_steps import channel_step, diagnosis_kwargs, lacd_step, match_target_step
from .final_target import keep_unremoved
from .plan import add_layer_stage
from .probes import probe_blocks


def _cost(model) -> dict:
    return {"macs": count_macs(model), "params": count_params(model)}


def _finetune_config(finetune, distill: bool) -> TrainConfig:
    cfg = finetune if isinstance(finetune, TrainConfig) else TrainConfig(**(finetune or {}))
    if distill and cfg.kd_alpha == 0:
        cfg = TrainConfig(**{**cfg.__dict__, "kd_alpha": 0.5})
    return cfg


def fcos(model: torch.nn.Module, train, val, *, keep_ratio=None, target_macs_reduction: float | None = None,
         target_params_reduction: float | None = None, distance_threshold: float | None = None,
         linkage: str = "average", represent: str = "folded", fusion: str = "bn_aware",
         lacd_margin: float = 0.005, lacd_max_removed: int | None = None, probe: str = "ridge",
         probe_frames: int = 4000, recalibrate_frames: int = 2048, interim_epochs: int = 0,
         finetune: TrainConfig | dict | None = None, distill: bool = False,
         eval_set=None, probe_parent: bool = False, checkpoint_dir=None, callbacks=(), seed: int = 0,
         target_scope: str | None = None, scale_aware: bool = True, lacd_confidence: float | None = None,
         lacd_resamples: int = 0, diagnose_at: float | None = None, removal_guard: bool = False,
         width_multiple: int = 1, allocation: str = "uniform") -> PruneResult:
    """Prune ``model`` with FCOS. ``eval_set`` (default ``val``) is where the report's accuracies are measured."""
    try:
        target_scope = resolve_target_scope(target_scope, target_macs_reduction)
    except ValueError as exc:
        raise PruningError(str(exc)) from None
    if diagnose_at is not None and (target_scope != "final" or not 0 < diagnose_at <= target_macs_reduction):
        raise PruningError("diagnose_at needs target_scope='final' and a MAC reduction in (0, target] "
                           f"(got {diagnose_at} for target {target_macs_reduction}, scope {target_scope!r})")
    eval_set = val if eval_set is None else eval_set
    timings, acc = {}, {}
    report: dict = {"method": "fcos", "parent": _cost(model)}
    acc["parent"] = evaluate(model, eval_set)
    if probe_parent:
        report["probes_parent"] = probe_blocks(model, train, val, max_train_frames=probe_frames,
                                               max_val_frames=probe_frames, probe=probe, seed=seed)
    t0 = time.perf_counter()
    channel_kwargs = {"linkage": linkage, "represent": represent, "fusion": fusion, "scale_aware": scale_aware,
                      "width_multiple": width_multiple, "allocation": allocation}
    diagnosis_target = target_macs_reduction if diagnose_at is None else diagnose_at
    narrow, plan = channel_step(model, train, keep_ratio=keep_ratio, target_macs_reduction=diagnosis_target,
                                target_params_reduction=target_params_reduction,
                                distance_threshold=distance_threshold, recalibrate_frames=recalibrate_frames,
                                seed=seed, **diagnosis_kwargs(channel_kwargs, target_scope))
    timings["channel_stage"] = time.perf_counter() - t0
    report["channel_stage"] = _cost(narrow)
    acc["channel_stage"] = evaluate(narrow, eval_set)
    if interim_epochs > 0:                 # optional short recovery before the diagnosis
        t0 = time.perf_counter()
        cfg = _finetune_config(finetune, distill)
        fit(narrow, train, val, TrainConfig(**{**cfg.__dict__, "epochs": interim_epochs}),
            teacher=model if cfg.kd_alpha > 0 else None)
        timings["interim_finetune"] = time.perf_counter() - t0
        acc["interim_finetune"] = evaluate(narrow, eval_set)
    t0 = time.perf_counter()
    compact, diagnosis = lacd_step(narrow, train, val, margin=lacd_margin, max_removed=lacd_max_removed,
                                   max_train_frames=probe_frames, max_val_frames=probe_frames, probe=probe,
                                   confidence=lacd_confidence, resamples=lacd_resamples,
                                   recalibrate_frames=recalibrate_frames, recalibrate_seed=seed, seed=seed)
    timings["lacd"] = time.perf_counter() - t0
    report["target_scope"] = target_scope
    if target_scope == "final" and (diagnosis["removed"] or diagnose_at is not None or width_multiple > 1):
        report["diagnosis_pass"] = {**_cost(compact), "channel_stage": report["channel_stage"],
                                    "removed_blocks": diagnosis["removed"],
                                    "accuracy": evaluate(compact, eval_set)["accuracy"]}
        t0 = time.perf_counter()
        matched = match_target_step(model, train, diagnosis, target_macs_reduction,
                                    recut=diagnose_at is not None or width_multiple > 1,
                                    recalibrate_frames=recalibrate_frames, seed=seed, **channel_kwargs)
        if matched is None:     # no block fits under the target: the diagnosis pass's recovered channel stage is it
            compact, diagnosis = narrow, keep_unremoved(diagnosis, [])
        else:
            narrow, compact, plan, diagnosis = matched
            report["channel_stage"] = _cost(narrow)
            if removal_guard and diagnosis["removed"]:   # keep the removals only if they beat channel-only
                alone, alone_plan = channel_step(model, train, target_macs_reduction=target_macs_reduction,
                                                 recalibrate_frames=recalibrate_frames, seed=seed, **channel_kwargs)
                with_removals, without = evaluate(compact, val)["accuracy"], evaluate(alone, val)["accuracy"]
                report["removal_guard"] = {"val_accuracy_with_removals": with_removals,
                                           "val_accuracy_channel_only": without,
                                           "kept_removals": with_removals > without}
                if without >= with_removals:
                    narrow = compact = alone
                    plan, diagnosis = alone_plan, keep_unremoved(diagnosis, [])
                    report["channel_stage"] = _cost(narrow)
        timings["match_target"] = time.perf_counter() - t0
    if plan["stages"][-1]["stage"] != "layer":
        add_layer_stage(plan, diagnosis, compact)
    plan["arch"] = copy.deepcopy(compact.arch)
    report["lacd"] = _cost(compact)
    acc["lacd"] = evaluate(compact, eval_set)
    history = []
    if finetune is not None:
        cfg = _finetune_config(finetune, distill)
        t0 = time.perf_counter()
        compact = copy.deepcopy(compact)
        res = fit(compact, train, val, cfg, teacher=model if cfg.kd_alpha > 0 else None,
                  checkpoint_dir=checkpoint_dir, callbacks=callbacks)
        timings["finetune"] = time.perf_counter() - t0
        history = res.history
        acc["finetuned"] = evaluate(compact, eval_set)
        report["finetune"] = {"config": cfg.__dict__, "best_epoch": res.best_epoch, "history": history,
                              "provenance": res.provenance}
    final = _cost(compact)
    last = acc["finetuned" if finetune is not None else "lacd"]
    report.update({
        "model": final,
        "macs_reduction": 1 - final["macs"] / report["parent"]["macs"],
        "params_reduction": 1 - final["params"] / report["parent"]["params"],
        "accuracy": {k: v["accuracy"] for k, v in acc.items()},
        "high_snr_accuracy": {k: v["high_snr_accuracy"] for k, v in acc.items()},
        "per_snr": {k: v["per_snr"] for k, v in acc.items()},
        "accuracy_delta": last["accuracy"] - acc["parent"]["accuracy"],
        "confusion": last["confusion"], "classes": last["classes"],
        "diagnosis": diagnosis["blocks"], "removed_blocks": diagnosis["removed"],
        "seconds": timings,
    })
    return PruneResult(compact.eval(), plan, report)
