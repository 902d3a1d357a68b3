"""prune_pipeline end to end under Prefect's test harness, on 192 frames and a 1-epoch cnn1d:
registry state and lineage, MLflow runs and artefacts, caching of unchanged stages, a failure injected
into LaCD then a re-run that redoes nothing already finished, and reuse of the registered base."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import amrlib.pruning
import tasks.train
from datastore.dvc_store import file_md5, read_dvc_file
from fixtures_pipeline import PY, ROOT, make_project, prefect_harness, task_states, tiny_config

CACHED_STAGES = ("pretrain", "channel_stage", "lacd", "finetune", "evaluate", "register")
BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"


@pytest.fixture(scope="module")
def harness():
    with prefect_harness():
        yield


@pytest.fixture
def spies(monkeypatch):
    """Count the amrlib calls that do the work of pretrain/finetune, the channel stage and LaCD."""
    calls = {"fit": 0, "channel_stage": 0, "lacd": 0}

    def spy(name, fn):
        def wrapped(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapped
    monkeypatch.setattr(tasks.train, "fit", spy("fit", tasks.train.fit))
    steps = amrlib.pruning.fcos_steps                 # the FCOS steps the pipeline's stages call
    monkeypatch.setattr(steps, "channel_stage", spy("channel_stage", steps.channel_stage))
    monkeypatch.setattr(steps, "lacd", spy("lacd", steps.lacd))
    return calls


@pytest.fixture(scope="module")
def project(tmp_path_factory, harness):
    from flows.prune_pipeline import prune_pipeline
    tmp = tmp_path_factory.mktemp("pipeline")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root)
    first = prune_pipeline(str(cfg))
    from mlflow import MlflowClient
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    return SimpleNamespace(root=root, cfg=cfg, first=first, uri=uri,
                           client=MlflowClient(tracking_uri=uri, registry_uri=uri), run=prune_pipeline)


def _versions(client, name):
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def _alias(client, name, alias):
    return str(client.get_model_version_by_alias(name, alias).version)


def test_registry_state_and_lineage(project):
    c, s = project.client, project.first
    md5 = read_dvc_file(project.root, "tiny.dvc")["md5"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert _versions(c, BASE) == [1] and _versions(c, PRUNED) == [1]
    for name in (BASE, PRUNED):
        assert _alias(c, name, "challenger") == _alias(c, name, "champion") == "1"
    base, pruned = c.get_model_version(BASE, "1").tags, c.get_model_version(PRUNED, "1").tags
    for tags in (base, pruned):
        assert tags["data_md5"] == md5 and tags["git_commit"].startswith(head)
        assert tags["flow_run_id"] == s["prefect_flow_run_id"]
        assert tags["mlflow_parent_run_id"] == s["mlflow_parent_run_id"]
    assert base["method"] == "pretrain" and base["parent_model"] == ""
    assert pruned["method"] == "fcos" and (pruned["parent_model"], pruned["parent_version"]) == (BASE, "1")
    assert float(pruned["macs_reduction"]) == pytest.approx(1 - int(pruned["macs"]) / int(base["macs"]), abs=1e-6)
    assert 0 < float(pruned["macs_reduction"]) < 1
    assert pruned["gate.passed"] == "True" and s["gate"]["passed"]
    assert s["pruned"]["macs"] == int(pruned["macs"]) < s["base"]["macs"] == int(base["macs"])


def test_mlflow_runs_metrics_and_artefacts(project):
    c, s = project.client, project.first
    parent = c.get_run(s["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.params["model.name"] == "cnn1d"
    assert parent.data.params["pretrain.epochs"] == "1" and parent.data.tags["data_md5"]
    assert c.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    [inp] = parent.inputs.dataset_inputs                                   # mlflow.log_input of the dataset
    assert (inp.dataset.name, inp.dataset.digest) == ("data/tiny.h5", parent.data.tags["data_md5"])
    assert json.loads(inp.dataset.profile)["frames"] == 192 and "tiny.dvc" in inp.dataset.source
    children = {r.info.run_name: r for r in c.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")}
    assert set(children) == {"pretrain", "evaluate-base", "register-base", "channel_stage", "lacd", "finetune",
                             "evaluate-pruned", "register-pruned", "promotion_gate"}
    assert all(r.info.status == "FINISHED" for r in children.values())
    assert len(c.get_metric_history(children["pretrain"].info.run_id, "val_accuracy")) == 1   # one per epoch
    m = children["evaluate-pruned"].data.metrics
    for key in ("test_accuracy", "test_high_snr_accuracy", "macs", "params", "macs_reduction", "params_reduction",
                "accuracy_drop", "latency_b1_median_s", "latency_b4_frames_per_s"):
        assert key in m, key
    assert {f"test_accuracy_snr_{snr}db" for snr in (-10, 0, 10, 18)} <= set(m)

    def files(run, path=""):
        return {f.path for f in c.list_artifacts(run.info.run_id, path)}
    assert {"plan.json", "channel_widths.png"} <= files(children["channel_stage"])
    assert {"diagnosis.json", "plan.json", "probe_curve.png"} <= files(children["lacd"])
    for role in ("base", "pruned"):
        assert {"confusion_matrix.png", "accuracy_vs_snr.png", "evaluation.json"} <= files(children[f"evaluate-{role}"])


def test_stage_results_carry_their_records_fields(project):
    """What each stage records (result.json) has the fields its stages.records type declares: the types
    describe what the tasks really pass on."""
    from typing import get_type_hints

    from stages.records import Evaluation, ModelStage, RegisteredVersion
    runs = project.root / "runs"
    model_fields = {"checkpoint", "checkpoint_md5", "arch_name", "num_classes", "frame_length", "macs", "params",
                    "metrics", "method", "mlflow_run_id"}
    expect = {"pretrain": (ModelStage, model_fields), "channel_stage": (ModelStage, model_fields | {"plan", "pruning"}),
              "lacd": (ModelStage, model_fields | {"plan", "diagnosis", "pruning"}),
              "finetune": (ModelStage, model_fields | {"plan", "pruning", "history", "provenance"}),
              "evaluate": (Evaluation, {"role", "accuracy", "per_snr", "macs", "latency", "metrics"}),
              "register": (RegisteredVersion, {"role", "name", "version", "run_id", "model_uri", "tags"})}
    for stage, (record, fields) in expect.items():
        declared = set(get_type_hints(record))
        assert fields <= declared and record.__required_keys__ == {"stage", "key", "dir"}, stage
        for path in (runs / stage).glob("*/result.json"):
            keys = set(json.loads(path.read_text()))
            assert fields | {"stage", "key", "dir"} <= keys, (stage, sorted(fields - keys))
            assert keys <= declared, (stage, sorted(keys - declared))      # nothing undeclared


def test_plan_rebuilds_the_pruned_architecture(project):
    """The logged FCOS plan (channel + layer stages) replays on the registered parent."""
    from amrlib.models import load_model
    from amrlib.pruning import rebuild
    runs = project.root / "runs"
    plan = json.loads(next((runs / "lacd").glob("*/plan.json")).read_text())
    assert [st["stage"] for st in plan["stages"]] == ["channel", "layer"]
    parent = load_model(next((runs / "pretrain").glob("*/model.pt")))
    tuned = load_model(next((runs / "finetune").glob("*/model.pt")))
    assert rebuild(parent, plan).arch == tuned.arch


def test_second_run_hits_the_cache(project, spies):
    again = project.run(str(project.cfg))
    states = task_states(again["prefect_flow_run_id"])
    for stage in CACHED_STAGES:
        assert states[stage] and all(st == "Cached" for st in states[stage]), (stage, states[stage])
    assert states["fetch_dataset"] == ["Completed"]            # the data check itself always runs
    assert spies == {"fit": 0, "channel_stage": 0, "lacd": 0}
    assert _versions(project.client, BASE) == [1] and _versions(project.client, PRUNED) == [1]
    assert again["pruned"] == project.first["pruned"]
    # nothing ran, so no empty parent run is left in the experiment (soft-deleted, tagged why)
    assert again["mlflow_parent_run_id"] is None
    gone = project.client.get_run(again["mlflow_parent_run_deleted"])
    assert gone.info.lifecycle_stage == "deleted" and gone.data.tags["amr_prune.all_cached"] == "true"
    assert project.client.get_run(project.first["mlflow_parent_run_id"]).info.lifecycle_stage == "active"


def test_champion_loads_by_alias_in_a_fresh_process_without_pickle(project, tmp_path):
    from amrlib.data.readers import load_dataset
    from amrlib.models import load_model
    ds = load_dataset(project.root / "data/tiny.h5").load()
    x = np.ascontiguousarray(ds.iq[:40], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    md5 = project.client.get_model_version_by_alias(PRUNED, "champion").tags["checkpoint_md5"]
    ckpt = next(p for p in (project.root / "runs" / "finetune").glob("*/model.pt") if file_md5(p) == md5)
    with torch.no_grad():
        expected = load_model(ckpt)(torch.from_numpy(x)).numpy()
    script = f"""
import json, sys, numpy as np, mlflow
mlflow.set_tracking_uri({project.uri!r})
m = mlflow.pyfunc.load_model("models:/{PRUNED}@champion")
np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m.predict(np.load({str(tmp_path / 'x.npy')!r}))))
print(json.dumps(m.metadata.metadata))
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"}
    out = subprocess.run([PY, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    meta = json.loads(out.stdout.strip().splitlines()[-1])
    got = np.load(tmp_path / "y.npy")
    assert got.shape == (40, len(ds.classes)) and meta["classes"] == list(ds.classes)
    assert meta["frame_length"] == ds.frame_length
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_failure_in_lacd_then_rerun_skips_finished_stages(project, spies, monkeypatch):
    cfg = tiny_config(project.root, "seed1.yaml", model={"name": "cnn1d", "seed": 1})   # a new parent network
    real_lacd = amrlib.pruning.fcos_steps.lacd

    def broken(*a, **k):
        raise RuntimeError("injected LaCD failure")
    monkeypatch.setattr(amrlib.pruning.fcos_steps, "lacd", broken)
    with pytest.raises(RuntimeError, match="injected LaCD failure"):
        project.run(str(cfg))
    assert spies["fit"] == 1 and spies["channel_stage"] == 1          # pretrain and channel stage finished
    base_versions = _versions(project.client, BASE)
    assert base_versions == [1, 2] and _versions(project.client, PRUNED) == [1]
    failed = project.client.search_runs([project.client.get_experiment_by_name("test").experiment_id],
                                        "attributes.status = 'FAILED'")
    assert {r.info.run_name for r in failed} >= {"lacd"}

    monkeypatch.setattr(amrlib.pruning.fcos_steps, "lacd", real_lacd)      # the spy again
    spies.update(fit=0, channel_stage=0, lacd=0)
    summary = project.run(str(cfg))
    assert spies == {"fit": 1, "channel_stage": 0, "lacd": 1}           # only LaCD and fine-tuning ran
    states = task_states(summary["prefect_flow_run_id"])
    assert states["pretrain"] == ["Cached"] and states["channel_stage"] == ["Cached"]
    assert states["lacd"] == ["Completed"] and states["finetune"] == ["Completed"]
    assert _versions(project.client, BASE) == base_versions              # the base was not registered twice
    assert _versions(project.client, PRUNED) == [1, 2]
    assert project.client.get_model_version(PRUNED, "2").tags["parent_version"] == "2"


def test_gate_refuses_then_promote_moves_champion(project, spies):
    from flows.promote import promote
    strict = tiny_config(project.root, "strict.yaml", finetune={"epochs": 1, "batch_size": 32, "seed": 7},
                         gate={"max_accuracy_drop": 0.9, "min_macs_reduction": 0.999})
    champion = _alias(project.client, PRUNED, "champion")
    s = project.run(str(strict))
    new = s["pruned"]["version"]
    assert spies == {"fit": 1, "channel_stage": 0, "lacd": 0}           # only the fine-tuning is new
    assert not s["gate"]["passed"] and "MAC reduction" in s["gate"]["reasons"][0]
    assert _alias(project.client, PRUNED, "challenger") == new != champion == _alias(project.client, PRUNED, "champion")
    assert project.client.get_model_version(PRUNED, new).tags["gate.passed"] == "False"

    refused = promote(str(strict))
    assert refused["passed"] is False and _alias(project.client, PRUNED, "champion") == champion
    accepted = promote(str(strict), overrides={"gate": {"min_macs_reduction": 0.1}})
    assert accepted["passed"] is True and accepted["champion_before"] == champion
    assert _alias(project.client, PRUNED, "champion") == new
    assert promote(str(strict))["passed"] is None                      # already champion: nothing to do


def test_reuse_registered_base_by_alias(project, spies):
    cfg = tiny_config(project.root, "reuse.yaml", pretrain={"epochs": 1, "batch_size": 32, "reuse_alias": "champion"},
                      finetune={"epochs": 1, "batch_size": 32, "seed": 3})
    base_champion = _alias(project.client, BASE, "champion")
    n_base = _versions(project.client, BASE)
    s = project.run(str(cfg))
    assert spies["fit"] == 1                                            # fine-tuning only: no pretraining
    assert _versions(project.client, BASE) == n_base
    tags = project.client.get_model_version(PRUNED, s["pruned"]["version"]).tags
    assert (tags["parent_model"], tags["parent_version"]) == (BASE, base_champion)


def test_cli_pipeline_prints_the_report(project):
    """``amr-prune run`` (in-process): all stages cached, then the registry report and UI hints."""
    from typer.testing import CliRunner

    from cli import app
    out = CliRunner().invoke(app, ["run", "-c", str(project.cfg)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output[-3000:]
    for text in ("promotion gate", "amr-cnn1d-fcos", "champion", "mlflow ui --backend-store-uri",
                 "prefect server start"):
        assert text in out.output, text
    bad = CliRunner().invoke(app, ["run", "-c", str(project.cfg), "--set", "channel_stage.keep_ratio=1.5"])
    assert bad.exit_code == 1 and "keep_ratio must be in (0, 1)" in bad.output


def test_cron_deployment_is_registered_with_its_schedule(project):
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.retrain_and_prune import deployment
    dep_id = deployment(str(project.cfg), cron="0 3 * * 1", name="weekly-test").apply()

    async def read():
        async with get_client() as client:
            return await client.read_deployment(dep_id)
    dep = asyncio.run(read())
    assert dep.name == "weekly-test" and dep.parameters == {"config": str(project.cfg)}
    assert [s.schedule.cron for s in dep.schedules] == ["0 3 * * 1"]


def test_tampered_checkpoint_is_refused_not_reused(project):
    """A stage checkpoint changed on disk is an error naming the file; nothing is silently recomputed over it."""
    from stages.stage import load_stage_model
    result = json.loads(next((project.root / "runs" / "channel_stage").glob("*/result.json")).read_text())
    ckpt = Path(result["checkpoint"])
    original = ckpt.read_bytes()
    try:
        ckpt.write_bytes(original[:-10])
        with pytest.raises(RuntimeError, match=f"{ckpt}: checkpoint of stage channel_stage is modified"):
            load_stage_model(result)
    finally:
        ckpt.write_bytes(original)
    assert load_stage_model(result).arch["name"] == "cnn1d"
