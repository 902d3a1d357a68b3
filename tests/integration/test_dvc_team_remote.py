"""A team's DVC remote on S3 (moto's S3 API server on loopback), set with ``amr-prune data remote`` as a user would:
clone A moves its dataset from a local remote to the bucket (pushed at once), commits .dvc/config; clone B pulls
the identical bytes with credentials from the usual AWS variables only. Nothing secret is written to the
repository, a clone without credentials fails with one error line, and a URL carrying credentials is refused."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from datastore.dvc_store import file_md5, read_dvc_file
from fixtures_pipeline import ROOT, clone, commit_all, make_project, run, tiny_config
from fixtures_servers import moto_s3

pytestmark = pytest.mark.integration
SECRET = "SeCrEt-team-remote-42"
CREDS = {"AWS_ACCESS_KEY_ID": "team-key", "AWS_SECRET_ACCESS_KEY": SECRET}


def amr_prune(*args, cwd, creds: dict | None) -> tuple[int, str]:
    """The command as a process, with the AWS credentials given here and no others (no ~/.aws either)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"PYTHONPATH": str(ROOT), "CI": "1", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", **(creds or {})})
    done = subprocess.run([sys.executable, "-m", "flows", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def committed_text(root) -> str:
    files = run(["git", "ls-files"], root).stdout.split()
    return "".join((root / f).read_text(errors="replace") for f in files if (root / f).is_file())


def test_team_remote_from_two_clones(tmp_path):
    with moto_s3("amr-team") as endpoint:
        a = make_project(tmp_path / "a", tmp_path / "local-remote")
        cfg_a = tiny_config(a)
        code, out = amr_prune("data", "fetch", "-c", cfg_a, cwd=a, creds=None)       # generated, local remote
        assert code == 0, out
        code, out = amr_prune("data", "remote", "s3://amr-team/dvc", "--endpoint-url", endpoint, "--region",
                              "us-east-1", "-c", cfg_a, cwd=a, creds=CREDS)
        assert code == 0, out
        assert "dvc push tiny.dvc to remote 'team'" in out and "credentials: environment: AWS_ACCESS_KEY_ID" in out
        config = (a / ".dvc" / "config").read_text()
        assert "remote = team" in config and "s3://amr-team/dvc" in config and endpoint in config
        commit_all(a, "Team DVC remote")
        local = a / ".dvc" / "config.local"
        assert SECRET not in committed_text(a) and (not local.exists() or SECRET not in local.read_text())
        assert CREDS["AWS_ACCESS_KEY_ID"] not in committed_text(a)

        b = clone(a, tmp_path / "b")
        cfg_b = tiny_config(b)                       # the same settings, rooted in this clone
        code, out = amr_prune("data", "fetch", "-c", cfg_b, cwd=b, creds=None)
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert code == 1 and len(errors) == 1 and "Traceback" not in out, out
        assert "Unable to locate credentials" in errors[0]
        assert not (b / "data" / "tiny.h5").exists()
        code, out = amr_prune("data", "fetch", "-c", cfg_b, "--json", cwd=b, creds=CREDS)
        assert code == 0, out
        assert "dvc pull data/tiny.h5 from remote 'team' (s3://amr-team/dvc)" in out
        md5 = read_dvc_file(a, "tiny.dvc")["md5"]
        assert file_md5(b / "data" / "tiny.h5") == file_md5(a / "data" / "tiny.h5") == md5


def test_url_with_credentials_is_refused(tmp_path):
    a = make_project(tmp_path / "a", tmp_path / "local-remote")
    cfg = tiny_config(a)
    code, out = amr_prune("data", "remote", f"s3://team-key:{SECRET}@amr-team/dvc", "--no-push", "-c", cfg, cwd=a,
                          creds=None)
    assert code == 1 and "credentials in it" in out and SECRET not in out
    assert SECRET not in (a / ".dvc" / "config").read_text()
