"""Streaming a large HDF5 dataset through training with bounded memory: :class:`ChunkShuffleSampler`.

The dataset's positions are cut into *chunks* of ``chunk_frames`` consecutive positions (for a lazy
dataset, rows that lie close together in the file: one contiguous read each). Each epoch:

1. the chunk order is shuffled by a generator seeded with ``(seed, epoch)``;
2. chunks are read in that order into a *buffer* of at most ``buffer_frames`` frames, as soon as the
   next one fits;
3. each batch is drawn uniformly at random, without replacement, from the frames in the buffer.

Every frame is visited exactly once per epoch (less the single frame of a final batch of one, which
:func:`amrlib.train.batches.count_batches` drops as the reference order does), the order depends only on
``(n, batch_size, seed, epoch, chunk_frames, buffer_frames)``, and at most ``buffer_frames`` frames are
held at any time (plus the batch handed to the model and one chunk being read).

The order is computed first, as index arithmetic (:meth:`ChunkShuffleSampler.plan`: which chunks to read
before each batch, and each batch's positions), and then served by :meth:`ChunkShuffleSampler.read`. That
split is what makes resuming mid-epoch cheap (the buffer's contents at any step are known without reading
the frames that passed before) and what lets a DDP rank keep only the frames of its own shards.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from ..data.dataset import LazyIQ
from .batches import EpochPlan, count_batches


class FramePool:
    """A fixed-capacity store of frames keyed by dataset position (slots reused as frames leave).

    ``resident`` counts the frames held now, ``max_resident`` the most held at once; putting more than
    ``capacity`` frames is an error (the sampler's bound, checked rather than trusted)."""

    def __init__(self, capacity: int, n: int, frame_shape: tuple[int, int]):
        self.capacity = int(capacity)
        self.data = np.empty((self.capacity, *frame_shape), dtype=np.float32)  # pages touched only when used
        self.slot_of = np.full(n, -1, dtype=np.int64)
        self.free = np.arange(self.capacity - 1, -1, -1, dtype=np.int64)       # a stack of free slots
        self.n_free = self.capacity
        self.resident = self.max_resident = 0

    def put(self, positions: np.ndarray, frames: np.ndarray) -> None:
        k = len(positions)
        if k > self.n_free:
            raise RuntimeError(f"frame buffer overflow: {self.resident} + {k} frames > capacity {self.capacity}")
        slots = self.free[self.n_free - k:self.n_free]
        self.n_free -= k
        self.data[slots] = frames
        self.slot_of[positions] = slots
        self.resident += k
        self.max_resident = max(self.max_resident, self.resident)

    def take(self, positions: np.ndarray) -> np.ndarray:
        slots = self.slot_of[positions]
        if len(slots) and slots.min() < 0:
            missing = positions[slots < 0][:3]
            raise RuntimeError(f"frames at positions {missing.tolist()} are not in the buffer")
        out = self.data[slots]
        self.slot_of[positions] = -1
        self.free[self.n_free:self.n_free + len(slots)] = slots
        self.n_free += len(slots)
        self.resident -= len(slots)
        return out


def read_frames(ds, positions: np.ndarray, max_span_ratio: float = 4.0) -> np.ndarray:
    """Float32 frames ``[k, 2, L]`` of ``ds`` at sorted ``positions``: for a lazy HDF5 dataset one
    contiguous slice of the file when the rows span at most ``max_span_ratio`` times as many rows as
    requested (then the rows in between are read and dropped), else row by row."""
    iq = ds.iq
    if isinstance(iq, LazyIQ):
        return iq.read_span(positions, max_span_ratio)
    return np.ascontiguousarray(iq[positions], dtype=np.float32)


class ChunkShuffleSampler:
    """Shuffled chunked sampling for :func:`amrlib.train.fit` (module doc). ``chunk_frames``: positions
    per chunk (one contiguous read); ``buffer_frames``: frames held at most, at least
    ``chunk_frames + batch_size - 1`` so that every batch but the last is full."""

    def __init__(self, chunk_frames: int = 1024, buffer_frames: int = 65536):
        if chunk_frames < 1 or buffer_frames < chunk_frames:
            raise ValueError(f"need chunk_frames >= 1 and buffer_frames >= chunk_frames "
                             f"(got {chunk_frames}, {buffer_frames})")
        self.chunk_frames, self.buffer_frames = int(chunk_frames), int(buffer_frames)
        self.last_pool: FramePool | None = None

    @property
    def identity(self) -> dict:
        return {"name": "chunk_shuffle", "chunk_frames": self.chunk_frames, "buffer_frames": self.buffer_frames}

    def chunk(self, c: int, n: int) -> np.ndarray:
        return np.arange(c * self.chunk_frames, min(n, (c + 1) * self.chunk_frames), dtype=np.int64)

    def plan(self, n: int, batch_size: int, seed: int, epoch: int) -> EpochPlan:
        """The epoch's order, computed on positions only (no frame is read)."""
        cap, cf = self.buffer_frames, self.chunk_frames
        if cap < cf + batch_size - 1:
            raise ValueError(f"buffer_frames ({cap}) must be >= chunk_frames + batch_size - 1 "
                             f"({cf} + {batch_size} - 1) so that every batch but the last is full")
        rng = np.random.default_rng([int(seed), int(epoch)])
        n_chunks = -(-n // cf)
        order = rng.permutation(n_chunks)
        pool = np.empty(cap, dtype=np.int64)
        m = nxt = 0
        batches, loads = [], []
        for _ in range(count_batches(n, batch_size)):
            loaded = []
            while nxt < n_chunks:
                pos = self.chunk(int(order[nxt]), n)
                if m + len(pos) > cap:
                    break
                pool[m:m + len(pos)] = pos
                m += len(pos)
                loaded.append(int(order[nxt]))
                nxt += 1
            k = min(batch_size, m)
            pick = rng.choice(m, k, replace=False)
            batches.append(pool[pick].copy())
            survivors = np.ones(k, dtype=bool)                            # refill the holes from the tail
            survivors[pick[pick >= m - k] - (m - k)] = False
            pool[pick[pick < m - k]] = pool[m - k:m][survivors]
            m -= k
            loads.append(loaded)
        return EpochPlan(batches, loads)

    def read(self, ds, plan: EpochPlan, wanted: Sequence[np.ndarray], start: int = 0
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Serve ``wanted[b]`` (a subset of ``plan.batches[b]``, e.g. a DDP rank's shard) for
        ``b >= start``: read each chunk when the plan says, keep only the frames some ``wanted`` batch
        still needs, hand them out batch by batch. Starting at ``start > 0`` reads only what the buffer
        held at that step. ``self.last_pool`` exposes the buffer (``max_resident``) for checks."""
        n = len(ds)
        need = np.zeros(n, dtype=bool)
        for w in wanted[start:]:
            need[w] = True
        pool = self.last_pool = FramePool(self.buffer_frames, n, (2, ds.frame_length))
        for b in range(start, len(wanted)):
            chunks = [c for loads in plan.loads[:start + 1] for c in loads] if b == start else plan.loads[b]
            for c in chunks:
                pos = self.chunk(c, n)
                pos = pos[need[pos]]
                if len(pos):
                    pool.put(pos, read_frames(ds, pos))
            idx = np.asarray(wanted[b])
            yield torch.from_numpy(pool.take(idx)), torch.from_numpy(ds.labels[idx]), idx
