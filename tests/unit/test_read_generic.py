"""Generic X/Y/Z reader (HDF5 and NPZ) and load_dataset's format detection."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from amrlib.data.dataset import DatasetError, LazyIQ
from amrlib.data.readers import detect_format, load_dataset

N, L, C = 36, 16, 3
NAMES = ["BPSK", "QPSK", "16QAM"]


def frames_ncl(n=N, length=L):
    """float32 [n, 2, L] with iq[i, c, t] = i + c / 2 + t / 64 (layout mistakes show)."""
    return (np.arange(n, dtype=np.float32)[:, None, None] + np.arange(2, dtype=np.float32)[None, :, None] / 2
            + np.arange(length, dtype=np.float32)[None, None, :] / 64)


def labels_snrs(n=N):
    return np.arange(n) % C, np.repeat([-10, 0, 10, 20], n // 4)


def write_h5(path, arrays, attrs=None):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return str(path)


def test_hdf5_ncl_integer_labels_json_classes(tmp_path):
    x = frames_ncl()
    y, z = labels_snrs()
    path = write_h5(tmp_path / "sig2019.h5", {"X": x, "Y": y, "Z": z}, {"classes": json.dumps(NAMES)})
    assert detect_format(path) == "generic"
    ds = load_dataset(path)
    assert isinstance(ds.iq, LazyIQ) and ds.meta["format"] == "generic" and ds.meta["x_layout"] == "ncl"
    assert ds.classes == NAMES
    np.testing.assert_array_equal(ds.iq[:], x)
    np.testing.assert_array_equal(ds.labels, y)
    np.testing.assert_array_equal(ds.snrs, z)


def test_hdf5_nlc_one_hot_column_labels_classes_dataset(tmp_path):
    x = frames_ncl()
    y, z = labels_snrs()
    path = write_h5(tmp_path / "hisar.hdf5", {"X": x.transpose(0, 2, 1).astype(np.float64),
                                              "Y": np.eye(C)[y], "Z": z[:, None].astype(np.float32),
                                              "classes": np.array([n.encode() for n in NAMES])})
    ds = load_dataset(path)
    assert ds.meta["x_layout"] == "nlc" and ds.classes == NAMES and ds.iq[3].dtype == np.float32
    np.testing.assert_array_equal(ds.iq[[2, 30, 7]], x[[2, 30, 7]])
    np.testing.assert_array_equal(ds.labels, y)
    np.testing.assert_array_equal(ds.snrs, z)


def test_npz_complex_custom_keys(tmp_path):
    x = frames_ncl()
    y, z = labels_snrs()
    path = tmp_path / "d.npz"
    np.savez(path, data=x[:, 0] + 1j * x[:, 1], mods=y[:, None], snr=z, classes=np.array(NAMES))
    ds = load_dataset(str(path), x_key="data", y_key="mods", z_key="snr")
    assert isinstance(ds.iq, np.ndarray) and ds.iq.dtype == np.float32 and ds.classes == NAMES
    np.testing.assert_array_equal(ds.iq, x)
    np.testing.assert_array_equal(ds.labels, y)


def test_npz_object_arrays_refused(tmp_path):
    path = tmp_path / "obj.npz"
    y, z = labels_snrs()
    np.savez(path, X=frames_ncl(), Y=np.array([{"a": 1}] * N, dtype=object), Z=z)
    with pytest.raises(DatasetError, match="obj.npz: unreadable NPZ member.*allow_pickle"):
        load_dataset(str(path))


def test_layout_detection_and_ambiguity(tmp_path):
    y, z = labels_snrs()
    path = write_h5(tmp_path / "amb.h5", {"X": np.zeros((N, 2, 2), np.float32), "Y": y, "Z": z})
    with pytest.raises(DatasetError, match="ambiguous frame layout"):
        load_dataset(path)
    assert load_dataset(path, layout="nlc").frame_length == 2
    path = write_h5(tmp_path / "bad.h5", {"X": np.zeros((N, 3, 5), np.float32), "Y": y, "Z": z})
    with pytest.raises(DatasetError, match=r"bad.h5:X: frames must be \[N, 2, L\] or \[N, L, 2\]"):
        load_dataset(path)


@pytest.mark.parametrize("change, kwargs, match", [
    (lambda a: a.pop("Z"), {}, "missing dataset 'Z' in .*g.h5; found: X, Y"),
    (lambda a: a.update(Y=a["Y"][:-1]), {}, "labels have shape"),
    (lambda a: a.update(Z=a["Z"].astype(float) + 0.5), {}, "SNRs must be whole numbers; row 0"),
    (lambda a: a.update(Y=np.eye(C)[a["Y"]] * 0.5), {}, "label row 0 is not one-hot"),
    (lambda a: a.update(X=a["X"].astype(np.int8).astype("S1")), {}, "real floating point or complex"),
    (lambda a: None, {"classes": ["a", "b"]}, "label 2 in row 2 out of range for 2 classes"),
    (lambda a: a.update(Y=np.where(a["Y"] == 1, 0, a["Y"])), {"classes": NAMES}, "class 'QPSK' has no frames"),
    (lambda a: a["Y"].__setitem__(5, -1), {}, "negative label -1 in row 5"),
    (lambda a: a["X"].__setitem__((9, 1, 3), np.inf), {}, r"non-finite samples \(NaN/Inf\) in frame 9"),
])
def test_errors(tmp_path, change, kwargs, match):
    y, z = labels_snrs()
    arrays = {"X": frames_ncl(), "Y": y.copy(), "Z": z.copy()}
    change(arrays)
    path = write_h5(tmp_path / "g.h5", arrays)
    with pytest.raises(DatasetError, match=match) as info:
        load_dataset(path, **kwargs)
    assert "g.h5" in str(info.value)


def test_empty_class_allowed_on_request(tmp_path):
    y, z = labels_snrs()
    path = write_h5(tmp_path / "e.h5", {"X": frames_ncl(), "Y": np.where(y == 1, 0, y), "Z": z})
    assert load_dataset(path, classes=NAMES, allow_empty_classes=True).num_classes == 3


def test_detection_and_file_errors(tmp_path):
    with pytest.raises(DatasetError, match="nothing.h5: no such file"):
        load_dataset(str(tmp_path / "nothing.h5"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world")
    with pytest.raises(DatasetError, match="junk.bin: unknown dataset format"):
        load_dataset(str(junk))
    noth5 = tmp_path / "fake.h5"
    noth5.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DatasetError, match="fake.h5: cannot open HDF5 file"):
        load_dataset(str(noth5))
    y, z = labels_snrs()
    good = write_h5(tmp_path / "noext", {"X": frames_ncl(), "Y": y, "Z": z})
    assert detect_format(good) == "generic"
    cut = tmp_path / "cut.h5"
    cut.write_bytes(open(good, "rb").read()[:3000])
    with pytest.raises(DatasetError, match="cut.h5.*truncated or corrupt"):
        load_dataset(str(cut))
    npz = tmp_path / "cut.npz"
    np.savez(npz, X=frames_ncl(), Y=y, Z=z)
    npz.write_bytes(npz.read_bytes()[:500])
    with pytest.raises(DatasetError, match="cut.npz.*truncated or corrupt"):
        load_dataset(str(npz))
    with pytest.raises(DatasetError, match="unknown format 'csv'"):
        load_dataset(good, format="csv")
