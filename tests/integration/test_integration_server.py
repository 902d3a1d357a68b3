"""Server mode: a real ``mlflow server`` (SQLite backend, artefacts proxied to S3 = moto's S3 API server on
loopback) and prune_pipeline run against it; the registered champion loads through the server."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fixtures_pipeline import PY, free_port, make_project, prefect_harness, tiny_config

pytestmark = pytest.mark.integration

BUCKET = "mlflow-artifacts"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3
    client = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in AWS.items()
                                                          if k != "AWS_DEFAULT_REGION"}, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def mlflow_server(s3, tmp_path_factory):
    endpoint, _ = s3
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, **AWS, "MLFLOW_S3_ENDPOINT_URL": endpoint, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(Path(PY).with_name("mlflow")), "server", "--backend-store-uri",
                             f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", f"s3://{BUCKET}",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).read().strip() == b"OK":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.close()
            pytest.fail(f"mlflow server did not start: {(tmp / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)       # the server and its workers
    proc.wait(timeout=30)
    log.close()


def test_flow_against_mlflow_server_with_s3_artefacts(s3, mlflow_server, tmp_path, monkeypatch):
    _, s3_client = s3
    for k in AWS:                                  # the client needs no AWS settings: artefacts are proxied
        monkeypatch.delenv(k, raising=False)
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root, tracking={"uri": mlflow_server, "experiment": "server-test"})
    from flows.prune_pipeline import prune_pipeline
    with prefect_harness():
        summary = prune_pipeline(str(cfg))
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    for name in ("amr-cnn1d-base", "amr-cnn1d-fcos"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    keys = [o["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    assert any(k.endswith("model.pt") for k in keys), keys[:20]           # the checkpoints went to S3
    assert any(k.endswith("confusion_matrix.png") for k in keys)
    assert summary["gate"]["passed"]

    x = np.random.default_rng(0).normal(size=(3, 2, 128)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = f"""
import json, numpy as np, mlflow
mlflow.set_tracking_uri({mlflow_server!r})
m = mlflow.pyfunc.load_model("models:/amr-cnn1d-fcos@champion")
y = np.asarray(m.predict(np.load({str(tmp_path / 'x.npy')!r})))
print(json.dumps({{"shape": list(y.shape), "finite": bool(np.isfinite(y).all()), "meta": m.metadata.metadata}}))
"""
    env = {k: v for k, v in os.environ.items() if k not in AWS and k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"}
    out = subprocess.run([PY, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"] == [3, 4] and res["finite"] and res["meta"]["frame_length"] == 128
