"""Seeded train / validation / test splits stratified by (class, SNR).

Every (class, SNR) key's frames are shuffled with a generator seeded from ``(seed, class, SNR)`` and cut
into consecutive parts whose sizes follow ``fractions`` (largest-remainder rounding). A key with at least
as many frames as there are non-zero fractions (3 for the default) contributes at least one frame to each
such part. The parts are disjoint, their union is the whole dataset, and the result depends only on the
labels, SNRs, fractions and seed (each key has its own random stream, so adding or dropping a key leaves
the other keys' splits unchanged). Indices inside each part are sorted ascending, which keeps reads from a
lazy HDF5 file near-sequential; shuffle per epoch in the data loader.

The reference code (PSR) used the first 80 % of each (class, SNR) for training and the rest for test;
ours adds a validation part and a seed: default ``fractions = (0.7, 0.15, 0.15)``, ``seed = 0``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .dataset import SignalDataset

#: Default (train, val, test) fractions.
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
PART_NAMES = ("train", "val", "test")


def _part_sizes(n: int, fractions: np.ndarray) -> np.ndarray:
    """Split ``n`` into ``len(fractions)`` integer sizes: largest remainder, then at least 1 per non-zero part."""
    exact = np.round(n * fractions, 9)   # no 69.999... from 100 * 0.7
    sizes = np.floor(exact).astype(np.int64)
    rest = n - int(sizes.sum())
    if rest:
        order = np.argsort(-(exact - sizes), kind="stable")  # ties go to the earlier part
        sizes[order[:rest]] += 1
    positive = fractions > 0
    if n >= int(positive.sum()):
        for j in np.flatnonzero(positive & (sizes == 0)):
            donor = int(np.argmax(sizes))                    # the largest part gives one frame
            sizes[donor] -= 1
            sizes[j] += 1
    return sizes


def split_indices(labels: np.ndarray, snrs: np.ndarray, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int = 0) -> list[np.ndarray]:
    """Index arrays (sorted, int64) of each part of a (class, SNR)-stratified split; see the module doc."""
    labels = np.asarray(labels, dtype=np.int64)
    snrs = np.asarray(snrs, dtype=np.int64)
    if labels.shape != snrs.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and snrs {snrs.shape} must be equal-length 1-D arrays")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.ndim != 1 or len(frac) < 1 or (frac < 0).any() or not np.isfinite(frac).all() \
            or abs(frac.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {tuple(fractions)}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    parts: list[list[np.ndarray]] = [[] for _ in frac]
    order = np.lexsort((snrs, labels))                         # group by (class, SNR), stable
    if len(order):
        keys = np.stack([labels[order], snrs[order]], axis=1)
        starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
        bounds = np.r_[starts, len(order)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            label, snr = int(keys[a, 0]), int(keys[a, 1])
            # SeedSequence needs non-negative words: encode the SNR's sign in its own word.
            rng = np.random.default_rng([int(seed), label, abs(snr), int(snr < 0)])
            members = rng.permutation(order[a:b])
            cuts = np.cumsum(_part_sizes(b - a, frac))[:-1]
            for j, piece in enumerate(np.split(members, cuts)):
                parts[j].append(piece)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, np.int64) for p in parts]


def split(ds: SignalDataset, fractions: Sequence[float] = DEFAULT_FRACTIONS,
          seed: int = 0) -> tuple[SignalDataset, ...]:
    """Split ``ds`` into ``(train, val, test)`` subsets (one per fraction), stratified by (class, SNR).

    Subsets share ``ds``'s storage (a lazy file stays lazy); each part's ``meta["split"]`` records its
    name, the fractions and the seed.
    """
    pieces = split_indices(ds.labels, ds.snrs, fractions, seed)
    names = PART_NAMES if len(pieces) == 3 else tuple(f"part{j}" for j in range(len(pieces)))
    out = []
    for name, idx in zip(names, pieces):
        sub = ds.subset(idx)
        sub.meta["split"] = {"part": name, "fractions": [float(f) for f in fractions], "seed": int(seed)}
        out.append(sub)
    return tuple(out)
