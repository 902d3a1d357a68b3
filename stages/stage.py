"""Shared pieces of the stage tasks: the Prefect options of a cached stage, data splits, stage results.

A stage result is a small JSON dict passed between tasks (never a model object):
``{"stage", "key", "dir", "checkpoint", "checkpoint_md5", "arch", "macs", "params", "metrics",
"mlflow_run_id", ...}``; the model itself is the checkpoint file under ``<runs>/<stage>/<key>/``.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock

from amrlib.data.readers import load_dataset
from amrlib.data.split import split
from amrlib.measure import count_macs, count_params
from amrlib.models import load_model, save_model
from datastore.dvc_store import file_md5
from tracking.runs import StageRun

from .cache import StageCache, key_of, read_result, results_dir, stage_dir, write_result


def stage_options(stage: str, run_name: str | None = None, **policy) -> dict[str, Any]:
    """``@task`` keyword arguments for a cached stage: JSON result records, our stage key, no retries."""
    opts = {"name": stage, "cache_policy": StageCache(stage=stage, **policy), "persist_result": True,
            "result_serializer": "json", "retries": 0}
    if run_name:
        opts["task_run_name"] = run_name       # e.g. "evaluate-{role}": readable in the Prefect UI
    return opts


def bind_storage(task_obj, runs: str | Path):
    """The task with its Prefect result records stored under ``<runs>/.prefect-results``."""
    return task_obj.with_options(result_storage=results_dir(runs).resolve())


@functools.lru_cache(maxsize=2)
def _load(path: str, md5: str):
    return load_dataset(path).load()


def load_splits(data: dict[str, Any], split_cfg: dict[str, Any], lazy: bool = False):
    """(train, val, test) of the fetched dataset, in memory (keyed by the file's md5), or with the frames
    left in the file when ``lazy`` (for streaming; fetch verified the md5, so no NaN scan here)."""
    ds = load_dataset(data["path"], scan=False) if lazy else _load(data["path"], data["md5"])
    return split(ds, fractions=tuple(split_cfg["fractions"]), seed=int(split_cfg["seed"]))


class Stage:
    """The output folder of one stage run, and a cheap early exit when it already finished.

    ``Stage(name, inputs, runs)``: ``.dir`` is ``<runs>/<name>/<key[:16]>``, ``.done`` the recorded
    result if the folder holds one (then the task returns it without recomputing, e.g. when it is
    called through ``task.fn`` or Prefect's record was lost).

    ``with stage.lock():`` holds an exclusive lock on the stage (a lock file beside its folder), so two
    flow runs at once never compute the same stage into the same folder: the second waits, then finds
    ``.done``. The lock is an OS file lock, released by the kernel when a process dies (even by SIGKILL).
    """

    def __init__(self, name: str, inputs: dict[str, Any], runs: str | Path):
        self.name = name
        self.key = key_of(name, inputs)
        self.dir = stage_dir(runs, name, self.key)

    @property
    def done(self) -> dict[str, Any] | None:
        return read_result(self.dir)

    @contextlib.contextmanager
    def lock(self) -> Iterator["Stage"]:
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.dir.parent / f".{self.dir.name}.lock")):
            yield self

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        return write_result(self.dir, {"stage": self.name, "key": self.key, "dir": str(self.dir), **result})


def model_summary(model: torch.nn.Module, checkpoint: Path) -> dict[str, Any]:
    return {"checkpoint": str(checkpoint), "checkpoint_md5": file_md5(checkpoint), "arch_name": model.arch.get("name"),
            "num_classes": int(model.arch["num_classes"]), "frame_length": int(model.arch["frame_length"]),
            "macs": count_macs(model), "params": count_params(model)}


def save_stage_model(model: torch.nn.Module, stage: Stage, extra: dict | None = None) -> dict[str, Any]:
    path = save_model(model, stage.dir / "model.pt", extra=extra)
    return model_summary(model, path)


def load_stage_model(result: dict[str, Any]) -> torch.nn.Module:
    """Load the checkpoint a stage recorded, refusing one whose bytes changed since."""
    path = Path(result["checkpoint"])
    got = file_md5(path) if path.exists() else None
    if got != result["checkpoint_md5"]:
        raise RuntimeError(f"{path}: checkpoint of stage {result.get('stage')} is "
                           f"{'missing' if got is None else 'modified (md5 ' + got + ')'}; expected md5 "
                           f"{result['checkpoint_md5']}. Delete {result.get('dir')} to recompute that stage.")
    return load_model(path)


def epoch_logger(run, stage: str, epochs: int):
    """A :func:`amrlib.train.fit` callback: epoch metrics to the stage's MLflow run and one log line."""
    try:
        from prefect import get_run_logger
        info = get_run_logger().info
    except Exception:  # outside a Prefect run
        info = print

    def log(rec: dict) -> None:
        run.metrics({k: v for k, v in rec.items() if k != "epoch"}, step=int(rec["epoch"]))
        info(f"[{stage}] epoch {rec['epoch']}/{epochs}: train loss {rec['train_loss']:.4f}, val accuracy "
             f"{rec['val_accuracy']:.4f} ({rec['seconds']:.0f} s, {rec['frames_per_s']:.0f} frames/s)")
    return log


def run_stage(name: str, inputs: dict[str, Any], runs: str | Path, tracking: dict[str, Any] | None,
              body: Callable[["Stage", StageRun], dict[str, Any]], *, run_name: str | None = None,
              tags: dict[str, str] | None = None) -> dict[str, Any]:
    """The one way a stage task runs: the :class:`Stage` of ``(name, inputs)`` under its lock; a finished
    stage's recorded result is returned as it is; otherwise ``body(stage, run)`` computes it inside a nested
    MLflow run ``run_name`` (default ``name``; tagged ``tags``, FAILED if ``body`` raises) and what it returns
    is recorded as the stage's result (``result.json``, written last)."""
    stage = Stage(name, inputs, runs)
    with stage.lock():
        if stage.done:
            return stage.done
        with StageRun(tracking, run_name or name, tags) as run:
            return stage.finish(body(stage, run))
