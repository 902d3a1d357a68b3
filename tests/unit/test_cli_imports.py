"""The read-only commands and configuration errors import only what they need (what makes them answer in about
two seconds, bench/bench_cli.py): no torch, Prefect or DVC for a configuration error, a registry read or a
``promote`` with nothing to do, and not even MLflow for a configuration error. Checked in a fresh interpreter."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fixtures_pipeline import ROOT

PROBE = """import json, sys
from typer.testing import CliRunner
from cli import app
result = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"code": result.exit_code, "output": result.output,
                  "loaded": sorted({m.split('.')[0] for m in sys.modules} & {"torch", "prefect", "dvc", "mlflow"})}))
"""


def _loaded(args, env=None):
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_config_error_imports_no_heavy_library():
    out = _loaded(["run", "--set", "pretrain.epoch=3"])
    assert out["code"] == 1 and "did you mean pretrain.epochs?" in out["output"]
    assert out["loaded"] == []


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow import MlflowClient
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("amr-resnet20-fcos")
    mv = client.create_model_version("amr-resnet20-fcos", "file:///nonexistent", tags={"role": "pruned"})
    for alias in ("challenger", "champion"):
        client.set_registered_model_alias("amr-resnet20-fcos", alias, mv.version)
    return uri


@pytest.mark.parametrize("args", [["models"], ["models", "--json"], ["promote"]])
def test_registry_reads_need_only_the_mlflow_client(store, args):
    out = _loaded(args, env={"MLFLOW_TRACKING_URI": store})
    assert out["code"] == 0, out["output"]
    assert out["loaded"] == ["mlflow"]
