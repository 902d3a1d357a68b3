"""The project's own HDF5 format: round trip, laziness, atomic replace, byte-identical output."""
from __future__ import annotations

import hashlib
import json
import os
import time

import h5py
import numpy as np
import pytest

from amrlib.data.dataset import DatasetError, LazyIQ, SignalDataset
from amrlib.data.readers import detect_format, load_dataset
from amrlib.data.store import FORMAT_NAME, read_own, save_dataset


def make_ds(n=300, length=128, seed=0, meta=None):
    rng = np.random.default_rng(seed)
    iq = rng.standard_normal((n, 2, length)).astype(np.float32)
    return SignalDataset(iq, np.arange(n) % 4, rng.integers(-10, 10, n), ["a", "b", "c", "d"],
                         meta if meta is not None else {"source": "generator", "format": "synthetic",
                                                        "generator": {"seed": np.int64(7), "snrs": np.arange(3),
                                                                      "sps": 8, "rolloff": 0.35}})


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_round_trip_lazy(tmp_path):
    ds = make_ds()
    path = save_dataset(ds, tmp_path / "data" / "train.h5")      # creates the directory
    assert detect_format(path) == FORMAT_NAME
    back = load_dataset(path)
    assert isinstance(back.iq, LazyIQ)
    np.testing.assert_array_equal(back.iq[:], ds.iq)
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.snrs, ds.snrs)
    assert back.classes == ds.classes
    assert back.meta["source"] == path and back.meta["format"] == FORMAT_NAME
    assert back.meta["origin"] == {"source": "generator", "format": "synthetic"}
    assert back.meta["generator"] == {"seed": 7, "snrs": [0, 1, 2], "sps": 8, "rolloff": 0.35}
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "amr-prune" and int(f.attrs["format_version"]) == 1
        assert json.loads(f.attrs["classes"]) == ds.classes
        assert f["iq"].dtype == np.float32 and f["iq"].chunks == (300, 2, 128)   # n < 1024-frame chunk
        assert f["labels"].dtype == np.int64 and f["snrs"].dtype == np.int64


def test_chunking_and_lazy_source_written_in_blocks(tmp_path):
    first = save_dataset(make_ds(n=2500), tmp_path / "a.h5")
    lazy = read_own(first)
    sub = lazy.subset(np.arange(0, 2500, 3))
    second = save_dataset(sub, tmp_path / "b.h5", write_rows=100)
    with h5py.File(second, "r") as f:
        assert f["iq"].chunks == (834, 2, 128)
    with h5py.File(first, "r") as f:
        assert f["iq"].chunks == (1024, 2, 128)
    back = read_own(second)
    np.testing.assert_array_equal(back.iq[:], make_ds(n=2500).iq[::3])
    assert back.meta["origin"]["source"] == first                 # provenance chain kept
    assert back.meta["origin"]["origin"] == {"source": "generator", "format": "synthetic"}


def test_identical_input_gives_identical_bytes(tmp_path):
    a = save_dataset(make_ds(), tmp_path / "a.h5")
    h = md5(a)
    time.sleep(1.1)                     # HDF5 object timestamps have 1 s resolution: make them differ
    b = save_dataset(make_ds(), tmp_path / "b.h5")
    assert md5(b) == h
    save_dataset(make_ds(), a)                                     # rewrite in place
    assert md5(a) == h
    assert md5(save_dataset(make_ds(seed=1), tmp_path / "c.h5")) != h


class _Exploding:
    """Array-like whose second block read fails, to interrupt a write midway."""

    def __init__(self, iq):
        self.iq, self.shape, self.calls = iq, iq.shape, 0

    def __len__(self):
        return len(self.iq)

    def __getitem__(self, idx):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("disk on fire")
        return self.iq[idx]


def test_interrupted_write_keeps_existing_file(tmp_path):
    path = save_dataset(make_ds(), tmp_path / "keep.h5")
    before = md5(path)
    ds = make_ds(seed=3)
    ds.iq = _Exploding(ds.iq)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_dataset(ds, path, write_rows=64)
    assert md5(path) == before
    assert os.listdir(tmp_path) == ["keep.h5"]                    # the temporary file is gone


def test_non_finite_frames_refused(tmp_path):
    ds = make_ds(n=50)
    ds.iq[37, 1, 2] = np.nan
    with pytest.raises(DatasetError, match="nan.h5: refusing to save non-finite .* frame 37"):
        save_dataset(ds, tmp_path / "nan.h5", write_rows=16)
    assert not os.listdir(tmp_path)


def test_read_errors(tmp_path):
    path = save_dataset(make_ds(), tmp_path / "x.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(DatasetError, match="x.h5: unsupported amr-prune format_version 2"):
        read_own(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 1
        del f["snrs"]
    with pytest.raises(DatasetError, match="missing dataset 'snrs' in .*x.h5; found: iq, labels"):
        load_dataset(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["iq"] = np.zeros((1, 2, 4), np.float32)
    with pytest.raises(DatasetError, match="other.h5: not an amr-prune file"):
        read_own(other)


def test_unserialisable_meta_refused_before_writing(tmp_path):
    with pytest.raises(DatasetError, match="m.h5: cannot store dataset meta"):
        save_dataset(make_ds(meta={"fn": object()}), tmp_path / "m.h5")
    assert not os.listdir(tmp_path)
