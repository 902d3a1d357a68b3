"""FCOS pruning stages around :mod:`amrlib.pruning`: ``channel_stage`` (stage 1: cluster channels and
fuse their parameters), ``lacd`` (stage 2: layer pruning by linear-probe diagnosis) and, for a MAC target
on the finished network (``channel_stage.target_scope: final``), ``match_target`` (the channel stage
re-fitted from the parent around LaCD's removals).

Each writes the pruned model's checkpoint and the cumulative pruning plan (``plan.json``: replayed on the
parent by :func:`amrlib.pruning.rebuild`), and logs plan / diagnosis as MLflow artefacts.
"""
from __future__ import annotations

import json
import time
from typing import Any

from prefect import task

import amrlib.pruning as pruning
from amrlib import plots
from amrlib.pruning import fcos_steps
from amrlib.pruning.plan import add_layer_stage
from stages.records import DataRef, ModelStage, Recalibration, SplitSpec, Tracking
from stages.stage import Stage, load_splits, load_stage_model, run_stage, save_stage_model, stage_options
from tracking.runs import StageRun

#: the channel-stage settings the final-target re-fit keeps (the MAC target is its own)
REFIT_SETTINGS = ("linkage", "represent", "fusion", "scale_aware", "width_multiple", "allocation")


def lacd_available() -> bool:
    """Whether this amrlib has the LaCD stage (the flow offers only stages that exist)."""
    return callable(getattr(pruning, "lacd", None))


def _reductions(before: dict, after: dict) -> dict[str, float]:
    return {"macs_reduction": 1 - after["macs"] / before["macs"],
            "params_reduction": 1 - after["params"] / before["params"]}


def recalibrate_bn_stats(model, data: dict, split: dict, recal: dict):
    """Re-estimate BatchNorm statistics on training frames after a structural change (as amrlib's fcos()).
    The pipeline applies the same ``recalibrate`` settings after every method's structural stage (FCOS's
    two stages and each peer's), so no method is compared with stale normalisation statistics."""
    if not recal["frames"]:
        return model
    train, _, _ = load_splits(data, split)
    return pruning.recalibrate_bn(model, train, int(recal["frames"]), seed=int(recal["seed"]))


@task(**stage_options("channel_stage"))
def channel_stage(settings: dict, recalibrate: Recalibration, parent: ModelStage, data: DataRef, split: SplitSpec,
                  runs: str, tracking: Tracking | None) -> ModelStage:
    """FCOS stage 1 on the pretrained parent: cluster the channels by their weights and fuse them, then
    re-estimate the BatchNorm statistics on ``recalibrate["frames"]`` training frames (0: off)."""
    def body(stage: Stage, run: StageRun) -> dict:
        run.params({"channel_stage": settings, "recalibrate": recalibrate,
                    "parent_checkpoint_md5": parent["checkpoint_md5"]})
        model = load_stage_model(parent)
        t0 = time.perf_counter()
        try:
            train = load_splits(data, split)[0] if recalibrate["frames"] else None
            pruned, plan = fcos_steps.channel_step(model, train, recalibrate_frames=int(recalibrate["frames"]),
                                                   seed=int(recalibrate["seed"]), **settings)
        except pruning.PruningError as exc:   # name the setting: the request depends on the model
            asked = ", ".join(f"channel_stage.{k}: {v}" for k, v in settings.items()
                              if k in ("keep_ratio", "target_macs_reduction", "target_params_reduction",
                                       "distance_threshold"))
            raise pruning.PruningError(f"{asked} on {parent.get('arch_name')}: {exc}") from None
        seconds = time.perf_counter() - t0
        saved = save_stage_model(pruned, stage, extra={"stage": "channel_stage"})
        plan_path = stage.dir / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1))
        widths = plots.channel_widths(plots.group_widths(model), plots.group_widths(pruned),
                                      stage.dir / "channel_widths.png")
        metrics = {"seconds": seconds, "macs": saved["macs"], "params": saved["params"],
                   **_reductions(parent, saved)}
        run.metrics(metrics)
        run.artifact(plan_path)
        run.artifact(widths)
        lineage = {"method": "fcos", "options": {"channel_stage": settings}, "recalibrate": recalibrate}
        if settings.get("target_macs_reduction") is not None:
            lineage["target_macs_reduction"] = settings["target_macs_reduction"]
        return {**saved, "metrics": metrics, "plan": str(plan_path), "method": "fcos",
                "pruning": lineage, "parent_checkpoint_md5": parent["checkpoint_md5"],
                "mlflow_run_id": run.run_id}

    inputs = {"settings": settings, "recalibrate": recalibrate, "parent": parent, "data": data, "split": split,
              "runs": runs}
    return run_stage("channel_stage", inputs, runs, tracking, body)


@task(**stage_options("lacd"))
def lacd(settings: dict, recalibrate: Recalibration, pruned: ModelStage, data: DataRef, split: SplitSpec, runs: str,
         tracking: Tracking | None) -> ModelStage:
    """FCOS stage 2 (LaCD) on the channel-pruned model: probe each block, remove the collapsed ones, then
    re-estimate the BatchNorm statistics if any block was removed."""
    if not lacd_available():
        raise RuntimeError("amrlib.pruning has no lacd(): this stage is not built yet (set lacd.enabled: false)")
    def body(stage: Stage, run: StageRun) -> dict:
        run.params({"lacd": settings, "recalibrate": recalibrate,
                    "parent_checkpoint_md5": pruned["checkpoint_md5"]})
        model = load_stage_model(pruned)
        train, val, _ = load_splits(data, split)
        t0 = time.perf_counter()
        compact, diagnosis = fcos_steps.lacd_step(model, train, val, recalibrate_frames=int(recalibrate["frames"]),
                                                  recalibrate_seed=int(recalibrate["seed"]), **settings)
        seconds = time.perf_counter() - t0
        saved = save_stage_model(compact, stage, extra={"stage": "lacd"})
        diagnosis_path = stage.dir / "diagnosis.json"
        diagnosis_path.write_text(json.dumps(diagnosis, indent=1, default=_jsonable))
        plan = _extend_plan(pruned.get("plan"), diagnosis, compact)
        plan_path = stage.dir / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1))
        metrics = {"seconds": seconds, "macs": saved["macs"], "params": saved["params"],
                   **_reductions(pruned, saved)}
        curve = plots.probe_curve({"LaCD": diagnosis["blocks"]}, stage.dir / "probe_curve.png")
        run.metrics(metrics)
        for path in (diagnosis_path, plan_path, curve):
            run.artifact(path)
        lineage = dict(pruned.get("pruning") or {"method": "fcos"})
        lineage["options"] = {**lineage.get("options", {}), "lacd": settings}
        return {**saved, "metrics": metrics, "plan": str(plan_path), "diagnosis": str(diagnosis_path),
                "method": "fcos", "pruning": lineage,
                "parent_checkpoint_md5": pruned["checkpoint_md5"],
                "mlflow_run_id": run.run_id}

    inputs = {"settings": settings, "recalibrate": recalibrate, "pruned": pruned, "data": data, "split": split,
              "runs": runs}
    return run_stage("lacd", inputs, runs, tracking, body)


@task(**stage_options("match_target"))
def match_target(settings: dict, recalibrate: Recalibration, parent: ModelStage, diagnosed: ModelStage,
                 data: DataRef, split: SplitSpec, runs: str, tracking: Tracking | None) -> ModelStage:
    """FCOS with a final MAC target: keep LaCD's diagnosis (``diagnosed``, the lacd stage's result), re-fit
    the channel stage from the parent so that its cut plus the removal of the collapsed blocks lands on
    ``settings["target_macs_reduction"]`` (:func:`amrlib.pruning.fcos_steps.match_target_step`), re-estimate the
    BatchNorm statistics, remove the blocks. When no diagnosed block fits under the target, the lacd stage's
    network (the channel stage at the target, nothing removed) is the answer and is passed on unchanged."""
    def body(stage: Stage, run: StageRun) -> dict:
        target = settings["target_macs_reduction"]
        run.params({"target_macs_reduction": target, "target_scope": "final",
                    "parent_checkpoint_md5": parent["checkpoint_md5"],
                    "diagnosed_checkpoint_md5": diagnosed["checkpoint_md5"]})
        model = load_stage_model(parent)
        diagnosis = json.loads(open(diagnosed["diagnosis"]).read())
        train, _, _ = load_splits(data, split)
        t0 = time.perf_counter()
        refit = {k: settings[k] for k in REFIT_SETTINGS if k in settings}
        matched = fcos_steps.match_target_step(model, train, diagnosis, target, **refit,
                                               recut=refit.get("width_multiple", 1) > 1,   # diagnosed on free widths
                                               recalibrate_frames=int(recalibrate["frames"]),
                                               seed=int(recalibrate["seed"]))
        lineage = dict(diagnosed.get("pruning") or {"method": "fcos"})
        # the user's channel-stage settings (the diagnosis pass may have run on free widths)
        lineage["options"] = {**lineage.get("options", {}), "channel_stage": settings, "target_scope": "final"}
        if matched is None:
            run.metrics({"seconds": time.perf_counter() - t0, "removed_blocks": 0})
            keep = {k: v for k, v in diagnosed.items() if k not in ("stage", "key", "dir")}
            return {**keep, "pruning": lineage, "mlflow_run_id": run.run_id}
        _, compact, plan, diagnosis = matched
        seconds = time.perf_counter() - t0
        saved = save_stage_model(compact, stage, extra={"stage": "match_target"})
        diagnosis_path = stage.dir / "diagnosis.json"
        diagnosis_path.write_text(json.dumps(diagnosis, indent=1, default=_jsonable))
        plan_path = stage.dir / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1))
        metrics = {"seconds": seconds, "macs": saved["macs"], "params": saved["params"],
                   "removed_blocks": len(diagnosis["removed"]), **_reductions(parent, saved)}
        run.metrics(metrics)
        for path in (diagnosis_path, plan_path):
            run.artifact(path)
        return {**saved, "metrics": metrics, "plan": str(plan_path), "diagnosis": str(diagnosis_path),
                "method": "fcos", "pruning": lineage,
                "parent_checkpoint_md5": parent["checkpoint_md5"],
                "mlflow_run_id": run.run_id}

    inputs = {"settings": settings, "recalibrate": recalibrate, "parent": parent, "diagnosed": diagnosed,
              "data": data, "split": split, "runs": runs}
    return run_stage("match_target", inputs, runs, tracking, body)


def _jsonable(obj: Any):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _extend_plan(plan_path: str | None, diagnosis: Any, compact) -> dict:
    """The channel plan followed by LaCD's layer stage, so the whole FCOS plan rebuilds from the parent
    (structure only: recalibrated statistics and fine-tuned weights are in the checkpoints)."""
    plan = json.loads(open(plan_path).read()) if plan_path else {"version": 1, "stages": []}
    return add_layer_stage(plan, diagnosis, compact)                 # the same layer stage as fcos() writes
