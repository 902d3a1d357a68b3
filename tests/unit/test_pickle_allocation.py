"""The restricted unpickler refuses to allocate from an integer (``bytearray(N)``, ``numpy.ndarray(shape)``,
``_reconstruct`` with a huge shape) and charges every array and byte string to a budget tied to the file's
size; forged dtype states (flags that make NumPy read floats as pointers) are refused. The real
RML2016.10a layout (Python 2, protocol 0, ``_reconstruct`` + ``ndarray.__setstate__`` with a latin-1
string) keeps loading. Process-level: ``python -m flows data info FILE`` on each file, its peak RSS taken
from ``os.wait4``."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from amrlib.data.dataset import DatasetError
from amrlib.data.safe_pickle import RefusedAllocationError, RestrictedUnpickler, safe_loads
from helpers.cli_process import data_info as cli_info
from helpers.rml_pickle import py2_pickle_protocol0, rml2016_dict

GIB = 2**30
#: ``{('BPSK', 0): bytearray(1.5 GiB)}`` at protocol 2: 59 bytes.
BYTEARRAY_BOMB = (b"\x80\x02}q\x00X\x04\x00\x00\x00BPSKq\x01K\x00\x86q\x02c__builtin__\nbytearray\nq\x03"
                  b"J\x00\x00\x00\x60\x85q\x04Rq\x05s.")


def _reconstruct_pickle(shape: tuple[int, ...]) -> bytes:
    """``_reconstruct(numpy.ndarray, shape, b'b')`` as NumPy writes it, with another shape."""
    dims = b"".join(b"J" + int(s).to_bytes(4, "little") for s in shape)
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n(" + dims + b"tC\x01b\x87R.")


def _forged_flags(arr: np.ndarray, flags: int) -> bytes:
    """A protocol-2 pickle of ``arr`` whose dtype state carries ``flags`` (NumPy takes them as given)."""
    data = pickle.dumps(arr, protocol=2)
    tail = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert data.count(tail) == 1
    return data.replace(tail, tail[:-2] + bytes([flags]) + b"t")


def test_bytearray_bomb_is_refused_before_allocating(tmp_path):
    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(BYTEARRAY_BOMB)
    assert len(BYTEARRAY_BOMB) < 64
    code, out, peak = cli_info(bomb, tmp_path)
    assert code == 1, out
    assert "bomb.pkl" in out and "bytearray() of an integer argument" in out and "Traceback" not in out
    assert peak < 1 * GIB, f"peak RSS {peak / GIB:.2f} GiB: the 1.5 GiB bytearray was allocated"


def test_real_rml2016_layout_still_loads_through_the_cli(tmp_path):
    good = tmp_path / "RML2016.10a_dict.pkl"
    good.write_bytes(py2_pickle_protocol0(rml2016_dict(["8PSK", "BPSK", "QPSK"], [-10, 0, 10], frames=4)))
    code, out, _ = cli_info(good, tmp_path)
    assert code == 0, out
    assert "36" in out and "BPSK (12)" in out


@pytest.mark.parametrize("name, data, match", [
    ("bytes-int", b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x60\x85R.", r"bytes\(\) of an integer"),
    ("ndarray-call", b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x60\x85\x85R.", r"call of numpy\.ndarray"),
    ("huge-reconstruct", _reconstruct_pickle((60000, 60000)), r"_reconstruct\(ndarray, \(60000, 60000\), int8\): "
                                                              r"it would allocate 3\.4 GiB, more than a pickle of"),
    ("forged-flags", _forged_flags(np.full(4, 1e-300), 1), r"dtype state for float64 that differs.*flags 1"),
    ("object-array", pickle.dumps(np.array([1, "a"], dtype=object), protocol=2), r"dtype 'O8'"),
    ("structured", pickle.dumps(np.zeros(2, dtype=[("a", "f4")]), protocol=2), r"dtype 'V4'"),
])
def test_allocation_style_and_forged_globals_are_refused(name, data, match):
    with pytest.raises(RefusedAllocationError, match=rf"{name}\.pkl: refusing to unpickle .*{match}"):
        safe_loads(data, where=f"{name}.pkl")


def test_every_array_is_charged_to_the_budget():
    d = {("QPSK", s): np.zeros((64, 2, 128), np.float32) for s in range(4)}     # 4 x 64 KiB of data
    data = pickle.dumps(d, protocol=2)
    import io
    ok = RestrictedUnpickler(io.BytesIO(data), max_bytes=3 * len(data)).load()
    assert all(type(v) is np.ndarray and v.shape == (64, 2, 128) for v in ok.values())
    with pytest.raises(RefusedAllocationError, match=r"x\.pkl: .*budget 128\.0 KiB"):
        RestrictedUnpickler(io.BytesIO(data), where="x.pkl", max_bytes=128 * 1024).load()


def test_array_data_of_the_wrong_length_is_corrupt():
    data = pickle.dumps(np.zeros(4, np.float32), protocol=2)
    shorter = data.replace(b"X\x10\x00\x00\x00" + b"\x00" * 16, b"X\x0c\x00\x00\x00" + b"\x00" * 12)
    assert shorter != data
    with pytest.raises(DatasetError, match=r"s\.pkl: truncated or corrupt pickle .*holds 12 bytes .*needs 16"):
        safe_loads(shorter, where="s.pkl")
