"""The sweep flow on a tiny project (cnn1d, 192 frames, 1 epoch) under Prefect's test harness: combinations
fanned out on the local thread pool and on a Dask LocalCluster of 2 processes, the training concurrency limit,
one MLflow parent run with a child per combination, the shared parent trained once, the table and Pareto plot
read back from the store, and a failing combination."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import yaml

import amrlib.pruning
from fixtures_pipeline import make_project, prefect_harness, tiny_config

pytestmark = pytest.mark.integration          # a Dask LocalCluster of 2 processes
BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"
PARENT = "tags.`mlflow.parentRunId`"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    # a waiting combination retries for a slot after up to 30 s by default (sized for hour-long training);
    # these jobs take seconds
    mp = pytest.MonkeyPatch()
    mp.setenv("PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS", "1")
    tmp = tmp_path_factory.mktemp("sweep")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root, lacd={"enabled": False}, torch_threads=1)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    from mlflow import MlflowClient
    with prefect_harness():
        yield SimpleNamespace(root=root, cfg=cfg, uri=uri, client=MlflowClient(tracking_uri=uri, registry_uri=uri))
    mp.undo()


def sweep_file(project, name, **settings) -> str:
    data = {"pipeline": str(project.cfg), "methods": ["fcos"], "models": ["cnn1d"], **settings}
    path = project.root / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def children(project, run_id):
    exp = project.client.get_run(run_id).info.experiment_id
    return project.client.search_runs([exp], f"{PARENT} = '{run_id}'")


def versions(project, name):
    return sorted(int(v.version) for v in project.client.search_model_versions(f"name = '{name}'"))


def test_local_sweep_with_a_training_limit_of_one(project):
    from prefect.client.orchestration import get_client

    from flows.sweep import run_sweep
    from flows.sweep_report import sweep_rows
    path = sweep_file(project, "local.yaml", targets=[0.3, 0.5, 0.7], runner="local", workers=3,
                      training={"limit_name": "test-training", "max_concurrent": 1})
    summary = run_sweep(path)
    c = project.client
    sweep_run = c.get_run(summary["mlflow_sweep_run_id"])
    assert sweep_run.info.status == "FINISHED" and not summary["failed"] and not summary["skipped"]
    runs = children(project, sweep_run.info.run_id)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert {float(r.data.params["channel_stage.target_macs_reduction"]) for r in runs} == {0.3, 0.5, 0.7}
    for r in runs:                                          # each combination's stages are below its run
        assert {s.info.run_name for s in children(project, r.info.run_id)} >= {"channel_stage", "finetune",
                                                                               "register-pruned"}
    # 3 threads but one slot: the combinations' runs never overlap in time
    spans = sorted((r.info.start_time, r.info.end_time) for r in runs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("test-training").limit == 1
    # the shared parent was trained and registered once; one pruned version per combination
    assert versions(project, BASE) == [1] and versions(project, PRUNED) == [1, 2, 3]
    assert len({w.split(":")[1] for w in summary["workers"].values()}) == 1 == len(
        {r.data.tags["sweep.worker"] for r in runs})                                        # threads: one process

    # the table comes from the registry: each row's figures are its registered version's tags
    rows = summary["rows"]
    assert [r["target"] for r in rows] == [0.3, 0.5, 0.7] and all(r["status"] == "FINISHED" for r in rows)
    for r in rows:
        name, v = r["version"].split(" v")
        tags = c.get_model_version(name, v).tags
        assert r["test_accuracy"] == pytest.approx(float(tags["test_accuracy"]))
        assert r["macs_reduction"] == pytest.approx(float(tags["macs_reduction"])) and r["macs_reduction"] > 0.2
        assert r["base_accuracy"] == pytest.approx(float(c.get_model_version(BASE, "1").tags["test_accuracy"]))
    assert any(r["pareto"] for r in rows)
    assert sweep_rows(project.uri, sweep_run.info.run_id) == rows                 # read back again: same
    logged = {f.path for f in c.list_artifacts(sweep_run.info.run_id)}
    assert {"sweep.md", "sweep.csv", "pareto.png", "combinations.json", "summary.json"} <= logged
    md = (project.root / "runs" / "sweeps" / sweep_run.info.run_id / "sweep.md").read_text()
    assert md.count("| cnn1d | fcos |") == 3 and "FINISHED" in md

    # amr-prune sweep-report: the same table again, from the store
    from typer.testing import CliRunner

    from cli import app
    out = CliRunner().invoke(app, ["sweep-report", sweep_run.info.run_id, "-s", path, "--out", str(project.root / "r")])
    assert out.exit_code == 0, out.output[-3000:]
    assert (project.root / "r" / "sweep.md").read_text() == md and (project.root / "r" / "pareto.png").exists()


def test_dask_sweep_of_two_methods_runs_in_worker_processes(project):
    from flows.sweep import run_sweep
    path = sweep_file(project, "dask.yaml", methods=["fcos", "l1"], targets=[0.4], runner="dask", workers=2,
                      training={"limit_name": "test-training-dask", "max_concurrent": 2})
    before = versions(project, PRUNED)
    summary = run_sweep(path)
    assert not summary["failed"], summary["failed"]
    assert set(summary["workers"]) == {"cnn1d-fcos-0.4", "cnn1d-l1-0.4"}
    pids = {w.split(":")[1] for w in summary["workers"].values()}
    assert str(os.getpid()) not in pids                      # ran in Dask worker processes, not in this one
    runs = children(project, summary["mlflow_sweep_run_id"])
    assert sorted(r.data.params["method"] for r in runs) == ["fcos", "l1"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert versions(project, BASE) == [1] and len(versions(project, PRUNED)) == len(before) + 1   # parent cached
    assert versions(project, "amr-cnn1d-l1") == [1]
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows["l1"]["version"] == "amr-cnn1d-l1 v1" and rows["l1"]["status"] == "FINISHED"
    tags = project.client.get_model_version("amr-cnn1d-l1", "1").tags
    assert rows["l1"]["macs_reduction"] == pytest.approx(float(tags["macs_reduction"]))
    assert rows["l1"]["macs_reduction"] > 0.3


def test_a_failing_combination_fails_the_sweep_after_its_report(project, monkeypatch):
    from flows.sweep import SweepError, run_sweep

    def broken(*a, **k):
        raise RuntimeError("channel stage exploded")
    monkeypatch.setattr(amrlib.pruning.fcos_steps, "channel_stage", broken)        # thread runner: same process
    path = sweep_file(project, "fail.yaml", targets=[0.35, 0.45], runner="local", workers=2,
                      training={"limit_name": "test-training"})
    with pytest.raises(SweepError, match="1 combination\\(s\\) failed, 1 skipped: cnn1d-fcos-0.35: .*exploded"):
        run_sweep(path)
    c = project.client
    sweep_run = max(c.search_runs([c.get_experiment_by_name("test").experiment_id], "tags.flow = 'sweep'"),
                    key=lambda r: r.info.start_time)
    assert sweep_run.info.status == "FAILED"
    from flows.sweep_report import sweep_rows
    rows = sweep_rows(project.uri, sweep_run.info.run_id)
    assert [(r["target"], r["status"]) for r in rows] == [(0.35, "FAILED"), (0.45, "not run")]
    assert rows[0]["test_accuracy"] is None
    assert {"sweep.md", "pareto.png"} <= {f.path for f in c.list_artifacts(sweep_run.info.run_id)}
