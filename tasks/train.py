"""Training stages: ``pretrain`` (the parent network) and ``finetune`` (the pruned network), around
:func:`amrlib.train.fit`; plus ``reuse_base`` (a registered base model instead of pretraining)."""
from __future__ import annotations

import time
from typing import Any

import torch
from prefect import task

from amrlib.models import ModelError, build_model
from amrlib.train import fit

from .common import Stage, epoch_logger, load_splits, load_stage_model, save_stage_model, stage_options
from .tracking import StageRun


def _fit_stage(stage: Stage, model, settings: dict[str, Any], data: dict, split: dict, run: StageRun,
               teacher=None) -> dict[str, Any]:
    train, val, _ = load_splits(data, split)
    fit_kwargs = {k: v for k, v in settings.items() if k not in ("reuse_alias", "use_teacher")}
    t0 = time.perf_counter()
    res = fit(model, train, val, checkpoint_dir=stage.dir / "train_state", callbacks=[epoch_logger(run, stage.name, int(settings["epochs"]))],
              teacher=teacher, progress=None, **fit_kwargs)
    seconds = time.perf_counter() - t0
    metrics = {"best_val_accuracy": res.best_val_accuracy, "best_epoch": res.best_epoch,
               "epochs_run": len(res.history), "train_seconds": seconds}
    run.metrics(metrics)
    return {"metrics": metrics, "history": res.history, "resumed_from": res.resumed_from}


def _build_for(name: str, data: dict):
    """The network ``name`` for the dataset's classes and frame length, or a ModelError naming both."""
    try:
        return build_model(name, len(data["classes"]), int(data["frame_length"]))
    except ModelError as exc:
        raise ModelError(f"model.name {name!r} cannot take the dataset {data.get('relpath', data.get('path'))} "
                         f"({len(data['classes'])} classes, frame length {data['frame_length']}): {exc}") from None


@task(**stage_options("pretrain"))
def pretrain(settings: dict, model: dict, data: dict, split: dict, runs: str, tracking: dict | None) -> dict:
    """Train the parent network from scratch (resumes from its epoch checkpoints if interrupted)."""
    stage = Stage("pretrain", {"settings": settings, "model": model, "data": data, "split": split, "runs": runs}, runs)
    with stage.lock():
        if stage.done:
            return stage.done
        torch.manual_seed(int(model["seed"]))
        net = _build_for(model["name"], data)
        with StageRun(tracking, "pretrain", {"model": model["name"]}) as run:
            run.params({"model": model, "train": settings, "data_md5": data["md5"], "split": split})
            out = _fit_stage(stage, net, settings, data, split, run)
            saved = save_stage_model(net, stage, extra={"stage": "pretrain", "classes": data["classes"]})
            run.metrics({"macs": saved["macs"], "params": saved["params"]})
            return stage.finish({**out, **saved, "method": "pretrain", "classes": data["classes"],
                                 "mlflow_run_id": run.run_id})


@task(**stage_options("finetune"))
def finetune(settings: dict, pruned: dict, teacher: dict | None, data: dict, split: dict, runs: str,
             tracking: dict | None) -> dict:
    """Fine-tune the pruned network (optionally distilling from its parent)."""
    stage = Stage("finetune", {"settings": settings, "pruned": pruned, "teacher": teacher, "data": data,
                               "split": split, "runs": runs}, runs)
    with stage.lock():
        if stage.done:
            return stage.done
        with StageRun(tracking, "finetune") as run:
            run.params({"train": settings, "parent_checkpoint_md5": pruned["checkpoint_md5"]})
            net = load_stage_model(pruned).train()
            teacher_net = load_stage_model(teacher) if teacher is not None and settings.get("use_teacher") else None
            out = _fit_stage(stage, net, settings, data, split, run, teacher=teacher_net)
            saved = save_stage_model(net, stage, extra={"stage": "finetune", "classes": data["classes"]})
            run.metrics({"macs": saved["macs"], "params": saved["params"]})
            return stage.finish({**out, **saved, "method": pruned.get("method", "fcos"), "plan": pruned.get("plan"),
                                 "classes": data["classes"], "mlflow_run_id": run.run_id})
