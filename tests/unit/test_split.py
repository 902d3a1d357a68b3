"""Seeded (class, SNR)-stratified train/val/test splits."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from amrlib.data.dataset import LazyIQ, SignalDataset
from amrlib.data.split import split, split_indices

# frames per (class, SNR) key: a spread of sizes, including keys too small for three parts
COUNTS = {(0, -10): 20, (0, 0): 3, (0, 10): 7, (1, -10): 1, (1, 0): 2, (1, 10): 100, (2, -10): 4, (2, 10): 13}


def make_ds(counts=COUNTS, seed=5):
    keys = [k for k, n in counts.items() for _ in range(n)]
    perm = np.random.default_rng(seed).permutation(len(keys))      # keys interleaved in storage
    labels = np.array([keys[i][0] for i in perm])
    snrs = np.array([keys[i][1] for i in perm])
    iq = np.arange(len(keys), dtype=np.float32)[:, None, None] * np.ones((1, 2, 8), np.float32)
    return SignalDataset(iq, labels, snrs, ["a", "b", "c"], {"source": "mem"})


def key_counts(ds):
    return Counter(zip(ds.labels.tolist(), ds.snrs.tolist()))


def test_partition_disjoint_and_complete():
    ds = make_ds()
    parts = split_indices(ds.labels, ds.snrs)
    allidx = np.concatenate(parts)
    assert len(allidx) == len(ds) and len(np.unique(allidx)) == len(ds)
    assert all(np.all(np.diff(p) > 0) for p in parts)                 # sorted, unique
    train, val, test = split(ds)
    assert len(train) + len(val) + len(test) == len(ds)
    ids = np.concatenate([train.iq[:, 0, 0], val.iq[:, 0, 0], test.iq[:, 0, 0]])   # frame identities
    assert sorted(ids.tolist()) == list(range(len(ds)))
    assert [p.meta["split"]["part"] for p in (train, val, test)] == ["train", "val", "test"]
    assert train.meta["split"] == {"part": "train", "fractions": [0.7, 0.15, 0.15], "seed": 0}


def test_stratified_by_class_and_snr():
    train, val, test = split(make_ds())
    tr, va, te = key_counts(train), key_counts(val), key_counts(test)
    for key, n in COUNTS.items():
        assert tr[key] + va[key] + te[key] == n
        if n >= 3:
            assert tr[key] >= 1 and va[key] >= 1 and te[key] >= 1, key
    assert (tr[(1, 10)], va[(1, 10)], te[(1, 10)]) == (70, 15, 15)
    assert (tr[(0, -10)], va[(0, -10)], te[(0, -10)]) == (14, 3, 3)
    assert (tr[(0, 0)], va[(0, 0)], te[(0, 0)]) == (1, 1, 1)
    assert tr[(1, -10)] == 1 and tr[(1, 0)] + va[(1, 0)] + te[(1, 0)] == 2


def test_deterministic_and_seed_dependent():
    ds = make_ds()
    a = split_indices(ds.labels, ds.snrs, seed=0)
    b = split_indices(ds.labels, ds.snrs, seed=0)
    c = split_indices(ds.labels, ds.snrs, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert [len(x) for x in a] == [len(x) for x in c]                  # sizes depend on counts only


def test_each_key_split_independently_of_other_keys():
    ds = make_ds()
    keep = ~((ds.labels == 1) & (ds.snrs == 10))                       # drop one key entirely
    small = ds.subset(np.flatnonzero(keep))
    full_parts = split(ds, seed=3)
    small_parts = split(small, seed=3)
    for full, part in zip(full_parts, small_parts):
        mask = ~((full.labels == 1) & (full.snrs == 10))
        assert sorted(full.iq[mask, 0, 0].tolist()) == sorted(part.iq[:, 0, 0].tolist())


def test_custom_fractions_and_zero_part():
    ds = make_ds()
    train, val, test = split(ds, fractions=(0.8, 0.0, 0.2), seed=2)
    assert len(val) == 0 and len(train) + len(test) == len(ds)
    assert key_counts(train)[(1, 10)] == 80


def test_lazy_dataset_stays_lazy():
    iq = np.random.default_rng(0).standard_normal((60, 2, 4)).astype(np.float32)
    lazy = LazyIQ(iq, None, lambda raw: raw, 4, chunk_rows=7)
    ds = SignalDataset(lazy, np.arange(60) % 3, np.repeat([0, 10], 30), ["a", "b", "c"])
    parts = split(ds)
    assert all(isinstance(p.iq, LazyIQ) for p in parts)
    np.testing.assert_array_equal(parts[1].iq[:], iq[parts[1].iq.rows])


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.2), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5)])
def test_bad_fractions(fractions):
    ds = make_ds()
    with pytest.raises(ValueError, match="fractions"):
        split(ds, fractions=fractions)
