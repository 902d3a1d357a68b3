"""RML2016.10a / 10b reader on files in the exact real layout (Python 2, protocol-2 dict pickles)."""
from __future__ import annotations

import pickle
import struct
import warnings

import numpy as np
import pytest

from amrlib.data.dataset import DatasetError
from amrlib.data.readers import load_dataset
from amrlib.data.readers_rml import RML2016_10A_CLASSES, RML2016_10B_CLASSES, read_rml2016

SNRS = [-20, 0, 18]
FRAMES = 3


# ---------------------------------------------------------------- a Python 2 (cPickle, protocol 2) writer
# Python 2 pickles a str as SHORT_BINSTRING / BINSTRING (raw bytes, decoded as latin-1 on load) and
# NumPy 1.x pickles arrays as numpy.core.multiarray._reconstruct + ndarray.__setstate__ with the raw
# buffer as such a str. Python 3 cannot produce these opcodes for str, so assemble them directly.

def _str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _py2_array(arr: np.ndarray, module: bytes = b"numpy.core.multiarray") -> bytes:
    arr = np.ascontiguousarray(arr)
    out = b"c" + module + b"\n_reconstruct\n" + b"cnumpy\nndarray\n" + _int(0) + b"\x85" + _str(b"b") + b"\x87R"
    shape = b"(" + b"".join(_int(s) for s in arr.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n" + _str(arr.dtype.str[1:].encode()) + _int(0) + _int(1) + b"\x87R"
             + b"(" + _int(3) + _str(b"<") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb")
    return out + b"(" + _int(1) + shape + dtype + b"\x89" + _str(arr.tobytes()) + b"tb"


def py2_pickle(d: dict) -> bytes:
    """Bytes of ``cPickle.dumps(d, 2)`` under Python 2 for {(str, int): float32 ndarray}."""
    body = b"".join(_str(mod.encode("latin1")) + _int(snr) + b"\x86" + _py2_array(arr)
                    for (mod, snr), arr in d.items())
    return b"\x80\x02}(" + body + b"u."


def make_dict(classes, snrs=SNRS, frames=FRAMES, length=128, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {(c, s): rng.standard_normal((frames, 2, length)).astype(np.float32) for c in classes for s in snrs}


def write(tmp_path, data: bytes, name="RML2016.10a_dict.pkl"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


# ------------------------------------------------------------------------------------------------ tests

def test_py2_writer_is_a_valid_py2_pickle():
    d = make_dict(["QPSK"], snrs=[-2])
    loaded = pickle.loads(py2_pickle(d), encoding="latin1")   # our own bytes: plain pickle is safe here
    assert list(loaded) == [("QPSK", -2)]
    np.testing.assert_array_equal(loaded[("QPSK", -2)], d[("QPSK", -2)])


def test_rml2016_10a_exact_layout(tmp_path):
    d = make_dict(RML2016_10A_CLASSES[::-1])                  # dict order must not matter
    path = write(tmp_path, py2_pickle(d))
    ds = load_dataset(path)
    assert ds.classes == sorted(RML2016_10A_CLASSES) == RML2016_10A_CLASSES
    assert ds.meta == {"source": path, "format": "rml2016", "variant": "RML2016.10a"}
    assert isinstance(ds.iq, np.ndarray) and ds.iq.dtype == np.float32
    assert ds.iq.shape == (11 * len(SNRS) * FRAMES, 2, 128)
    assert sorted(set(ds.snrs.tolist())) == SNRS
    for (mod, snr), arr in d.items():                          # every frame kept with its own label
        sel = (ds.labels == ds.classes.index(mod)) & (ds.snrs == snr)
        np.testing.assert_array_equal(ds.iq[sel], arr)


def test_rml2016_10b_detected_without_am_ssb(tmp_path):
    path = write(tmp_path, py2_pickle(make_dict(RML2016_10B_CLASSES)), "RML2016.10b.dat.pkl")
    ds = read_rml2016(path)
    assert ds.num_classes == 10 and "AM-SSB" not in ds.classes
    assert ds.meta["variant"] == "RML2016.10b"


def test_python3_protocol2_pickle_and_old_numpy_name(tmp_path):
    d = make_dict(["BPSK", "QPSK"])
    modern = pickle.dumps(d, protocol=2)                       # numpy._core names + _codecs.encode
    assert b"numpy._core.multiarray" in modern and b"_codecs" in modern
    old = modern.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    for name, data in (("modern.pkl", modern), ("old.pkl", old)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")                     # no numpy.core deprecation shim touched
            ds = read_rml2016(write(tmp_path, data, name))
        np.testing.assert_array_equal(ds.iq[ds.labels == 1][:FRAMES], d[("QPSK", -20)])


def test_bytes_keys_and_numpy_int_snr(tmp_path):
    d = {(b"QPSK", np.int64(2)): np.ones((2, 2, 16), np.float32),
         (b"BPSK", np.int64(-4)): np.zeros((1, 2, 16), np.float64)}   # float64 is cast to float32
    ds = read_rml2016(write(tmp_path, pickle.dumps(d, protocol=2)))
    assert ds.classes == ["BPSK", "QPSK"] and ds.snrs.tolist() == [-4, 2, 2]
    assert ds.iq.dtype == np.float32 and ds.meta["variant"] is None


@pytest.mark.parametrize("bad, match", [
    ({"QPSK": np.zeros((1, 2, 8), np.float32)}, "keys must be"),
    ({("QPSK", "2"): np.zeros((1, 2, 8), np.float32)}, "must be an integer"),
    ({("QPSK", 2): np.zeros((2, 8), np.float32)}, r"\[k, 2, L\]"),
    ({("QPSK", 2): np.zeros((1, 3, 8), np.float32)}, r"\[k, 2, L\]"),
    ({("QPSK", 2): np.zeros((0, 2, 8), np.float32)}, "no frames"),
    ({("QPSK", 2): np.zeros((1, 2, 8), np.complex64)}, "real floating"),
    ({("QPSK", 2): np.zeros((1, 2, 8), np.float32), ("BPSK", 2): np.zeros((1, 2, 9), np.float32)}, "frame length"),
    ({}, "no \\(modulation, snr\\) entries"),
    ([np.zeros((1, 2, 8), np.float32)], "expected a dict"),
])
def test_layout_errors_name_the_file(tmp_path, bad, match):
    path = write(tmp_path, pickle.dumps(bad, protocol=2), "bad.pkl")
    with pytest.raises(DatasetError, match=match) as info:
        read_rml2016(path)
    assert "bad.pkl" in str(info.value)


def test_non_finite_frame_names_key(tmp_path):
    d = make_dict(["BPSK", "QPSK"])
    d[("QPSK", 0)][1, 0, 5] = np.inf
    with pytest.raises(DatasetError, match=r"key \('QPSK', 0\).*frame 1"):
        load_dataset(write(tmp_path, py2_pickle(d)))


def test_truncated_and_missing(tmp_path):
    data = py2_pickle(make_dict(["BPSK"]))
    for cut in (len(data) // 2, len(data) - 1, 5):
        with pytest.raises(DatasetError, match="trunc.pkl: truncated or corrupt"):
            load_dataset(write(tmp_path, data[:cut], "trunc.pkl"))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "absent.pkl"))


def test_rml2016_10a_protocol0_exact_layout(tmp_path):
    """The published file's own protocol: Python 2 cPickle's default text protocol 0."""
    from helpers.rml_pickle import py2_pickle_protocol0
    d = make_dict(RML2016_10A_CLASSES)
    raw = py2_pickle_protocol0(d)
    assert raw.startswith(b"(dp0\n") and b"\x80" not in raw[:2]
    path = write(tmp_path, raw)
    ds = load_dataset(path)
    assert ds.meta == {"source": path, "format": "rml2016", "variant": "RML2016.10a"}
    assert ds.iq.dtype == np.float32 and ds.iq.shape == (11 * len(SNRS) * FRAMES, 2, 128)
    for (mod, snr), arr in d.items():
        sel = (ds.labels == ds.classes.index(mod)) & (ds.snrs == snr)
        np.testing.assert_array_equal(ds.iq[sel], arr)
