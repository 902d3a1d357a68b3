"""What the comparison runs: the shared parent, every method and FCOS ablation, the from-scratch control.

A *row* is one (seed, model, method, target). Every row of a seed starts from that seed's parent and split,
and every network after a structural change is fine-tuned under the same stop rule and cap
(:func:`finetune_config`). Rows are plain JSON dicts (the journal's lines).
"""
from __future__ import annotations

import json
import time

import torch

RECAL_FRAMES = 2048
# FCOS and its ablations: (library method, options). "fcos" is the library's default FCOS (final-network
# target, scale-aware fusion, point collapse rule); each ablation changes one thing.
FCOS_VARIANTS = {
    "fcos": {},
    "fcos:channel": {"target_scope": "channel"},        # target on the channel stage, LaCD removes on top
    "fcos:plain-fusion": {"scale_aware": False},         # refinement off: fusion ignores the members' scales
    "fcos:confident": {"lacd_confidence": 0.9, "lacd_resamples": 50},   # collapse only above probe noise
    "fcos:guarded": {"removal_guard": True},             # removals only if they beat channel-only (val, pre-FT)
    "fcos:light-diagnosis": {"diagnose_at": "light"},   # diagnose at a 10-point lighter cut
    "fcos:recovered-diagnosis": {"interim_epochs": 2},  # 2 recovery epochs before the diagnosis (extra budget)
    # both: on ResNet56 at 95% the unrecovered diagnosis calls 24-25 of 27 blocks collapsed, this one 9 (seed 4)
    "fcos:recovered-confident": {"interim_epochs": 2, "lacd_confidence": 0.9, "lacd_resamples": 50},
    "fcos:kd": {"distill": True},                        # fine-tune by distillation from the parent
    "fcos:width8": {"width_multiple": 8},                # latency-friendly widths: multiples of 8 channels
    "fcos:threshold-widths": {"allocation": "threshold"},  # one distance cut for all layers: redundant ones shrink most
    "fcos:no-lacd": {"lacd_max_removed": 0},             # the channel stage alone at the target: no removals
}
SCRATCH = "scratch"                # FCOS's final architecture, random init, the parent's + fine-tune budget
# the convergence check: the unpruned parent fine-tuned under the same rule. If it gains, the parent was not
# converged, and a pruned network's "gain" is partly the extra training
RETRAIN = "parent+finetune"
# the published calibration points: L1-norm and BN-scale on ResNet56 at these FLOPs cuts
CALIBRATION = {"methods": ("l1", "bn_scale"), "targets": (0.871, 0.976)}
PUBLISHED = {("l1", 0.871): -1.86, ("bn_scale", 0.871): -1.24, ("l1", 0.976): -3.03, ("bn_scale", 0.976): -5.63}


def all_methods():
    from amrlib.pruning.methods import METHODS
    return [*FCOS_VARIANTS, *(m for m in METHODS if m != "fcos"), SCRATCH, RETRAIN]


def train_config(a, seed: int, *, epochs: int, patience: int | None):
    from amrlib.train import recipe
    return recipe(a.recipe, epochs=epochs, patience=patience, min_delta=a.min_delta, seed=seed, device=a.device)


def finetune_config(a, seed: int):
    """The one stop rule and cap every method's fine-tuning gets."""
    return train_config(a, seed, epochs=a.epochs, patience=a.patience)


def train_parent(model_name, train, val, seed, a, path):
    """The seed's parent, trained to convergence (plateau stop under the pretrain cap), saved with its provenance."""
    from amrlib.models import build_model, save_model
    from amrlib.train import fit
    cfg = train_config(a, seed, epochs=a.pretrain_epochs, patience=a.pretrain_patience)
    print(f"[compare] seed {seed}: training the parent {model_name} ({cfg.stop_rule()}) -> {path}", flush=True)
    torch.manual_seed(seed)
    model = build_model(model_name, train.num_classes, train.frame_length)
    res = fit(model, train, val, cfg, checkpoint_dir=path.parent / f"ckpt_{path.stem}", progress=False,
              callbacks=[lambda r: print(f"  {model_name} s{seed} epoch {r['epoch']}: val {r['val_accuracy']:.3f} "
                                         f"{r['frames_per_s']:.0f} frames/s", flush=True)])
    save_model(model, path)
    path.with_suffix(".json").write_text(json.dumps(res.provenance))
    return model, res.provenance


def _fcos_options(method, target):
    opts = dict(FCOS_VARIANTS[method])
    if opts.get("diagnose_at") == "light":
        opts["diagnose_at"] = max(round(target - 0.10, 3), 0.05)
    return opts


def _scratch(parent, train, val, target, seed, a):
    """FCOS's final architecture from random init, trained with the parent's cap plus the fine-tune cap."""
    from amrlib.models import build_from_arch
    from amrlib.pruning.methods import prune
    from amrlib.train import fit
    res = prune("fcos", parent, train, val, target, seed=seed, recalibrate_frames=RECAL_FRAMES)
    torch.manual_seed(seed)
    model = build_from_arch(res.plan["arch"])
    cfg = train_config(a, seed, epochs=a.pretrain_epochs + a.epochs, patience=a.pretrain_patience)
    t1 = time.perf_counter()
    fit_res = fit(model, train, val, cfg, progress=False)
    res.report.update({"finetune_seconds": time.perf_counter() - t1, "finetune_provenance": fit_res.provenance,
                       "note": f"from scratch, FCOS's architecture; {cfg.stop_rule()}"})
    return model, res


def _retrain(parent, train, val, seed, a):
    """The parent itself, fine-tuned under the shared rule (no pruning): the convergence control."""
    import copy

    from amrlib.measure import count_macs, count_params
    from amrlib.pruning.api import PruneResult
    from amrlib.train import fit
    model = copy.deepcopy(parent)
    t1 = time.perf_counter()
    fit_res = fit(model, train, val, finetune_config(a, seed), progress=False)
    macs, params = count_macs(model), count_params(model)
    report = {"target_met": True, "macs_reduction": 0.0, "params_reduction": 0.0, "macs_after": macs,
              "params_after": params, "prune_seconds": 0.0, "finetune_seconds": time.perf_counter() - t1,
              "finetune_provenance": fit_res.provenance, "note": "no pruning: the parent fine-tuned again"}
    return model, PruneResult(model, {"method": RETRAIN, "stages": []}, report)


def run_one(method, target, parent, train, val, test, seed, a):
    """Prune, recalibrate, fine-tune under the shared rule, evaluate on test: a row (or an error row)."""
    from amrlib.pruning import recalibrate_bn
    from amrlib.pruning.api import PruningError
    from amrlib.pruning.methods import prune
    from amrlib.train import evaluate, fit
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    cfg = finetune_config(a, seed)
    try:
        if method == RETRAIN:
            model, res = _retrain(parent, train, val, seed, a)
        elif method == SCRATCH:
            model, res = _scratch(parent, train, val, target, seed, a)
        elif method in FCOS_VARIANTS:
            res = prune("fcos", parent, train, val, target, seed=seed, recalibrate_frames=RECAL_FRAMES,
                        finetune=cfg, **_fcos_options(method, target))
            model = res.model
        else:
            res = prune(method, parent, train, val, target, seed=seed)
            model = recalibrate_bn(res.model, train, RECAL_FRAMES, seed=seed)
            t1 = time.perf_counter()
            fit_res = fit(model, train, val, cfg, progress=False)
            res.report.update({"finetune_seconds": time.perf_counter() - t1, "finetune_provenance": fit_res.provenance})
    except PruningError as exc:
        return {"error": str(exc)}, None
    rep = res.report
    ev = evaluate(model, test)
    row = {"target_met": rep["target_met"], "note": rep.get("note"), "accuracy": ev["accuracy"],
           "high_snr_accuracy": ev["high_snr_accuracy"], "macs_reduction": rep["macs_reduction"],
           "params_reduction": rep["params_reduction"], "macs": rep["macs_after"], "params": rep["params_after"],
           "prune_seconds": rep["prune_seconds"], "finetune_seconds": rep.get("finetune_seconds"),
           "removed_blocks": rep.get("removed_blocks"), "diagnosis_pass": rep.get("diagnosis_pass"),
           "removal_guard": rep.get("removal_guard"),
           "stop": rep.get("finetune_provenance"), "wall_seconds": time.perf_counter() - t0,
           "per_snr": ev["per_snr"], "plan": res.plan}
    return row, model
