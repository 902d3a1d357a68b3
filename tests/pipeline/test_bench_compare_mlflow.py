"""The comparison's MLflow log accepts every method name the benchmark uses, '+' included."""
import sys

from conftest import ROOT


def test_a_parent_finetune_cell_is_logged_under_a_valid_metric_name(tmp_path, monkeypatch):
    monkeypatch.setenv("AMR_BENCH_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    for m in ("common", "compare_report"):
        sys.modules.pop(m, None)
    from compare_report import log_mlflow, metric_name
    assert metric_name("resnet20", "parent+finetune", 900, "vs_parent") == "resnet20.parent_finetune.900.vs_parent"
    cell = {"method": "parent+finetune", "target": 0.9, "vs_parent": {"mean": -0.011}, "vs_fcos": None}
    row = {"seed": 0, "method": "parent+finetune", "target": 0.9, "accuracy": 0.52, "macs_reduction": 0.0}
    results = {"tag": "t", "settings": {"seeds": [0]}, "models": {"resnet20": {"cells": [cell], "rows": [row]}}}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = log_mlflow(results, [], uri)
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    assert client.get_run(run).data.metrics == {"resnet20.parent_finetune.900.vs_parent": -0.011}
    child, = [r for r in client.search_runs([client.get_run(run).info.experiment_id]) if r.info.run_id != run]
    assert child.data.params["method"] == "parent+finetune" and child.data.metrics["accuracy"] == 0.52
