"""A directory (or a pipe) given as a dataset is reported as what it is, not as "no such file"."""
from __future__ import annotations

import os

import pytest

from amrlib.data import load_dataset
from amrlib.data.dataset import DatasetError
from amrlib.data.readers import read_generic, read_own, read_rml2016, read_rml2018
from helpers.cli_process import data_info


def test_data_info_on_a_directory_says_it_is_one(tmp_path):
    folder = tmp_path / "RML2016.10a"
    folder.mkdir()
    (folder / "RML2016.10a_dict.pkl").write_bytes(b"")
    code, out, _ = data_info(folder, tmp_path)
    assert code == 1, out
    assert f"{folder}: is a directory, not a dataset file" in out and "no such file" not in out
    assert "dataset files in it: RML2016.10a_dict.pkl" in out


@pytest.mark.parametrize("reader", [load_dataset, read_rml2016, read_rml2018, read_generic, read_own])
def test_every_reader_says_directory(tmp_path, reader):
    with pytest.raises(DatasetError, match="is a directory, not a dataset file"):
        reader(tmp_path)
    with pytest.raises(DatasetError, match="is a directory"):
        read_generic(tmp_path / "..")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(DatasetError, match=r"d\.npz: is a directory"):
        read_generic(tmp_path / "d.npz")


def test_a_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "frames.h5"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match=r"frames\.h5: not a regular file"):
        load_dataset(fifo)


def test_missing_file_still_says_so(tmp_path):
    with pytest.raises(DatasetError, match=r"absent\.pkl: no such file"):
        load_dataset(tmp_path / "absent.pkl")
