"""The restricted unpickler admits NumPy array reconstruction and refuses (without running) anything else."""
from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from amrlib.data.dataset import DatasetError
from amrlib.data.safe_pickle import ALLOWED_GLOBALS, ForbiddenGlobalError, safe_load, safe_loads


class _Touch:
    """Unpickling this calls os.system('touch <marker>') under plain pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


@pytest.mark.parametrize("payload_cls", [_Touch, _Eval])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_forbidden_global_raises_and_runs_nothing(tmp_path, payload_cls, protocol):
    marker = tmp_path / "marker"
    # the payload hides after a valid entry inside the dataset dict
    data = {("QPSK", 0): np.zeros((1, 2, 4), np.float32), ("BPSK", 0): payload_cls(marker)}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    with pytest.raises(DatasetError, match=r"evil\.pkl: refusing to unpickle forbidden global '(posix|os|nt)\.system'"
                       if payload_cls is _Touch else r"evil\.pkl: .*forbidden global '(__builtin__\.eval' \(Python 3: )?builtins\.eval") as info:  # noqa: E501
        safe_load(path)
    assert isinstance(info.value, ForbiddenGlobalError)
    assert not marker.exists()


def test_forbidden_class_reference_is_refused_even_uncalled():
    with pytest.raises(ForbiddenGlobalError, match="subprocess.Popen"):
        safe_loads(pickle.dumps(subprocess.Popen, protocol=2), where="x.pkl")


def test_codecs_encode_only_latin1():
    ok = pickle.dumps(b"\x00\xffab", protocol=2)                  # Python 3 writes _codecs.encode(.., 'latin1')
    assert b"_codecs" in ok and safe_loads(ok) == b"\x00\xffab"
    rot13 = ok.replace(b"latin1", b"rot_13")                    # same length: the opcodes stay valid
    with pytest.raises(DatasetError, match="truncated or corrupt.*latin1"):
        safe_loads(rot13)


def test_persistent_ids_refused():
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        safe_loads(b"\x80\x02X\x01\x00\x00\x00aQ.")               # BINPERSID


@pytest.mark.parametrize("value", [
    np.arange(12, dtype=np.float32).reshape(2, 2, 3),
    np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
    np.int64(-20),
    {("QPSK", -20): np.ones((1, 2, 2), np.float32), ("8PSK", 4): np.zeros((1, 2, 2), np.float32)},
    {1, 2, frozenset({3})},
])
def test_allowed_data_round_trips(value):
    out = safe_loads(pickle.dumps(value, protocol=2))
    assert type(out) is type(value)
    if isinstance(value, dict):
        assert out.keys() == value.keys()
        for k in value:
            np.testing.assert_array_equal(out[k], value[k])
    elif isinstance(value, np.ndarray):
        assert out.dtype == value.dtype
        np.testing.assert_array_equal(out, value)
    else:
        assert out == value


def test_allowlist_is_small():
    assert "numpy.core.multiarray._reconstruct" in ALLOWED_GLOBALS
    assert "numpy._core.multiarray._reconstruct" in ALLOWED_GLOBALS
    assert not any(name.split(".")[0] in {"os", "posix", "subprocess", "sys"} for name in ALLOWED_GLOBALS)
    assert "builtins.eval" not in ALLOWED_GLOBALS and "builtins.getattr" not in ALLOWED_GLOBALS


def test_truncated_and_missing(tmp_path):
    data = pickle.dumps({("QPSK", 0): np.zeros((4, 2, 8), np.float32)}, protocol=2)
    with pytest.raises(DatasetError, match="t.pkl: truncated or corrupt"):
        safe_loads(data[: len(data) // 2], where="t.pkl")
    with pytest.raises(DatasetError, match="cannot open"):
        safe_load(tmp_path / "absent.pkl")
