"""Serving a registered version as typed: ``amr-prune serve-model NAME@ALIAS`` started with a PATH that does not
contain the virtual environment (as from a shell where it is not activated), on 127.0.0.1 and a free port;
frames POSTed to ``/invocations`` come back as class names with probabilities (``params: {"output": "classes"}``)
or as logits; the logged model's requirements are public packages only, its code (amrlib) logged with it."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from fixtures_pipeline import PY, TINY_DATA, free_port, make_project, tiny_config
from fixtures_servers import http_ok, process, wait_for
from helpers.cli_process import run_cli

pytestmark = pytest.mark.integration
PRUNED = "amr-cnn1d-fcos"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A tiny prune_pipeline run (a real process with its temporary Prefect server): a registered champion."""
    tmp = tmp_path_factory.mktemp("serving")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root)
    code, out, _ = run_cli("--quiet", "run", "-c", cfg, cwd=root, env={"PREFECT_HOME": str(tmp / "prefect-home")},
                           timeout=900)
    assert code == 0, out[-3000:]
    return root, cfg, tmp


def _post(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["predictions"]


def test_serve_model_as_typed(registered):
    root, cfg, tmp = registered
    from amrlib.data import load_dataset
    frames = np.asarray(load_dataset(root / TINY_DATA["path"]).iq[:5], dtype=np.float32)
    port = free_port()
    env = {**os.environ, "PATH": "/usr/bin:/bin"}                   # the virtual environment not activated
    amr_prune = str(Path(PY).with_name("amr-prune"))
    with process([amr_prune, "serve-model", f"{PRUNED}@champion", "--port", str(port), "-c", str(cfg)],
                 tmp / "serve.log", env=env, cwd=root) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/ping"), 240, "amr-prune serve-model", proc, tmp / "serve.log")
        named = _post(f"{url}/invocations", {"inputs": frames.tolist(), "params": {"output": "classes"}})
        logits = np.asarray(_post(f"{url}/invocations", {"inputs": frames.tolist()}))
    classes = TINY_DATA["classes"]
    assert len(named) == 5 and logits.shape == (5, len(classes))
    for row, z in zip(named, logits):
        probs = np.array([row[c] for c in classes])
        assert row["class"] == classes[int(np.argmax(z))] and row["probability"] == pytest.approx(probs.max())
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert probs == pytest.approx(np.exp(z - z.max()) / np.exp(z - z.max()).sum(), abs=1e-5)


def test_logged_requirements_are_installable(registered):
    root, cfg, tmp = registered
    import mlflow
    uri = yaml.safe_load(cfg.read_text())["tracking"]["uri"]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{PRUNED}@champion", dst_path=str(tmp / "model")))
    requirements = (local / "requirements.txt").read_text().split()
    assert not any(r.startswith("amr-prune") for r in requirements), requirements
    assert "torch==2.13.0" in requirements
    assert (local / "code" / "amrlib" / "models" / "__init__.py").exists()       # the model's own code
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    params = {p["name"]: p for p in json.loads(mlmodel["signature"]["params"])}
    assert params["output"]["default"] == "logits" and params["batch_size"]["default"] == 512
