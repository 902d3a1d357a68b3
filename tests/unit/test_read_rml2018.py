"""RML2018.01a reader on a small file in the exact GOLD_XYZ_OSC.0001_1024.hdf5 layout."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from amrlib.data.dataset import DatasetError, LazyIQ
from amrlib.data.readers import detect_format, load_dataset, validate
from amrlib.data.readers_rml import RML2018_CLASSES, read_rml2018

SNRS = [-20, 0, 30]
PER_KEY = 4
N = len(RML2018_CLASSES) * len(SNRS) * PER_KEY   # 288 frames of 1024


def write_rml2018(path, *, y_dtype=np.int64, mutate=None):
    """X float32 [N,1024,2], Y one-hot [N,24], Z int64 [N,1]; contiguous by class then SNR (like the real file).

    Sample values encode (frame, time, I/Q) so layout mistakes show: X[i, t, c] = i + t / 2048 + c / 4.
    """
    labels = np.repeat(np.arange(len(RML2018_CLASSES)), len(SNRS) * PER_KEY)
    snrs = np.tile(np.repeat(SNRS, PER_KEY), len(RML2018_CLASSES))
    x = (np.arange(N, dtype=np.float32)[:, None, None] + np.arange(1024, dtype=np.float32)[None, :, None] / 2048
         + np.arange(2, dtype=np.float32)[None, None, :] / 4)
    y = np.eye(len(RML2018_CLASSES), dtype=y_dtype)[labels]
    z = snrs.astype(np.int64)[:, None]
    arrays = {"X": x, "Y": y, "Z": z}
    if mutate:
        mutate(arrays)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return str(path), labels, snrs, x


@pytest.fixture()
def gold(tmp_path):
    return write_rml2018(tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5")


def test_reads_exact_layout_lazily(gold):
    path, labels, snrs, x = gold
    assert detect_format(path) == "rml2018"
    ds = load_dataset(path)
    assert ds.meta == {"source": path, "format": "rml2018"}
    assert ds.classes == RML2018_CLASSES and len(ds) == N
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.snrs, snrs)
    assert isinstance(ds.iq, LazyIQ) and ds.iq.shape == (N, 2, 1024) and ds.frame_length == 1024
    frame = ds.iq[5]
    assert frame.dtype == np.float32 and frame.shape == (2, 1024)
    np.testing.assert_array_equal(frame, x[5].T)
    idx = np.random.default_rng(0).permutation(N)[:50]
    np.testing.assert_array_equal(ds.iq[idx], x[idx].transpose(0, 2, 1))
    sub = ds.subset(idx[:7])
    assert isinstance(sub.iq, LazyIQ)
    np.testing.assert_array_equal(sub.iq[:], x[idx[:7]].transpose(0, 2, 1))


def test_pickles_for_worker_processes(gold):
    path, _, _, x = gold
    ds = read_rml2018(path)
    ds.iq[0]                                             # opens the file in this process
    clone = pickle.loads(pickle.dumps(ds))               # what a DataLoader worker receives
    np.testing.assert_array_equal(clone.iq[[3, 200]], x[[3, 200]].transpose(0, 2, 1))


def test_float_one_hot_accepted(tmp_path):
    path, labels, _, _ = write_rml2018(tmp_path / "f.hdf5", y_dtype=np.float32)
    np.testing.assert_array_equal(read_rml2018(path).labels, labels)


class _CountingSource:
    def __init__(self, ds):
        self.ds, self.reads = ds, []
        self.shape = ds.shape

    def __getitem__(self, idx):
        out = self.ds[idx]
        self.reads.append(len(out))
        return out


def test_frame_reads_are_bounded(gold):
    path, _, _, x = gold
    ds = read_rml2018(path, chunk_rows=32)
    counter = _CountingSource(ds.iq.source)
    ds.iq._source = counter
    validate(ds)
    idx = np.random.default_rng(1).permutation(N)[:100]
    np.testing.assert_array_equal(ds.iq[idx], x[idx].transpose(0, 2, 1))
    assert sum(counter.reads) == N + 100 and max(counter.reads) <= 32


def _two_ones(a):
    a["Y"][17, 3] = 1


def _bad_value(a):
    a["Y"][40] = a["Y"][40] * 2


def _short_z(a):
    a["Z"] = a["Z"][:-1]


def _no_gmsk(a):
    gmsk = RML2018_CLASSES.index("GMSK")
    rows = a["Y"][:, gmsk] == 1
    a["Y"][rows] = np.eye(24, dtype=a["Y"].dtype)[0]


def _drop_y(a):
    del a["Y"]


def _x_wrong_axis(a):
    a["X"] = a["X"][:, :, :1]


@pytest.mark.parametrize("mutate, match", [
    (_two_ones, "label row 17 is not one-hot"),
    (_bad_value, "label row 40 is not one-hot"),
    (_short_z, "Z has 287 rows but X has 288"),
    (_no_gmsk, "class 'GMSK' has no frames"),
    (_drop_y, "missing dataset 'Y' in .*bad.hdf5; found: X, Z"),
    (_x_wrong_axis, r"X must be float \[N, L, 2\]"),
])
def test_errors_name_file_and_problem(tmp_path, mutate, match):
    path, *_ = write_rml2018(tmp_path / "bad.hdf5", mutate=mutate)
    with pytest.raises(DatasetError, match=match) as info:
        load_dataset(path, format="rml2018")
    assert "bad.hdf5" in str(info.value)


def test_nan_found_by_the_default_scan(tmp_path):
    def nan(a):
        a["X"][100, 7, 1] = np.nan
    path, *_ = write_rml2018(tmp_path / "nan.hdf5", mutate=nan)
    assert len(load_dataset(path, scan=False)) == N      # only for a file already scanned
    with pytest.raises(DatasetError, match=r"nan.hdf5: non-finite samples \(NaN/Inf\) in frame 100"):
        load_dataset(path)                               # default: streamed scan (#19)


def test_truncated_file(gold, tmp_path):
    path = gold[0]
    data = open(path, "rb").read()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut.hdf5.*truncated or corrupt"):
        load_dataset(str(cut))
