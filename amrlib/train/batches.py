"""Feeding frames from a SignalDataset to a model, in memory or lazily from HDF5.

An epoch is an :class:`EpochPlan`: its global batches (dataset positions) and, for a streaming sampler,
which chunks to read before each batch. A *sampler* makes the plan (``plan(n, batch_size, seed, epoch)``)
and serves the frames (``read(ds, plan, wanted, start)``, where ``wanted[b]`` is the part of batch ``b``
this process trains on: all of it in one process, its shard under DistributedDataParallel).
:class:`ShuffledSampler` is the reference order; :class:`amrlib.train.stream.ChunkShuffleSampler` streams
a large HDF5 file with bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..models import check_fits


def iter_batches(ds, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:  # noqa: E501
    """Yield (iq float32 [b, 2, L], labels int64 [b], indices) in ``order`` (default: sequential)."""
    order = np.arange(len(ds)) if order is None else np.asarray(order)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(ds.iq[idx], dtype=np.float32))
        y = torch.from_numpy(ds.labels[idx])
        yield x, y, idx


def predict_batched(model: torch.nn.Module, frames, batch_size: int = 512) -> np.ndarray:
    """Logits float32 ``[n, C]`` of ``model`` on IQ ``frames`` ``[n, 2, L]``, ``batch_size`` frames at a time.

    ``frames``: anything sliceable with that shape (NumPy array or memmap, a lazy
    :class:`~amrlib.data.dataset.LazyIQ`, an ``h5py`` dataset, a CPU tensor); each batch is converted to
    contiguous float32 on its own, so peak memory is one batch of activations plus the ``[n, C]`` output,
    whatever ``n`` is (a whole-array forward of 100,000 ResNet20 frames peaks at about 8 GB). The model is
    run in eval mode without gradients, on the device its parameters are on, and put back in the mode it
    was in. A model that records its frame length (``model.arch``) refuses frames of another length.
    """
    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 3 or shape[1] != 2:
        raise ValueError(f"expected IQ frames [n, 2, L], got shape {shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    arch = getattr(model, "arch", None)
    length = int(arch.get("frame_length", -1)) if isinstance(arch, dict) else -1
    if length not in (-1, shape[2]):
        raise ValueError(f"{arch.get('name', 'the model')} was built for frames [n, 2, {length}], "
                         f"got shape {shape}")
    n = int(shape[0])
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    out = None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, int(batch_size)):
                block = frames[start:start + int(batch_size)]
                if isinstance(block, torch.Tensor):
                    block = block.detach().cpu().numpy()
                x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)
                logits = model(x).float().cpu().numpy()
                if out is None:
                    out = np.empty((n, logits.shape[1]), dtype=np.float32)
                out[start:start + len(logits)] = logits
    finally:
        model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def predict(model: torch.nn.Module, ds, batch_size: int = 512) -> torch.Tensor:
    """Logits [n, C] of ``model`` on every frame of ``ds`` (eval mode, no grad), in batches
    (:func:`predict_batched`); ``ds`` must have the frame length and class count the model was built for
    (:func:`amrlib.models.check_fits`)."""
    check_fits(model, ds)
    return torch.from_numpy(predict_batched(model, ds.iq, batch_size))


def count_batches(n: int, batch_size: int) -> int:
    """Batches per epoch: ``ceil(n / batch_size)``, less a final batch of a single frame (it breaks
    BatchNorm in training mode), unless it is the only batch."""
    n_batches = -(-n // batch_size)
    if n % batch_size == 1 and n_batches > 1:
        n_batches -= 1
    return n_batches


@dataclass
class EpochPlan:
    """One epoch: ``batches[b]`` the dataset positions of global batch ``b``; ``loads[b]`` (streaming
    samplers only) the chunks to read before batch ``b``."""
    batches: list[np.ndarray]
    loads: list[list[int]] | None = None


class ShuffledSampler:
    """The reference order: a permutation of all frames drawn every epoch from a generator seeded by
    ``(seed, epoch)``, cut into batches; each batch is read with ``ds.iq[idx]`` (in memory, or gathered
    from a lazy file)."""

    #: what a checkpoint records about the sampler (None: the default, recorded as nothing)
    identity = None

    def plan(self, n: int, batch_size: int, seed: int, epoch: int) -> EpochPlan:
        n_batches = count_batches(n, batch_size)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).numpy()[: n_batches * batch_size]
        return EpochPlan([order[s:s + batch_size] for s in range(0, len(order), batch_size)])

    def read(self, ds, plan: EpochPlan, wanted: Sequence[np.ndarray], start: int = 0
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        for b in range(start, len(wanted)):
            idx = wanted[b]
            yield torch.from_numpy(np.ascontiguousarray(ds.iq[idx], dtype=np.float32)), torch.from_numpy(ds.labels[idx]), idx  # noqa: E501
