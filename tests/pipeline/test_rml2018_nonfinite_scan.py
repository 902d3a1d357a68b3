"""An RML2018.01a-layout file with a NaN/Inf sample fails at fetch, import and info with a message naming
the user's file (not the converted destination), found by a streamed scan (bounded chunks); nothing
tracked changes. Process-level: ``python -m flows data ...`` in a throw-away DVC project."""
from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from amrlib.data import load_dataset
from amrlib.data.dataset import DatasetError
from fixtures_pipeline import make_project, tiny_config
from helpers.cli_process import data_info, run_cli

N, L = 48, 1024


def write_gold(path: Path, bad_frame: int | None = 5, value: float = np.nan) -> Path:
    """RML2018.01a layout: X float32 [N, 1024, 2], Y one-hot [N, 24], Z int [N, 1]."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, L, 2)).astype(np.float32)
    if bad_frame is not None:
        x[bad_frame, 300, 1] = value
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=x, chunks=(4, L, 2))
        f.create_dataset("Y", data=np.eye(24, dtype=np.int64)[np.arange(N) % 24])
        f.create_dataset("Z", data=np.repeat([-10, 10], N // 2).reshape(N, 1))
    return path


def tracked_state(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.parts and "tmp" not in p.relative_to(root).parts[:2]}


@pytest.fixture()
def project(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    return root, tiny_config(root)


def test_import_names_the_users_file_and_changes_nothing(project, tmp_path):
    root, cfg = project
    src = write_gold(tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5")
    before = tracked_state(root)
    code, out, _ = run_cli("data", "import", src, "-c", cfg, cwd=root)
    text = " ".join(out.split())
    assert code == 1, out
    assert f"cannot import: {src}: non-finite samples (NaN/Inf) in frame 5 (file row 5)" in text
    assert "refusing to save" not in text and str(root / "data") not in text       # not the destination
    assert tracked_state(root) == before


def test_fetch_of_a_tracked_file_with_inf_stops(project):
    root, cfg = project
    data = write_gold((root / "data").mkdir() or root / "data" / "gold.hdf5", bad_frame=17, value=-np.inf)
    md5 = hashlib.md5(data.read_bytes()).hexdigest()
    (root / "tiny.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {data.stat().st_size}\n  hash: md5\n"
                                   f"  path: data/gold.hdf5\n")
    before = tracked_state(root)
    code, out, _ = run_cli("data", "fetch", "-c", cfg, cwd=root)
    assert code == 1, out
    assert f"{data}: non-finite samples (NaN/Inf) in frame 17 (file row 17)" in " ".join(out.split())
    assert tracked_state(root) == before


def test_data_info_reports_the_nan(tmp_path):
    src = write_gold(tmp_path / "nan.hdf5")
    code, out, _ = data_info(src, tmp_path)
    assert code == 1 and f"{src}: non-finite samples (NaN/Inf) in frame 5" in " ".join(out.split())


def test_the_scan_is_streamed_in_bounded_chunks(tmp_path, monkeypatch):
    src = write_gold(tmp_path / "late.hdf5", bad_frame=N - 1)
    reads = []
    import amrlib.data.dataset as dataset
    original = dataset.LazyIQ.__getitem__

    def spy(self, idx):
        out = original(self, idx)
        reads.append(len(out))
        return out
    monkeypatch.setattr(dataset.LazyIQ, "__getitem__", spy)
    with pytest.raises(DatasetError, match=rf"late\.hdf5: non-finite .* frame {N - 1}"):
        load_dataset(src, chunk_rows=8)
    assert reads and max(reads) <= 8 and sum(reads) == N


def test_a_clean_file_still_loads(tmp_path):
    assert len(load_dataset(write_gold(tmp_path / "ok.hdf5", bad_frame=None))) == N
