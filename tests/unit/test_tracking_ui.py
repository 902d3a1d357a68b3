"""What the MLflow UI opens on, against a real MLflow store (SQLite): the experiment is marked as model
training (``mlflow.experimentKind``, unless a kind was chosen), the dataset is a run input with its md5 as the
digest, and a parent run without stage runs is deleted while one with stage runs stays."""
from __future__ import annotations

import json

from mlflow import MlflowClient
from tracking import runs
from tracking.ui import (
    CACHED_TAG,
    EXPERIMENT_KIND_TAG,
    TRAINING_KIND,
    VIEW_TAG,
    drop_if_all_cached,
    log_dataset,
    runs_url,
)

DATA = {"path": "/p/data/tiny.h5", "relpath": "data/tiny.h5", "md5": "0123456789abcdef0123456789abcdef",
        "dvc_file": "tiny.dvc", "remote": "local", "frames": 192, "classes": ["BPSK", "QPSK"],
        "frame_length": 128, "snrs": [-10, 0]}


def _setup(tmp_path, experiment="e"):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    t = runs.setup(uri, experiment, (tmp_path / "artifacts").as_uri())
    return t, MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_experiment_opens_on_training_runs(tmp_path):
    t, client = _setup(tmp_path)
    tags = client.get_experiment(t["experiment_id"]).tags
    assert tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    view = json.loads(tags[VIEW_TAG])                           # MLflow's shared runs-table view: metric columns
    assert view["selectedColumns"][:3] == ["attributes.`Dataset`", "metrics.`pruned_test_accuracy`",
                                           "metrics.`pruned_high_snr_accuracy`"]
    assert {"metrics.`macs_reduction`", "metrics.`gate_passed`"} <= set(view["selectedColumns"])
    assert runs_url("http://127.0.0.1:5050/", t["experiment_id"]) == (
        f"http://127.0.0.1:5050/#/experiments/{t['experiment_id']}/runs?workflowType=machine_learning&"
        f"viewStateShareKey=amr-prune")
    other = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    t2 = runs.setup(t["uri"], "chosen", None)                    # a kind someone chose is left alone
    assert t2["experiment_id"] == other
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_dataset_is_a_run_input(tmp_path):
    t, client = _setup(tmp_path)
    run_id = runs.start_run(t, "parent")
    log_dataset(runs.client_for(t), run_id, DATA)
    [inp] = client.get_run(run_id).inputs.dataset_inputs
    assert (inp.dataset.name, inp.dataset.digest) == ("data/tiny.h5", DATA["md5"])
    assert json.loads(inp.dataset.source)["dvc_file"] == "tiny.dvc"
    assert json.loads(inp.dataset.profile) == {"frames": 192, "classes": ["BPSK", "QPSK"], "frame_length": 128,
                                               "snrs": [-10, 0]}
    assert [(tag.key, tag.value) for tag in inp.tags] == [("mlflow.data.context", "training")]


def test_only_an_empty_parent_run_is_dropped(tmp_path):
    t, client = _setup(tmp_path)
    empty, busy = runs.start_run(t, "cached"), runs.start_run(t, "worked")
    runs.start_run(t, "pretrain", parent_run_id=busy)
    for r in (empty, busy):
        runs.end_run(t, r)
    assert drop_if_all_cached(runs.client_for(t), t["experiment_id"], empty) is True
    assert drop_if_all_cached(runs.client_for(t), t["experiment_id"], busy) is False
    assert client.get_run(empty).info.lifecycle_stage == "deleted" and client.get_run(empty).data.tags[CACHED_TAG]
    assert client.get_run(busy).info.lifecycle_stage == "active"
