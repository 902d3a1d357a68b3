"""DistributedDataParallel for :func:`amrlib.train.fit`: the same global batches as one process.

Run under ``torchrun`` (see :mod:`amrlib.train.launch`); :func:`init_from_env` joins the process group
(NCCL when a GPU is visible, else gloo) and returns a :class:`DDPStrategy` to pass to ``fit``. What the
strategy changes, and why the result equals a single-process run with the same global batch up to
floating-point summation order:

* **Batches.** Every rank computes the same epoch plan (the sampler is seeded by ``(seed, epoch)``), and
  each global batch is split between the ranks by :func:`stratified_shards`: the batch's frames sorted by
  (class, SNR) and dealt round-robin, so each rank's shard has every (class, SNR) key of the batch within
  one frame of its share, and the union of the shards is the batch.
* **Loss.** Rank ``r`` back-propagates ``mean loss of its shard * n_r * W / N`` (``n_r`` its frames, ``N``
  the global batch, ``W`` ranks); DDP averages gradients over ranks, which gives the gradient of the mean
  over the global batch even when the shards differ in size.
* **BatchNorm.** Statistics of the global batch: :class:`torch.nn.SyncBatchNorm` on GPU, and
  :class:`CPUSyncBatchNorm` on CPU (PyTorch's refuses CPU tensors). The BatchNorm modules are swapped
  for the run (parameters and buffers shared, names unchanged) and put back afterwards.
* **Bookkeeping.** Running loss/accuracy sums and validation sums are all-reduced, so every rank takes the
  same best-epoch and early-stopping decisions; rank 0 alone writes checkpoints, runs callbacks and shows
  progress; the checkpoint holds every rank's RNG state, so a resumed run continues each rank's stream.

Dropout draws differ from one process (each rank draws masks for its shard), so models with dropout
match a single-process run in distribution, not number for number.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .batches import EpochPlan, iter_batches


def stratified_shards(labels: np.ndarray, snrs: np.ndarray, batches: list[np.ndarray], world_size: int,
                      rank: int) -> list[np.ndarray]:
    """Rank ``rank``'s part of every global batch: the batch sorted by (class, SNR, position in the
    batch) and dealt round-robin, starting at rank ``b % world_size`` for batch ``b`` (so the odd frames
    do not always land on rank 0). Each (class, SNR) key of a batch splits within one frame of even."""
    out = []
    for b, batch in enumerate(batches):
        batch = np.asarray(batch)
        order = np.lexsort((np.arange(len(batch)), snrs[batch], labels[batch]))
        out.append(batch[order[(np.arange(len(batch)) + b) % world_size == rank]])
    return out


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a summed statistic is the sum of the gradients."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch over all ranks (any device,
    gloo included). Per channel it all-reduces the sum, the sum of squares (float64) and the count in
    one collective; the backward pass all-reduces their gradients. Evaluation uses the running
    statistics, as BatchNorm does. Build it with :meth:`sharing` to reuse a BatchNorm's tensors."""

    group = None

    @classmethod
    def sharing(cls, bn: _BatchNorm, group=None) -> "CPUSyncBatchNorm":
        m = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        if bn.affine:
            m.weight, m.bias = bn.weight, bn.bias
        m.running_mean, m.running_var, m.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
        m.training, m.group = bn.training, group
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        if not self.training and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        count = torch.full((1,), x.numel() / max(c, 1), dtype=torch.float64, device=x.device)
        local = torch.cat([x.sum(dims, dtype=torch.float64), (x.double() ** 2).sum(dims), count])
        total = _AllReduceSum.apply(local, self.group or dist.group.WORLD)
        n = total[-1]
        mean = total[:c] / n
        var = total[c:2 * c] / n - mean ** 2             # biased, as BatchNorm normalises with
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                unbiased = var * n / (n - 1) if float(n) > 1 else var
                self.running_mean.mul_(1 - factor).add_(mean.to(x.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(x.dtype), alpha=factor)
        return y


def _torch_sync_bn(bn: _BatchNorm, group=None) -> nn.SyncBatchNorm:
    """PyTorch's (GPU) SyncBatchNorm sharing ``bn``'s tensors, as ``convert_sync_batchnorm`` builds it."""
    m = nn.SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, group)
    if bn.affine:
        m.weight, m.bias = bn.weight, bn.bias
    m.running_mean, m.running_var, m.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
    m.training = bn.training
    return m


def swap_batchnorm(model: nn.Module, make) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every BatchNorm child of ``model`` by ``make(bn)``; returns what :func:`restore_batchnorm`
    needs to put the originals back."""
    found = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, _BatchNorm) and not isinstance(child, (CPUSyncBatchNorm, nn.SyncBatchNorm))]
    for parent, name, child in found:
        setattr(parent, name, make(child))
    return found


def restore_batchnorm(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, name, child in swapped:
        replaced = getattr(parent, name)
        child.train(replaced.training)
        setattr(parent, name, child)


class DDPStrategy:
    """The :func:`amrlib.train.fit` strategy for one rank of a DistributedDataParallel run (module doc)."""

    def __init__(self, rank: int, world_size: int, device: torch.device | str = "cpu", *, sync_bn: bool = True,
                 find_unused_parameters: bool = False):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
        self.rank, self.world_size, self.device = int(rank), int(world_size), torch.device(device)
        self.sync_bn, self.find_unused = sync_bn, find_unused_parameters
        self.is_writer = self.rank == 0
        self._swapped: list = []
        self._ddp = None
        self._base = None

    # ---- random streams and checkpoints ------------------------------------------------------------
    def seed(self, seed: int) -> None:
        torch.manual_seed(seed + 1_000_003 * self.rank)   # rank 0 draws exactly what one process draws

    def restore_rng(self, blob: dict) -> None:
        states = blob.get("rng_ranks")
        if states is not None and len(states) == self.world_size:
            torch.set_rng_state(states[self.rank])
        else:  # resumed with another number of processes: derive each rank's stream from rank 0's
            torch.set_rng_state(blob["rng"])
            if self.rank:
                torch.manual_seed(int(torch.randint(2**62, (1,))) + self.rank)

    def checkpoint_extra(self) -> dict:
        states: list = [None] * self.world_size
        dist.all_gather_object(states, torch.get_rng_state())
        return {"rng_ranks": states, "world_size": self.world_size}

    # ---- the model ---------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        if self.sync_bn:
            make = _torch_sync_bn if self.device.type == "cuda" else CPUSyncBatchNorm.sharing
            self._swapped = swap_batchnorm(model, make)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self._ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                        find_unused_parameters=self.find_unused)
        return self._ddp

    def unwrap(self) -> None:
        restore_batchnorm(self._swapped)
        self._swapped, self._ddp = [], None

    # ---- batches -----------------------------------------------------------------------------------
    def shard(self, ds, plan: EpochPlan) -> list[np.ndarray]:
        """This rank's part of each global batch; a final batch with fewer frames than ranks is dropped
        (some rank would get none)."""
        batches = list(plan.batches)
        short = [b for b, idx in enumerate(batches) if len(idx) < self.world_size]
        if short and short[0] < len(batches) - 1:
            raise ValueError(f"global batch {short[0]} has {len(batches[short[0]])} frames for "
                             f"{self.world_size} processes: use a batch size >= the number of processes")
        if short:
            batches = batches[:-1]
        return stratified_shards(ds.labels, ds.snrs, batches, self.world_size, self.rank)

    def to_device(self, x, y):
        if self.device.type == "cpu":
            return x, y
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def scale(self, loss: torch.Tensor, local_frames: int, global_frames: int) -> torch.Tensor:
        return loss * (local_frames * self.world_size / global_frames)

    # ---- sums over ranks ---------------------------------------------------------------------------
    def _sum(self, values: list[float]) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.cpu()

    def mark_synced(self, st: dict) -> None:
        self._base = torch.tensor([st["loss_sum"], st["correct"], st["seen"]], dtype=torch.float64)

    def sync(self, st: dict) -> None:
        """Add every rank's running sums since the last sync into ``st`` (then equal on all ranks)."""
        cur = torch.tensor([st["loss_sum"], st["correct"], st["seen"]], dtype=torch.float64)
        total = self._base + self._sum((cur - self._base).tolist())
        st.update(loss_sum=float(total[0]), correct=int(round(float(total[1]))), seen=int(round(float(total[2]))))
        self._base = total

    def val_metrics(self, model, val, batch_size) -> tuple[float, float]:
        """Loss and accuracy on ``val``: each rank evaluates a contiguous block, the sums are all-reduced."""
        block = np.array_split(np.arange(len(val)), self.world_size)[self.rank]
        model.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for x, y, _ in iter_batches(val, max(batch_size, 256), block):
                x, y = self.to_device(x, y)
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").item()
                correct += int((out.argmax(1) == y).sum())
        total = self._sum([loss, correct])
        return float(total[0]) / max(len(val), 1), float(total[1]) / max(len(val), 1)


def init_from_env(backend: str | None = None, *, sync_bn: bool = True, timeout_s: int = 1800) -> DDPStrategy | None:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR/PORT``) and return this rank's strategy; None outside ``torchrun`` or with one process.
    ``backend``: ``nccl`` when CUDA is available, else ``gloo``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DDPStrategy(rank, world, device, sync_bn=sync_bn)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
