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


def iter_batches(ds, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """Yield (iq float32 [b, 2, L], labels int64 [b], indices) in ``order`` (default: sequential)."""
    order = np.arange(len(ds)) if order is None else np.asarray(order)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(ds.iq[idx], dtype=np.float32))
        y = torch.from_numpy(ds.labels[idx])
        yield x, y, idx


def predict(model: torch.nn.Module, ds, batch_size: int = 512) -> torch.Tensor:
    """Logits [n, C] of ``model`` on every frame of ``ds`` (eval mode, no grad); ``ds`` must have the frame
    length and class count the model was built for (:func:`amrlib.models.check_fits`)."""
    check_fits(model, ds)
    was_training = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for x, _, _ in iter_batches(ds, batch_size):
            outs.append(model(x))
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0, 0)


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
            yield torch.from_numpy(np.ascontiguousarray(ds.iq[idx], dtype=np.float32)), torch.from_numpy(ds.labels[idx]), idx
