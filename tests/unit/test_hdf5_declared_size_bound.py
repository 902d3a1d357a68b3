"""HDF5 declares shapes for free: a file of a few KiB can declare 10**8 labels whose unwritten chunks read
back as fill values. Labels and SNRs (the arrays a reader holds in memory; frames stay lazy) are checked
against the memory bound (``AMRLIB_MAX_LOAD_BYTES``, else half the available memory) before they are read,
in the generic, RML2018 and own-format readers. Process-level through ``python -m flows data info``."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from amrlib.data import load_dataset
from amrlib.data.dataset import DatasetError
from helpers.cli_process import data_info

MIB = 2**20


def declare(path: Path, n: int, layout: str = "generic") -> Path:
    """Datasets of ``n`` rows that are never written (no storage is allocated)."""
    with h5py.File(path, "w") as f:
        if layout == "own":
            f.create_dataset("iq", shape=(n, 2, 32), dtype="f4", chunks=True)
            f.create_dataset("labels", shape=(n,), dtype="i8", chunks=True)
            f.create_dataset("snrs", shape=(n,), dtype="i8", chunks=True)
            f.attrs["format"], f.attrs["format_version"] = "amr-prune", 1
            f.attrs["classes"], f.attrs["meta"] = json.dumps(["a"]), "{}"
        elif layout == "rml2018":
            f.create_dataset("X", shape=(n, 1024, 2), dtype="f4", chunks=True)
            f.create_dataset("Y", shape=(n, 24), dtype="i1", chunks=True)
            f.create_dataset("Z", shape=(n, 1), dtype="i1", chunks=True)
        else:
            f.create_dataset("X", shape=(n, 2, 32), dtype="f4", chunks=True)
            f.create_dataset("Y", shape=(n,), dtype="i1", chunks=True)
            f.create_dataset("Z", shape=(n,), dtype="i1", chunks=True)
    return path


def test_data_info_refuses_declared_labels_past_the_bound(tmp_path):
    path = declare(tmp_path / "declared.h5", 100_000_000)
    assert path.stat().st_size < 64 * 1024
    code, out, peak = data_info(path, tmp_path, env={"AMRLIB_MAX_LOAD_BYTES": "256M"})
    text = " ".join(out.split())
    assert code == 1, out
    assert f"{path}:Y: 100,000,000 labels would take 858.3 MiB in memory" in text
    assert "AMRLIB_MAX_LOAD_BYTES=256M" in text and "nothing was read" in text
    assert peak < 400 * MIB, f"peak RSS {peak / MIB:.0f} MiB: the labels were read"


@pytest.mark.parametrize("layout, where", [("own", "labels"), ("rml2018", "Y"), ("generic", "Y")])
def test_every_reader_checks_before_reading(tmp_path, monkeypatch, layout, where):
    monkeypatch.setenv("AMRLIB_MAX_LOAD_BYTES", "1M")
    path = declare(tmp_path / "declared.h5", 1_000_000, layout)
    with pytest.raises(DatasetError, match=rf"declared\.h5:{where}: 1,000,000 labels would take .* more than "
                                           r"the 1\.0 MiB one load may take \(AMRLIB_MAX_LOAD_BYTES=1M\)"):
        load_dataset(path, scan=False)


def test_within_the_bound_it_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("AMRLIB_MAX_LOAD_BYTES", "64M")
    assert len(load_dataset(declare(tmp_path / "small.h5", 1000), scan=False)) == 1000
