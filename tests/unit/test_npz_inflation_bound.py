"""NPZ members are measured from the zip directory and their .npy headers before anything is inflated:
a small file that inflates past the bound (``AMRLIB_MAX_LOAD_BYTES``, else half the available memory)
is refused naming the file and the member, and so is a header whose shape disagrees with the member's
size. Process-level through ``python -m flows data info``; peak RSS from ``os.wait4``."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from amrlib.data import load_dataset
from amrlib.data.dataset import DatasetError
from helpers.cli_process import data_info

MIB = 2**20
N, L = 51200, 1024                   # X: 51200 x 2 x 1024 float32 = 400 MiB of zeros


def write_bomb(path: Path, n: int = N, length: int = L, header_shape=None) -> None:
    """An .npz whose X member is ``n`` zero frames, streamed through deflate (memory-flat to write)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fp:
            np.lib.format.write_array_header_1_0(fp, {"descr": "<f4", "fortran_order": False,
                                                      "shape": header_shape or (n, 2, length)})
            chunk = bytes(8 * MIB)
            left = n * 2 * length * 4
            while left:
                fp.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
        for key, arr in (("Y", np.arange(n) % 3), ("Z", np.zeros(n, np.int64))):
            with zf.open(f"{key}.npy", "w") as fp:
                np.lib.format.write_array(fp, arr)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("npz") / "bomb.npz"
    write_bomb(path)
    assert path.stat().st_size < 2 * MIB
    return path


def test_bomb_is_refused_before_inflation(bomb):
    small = bomb.with_name("small.npz")
    np.savez(small, X=np.zeros((12, 2, 64), np.float32), Y=np.arange(12) % 3, Z=np.zeros(12, np.int64))
    code, out, baseline = data_info(small, bomb.parent)               # the command itself, on a tiny file
    assert code == 0, out
    code, out, peak = data_info(bomb, bomb.parent, env={"AMRLIB_MAX_LOAD_BYTES": "64M"})
    assert code == 1, out
    assert f"{bomb}: member 'X' would inflate to 400.0 MiB" in " ".join(out.split())
    assert "AMRLIB_MAX_LOAD_BYTES=64M" in out and "nothing was inflated" in out and "Traceback" not in out
    assert peak < baseline + 100 * MIB, f"peak RSS {peak / MIB:.0f} MiB vs {baseline / MIB:.0f}: X was inflated"


def test_bomb_loads_when_the_bound_allows(bomb):
    ds = load_dataset(bomb, max_bytes=2**31)
    assert len(ds) == N and ds.frame_length == L


def test_header_that_disagrees_with_the_member_size(tmp_path):
    path = tmp_path / "liar.npz"
    write_bomb(path, n=12, length=64, header_shape=(10**7, 2, 1024))        # declares 76 GiB, holds 6 KiB
    with pytest.raises(DatasetError, match=r"liar\.npz: member 'X': header declares \(10000000, 2, 1024\) of "
                                           r"float32 \(76\.3 GiB\) but the zip directory says .*6\.0 KiB"):
        load_dataset(path)


def test_members_count_together(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, X=np.zeros((64, 2, 128), np.float32), Y=np.zeros((64, 3)), Z=np.zeros(64))
    with pytest.raises(DatasetError, match=r"two\.npz: member 'Y' would inflate to 1\.5 KiB .* with the members "
                                           r"before it.*max_bytes"):
        load_dataset(path, max_bytes=64 * 2 * 128 * 4 + 1000)
