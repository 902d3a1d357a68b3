"""The training loop: reference recipe defaults, best-on-validation, early stopping, resumable checkpoints.

Resumability: the shuffling order of epoch ``e`` is drawn from a generator seeded by ``(seed, e)``,
and a checkpoint (every ``checkpoint_every`` steps and at every epoch end) stores model, optimiser,
scheduler, torch RNG state, the position inside the epoch and the running statistics. A run killed at
any point and restarted with the same arguments resumes from the last checkpoint and ends with
bit-identical weights to an uninterrupted run (``tests/test_train_resume.py`` kills one with SIGKILL).

Two things plug in without touching the single-process arithmetic: a *sampler* (which frames form each
batch and how they are read: :class:`~amrlib.train.batches.ShuffledSampler` by default, or
:class:`amrlib.train.stream.ChunkShuffleSampler` to stream a large HDF5 file with bounded memory) and a
*strategy* (:class:`LocalStrategy` by default: one process; :class:`amrlib.train.distributed.DDPStrategy`
under ``torchrun``: each process trains on a stratified shard of every global batch).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_torch_save
from ..models import check_fits
from .batches import EpochPlan, ShuffledSampler, count_batches, iter_batches

CHECKPOINT_NAME = "train_state.pt"


@dataclass
class TrainConfig:
    """Defaults are the reference recipe: Adam 1e-3, StepLR(step 10, gamma 0.8), batch 128."""
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    step_size: int = 10
    gamma: float = 0.8
    weight_decay: float = 0.0
    seed: int = 0
    patience: int | None = None          # early stopping: epochs without a better val accuracy
    checkpoint_every: int | None = None  # also checkpoint every N optimiser steps inside an epoch
    kd_alpha: float = 0.0                # knowledge distillation weight (0 = plain cross-entropy)
    kd_temperature: float = 4.0

    def validate(self) -> "TrainConfig":
        problems = []
        if self.epochs < 0:
            problems.append(f"epochs must be >= 0 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.step_size < 1 or not 0 < self.gamma <= 1:
            problems.append(f"StepLR needs step_size >= 1 and 0 < gamma <= 1 (got {self.step_size}, {self.gamma})")
        if self.patience is not None and self.patience < 1:
            problems.append(f"patience must be >= 1 or None (got {self.patience})")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be >= 1 or None (got {self.checkpoint_every})")
        if not 0 <= self.kd_alpha <= 1 or self.kd_temperature <= 0:
            problems.append(f"kd_alpha must be in [0, 1] and kd_temperature > 0 (got {self.kd_alpha}, {self.kd_temperature})")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        return self


@dataclass
class FitResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    stopped_early: bool = False
    resumed_from: dict | None = None


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() and not os.environ.get("CI")


def _val_metrics(model, val, batch_size) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for x, y, _ in iter_batches(val, max(batch_size, 256)):
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
    return loss / max(len(val), 1), correct / max(len(val), 1)


class LocalStrategy:
    """One process: every hook of :func:`fit` is the identity (see ``amrlib.train.distributed`` for DDP)."""
    is_writer = True

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def restore_rng(self, blob: dict) -> None:
        torch.set_rng_state(blob["rng"])

    def checkpoint_extra(self) -> dict:
        return {}

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def unwrap(self) -> None:
        pass

    def shard(self, ds, plan: EpochPlan) -> list[np.ndarray]:
        return plan.batches

    def to_device(self, x, y):
        return x, y

    def scale(self, loss: torch.Tensor, local_frames: int, global_frames: int) -> torch.Tensor:
        return loss

    def mark_synced(self, st: dict) -> None:
        pass

    def sync(self, st: dict) -> None:
        pass

    def val_metrics(self, model, val, batch_size) -> tuple[float, float]:
        return _val_metrics(model, val, batch_size)


def fit(model: torch.nn.Module, train, val, config: TrainConfig | None = None, *,
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Iterable[Callable[[dict], None]] = (),
        step_callbacks: Iterable[Callable[[dict], None]] = (),
        teacher: torch.nn.Module | None = None, progress: bool | None = None,
        sampler=None, strategy=None, **overrides) -> FitResult:
    """Train ``model`` on ``train``, select the best epoch on ``val`` (never the test set).

    ``callbacks`` get one dict per epoch (epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    lr, seconds, frames_per_s) — the hook through which tasks log to a tracker. ``teacher`` enables
    knowledge distillation: loss = (1 - a) CE + a T^2 KL(softmax(t/T) || softmax(s/T)).
    The model is modified in place and returned with its best-validation weights.

    ``sampler``: which frames form each batch and how they are read (default
    :class:`~amrlib.train.batches.ShuffledSampler`; :class:`amrlib.train.stream.ChunkShuffleSampler`
    streams a lazy HDF5 dataset with bounded memory). ``strategy``: :class:`LocalStrategy` (default) or
    :class:`amrlib.train.distributed.DDPStrategy` (inside ``torchrun``; only rank 0 writes checkpoints,
    runs callbacks and shows progress).
    """
    cfg = dataclasses.replace(config or TrainConfig(), **overrides) if overrides else (config or TrainConfig())
    cfg.validate()
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"training needs non-empty train and val sets (got {len(train)} and {len(val)} frames)")
    if cfg.kd_alpha > 0 and teacher is None:
        raise ValueError("kd_alpha > 0 needs a teacher model")
    sampler = sampler if sampler is not None else ShuffledSampler()
    strategy = strategy if strategy is not None else LocalStrategy()
    sampler_id = {"sampler": sampler.identity} if sampler.identity is not None else {}
    check_fits(model, train, "training set")
    check_fits(model, val, "validation set")
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    strategy.seed(cfg.seed)
    st = {"epoch": 0, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "best_acc": -1.0,
          "best_epoch": -1, "bad_epochs": 0, "history": [], "stopped_early": False}
    best_state = copy.deepcopy(model.state_dict())
    resumed = None
    if ckpt and ckpt.exists():
        try:
            blob = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:  # not written by fit (writes are atomic): refuse it, do not train over it
            raise ValueError(f"{ckpt}: unreadable training checkpoint ({type(exc).__name__}: {exc}); "
                             f"remove it to restart this training from scratch") from None
        if blob.get("config") != asdict(cfg):
            raise ValueError(f"{ckpt}: checkpoint was written with a different training configuration; "
                             f"remove it or use another checkpoint_dir")
        if blob.get("sampler") != sampler_id.get("sampler"):
            raise ValueError(f"{ckpt}: checkpoint was written with sampler {blob.get('sampler')}, this run uses "
                             f"{sampler_id.get('sampler')}; remove it or use another checkpoint_dir")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        strategy.restore_rng(blob)
        best_state = blob["best_state"]
        st = blob["state"]
        resumed = {"epoch": st["epoch"], "step": st["step"]}
    if teacher is not None:
        teacher.eval()

    def save():
        if ckpt:
            strategy.sync(st)                   # DDP: every rank's running sums, so the file is global
            extra = strategy.checkpoint_extra()  # DDP: every rank's RNG state (a collective: all ranks call it)
            if strategy.is_writer:
                atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                              "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                              "best_state": best_state, "state": st, "config": asdict(cfg),
                              **sampler_id, **extra}, ckpt)

    n, bs = len(train), cfg.batch_size
    n_batches = count_batches(n, bs)  # a final batch of one frame is dropped (BatchNorm)
    bar = _Bar(strategy.is_writer and _progress_enabled(progress), cfg.epochs, n_batches)
    net = strategy.wrap(model)
    strategy.mark_synced(st)
    try:
        while st["epoch"] < cfg.epochs and not st["stopped_early"]:
            epoch = st["epoch"]
            plan = sampler.plan(n, bs, cfg.seed, epoch)
            wanted = strategy.shard(train, plan)
            n_batches = len(wanted)
            model.train()
            t0 = time.perf_counter()
            bar.start_epoch(epoch, st["step"])
            for b, (x, y, _) in enumerate(sampler.read(train, plan, wanted, st["step"]), start=st["step"]):
                x, y = strategy.to_device(x, y)
                out = net(x)
                loss = F.cross_entropy(out, y)
                if teacher is not None and cfg.kd_alpha > 0:
                    with torch.no_grad():
                        t_out = teacher(x)
                    temp = cfg.kd_temperature
                    kd = F.kl_div(F.log_softmax(out / temp, 1), F.softmax(t_out / temp, 1),
                                  reduction="batchmean") * temp * temp
                    loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd
                opt.zero_grad(set_to_none=True)
                strategy.scale(loss, len(y), len(plan.batches[b])).backward()
                opt.step()
                st["loss_sum"] += loss.item() * len(y)
                st["correct"] += int((out.argmax(1) == y).sum())
                st["seen"] += len(y)
                st["step"] = b + 1
                bar.advance(len(y))
                if cfg.checkpoint_every and st["step"] % cfg.checkpoint_every == 0 and st["step"] < n_batches:
                    save()
                for cb in step_callbacks if strategy.is_writer else ():
                    cb({"epoch": epoch, "step": st["step"], "loss": loss.item()})
            sched.step()
            strategy.sync(st)
            val_loss, val_acc = strategy.val_metrics(model, val, bs)
            secs = time.perf_counter() - t0
            rec = {"epoch": epoch + 1, "train_loss": st["loss_sum"] / max(st["seen"], 1),
                   "train_accuracy": st["correct"] / max(st["seen"], 1), "val_loss": val_loss,
                   "val_accuracy": val_acc, "lr": opt.param_groups[0]["lr"], "seconds": secs,
                   "frames_per_s": st["seen"] / secs if secs > 0 else float("nan")}
            st["history"].append(rec)
            if val_acc > st["best_acc"]:
                st.update(best_acc=val_acc, best_epoch=epoch + 1, bad_epochs=0)
                best_state = copy.deepcopy(model.state_dict())
            else:
                st["bad_epochs"] += 1
            if cfg.patience and st["bad_epochs"] >= cfg.patience:
                st["stopped_early"] = True
            st.update(epoch=epoch + 1, step=0, loss_sum=0.0, correct=0, seen=0)
            strategy.mark_synced(st)
            save()
            bar.end_epoch(rec)
            for cb in callbacks if strategy.is_writer else ():
                cb(dict(rec))
    finally:
        bar.close()
        strategy.unwrap()
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, st["history"], st["best_epoch"], st["best_acc"], st["stopped_early"], resumed)


class _Bar:
    """A Rich progress bar (frames/s, ETA), silent when disabled (CI, --quiet, no terminal)."""

    def __init__(self, enabled: bool, epochs: int, batches: int):
        self.enabled, self.epochs, self.batches = enabled, epochs, batches
        self.task = None
        if enabled:
            from rich.progress import (BarColumn, Progress, TextColumn, TimeRemainingColumn)
            self.p = Progress(TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.fields[fps]:>7.0f} frames/s"), TimeRemainingColumn(),
                              transient=False)
            self.p.start()

    def start_epoch(self, epoch, step):
        if self.enabled:
            self.p.console.file.flush()
            self.task = self.p.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.batches,
                                        completed=step, fps=0.0)
            self.t0, self.frames = time.perf_counter(), 0

    def advance(self, frames):
        if self.enabled:
            self.frames += frames
            fps = self.frames / max(time.perf_counter() - self.t0, 1e-9)
            self.p.update(self.task, advance=1, fps=fps)

    def end_epoch(self, rec):
        if self.enabled:
            self.p.update(self.task, description=f"epoch {rec['epoch']}/{self.epochs} "
                          f"val {rec['val_accuracy']:.3f}")

    def close(self):
        if self.enabled:
            self.p.stop()
