"""``amr-prune promote`` as a process: exit 3 when the gate refuses the challenger (nothing promoted), 0 when it
promotes, the champion printed as "none" rather than "vNone" while there is none (one tiny pipeline run first)."""
from __future__ import annotations

import pytest
import yaml

from fixtures_pipeline import make_project, tiny_config
from helpers.cli_process import run_cli

PRUNED = "amr-cnn1d-fcos"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("promote")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root)
    env = {"PREFECT_HOME": str(tmp / "prefect-home")}
    code, out, _ = run_cli("--quiet", "run", "-c", cfg, cwd=root, env=env, timeout=900)
    assert code == 0, out[-3000:]
    return root, cfg, env


def test_refused_exits_3_then_promoted_exits_0(project):
    root, cfg, env = project
    from mlflow import MlflowClient
    uri = yaml.safe_load(cfg.read_text())["tracking"]["uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.delete_registered_model_alias(PRUNED, "champion")           # v1 is the challenger, no champion
    code, out, _ = run_cli("promote", "-c", cfg, "--set", "gate.min_macs_reduction=0.99", cwd=root, env=env)
    assert code == 3, out[-3000:]
    assert f"{PRUNED}: challenger v1 not promoted" in out and "champion: none -> none" in out
    assert "vNone" not in out and "error:" not in out
    code, out, _ = run_cli("promote", "-c", cfg, cwd=root, env=env)
    assert code == 0, out[-3000:]
    assert "promoted" in out and "champion: none -> v1" in out and "vNone" not in out
    assert str(client.get_model_version_by_alias(PRUNED, "champion").version) == "1"
