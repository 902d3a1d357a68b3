"""The dataset through an S3 DVC remote (moto's S3 API server on loopback): one clone generates and pushes,
a fresh clone pulls identical bytes. Credentials live only in the environment or the git-ignored
.dvc/config.local, never in a committed file."""
from __future__ import annotations

import pytest

from datastore.dvc_store import fetch, file_md5, read_dvc_file
from fixtures_pipeline import DVC, TINY_DATA, clone, commit_all, free_port, make_project, run

pytestmark = pytest.mark.integration
SECRET = "SeCrEt-not-committed-42"


@pytest.fixture
def s3():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket="amr-data")
    yield endpoint
    server.stop()


def test_push_and_pull_through_s3_in_a_fresh_clone(s3, tmp_path, monkeypatch):
    a = make_project(tmp_path / "a", None)
    run([DVC, "remote", "add", "-d", "team", "s3://amr-data/dvc"], a)
    run([DVC, "remote", "modify", "team", "endpointurl", s3], a)
    run([DVC, "remote", "modify", "team", "region", "us-east-1"], a)
    run([DVC, "remote", "modify", "--local", "team", "access_key_id", "k"], a)      # git-ignored
    run([DVC, "remote", "modify", "--local", "team", "secret_access_key", SECRET], a)
    logs = []
    info = fetch(a, "tiny.dvc", None, TINY_DATA, log=logs.append)
    commit_all(a)
    tracked = run(["git", "ls-files"], a).stdout.split()
    assert ".dvc/config.local" not in tracked
    committed = "".join((a / f).read_text() for f in tracked if (a / f).suffix in ("", ".dvc") and (a / f).is_file())
    assert SECRET not in committed and SECRET in (a / ".dvc" / "config.local").read_text()
    assert not any(SECRET in line for line in logs)

    b = clone(a, tmp_path / "b")                    # a fresh clone: credentials from the environment only
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    logs_b = []
    info_b = fetch(b, "tiny.dvc", None, None, log=logs_b.append)
    assert info_b["md5"] == info["md5"] == read_dvc_file(b, "tiny.dvc")["md5"] == file_md5(b / "data/tiny.h5")
    assert any("dvc pull" in line and "s3://amr-data/dvc" in line for line in logs_b)
