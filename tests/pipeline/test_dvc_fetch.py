"""The versioned dataset: generate-and-push from an empty remote, pull with identical bytes on a second
clone, the committed default dataset regenerates to the md5 data.dvc pins, and every failure is clear."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from datastore.dvc_store import DataStoreError, fetch, file_md5, read_dvc_file
from datastore.importing import import_dataset
from fixtures_pipeline import ROOT, TINY_DATA, clone, commit_all, make_project

quiet = dict(log=lambda *a: None)


def _remote_objects(remote: Path) -> list[Path]:
    return [p for p in remote.rglob("*") if p.is_file()]


def test_first_generation_then_second_clone_pulls_identical_bytes(tmp_path):
    remote = tmp_path / "remote"
    a = make_project(tmp_path / "a", remote)
    info = fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    rec = read_dvc_file(a, "tiny.dvc")
    assert rec["md5"] == info["md5"] == file_md5(a / "data/tiny.h5")
    assert rec["meta"]["synthetic"]["frames_per_key"] == TINY_DATA["frames_per_key"]
    assert info["frames"] == 12 * 4 * 4
    assert info["classes"] == sorted(TINY_DATA["classes"], key=TINY_DATA["classes"].index)
    assert _remote_objects(remote), "the dataset was not pushed"
    commit_all(a)

    b = clone(a, tmp_path / "b")                       # a second machine: same remote, no data
    assert not (b / "data/tiny.h5").exists()
    logs = []
    info_b = fetch(b, "tiny.dvc", None, None, log=logs.append)
    assert info_b["md5"] == info["md5"] == file_md5(b / "data/tiny.h5")
    assert any("dvc pull" in line for line in logs) and not any("generating" in line for line in logs)


def test_committed_default_dataset_regenerates_to_the_pinned_md5(tmp_path):
    """A fresh clone of this repository with an empty remote: fetch generates the default dataset from the
    settings recorded in data.dvc, checks its md5 against data.dvc, pushes it; a third clone pulls it."""
    remote = tmp_path / "empty-remote"
    a = make_project(tmp_path / "a", remote)
    shutil.copy(ROOT / "data.dvc", a / "data.dvc")
    pinned = read_dvc_file(a, "data.dvc")
    logs = []
    info = fetch(a, "data.dvc", None, None, log=logs.append)
    assert any("generating" in line for line in logs)
    assert info["md5"] == pinned["md5"] == file_md5(a / pinned["path"])
    assert info["frames"] == 60 * 11 * 20
    # DVC re-serialises the .dvc file on commit (wrapping meta's long lines): fetching must leave it as committed
    assert (a / "data.dvc").read_text() == (ROOT / "data.dvc").read_text()
    assert _remote_objects(remote)
    commit_all(a)
    c = clone(a, tmp_path / "c")
    assert fetch(c, "data.dvc", None, None, **quiet)["md5"] == pinned["md5"]


def test_local_modification_is_never_overwritten(tmp_path):
    a = make_project(tmp_path / "a", tmp_path / "remote")
    fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    path = a / "data/tiny.h5"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataStoreError, match="differs from .* recorded in tiny.dvc .*Not overwriting"):
        fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    assert path.read_bytes() == bytes(data)


def test_untracked_file_in_the_way_is_not_overwritten(tmp_path):
    a = make_project(tmp_path / "a", tmp_path / "remote")
    (a / "data").mkdir()
    (a / "data/tiny.h5").write_bytes(b"mine")
    with pytest.raises(DataStoreError, match="exists but no tiny.dvc tracks it"):
        fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    assert (a / "data/tiny.h5").read_bytes() == b"mine"


def _corrupt(remote: Path) -> None:
    for obj in _remote_objects(remote):                # flip one byte of every stored object
        raw = bytearray(obj.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        obj.chmod(0o644)
        obj.write_bytes(bytes(raw))


def test_corrupt_remote_copy_is_never_used(tmp_path):
    """DVC sees a remote object that fails its checksum as absent: a generated dataset is regenerated
    (to the pinned md5), an imported one fails with a clear message."""
    remote = tmp_path / "remote"
    a = make_project(tmp_path / "a", remote)
    fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    commit_all(a)
    _corrupt(remote)
    b = clone(a, tmp_path / "b")
    logs = []
    info = fetch(b, "tiny.dvc", None, None, log=logs.append)
    assert info["md5"] == read_dvc_file(a, "tiny.dvc")["md5"] == file_md5(b / "data/tiny.h5")
    assert any("has no valid copy" in line for line in logs)

    remote2 = tmp_path / "remote2"
    c = make_project(tmp_path / "c", remote2)
    shutil.copy(a / "data/tiny.h5", tmp_path / "real.h5")
    import_dataset(c, tmp_path / "real.h5", "real.dvc", None, **quiet)
    commit_all(c)
    _corrupt(remote2)
    d = clone(c, tmp_path / "d")
    with pytest.raises(DataStoreError, match="fails the checksum, and real.dvc records no generator settings"):
        fetch(d, "real.dvc", None, None, **quiet)
    assert not (d / "data/real.h5").exists()


def test_generator_mismatch_is_refused(tmp_path):
    """data.dvc pins an md5 that the recorded settings do not produce: refuse, write nothing."""
    a = make_project(tmp_path / "a", tmp_path / "remote")
    (a / "tiny.dvc").write_text(yaml.safe_dump({
        "outs": [{"md5": "0" * 32, "size": 1, "hash": "md5", "path": "data/tiny.h5"}],
        "meta": {"synthetic": {**{k: v for k, v in TINY_DATA.items() if k != "path"}, "generator_version": "1.0.0"}}}))
    with pytest.raises(DataStoreError, match="not byte-reproducible"):
        fetch(a, "tiny.dvc", None, None, **quiet)
    assert not (a / "data/tiny.h5").exists() and not list((a / "data").glob("*"))


def test_missing_remote_and_unknown_data_are_clear(tmp_path):
    a = make_project(tmp_path / "a", None)             # no remote configured at all
    with pytest.raises(DataStoreError, match="no DVC remote configured"):
        fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    with pytest.raises(DataStoreError, match="remote 'team' is not configured"):
        fetch(a, "tiny.dvc", "team", TINY_DATA, **quiet)
    b = make_project(tmp_path / "b", tmp_path / "remote")
    (b / "x.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "1" * 32, "size": 1, "hash": "md5", "path": "x.h5"}]}))
    with pytest.raises(DataStoreError, match="not in DVC remote .* records no generator settings"):
        fetch(b, "x.dvc", None, None, **quiet)
    (b / "broken.dvc").write_text("outs: 3\n")
    with pytest.raises(DataStoreError, match="broken.dvc: not a usable single-file .dvc file"):
        fetch(b, "broken.dvc", None, None, **quiet)


def test_unreachable_s3_remote_is_clear(tmp_path, monkeypatch):
    from fixtures_pipeline import DVC, free_port, run
    a = make_project(tmp_path / "a", None)
    run([DVC, "remote", "add", "-d", "team", "s3://bucket/store"], a)
    run([DVC, "remote", "modify", "team", "endpointurl", f"http://127.0.0.1:{free_port()}"], a)
    run([DVC, "remote", "modify", "team", "region", "us-east-1"], a)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    shutil.copy(ROOT / "data.dvc", a / "data.dvc")
    with pytest.raises(DataStoreError, match="cannot reach DVC remote 'team'"):
        fetch(a, "data.dvc", None, None, **quiet)


def test_unreadable_dataset_is_clear(tmp_path):
    a = make_project(tmp_path / "a", tmp_path / "remote")
    (a / "data").mkdir()
    junk = a / "data/junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    (a / "junk.dvc").write_text(yaml.safe_dump({"outs": [{"md5": file_md5(junk), "size": junk.stat().st_size,
                                                         "hash": "md5", "path": "data/junk.h5"}]}))
    with pytest.raises(DataStoreError, match="dataset unreadable: .*junk.h5"):
        fetch(a, "junk.dvc", None, None, **quiet)


def test_import_rml2016_pickle_replaces_the_pointer_and_pushes(tmp_path):
    remote = tmp_path / "remote"
    a = make_project(tmp_path / "a", remote)
    fetch(a, "tiny.dvc", None, TINY_DATA, **quiet)
    old = read_dvc_file(a, "tiny.dvc")
    rng = np.random.default_rng(0)
    mods = ["BPSK", "QPSK", "8PSK"]
    src = tmp_path / "RML-mini.pkl"
    with open(src, "wb") as fh:                         # the RML2016.10a layout: {(mod, snr): [k, 2, 128]}
        pickle.dump({(m, s): rng.normal(size=(5, 2, 128)).astype(np.float32) for m in mods for s in (-2, 0, 2)}, fh)
    logs = []
    info = import_dataset(a, src, "tiny.dvc", None, log=logs.append)
    new = read_dvc_file(a, "tiny.dvc")
    assert new["path"] == "data/RML-mini.h5" and new["md5"] == info["md5"] != old["md5"]
    assert new["meta"]["imported_from"]["format"] == "rml2016"
    assert info["frames"] == 45 and sorted(info["classes"]) == sorted(mods)
    assert any("now points to" in line and old["md5"] in line for line in logs)
    commit_all(a)
    b = clone(a, tmp_path / "b")                        # the next run on another machine uses it
    assert fetch(b, "tiny.dvc", None, None, **quiet)["md5"] == info["md5"]
    with pytest.raises(DataStoreError, match="already exists: not overwriting"):
        import_dataset(a, src, "tiny.dvc", None, **quiet)
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(DataStoreError, match="cannot import: .*bad.pkl"):
        import_dataset(a, bad, "tiny.dvc", None, **quiet)
    assert read_dvc_file(a, "tiny.dvc")["md5"] == info["md5"]      # a failed import changes nothing


def test_cli_fetch_and_import(tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from fixtures_pipeline import tiny_config
    a = make_project(tmp_path / "a", tmp_path / "remote")
    cfg = tiny_config(a)
    out = CliRunner().invoke(app, ["data", "fetch", "-c", str(cfg)])
    assert out.exit_code == 0, out.output
    assert read_dvc_file(a, "tiny.dvc")["md5"] in out.output
    bad = tmp_path / "junk.pkl"
    bad.write_bytes(b"junk")
    out = CliRunner().invoke(app, ["data", "import", str(bad), "-c", str(cfg)])
    assert out.exit_code == 1 and "cannot import" in out.output and "junk.pkl" in out.output
