"""Training stages around :func:`amrlib.train.fit`: ``pretrain`` (the parent network), ``finetune`` (the
pruned network, every method) and ``interim_finetune`` (FCOS's short recovery between its two stages)."""
from __future__ import annotations

import os
import time
from typing import Any

import torch
from prefect import task

from amrlib.models import ModelError, build_model
from amrlib.train import fit
from amrlib.train.stream import ChunkShuffleSampler
from stages.records import DataRef, ModelStage, SplitSpec, Tracking
from stages.stage import Stage, epoch_logger, load_splits, load_stage_model, run_stage, save_stage_model, stage_options
from stages.torchrun import fit_with_torchrun
from tracking.runs import StageRun


def _fit_stage(stage: Stage, model, settings: dict[str, Any], data: dict, split: dict, run: StageRun,
               teacher=None, teacher_checkpoint: str | None = None) -> dict[str, Any]:
    """Train in this process (``nproc: 1``) or with ``torchrun`` and DDP (``nproc > 1``)."""
    fit_kwargs = {k: v for k, v in settings.items()
                  if k not in ("reuse_alias", "use_teacher", "nproc", "stream", "recipe")}
    nproc, stream = int(settings.get("nproc", 1)), settings.get("stream")
    log = epoch_logger(run, stage.name, int(settings["epochs"]))
    t0 = time.perf_counter()
    if nproc > 1:
        rec = fit_with_torchrun(model, stage.dir / "ddp", nproc, fit_kwargs, data, split, stream=stream,
                                teacher_checkpoint=teacher_checkpoint if teacher is not None else None, on_epoch=log)
        best_acc, best_epoch, history, resumed = (rec["best_val_accuracy"], rec["best_epoch"], rec["history"],
                                                  rec["resumed_from"])
        provenance = rec.get("provenance", {})
    else:
        train, val, _ = load_splits(data, split, lazy=bool(stream))
        res = fit(model, train, val, checkpoint_dir=stage.dir / "train_state", callbacks=[log], teacher=teacher,
                  progress=False if os.environ.get("AMR_PRUNE_QUIET") else None,
                  sampler=ChunkShuffleSampler(**stream) if stream else None, **fit_kwargs)
        best_acc, best_epoch, history, resumed = res.best_val_accuracy, res.best_epoch, res.history, res.resumed_from
        provenance = res.provenance
    seconds = time.perf_counter() - t0
    metrics = {"best_val_accuracy": best_acc, "best_epoch": best_epoch, "epochs_run": len(history),
               "train_seconds": seconds, "processes": nproc,
               "stopped_on_plateau": float(provenance.get("stop_reason") == "plateau")}
    run.metrics(metrics)
    return {"metrics": metrics, "history": history, "resumed_from": resumed, "provenance": provenance}


def _build_for(name: str, data: dict):
    """The network ``name`` for the dataset's classes and frame length, or a ModelError naming both."""
    try:
        return build_model(name, len(data["classes"]), int(data["frame_length"]))
    except ModelError as exc:
        raise ModelError(f"model.name {name!r} cannot take the dataset {data.get('relpath', data.get('path'))} "
                         f"({len(data['classes'])} classes, frame length {data['frame_length']}): {exc}") from None


@task(**stage_options("pretrain"))
def pretrain(settings: dict, model: dict, data: DataRef, split: SplitSpec, runs: str,
             tracking: Tracking | None) -> ModelStage:
    """Train the parent network from scratch (resumes from its epoch checkpoints if interrupted)."""
    def body(stage: Stage, run: StageRun) -> dict:
        torch.manual_seed(int(model["seed"]))
        net = _build_for(model["name"], data)
        run.params({"model": model, "train": settings, "data_md5": data["md5"], "split": split})
        out = _fit_stage(stage, net, settings, data, split, run)
        saved = save_stage_model(net, stage, extra={"stage": "pretrain", "classes": data["classes"]})
        run.metrics({"macs": saved["macs"], "params": saved["params"]})
        return {**out, **saved, "method": "pretrain", "classes": data["classes"],
                "mlflow_run_id": run.run_id}

    inputs = {"settings": settings, "model": model, "data": data, "split": split, "runs": runs}
    return run_stage("pretrain", inputs, runs, tracking, body, tags={"model": model["name"]})


def _tune(name: str, settings: dict, pruned: ModelStage, teacher: ModelStage | None, data: DataRef,
          split: SplitSpec, runs: str, tracking: Tracking | None, pruning: dict | None = None) -> ModelStage:
    """Fine-tune the model of stage result ``pruned`` as stage ``name``; the result carries the pruning
    lineage (``method``, ``plan``, ``pruning``: method, target, options) on to the next stage."""
    def body(stage: Stage, run: StageRun) -> dict:
        run.params({"train": settings, "parent_checkpoint_md5": pruned["checkpoint_md5"]})
        net = load_stage_model(pruned).train()
        teacher_net = load_stage_model(teacher) if teacher is not None and settings.get("use_teacher") else None
        out = _fit_stage(stage, net, settings, data, split, run, teacher=teacher_net,
                         teacher_checkpoint=teacher["checkpoint"] if teacher_net is not None else None)
        saved = save_stage_model(net, stage, extra={"stage": name, "classes": data["classes"]})
        run.metrics({"macs": saved["macs"], "params": saved["params"]})
        return {**out, **saved, "method": pruned.get("method", "fcos"), "plan": pruned.get("plan"),
                "pruning": pruning or pruned.get("pruning"), "diagnosis": pruned.get("diagnosis"),
                "classes": data["classes"], "mlflow_run_id": run.run_id}

    inputs = {"settings": settings, "pruned": pruned, "teacher": teacher, "data": data, "split": split, "runs": runs}
    return run_stage(name, inputs, runs, tracking, body)


@task(**stage_options("finetune"))
def finetune(settings: dict, pruned: ModelStage, teacher: ModelStage | None, data: DataRef, split: SplitSpec, runs: str,
             tracking: Tracking | None) -> ModelStage:
    """Fine-tune the pruned network (optionally distilling from its parent). Every method gets this same
    stage with the same ``finetune`` settings, so methods are compared at an equal fine-tuning budget."""
    return _tune("finetune", settings, pruned, teacher, data, split, runs, tracking)


@task(**stage_options("interim_finetune"))
def interim_finetune(settings: dict, pruned: ModelStage, teacher: ModelStage | None, data: DataRef,
                     split: SplitSpec, runs: str, tracking: Tracking | None) -> ModelStage:
    """FCOS's short recovery between the channel stage and LaCD (``lacd.interim_epochs``: the finetune
    recipe with that many epochs), so LaCD's probes diagnose a network that works again instead of one still
    broken by the channel cut (without it LaCD over-removes; docs/BENCHMARKS.md, protocol v1)."""
    lineage = dict(pruned.get("pruning") or {"method": pruned.get("method", "fcos")})
    lineage["options"] = {**lineage.get("options", {}), "interim_epochs": int(settings["epochs"])}
    return _tune("interim_finetune", settings, pruned, teacher, data, split, runs, tracking, lineage)
