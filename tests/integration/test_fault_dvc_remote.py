"""The DVC remote unreachable (an S3 endpoint nobody answers on): fetch fails clearly unless a local copy
with the checksum data.dvc records exists — the dataset file itself, or the object in the local DVC
cache — and a local copy with another checksum is never used (nor overwritten)."""
from __future__ import annotations

import shutil
import time

import pytest

from datastore.dvc_store import DataStoreError, fetch, file_md5, read_dvc_file
from fixtures_pipeline import TINY_DATA, free_port, make_project


@pytest.fixture
def offline_project(tmp_path, monkeypatch):
    """A project whose dataset was fetched once; then its default remote becomes an unreachable S3 endpoint."""
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    fetch(root, "tiny.dvc", None, TINY_DATA, log=lambda *a: None)
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = team\n['remote \"team\"']\n    url = s3://amr-data/dvc\n"
        f"    endpointurl = http://127.0.0.1:{free_port()}\n    region = us-east-1\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")            # credentials from the environment only
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return root


def test_local_dataset_with_the_recorded_checksum_is_used(offline_project):
    logs = []
    t0 = time.perf_counter()
    info = fetch(offline_project, "tiny.dvc", None, None, log=logs.append)
    assert info["md5"] == read_dvc_file(offline_project, "tiny.dvc")["md5"] == file_md5(info["path"])
    assert any("(present;" in line for line in logs)
    assert time.perf_counter() - t0 < 30                     # the remote was not even asked


def test_local_dataset_with_another_checksum_is_refused_and_kept(offline_project):
    path = offline_project / "data" / "tiny.h5"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataStoreError, match=r"tiny\.h5: md5 \w+ differs from \w+ recorded in tiny\.dvc "
                                             r"\(modified locally\?\)\. Not overwriting it"):
        fetch(offline_project, "tiny.dvc", None, None, log=lambda *a: None)
    assert path.read_bytes() == bytes(raw)


def test_missing_file_is_checked_out_from_the_local_dvc_cache(offline_project):
    path = offline_project / "data" / "tiny.h5"
    md5 = file_md5(path)
    path.unlink()
    logs = []
    info = fetch(offline_project, "tiny.dvc", None, None, log=logs.append)
    assert info["md5"] == md5 == file_md5(path)
    assert any("cannot reach DVC remote 'team'" in line and "local DVC cache" in line for line in logs)
    assert any("checked out from the local DVC cache (remote unreachable)" in line for line in logs)


def test_corrupt_cache_copy_is_not_used(offline_project):
    path = offline_project / "data" / "tiny.h5"
    md5 = file_md5(path)
    path.unlink()
    cached = offline_project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    raw = bytearray(cached.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cached.chmod(0o644)
    cached.write_bytes(bytes(raw))
    with pytest.raises(DataStoreError, match=r"tiny\.h5: md5 \w+ after checked out from the local DVC cache "
                                             r"\(remote unreachable\) differs from \w+ in tiny\.dvc; removed it"):
        fetch(offline_project, "tiny.dvc", None, None, log=lambda *a: None)
    assert not path.exists()                                  # a wrong copy is never left in place


def test_no_local_copy_at_all_fails_clearly(offline_project):
    (offline_project / "data" / "tiny.h5").unlink()
    shutil.rmtree(offline_project / ".dvc" / "cache")
    with pytest.raises(DataStoreError, match=r"cannot reach DVC remote 'team' \(s3://amr-data/dvc\): .*; and there "
                                             r"is no local copy of data/tiny\.h5 \(md5 \w+\): neither the file nor "
                                             r"the local DVC cache has it"):
        fetch(offline_project, "tiny.dvc", None, None, log=lambda *a: None)
    assert not (offline_project / "data" / "tiny.h5").exists()
