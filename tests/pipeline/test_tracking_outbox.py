"""The tracking outbox (tracking/outbox.py, tracking/runs.py): an unreachable MLflow tracking server does not
stop a run; its records are kept on disk and ``sync`` uploads them later, resumably and without duplicates.

The server-backed end-to-end version (a real ``mlflow server`` cut off mid-flow) is
tests/test_fault_tracking_outage.py; these tests use a dead port and a SQLite store and take seconds."""
from __future__ import annotations

import json

import pytest
import requests

from fixtures_pipeline import free_port
from mlflow import MlflowClient
from tracking import runs as tracking
from tracking.outbox import OFFLINE_ID_TAG, SyncError, is_offline_id, pending, sync_pending
from tracking.runs import TrackingUnavailable, client_for


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite tracking store for the module (creating one takes MLflow ~5-25 s of migrations), with
    the experiments the tests upload into and their artefacts in a temporary folder (not ./mlruns)."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name in ("start", "mid-run", "interrupted", "errors", "cli"):
        client.create_experiment(name, artifact_location=(tmp / "artifacts" / name).as_uri())
    return uri


@pytest.fixture(autouse=True)
def fast_failures(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")     # production keeps MLflow's 7 retries
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    yield
    tracking._OFFLINE.clear()


def _record_a_flow_run(t, tmp_path):
    """What a flow run logs: a parent run with params, a stage run with epoch metrics and an artefact."""
    parent = tracking.start_run(t, "prune_pipeline-x", {"flow": "prune_pipeline"})
    t = {**t, "parent_run_id": parent}
    tracking.log_params(client_for(t), parent, {"model": {"name": "cnn1d"}, "pretrain": {"epochs": 2}})
    with tracking.StageRun(t, "pretrain", {"model": "cnn1d"}) as run:
        run.params({"train": {"epochs": 2}})
        run.metrics({"val_accuracy": 0.5}, step=1)
        run.metrics({"val_accuracy": 0.625}, step=2)
        plot = tmp_path / "probe_curve.png"
        plot.write_bytes(b"\x89PNG fake")
        run.artifact(plot)
    plot.unlink()                                               # the outbox kept its own copy
    tracking.log_json(client_for(t), parent, {"accuracy": 0.625}, "summary.json")
    tracking.end_run(t, parent, ok=False)
    return parent, run.run_id


def _check_uploaded(store, exp_name, parent_name="prune_pipeline-x"):
    c = MlflowClient(tracking_uri=store)
    exp = c.get_experiment_by_name(exp_name)
    runs = {r.info.run_name: r for r in c.search_runs([exp.experiment_id])}
    assert set(runs) == {parent_name, "pretrain"}
    parent, stage = runs[parent_name], runs["pretrain"]
    assert parent.info.status == "FAILED" and stage.info.status == "FINISHED"
    assert stage.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.params["model.name"] == "cnn1d" and stage.data.params["train.epochs"] == "2"
    hist = sorted((m.step, m.value) for m in c.get_metric_history(stage.info.run_id, "val_accuracy"))
    assert hist == [(1, 0.5), (2, 0.625)]
    assert open(c.download_artifacts(stage.info.run_id, "probe_curve.png"), "rb").read() == b"\x89PNG fake"
    assert json.load(open(c.download_artifacts(parent.info.run_id, "summary.json"))) == {"accuracy": 0.625}
    return c, runs


def test_unreachable_from_the_start_then_sync(tmp_path, store):
    dead = f"http://127.0.0.1:{free_port()}"
    outbox = tmp_path / "runs" / "outbox"
    t = tracking.setup(dead, "start", None, outbox=outbox)      # does not raise: the run goes on offline
    box = tracking.offline_outbox(t)
    assert box is not None and box.path.parent == outbox
    parent, stage_run = _record_a_flow_run(t, tmp_path)
    assert is_offline_id(parent) and is_offline_id(stage_run)
    assert box.count() >= 8

    # what needs the server fails at once, saying what was kept and what to do
    with pytest.raises(TrackingUnavailable) as err:
        client_for(t).get_model_version_by_alias("amr-cnn1d-fcos", "champion")
    msg = str(err.value)
    assert f"MLflow tracking server {dead} is unreachable ([Errno 111] Connection refused)" in msg
    assert str(box.path) in msg and "amr-prune sync" in msg and str(tmp_path / "runs") in msg
    with pytest.raises(TrackingUnavailable, match="cannot finish its MLflow tracking"):
        tracking.check_online(t)

    with pytest.raises(SyncError, match="still unreachable.*0 outbox file.*1 still pending.*nothing was lost"):
        sync_pending(outbox)                                    # the server is still down: nothing lost
    assert pending(outbox) == [box]

    done = sync_pending(outbox, uri=store, log=lambda *_: None)     # "the server is back" (at another URI)
    assert [d["runs_created"] for d in done] == [2] and done[0]["artifacts"] == 2
    _, runs = _check_uploaded(store, "start")
    assert runs["pretrain"].data.tags[OFFLINE_ID_TAG] == stage_run
    assert pending(outbox) == [] and (outbox / "sent" / box.path.name).exists()
    assert sync_pending(outbox, uri=store) == []                # nothing left: a second sync is a no-op


def test_server_lost_mid_run_keeps_real_run_ids(tmp_path, monkeypatch, store):
    """The run was created on the server, then the server went away: later records name the real run."""
    t = tracking.setup(store, "mid-run", None, outbox=tmp_path / "runs" / "outbox")
    parent = tracking.start_run(t, "prune_pipeline-x", {"flow": "prune_pipeline"})
    assert not is_offline_id(parent)
    real_log_batch = MlflowClient.log_batch

    def down(self, *a, **k):
        raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    monkeypatch.setattr(MlflowClient, "log_batch", down)
    t = {**t, "parent_run_id": parent}
    tracking.log_params(client_for(t), parent, {"model": {"name": "cnn1d"}, "pretrain": {"epochs": 2}})
    box = tracking.offline_outbox(t)
    assert box is not None and box.header()["experiment_id"] == t["experiment_id"]
    with tracking.StageRun(t, "pretrain", {"model": "cnn1d"}) as run:       # offline from now on
        run.params({"train": {"epochs": 2}})
        run.metrics({"val_accuracy": 0.5}, step=1)
        run.metrics({"val_accuracy": 0.625}, step=2)
        plot = tmp_path / "probe_curve.png"
        plot.write_bytes(b"\x89PNG fake")
        run.artifact(plot)
    tracking.log_json(client_for(t), parent, {"accuracy": 0.625}, "summary.json")
    tracking.end_run(t, parent, ok=False)
    assert is_offline_id(run.run_id)
    c = MlflowClient(tracking_uri=store)
    assert c.get_run(parent).info.status == "RUNNING"           # the server never heard the end

    monkeypatch.setattr(MlflowClient, "log_batch", real_log_batch)   # the server is back
    sync_pending(tmp_path / "runs" / "outbox", log=lambda *_: None)
    _, runs = _check_uploaded(store, "mid-run")
    assert runs["prune_pipeline-x"].info.run_id == parent       # the same run, completed


def test_interrupted_sync_resumes_without_duplicates(tmp_path, monkeypatch, store):
    dead = f"http://127.0.0.1:{free_port()}"
    outbox = tmp_path / "runs" / "outbox"
    t = tracking.setup(dead, "interrupted", None, outbox=outbox)
    _record_a_flow_run(t, tmp_path)
    real = MlflowClient.log_artifact
    calls = {"n": 0}

    def flaky(self, *a, **k):                                   # the server drops out again during the sync
        calls["n"] += 1
        if calls["n"] == 2:
            raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")
        return real(self, *a, **k)
    monkeypatch.setattr(MlflowClient, "log_artifact", flaky)
    with pytest.raises(SyncError, match="still unreachable"):
        sync_pending(outbox, uri=store, log=lambda *_: None)
    assert len(pending(outbox)) == 1
    sync_pending(outbox, uri=store, log=lambda *_: None)        # resumes after the last applied record
    _check_uploaded(store, "interrupted")                       # two runs, each metric once


def test_sqlite_errors_are_not_mistaken_for_an_outage(tmp_path, store):
    """Only a failed connection switches to the outbox; any other MLflow error is raised as it is."""
    t = tracking.setup(store, "errors", None, outbox=tmp_path / "outbox")
    parent = tracking.start_run(t, "p")
    with pytest.raises(Exception, match="(?i)param.*already logged|changing param values is not allowed"):
        tracking.log_params(client_for(t), parent, {"a": 1})
        tracking.log_params(client_for(t), parent, {"a": 2})
    assert tracking.offline_outbox(t) is None and not (tmp_path / "outbox").exists()


def test_cli_sync_dry_run_and_upload(tmp_path, store):
    from typer.testing import CliRunner

    from cli import app
    from fixtures_pipeline import tiny_config
    cfg = tiny_config(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["sync", "-c", str(cfg)])
    assert out.exit_code == 0 and "nothing to upload" in out.output
    dead = f"http://127.0.0.1:{free_port()}"
    t = tracking.setup(dead, "cli", None, outbox=tmp_path / "runs" / "outbox")
    _record_a_flow_run(t, tmp_path)
    out = runner.invoke(app, ["sync", "-c", str(cfg), "--dry-run"])
    assert out.exit_code == 0 and f"records for {dead}" in out.output and "Connection refused" in out.output
    out = runner.invoke(app, ["sync", "-c", str(cfg)])
    assert out.exit_code == 1 and "still unreachable" in out.output and "nothing was lost" in out.output
    out = runner.invoke(app, ["sync", "-c", str(cfg), "--uri", store])
    assert out.exit_code == 0, out.output
    assert "2 runs created" in out.output and "now run the pipeline again" in out.output
    _check_uploaded(store, "cli")
