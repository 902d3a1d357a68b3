"""HDF5 datasets whose bytes live outside the file (external storage, virtual datasets, external links,
soft links that lead to one) are refused by every HDF5 reader (the project's own format, RML2018.01a,
generic X/Y/Z) naming the file and the dataset, before the other file is read; there is no opt-in. A
refused ``data import`` changes nothing tracked, and nothing reaches the DVC remote."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from amrlib.data import load_dataset
from amrlib.data.dataset import DatasetError
from fixtures_pipeline import make_project, tiny_config
from helpers.cli_process import data_info, run_cli

N = 24
SECRET = np.arange(N * 2 * 1024, dtype=np.float32)       # "another local file" the author points at

LAYOUTS = {  # format: (frames key, frames shape, the other datasets)
    "own": ("iq", (N, 2, 32), {"labels": np.arange(N) % 3, "snrs": np.zeros(N, np.int64)}),
    "rml2018": ("X", (N, 1024, 2), {"Y": np.eye(24)[np.arange(N) % 24], "Z": np.zeros((N, 1), np.int64)}),
    "generic": ("X", (N, 2, 32), {"Y": np.arange(N) % 3, "Z": np.zeros(N, np.int64)}),
}


def write(path: Path, layout: str, kind: str) -> Path:
    key, shape, others = LAYOUTS[layout]
    other = path.with_name(f"{path.stem}-other.bin")
    nbytes = int(np.prod(shape)) * 4
    SECRET[: nbytes // 4].tofile(other)
    src = path.with_name(f"{path.stem}-src.h5")
    with h5py.File(src, "w") as s:
        s.create_dataset("frames", data=SECRET[: nbytes // 4].reshape(shape))
    with h5py.File(path, "w") as f:
        for k, v in others.items():
            f.create_dataset(k, data=v)
        if kind == "external-storage":
            f.create_dataset(key, shape=shape, dtype="<f4", external=[(str(other), 0, nbytes)])
        elif kind == "virtual":
            layout_v = h5py.VirtualLayout(shape=shape, dtype="<f4")
            layout_v[...] = h5py.VirtualSource(str(src), "frames", shape=shape)
            f.create_virtual_dataset(key, layout_v)
        elif kind == "external-link":
            f[key] = h5py.ExternalLink(str(src), "/frames")
        elif kind == "soft-to-external":
            f["elsewhere"] = h5py.ExternalLink(str(src), "/frames")
            f[key] = h5py.SoftLink("/elsewhere")
        if layout == "own":
            f.attrs["format"], f.attrs["format_version"] = "amr-prune", 1
            f.attrs["classes"], f.attrs["meta"] = json.dumps(["a", "b", "c"]), "{}"
        elif layout == "generic":
            f.attrs["classes"] = json.dumps(["a", "b", "c"])
    return path


def tracked_state(root: Path) -> dict[Path, bytes]:
    """Every file of the project but git's and DVC's runtime folders (locks, timestamps)."""
    return {p: p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.parts and "tmp" not in p.relative_to(root).parts[:2]}


MESSAGES = {"external-storage": r"uses HDF5 external storage \(its bytes are in .*-other\.bin\)",
            "virtual": r"is a virtual dataset \(mapped onto .*-src\.h5\)",
            "external-link": r"is an external link \(/{key} -> .*-src\.h5:/frames\)",
            "soft-to-external": r"is an external link \(/elsewhere -> .*-src\.h5:/frames\)"}


@pytest.mark.parametrize("kind", list(MESSAGES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_reader_refuses_data_from_outside_the_file(tmp_path, layout, kind):
    path = write(tmp_path / "outside.h5", layout, kind)
    key = LAYOUTS[layout][0]
    with pytest.raises(DatasetError, match=rf"outside\.h5: dataset '{key}' " + MESSAGES[kind].format(key=key)
                       + r"; refusing to read data from outside the file"):
        load_dataset(path, format={"own": None}.get(layout, layout))


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_data_info_refuses_and_names_file_and_dataset(tmp_path, kind):
    path = write(tmp_path / "outside.h5", "generic", kind)
    code, out, _ = data_info(path, tmp_path)
    text = " ".join(out.split())
    assert code == 1, out
    assert f"{path}: dataset 'X'" in text and "refusing to read data from outside the file" in text


def test_refused_import_changes_nothing_tracked(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    (tmp_path / "remote").mkdir(exist_ok=True)
    cfg = tiny_config(root)
    path = write(tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5", "rml2018", "external-storage")
    before = tracked_state(root)
    code, out, _ = run_cli("data", "import", path, "-c", cfg, cwd=root)
    assert code == 1, out
    assert f"{path}: dataset 'X' uses HDF5 external storage" in " ".join(out.split())
    assert tracked_state(root) == before
    assert not any(p.is_file() for p in (tmp_path / "remote").rglob("*"))


def test_in_file_soft_link_is_fine(tmp_path):
    path = tmp_path / "soft.h5"
    key, shape, others = LAYOUTS["generic"]
    with h5py.File(path, "w") as f:
        for k, v in others.items():
            f.create_dataset(k, data=v)
        f.create_dataset("frames/real", data=np.ones(shape, np.float32))
        f["X"] = h5py.SoftLink("frames/real")
    assert len(load_dataset(path)) == N
