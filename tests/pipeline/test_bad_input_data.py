"""Bad dataset files, each imported into a project that already has a dataset: every one is refused with
an error naming the file and the problem, and nothing already saved changes (the .dvc pointer, data/,
the DVC cache and remote). A pickle that tries to run code runs nothing. The readers' own tests
(test_read_*.py, test_safe_pickle.py, test_store.py) cover more variants of each; this is the matrix the
user meets through ``amr-prune data import``."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from datastore.dvc_store import DataStoreError, fetch
from datastore.importing import import_dataset
from fixtures_pipeline import TINY_DATA, make_project

N, L = 24, 32
NAMES = ["BPSK", "QPSK", "WBFM"]
quiet = dict(log=lambda *a: None)


class _RunsCode:
    """Under plain pickle this would create ``marker`` (os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _generic(path: Path, change=None, attrs=None) -> None:
    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(N, 2, L)).astype(np.float32), "Y": np.eye(3)[np.arange(N) % 3],
              "Z": np.repeat([-10, 0, 10, 20], N // 4).astype(np.int64)}
    if change:
        change(arrays)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        f.attrs["classes"] = json.dumps(NAMES)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v


def _own(path: Path, change) -> None:
    """The project's own format (amr-prune HDF5), written by hand so that it can be wrong."""
    arrays = {"iq": np.zeros((N, 2, L), np.float32), "labels": np.arange(N) % 3, "snrs": np.zeros(N, np.int64)}
    change(arrays)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        f.attrs["format"], f.attrs["format_version"] = "amr-prune", 1
        f.attrs["classes"], f.attrs["meta"] = json.dumps(NAMES), "{}"


def _rml2016(path: Path, payload=None, cut: float | None = None) -> None:
    d = {(m, s): np.ones((2, 2, L), np.float32) for m in NAMES for s in (0, 10)}
    if payload is not None:
        d[("QPSK", 0)] = payload
    data = pickle.dumps(d, protocol=2)
    path.write_bytes(data[: int(len(data) * cut)] if cut else data)


def _setitem(key, index, value):
    def change(a):
        a[key][index] = value
    return change


def _two_ones(a):
    a["Y"][3, 2] = 1


def _misname_x(a):
    a["x"] = a.pop("X")


CASES = {   # file name -> (writer, what the error must say)
    "truncated.pkl": (lambda p, m: _rml2016(p, cut=0.6), r"truncated\.pkl: truncated or corrupt pickle"),
    "runs-code.pkl": (lambda p, m: _rml2016(p, payload=_RunsCode(m)),
                      r"runs-code\.pkl: refusing to unpickle forbidden global '(posix|os|nt)\.system'"),
    "missing-key.h5": (lambda p, m: _generic(p, lambda a: a.pop("Z")),
                       r"missing dataset 'Z' in .*missing-key\.h5; found: X, Y"),
    "misnamed-key.h5": (lambda p, m: _generic(p, _misname_x),
                        r"missing dataset 'X' in .*misnamed-key\.h5; found: Y, Z, x"),
    "wrong-shape.h5": (lambda p, m: _generic(p, lambda a: a.update(X=np.zeros((N, 3, L), np.float32))),
                       r"wrong-shape\.h5:X: frames must be \[N, 2, L\] or \[N, L, 2\]"),
    "wrong-dtype.h5": (lambda p, m: _generic(p, lambda a: a.update(X=np.zeros((N, 2, L), "S1"))),
                       r"wrong-dtype\.h5:X: frames must be real floating point or complex, got dtype \|S1"),
    "not-one-hot.h5": (lambda p, m: _generic(p, _two_ones), r"not-one-hot\.h5:Y: label row 3 is not one-hot"),
    "snr-length.h5": (lambda p, m: _generic(p, lambda a: a.update(Z=a["Z"][:-4])),
                      r"snr-length\.h5:Z: SNRs must be \[N\] or \[N, 1\] with N = 24 frames, got shape \(20,\)"),
    "nan.h5": (lambda p, m: _generic(p, _setitem("X", (5, 1, 7), np.nan)),
               r"nan\.h5: non-finite samples \(NaN/Inf\) in frame 5"),
    "inf.h5": (lambda p, m: _generic(p, _setitem("X", (17, 0, 0), -np.inf)),
               r"inf\.h5: non-finite samples \(NaN/Inf\) in frame 17"),
    "empty-class.h5": (lambda p, m: _generic(p, lambda a: a.update(Y=np.eye(3)[np.arange(N) % 2 * 2])),
                       r"empty-class\.h5: class 'QPSK' has no frames"),
    "own-wrong-dtype.h5": (lambda p, m: _own(p, lambda a: a.update(iq=a["iq"].astype(np.float64))),
                           r"own-wrong-dtype\.h5: iq must be float32 \[n, 2, L\], got float64"),
    "own-snr-length.h5": (lambda p, m: _own(p, lambda a: a.update(snrs=a["snrs"][:-1])),
                          r"own-snr-length\.h5: snrs must be integer \[24\], got int64 \(23,\)"),
    "own-label-range.h5": (lambda p, m: _own(p, _setitem("labels", 4, 7)),
                           r"own-label-range\.h5: labels out of range 0\.\.2"),
}


def _tree(root: Path) -> dict[str, str]:
    """md5 of every file under data/, the DVC cache and the remote, plus the .dvc pointer."""
    out = {}
    for base in (root / "data", root / ".dvc" / "cache", root.parent / "remote"):
        for p in sorted(base.rglob("*")) if base.exists() else []:
            if p.is_file():
                out[str(p)] = hashlib.md5(p.read_bytes()).hexdigest()
    out["tiny.dvc"] = (root / "tiny.dvc").read_text()
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-data")
    root = make_project(tmp / "proj", tmp / "remote")
    fetch(root, "tiny.dvc", None, TINY_DATA, **quiet)              # the dataset already saved
    return root


@pytest.mark.parametrize("name", list(CASES))
def test_bad_dataset_is_refused_and_nothing_saved_changes(project, tmp_path, name):
    write, message = CASES[name]
    marker = tmp_path / "code-ran"
    src = tmp_path / name
    write(src, marker)
    before = _tree(project)
    with pytest.raises(DataStoreError, match=message) as err:
        import_dataset(project, src, "tiny.dvc", None, **quiet)
    assert str(err.value).startswith("cannot import: ") and str(src) in str(err.value)
    assert _tree(project) == before                              # pointer, data, cache and remote untouched
    assert not marker.exists()                                   # nothing in the file was executed
    assert not (project / "data" / f"{src.stem}.h5").exists()


def test_frame_length_a_model_cannot_take(tmp_path):
    """CNN1D pools six times: a 32-sample frame is too short. The error names model, dataset and limit,
    before anything is written."""
    from amrlib.models import ModelError, build_model
    from tasks.train import pretrain
    with pytest.raises(ModelError, match=r"cnn1d cannot be built for 4 classes and frame length 32: "
                                         r"frame length 32 is too short for 6 pooling stacks"):
        build_model("cnn1d", 4, 32)
    data = {"path": str(tmp_path / "short.h5"), "relpath": "data/short.h5", "md5": "0" * 32,
            "classes": ["a", "b", "c", "d"], "frame_length": 32}
    runs = tmp_path / "runs"
    with pytest.raises(ModelError, match=r"model.name 'cnn1d' cannot take the dataset data/short.h5 "
                                         r"\(4 classes, frame length 32\)"):
        pretrain.fn({"epochs": 1, "batch_size": 8, "lr": 1e-3, "step_size": 10, "gamma": 0.8, "weight_decay": 0,
                     "seed": 0, "patience": None, "checkpoint_every": None, "reuse_alias": None},
                    {"name": "cnn1d", "seed": 0}, data, {"fractions": [0.7, 0.15, 0.15], "seed": 0}, str(runs), None)
    assert not list(runs.rglob("*.pt")) and not list(runs.rglob("result.json"))


def test_dataset_of_another_frame_length_or_class_count_is_refused_by_the_model(toy):
    """A model meets data it was not built for (a new dataset imported under a registered model): a clear
    error instead of a shape crash deep inside (CNN1D) or silently wrong results (a ResNet pools globally)."""
    from amrlib.models import ModelError, build_model
    from amrlib.train import evaluate, fit
    toy.meta["source"] = "data/toy.h5"
    for name in ("resnet20", "cnn1d"):
        model = build_model(name, 3, 256)                         # the toy data has 3 classes of 128 samples
        with pytest.raises(ModelError, match=rf"{name} was built for 3 classes and frame length 256, but the "
                                             r"dataset data/toy.h5 has 3 classes and frame length 128"):
            evaluate(model, toy)
    with pytest.raises(ModelError, match=r"built for 5 classes .* training set data/toy.h5 has 3 classes"):
        fit(build_model("cnn1d", 5, 128), toy, toy, epochs=1)
