"""``amr-prune data import`` is a transaction (issue 19): when a step after conversion fails (the DVC remote
cannot be reached; the destination is outside the project) the tracked state — the .dvc pointer, data/, the
local DVC cache and the remote — is byte-identical to before, and the same command run again succeeds. The
command runs in a child process, the way a user meets it. Before the fix the pointer had already been
switched when the push failed, and the retry said "already exists"."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from amrlib.data import save_dataset, synthesize
from datastore.dvc_store import fetch, read_dvc_file
from fixtures_pipeline import TINY_DATA, free_port, make_project, tiny_config
from helpers.cli_process import run_cli

OFFLINE = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "1"}


def _tree(root: Path, remote: Path) -> dict[str, str]:
    """md5 of every file under data/ (its .gitignore too), the DVC cache and the remote, and every .dvc file."""
    out = {}
    for base in (root / "data", root / ".dvc" / "cache", remote):
        for p in sorted(base.rglob("*")) if base.exists() else []:
            if p.is_file():
                out[str(p)] = hashlib.md5(p.read_bytes()).hexdigest()
    for p in (p for p in root.glob("*.dvc") if p.is_file()):
        out[p.name] = p.read_text()
    return out


@pytest.fixture
def project(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    (root / ".gitignore").write_text("/runs/\n/mlflow/\n")          # data/ not ignored: DVC keeps data/.gitignore
    fetch(root, "tiny.dvc", None, TINY_DATA, log=lambda *a: None)        # the dataset already tracked
    cfg = tiny_config(root)
    src = tmp_path / "incoming.h5"
    save_dataset(synthesize(frames_per_key=5, frame_length=32, snrs=[0, 10], classes=["BPSK", "QPSK"], seed=1), src)
    return root, tmp_path / "remote", cfg, src


def test_unreachable_remote_leaves_everything_as_it_was_and_a_retry_works(project):
    root, remote, cfg, src = project
    good = (root / ".dvc" / "config").read_text()
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = team\n['remote \"team\"']\n    url = s3://amr-data/dvc\n"
        f"    endpointurl = http://127.0.0.1:{free_port()}\n    region = us-east-1\n")
    before = _tree(root, remote)
    code, out, _ = run_cli("data", "import", src, "--config", cfg, cwd=root, env=OFFLINE)
    assert code == 1, out
    assert _tree(root, remote) == before                     # pointer, data/, cache, remote: byte-identical
    assert "dvc push of the converted file to remote 'team'" in out and str(src) in out
    assert "Nothing tracked changed (tiny.dvc still points to data/tiny.h5)" in " ".join(out.split())
    assert not [p for p in root.rglob("*.importing*")]       # no temporary file left behind

    (root / ".dvc" / "config").write_text(good)              # the remote is back: the same command succeeds
    code, out, _ = run_cli("data", "import", src, "--config", cfg, cwd=root)
    assert code == 0, out
    rec = read_dvc_file(root, "tiny.dvc")
    assert rec["path"] == "data/incoming.h5"
    assert (remote / "files" / "md5" / rec["md5"][:2] / rec["md5"][2:]).is_file()   # pushed
    assert hashlib.md5((root / rec["path"]).read_bytes()).hexdigest() == rec["md5"]
    assert (root / "data" / ".gitignore").read_text().split() == ["/tiny.h5", "/incoming.h5"]   # no temporary name


@pytest.mark.parametrize("out_path", ["../outside.h5", "ABSOLUTE"])
def test_destination_outside_the_project_is_refused_and_nothing_changes(project, out_path):
    root, remote, cfg, src = project
    if out_path == "ABSOLUTE":
        out_path = str(root.parent / "elsewhere" / "abs.h5")
    before = _tree(root, remote)
    code, out, _ = run_cli("data", "import", src, "--config", cfg, "--out", out_path, cwd=root)
    assert code == 1, out
    assert _tree(root, remote) == before
    assert "outside the project" in " ".join(out.split()) and str(src) in out
    assert not (root.parent / "outside.h5").exists() and not (root.parent / "elsewhere").exists()
    code, out, _ = run_cli("data", "import", src, "--config", cfg, cwd=root)        # a corrected retry works
    assert code == 0, out
    assert read_dvc_file(root, "tiny.dvc")["path"] == "data/incoming.h5"
