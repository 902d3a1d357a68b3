"""The training loop: reference recipe defaults, best-on-validation, early stopping, resumable checkpoints.

Resumability: the shuffling order of epoch ``e`` is drawn from a generator seeded by ``(seed, e)``,
and a checkpoint (every ``checkpoint_every`` steps and at every epoch end) stores model, optimiser,
scheduler, torch RNG state, the position inside the epoch and the running statistics. A run killed at
any point and restarted with the same arguments resumes from the last checkpoint and ends with
bit-identical weights to an uninterrupted run (``tests/pipeline/test_train_resume.py`` kills one with SIGKILL).

Two things plug in without touching the single-process arithmetic: a *sampler* (which frames form each
batch and how they are read: :class:`~amrlib.train.batches.ShuffledSampler` by default, or
:class:`amrlib.train.stream.ChunkShuffleSampler` to stream a large HDF5 file with bounded memory) and a
*strategy* (:class:`LocalStrategy` by default: one process; :class:`amrlib.train.distributed.DDPStrategy`
under ``torchrun``: each process trains on a stratified shard of every global batch).
"""
from __future__ import annotations

import dataclasses
import os
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
from .config import TrainConfig, resolve_device
from .objective import DivergedError, training_loss
from .progress import EpochBar, progress_enabled

__all__ = ["fit", "FitResult", "TrainConfig", "LocalStrategy", "DivergedError"]

CHECKPOINT_NAME = "train_state.pt"


@dataclass
class FitResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    stopped_early: bool = False
    resumed_from: dict | None = None
    stop_reason: str = "max_epochs"      # "plateau" (the patience rule) or "max_epochs" (the cap)
    provenance: dict = field(default_factory=dict)   # device, threads, amp, stop rule, epochs run

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def _val_metrics(model, val, batch_size, device=None) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for x, y, _ in iter_batches(val, max(batch_size, 256)):
            if device is not None and device.type != "cpu":
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x).float()
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
    return loss / max(len(val), 1), correct / max(len(val), 1)


class LocalStrategy:
    """One process on one device: every hook of :func:`fit` is the identity but the move of each batch to
    the device (see ``amrlib.train.distributed`` for DDP)."""
    is_writer = True

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

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
        if self.device.type == "cpu":
            return x, y
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def scale(self, loss: torch.Tensor, local_frames: int, global_frames: int) -> torch.Tensor:
        return loss

    def mark_synced(self, st: dict) -> None:
        pass

    def sync(self, st: dict) -> None:
        pass

    def val_metrics(self, model, val, batch_size) -> tuple[float, float]:
        return _val_metrics(model, val, batch_size, self.device)


def fit(model: torch.nn.Module, train, val, config: TrainConfig | None = None, *,
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Iterable[Callable[[dict], None]] = (),
        step_callbacks: Iterable[Callable[[dict], None]] = (),
        teacher: torch.nn.Module | None = None, progress: bool | None = None,
        sampler=None, strategy=None, **overrides) -> FitResult:
    """Train ``model`` on ``train``, select the best epoch on ``val`` (never the test set).

    ``callbacks`` get one dict per epoch (epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    lr, seconds, frames_per_s) — the hook through which tasks log to a tracker. ``teacher`` enables
    knowledge distillation and ``l1`` the sparsity term (:mod:`amrlib.train.objective`).
    The model is modified in place and returned, on the CPU, with its best-validation weights.
    Training stops at the ``epochs`` cap or, with ``patience``, on a validation plateau; the result
    records which (``stop_reason``) and on what it ran (``provenance``: device, threads, amp, stop rule).
    A non-finite loss or non-finite weights raise :class:`DivergedError` (no checkpoint of them is kept).

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
    own_strategy = strategy is None
    strategy = LocalStrategy(resolve_device(cfg.device)) if own_strategy else strategy
    device = getattr(strategy, "device", torch.device("cpu"))
    use_amp = bool(cfg.amp and device.type == "cuda")
    sampler_id = {"sampler": sampler.identity} if sampler.identity is not None else {}
    check_fits(model, train, "training set")
    check_fits(model, val, "validation set")
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    if own_strategy and device.type != "cpu":
        model.to(device)
        if teacher is not None:
            teacher.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    strategy.seed(cfg.seed)
    st = {"epoch": 0, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "best_acc": -1.0,
          "best_epoch": -1, "bad_epochs": 0, "history": [], "stopped_early": False, "plateau_ref": -1.0,
          "stop_reason": "max_epochs"}
    best_state = _cpu_state(model)
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
    bar = EpochBar(strategy.is_writer and progress_enabled(progress), cfg.epochs, n_batches)
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
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    out = net(x)
                    t_out = None
                    if teacher is not None and cfg.kd_alpha > 0:
                        with torch.no_grad():
                            t_out = teacher(x)
                loss = training_loss(out, y, params=params, l1=cfg.l1, teacher_out=t_out,
                                     kd_alpha=cfg.kd_alpha, kd_temperature=cfg.kd_temperature)
                if not torch.isfinite(loss):
                    raise DivergedError(f"training diverged: the loss is {loss.item()} at epoch {epoch + 1}, "
                                        f"step {b + 1} (lr {cfg.lr}); lower the learning rate")
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
            bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                raise DivergedError(f"training diverged: non-finite weights in {', '.join(bad[:3])} after epoch "
                                    f"{epoch + 1} (lr {cfg.lr}); lower the learning rate")
            strategy.sync(st)
            val_loss, val_acc = strategy.val_metrics(model, val, bs)
            secs = time.perf_counter() - t0
            rec = {"epoch": epoch + 1, "train_loss": st["loss_sum"] / max(st["seen"], 1),
                   "train_accuracy": st["correct"] / max(st["seen"], 1), "val_loss": val_loss,
                   "val_accuracy": val_acc, "lr": opt.param_groups[0]["lr"], "seconds": secs,
                   "frames_per_s": st["seen"] / secs if secs > 0 else float("nan")}
            st["history"].append(rec)
            if val_acc > st["best_acc"]:
                st.update(best_acc=val_acc, best_epoch=epoch + 1)
                best_state = _cpu_state(model)
            if val_acc > st["plateau_ref"] + cfg.min_delta:
                st.update(plateau_ref=val_acc, bad_epochs=0)
            else:
                st["bad_epochs"] += 1
            if cfg.patience and st["bad_epochs"] >= cfg.patience:
                st.update(stopped_early=True, stop_reason="plateau")
            st.update(epoch=epoch + 1, step=0, loss_sum=0.0, correct=0, seen=0)
            strategy.mark_synced(st)
            save()
            bar.end_epoch(rec)
            for cb in callbacks if strategy.is_writer else ():
                cb(dict(rec))
    finally:
        bar.close()
        strategy.unwrap()
        if own_strategy and device.type != "cpu":
            model.to("cpu")
            if teacher is not None:
                teacher.to("cpu")
    model.load_state_dict(best_state)
    model.eval()
    stop_reason = st.get("stop_reason", "plateau" if st["stopped_early"] else "max_epochs")
    provenance = {"device": str(device), "threads": torch.get_num_threads(), "amp": use_amp,
                  "stop_rule": cfg.stop_rule(), "stop_reason": stop_reason, "epochs_run": len(st["history"]),
                  "best_epoch": st["best_epoch"], "l1": cfg.l1}
    return FitResult(model, st["history"], st["best_epoch"], st["best_acc"], st["stopped_early"], resumed,
                     stop_reason, provenance)


def _cpu_state(model: torch.nn.Module) -> dict:
    """A detached CPU copy of the state dict (the best epoch's weights, whatever device trains)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
