"""prune_pipeline with every method selectable by name (issue #6), under Prefect's test harness on the tiny
cnn1d configuration: a channel peer (l1) and a layer peer (lcp) each register ``amr-cnn1d-<method>`` with
their method tags and a smaller model; an impossible request fails with one clear line and registers
nothing; FCOS's interim recovery stage runs between the channel stage and LaCD and is cached on re-run."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

import amrlib.pruning.methods
import tasks.train
from datastore.dvc_store import file_md5, read_dvc_file
from fixtures_pipeline import make_project, prefect_harness, task_states, tiny_config

BASE = "amr-cnn1d-base"


@pytest.fixture(scope="module")
def harness():
    with prefect_harness():
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory, harness):
    from flows.prune_pipeline import prune_pipeline
    from mlflow import MlflowClient
    root = make_project(tmp_path_factory.mktemp("methods") / "proj", tmp_path_factory.mktemp("remote"))
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    return SimpleNamespace(root=root, run=prune_pipeline, client=MlflowClient(tracking_uri=uri, registry_uri=uri))


@pytest.fixture
def calls(monkeypatch):
    """Count the amrlib calls that do the work: training (pretrain / fine-tunes) and peer pruning."""
    n = {"fit": 0, "prune": 0}

    def spy(name, fn):
        def wrapped(*a, **k):
            n[name] += 1
            return fn(*a, **k)
        return wrapped
    monkeypatch.setattr(tasks.train, "fit", spy("fit", tasks.train.fit))
    monkeypatch.setattr(amrlib.pruning.methods, "prune", spy("prune", amrlib.pruning.methods.prune))
    return n


def _states(flow_run_id):
    return task_states(flow_run_id, settle_s=60.0)     # waits until every task run reached a final state


def _versions(client, name):
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def _children(client, parent_run_id):
    parent = client.get_run(parent_run_id)
    return {r.info.run_name: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'")}


def _check_peer_version(project, summary, method, target, options):
    c = project.client
    name = f"amr-cnn1d-{method}"
    assert summary["method"] == method and summary["pruned"]["model"] == name
    assert _versions(c, name) == [1] and summary["gate"]["name"] == name
    tags = c.get_model_version(name, "1").tags
    base = c.get_model_version(BASE, "1").tags
    assert tags["method"] == method and float(tags["target_macs_reduction"]) == target
    assert json.loads(tags["options"]) == {**options, "seed": 0}
    assert tags["data_md5"] == read_dvc_file(project.root, "tiny.dvc")["md5"]
    assert (tags["parent_model"], tags["parent_version"]) == (BASE, "1") and tags["git_commit"] != "unknown"
    assert int(tags["macs"]) < int(base["macs"]) and int(tags["params"]) < int(base["params"])
    assert str(c.get_registered_model(name).aliases.get("challenger")) == "1"
    children = _children(c, summary["mlflow_parent_run_id"])
    assert {f"peer_stage-{method}", "finetune", "evaluate-pruned", "register-pruned", "promotion_gate"} <= set(children)
    assert "channel_stage" not in children and "lacd" not in children
    stage_run = children[f"peer_stage-{method}"]
    assert stage_run.data.tags["method"] == method and stage_run.info.status == "FINISHED"
    files = {f.path for f in c.list_artifacts(stage_run.info.run_id)}
    assert {"plan.json", "report.json"} <= files
    plans = {file_md5(p): p for p in (project.root / "runs" / "peer_stage").glob("*/plan.json")}
    plan_file = plans[tags["plan_md5"]]                       # the version's plan is the one its stage wrote
    report = json.loads(plan_file.with_name("report.json").read_text())
    assert report["method"] == method and "accuracy_after" not in report      # amrlib did not fine-tune
    return tags, json.loads(plan_file.read_text())


def test_channel_peer_l1_registers_its_own_model(project, calls):
    cfg = tiny_config(project.root, "l1.yaml", method="l1", peer={"target_macs_reduction": 0.5})
    s = project.run(str(cfg))
    assert calls == {"fit": 2, "prune": 1}                     # pretrain + fine-tune; one prune, no fine-tune in it
    tags, plan = _check_peer_version(project, s, "l1", 0.5, {})
    assert float(tags["macs_reduction"]) == pytest.approx(0.5, abs=0.02) and tags["target_met"] == "True"
    assert _versions(project.client, BASE) == [1]
    assert [st["stage"] for st in plan["stages"]] == ["channel"]
    # the registered plan replays on the registered parent
    from amrlib.models import load_model
    from amrlib.pruning import rebuild
    parent = load_model(next((project.root / "runs" / "pretrain").glob("*/model.pt")))
    finetuned = json.loads(next((project.root / "runs" / "finetune").glob("*/result.json")).read_text())
    tuned = load_model(finetuned["checkpoint"])
    assert rebuild(parent, plan).arch == tuned.arch


def test_layer_peer_lcp_registers_its_own_model(project, calls):
    cfg = tiny_config(project.root, "lcp.yaml", method="lcp",
                      peer={"target_macs_reduction": 0.4, "options": {"probe_frames": 64}})
    s = project.run(str(cfg))
    assert calls == {"fit": 1, "prune": 1}                     # pretrain cached: only the fine-tune trains
    tags, plan = _check_peer_version(project, s, "lcp", 0.4, {"probe_frames": 64})
    assert plan["stages"][0]["stage"] == "layer" and plan["stages"][0]["removed"]
    assert float(tags["macs_reduction"]) >= 0.4 - 0.02
    assert _versions(project.client, BASE) == [1]              # the same parent, not registered again
    states = _states(s["prefect_flow_run_id"])
    assert states["pretrain"] == ["Cached"] and states["peer_stage"] == ["Completed"]


def test_impossible_request_fails_clearly_and_registers_nothing(project, calls):
    from tasks.peers import PeerStageError
    c = project.client
    # a new parent (seed 5): on the peer path the base is registered only after the peer stage succeeded
    cfg = tiny_config(project.root, "bn.yaml", method="bn_scale", model={"name": "cnn1d", "seed": 5},
                      peer={"target_macs_reduction": 0.5})
    bases = _versions(c, BASE)                                  # whatever earlier tests of this module registered
    with pytest.raises(PeerStageError) as err:
        project.run(str(cfg))
    msg = str(err.value)
    assert "\n" not in msg and "'bn_scale'" in msg and "cnn1d" in msg and "50.0%" in msg and "BatchNorm" in msg
    assert _versions(c, "amr-cnn1d-bn_scale") == [] and _versions(c, BASE) == bases
    assert calls["fit"] == 1                                    # pretrained (cached for the next try), no fine-tune
    failed = c.search_runs([c.get_experiment_by_name("test").experiment_id], "attributes.status = 'FAILED'")
    assert "peer_stage-bn_scale" in {r.info.run_name for r in failed}

    bad = tiny_config(project.root, "bad.yaml", method="l1", peer={"options": {"no_such_option": 1}})
    l1_versions = _versions(c, "amr-cnn1d-l1")
    with pytest.raises(PeerStageError, match=r"method 'l1' cannot prune cnn1d to a 80.0% .*unknown option"):
        project.run(str(bad))
    assert _versions(c, "amr-cnn1d-l1") == l1_versions

    from typer.testing import CliRunner

    from cli import app
    out = CliRunner().invoke(app, ["run", "-c", str(cfg)])
    text = " ".join(out.output.split())                         # Rich wraps long lines at the terminal width
    assert out.exit_code == 1 and "error: bn_scale cannot prune cnn1d" in text and text.count("error:") == 1


def test_fcos_interim_recovery_runs_then_is_cached(project, calls):
    cfg = tiny_config(project.root, "interim.yaml", lacd={"interim_epochs": 1})
    s = project.run(str(cfg))
    assert calls["fit"] == 2                                    # interim + final fine-tune (pretrain cached)
    assert s["stages"] == ["pretrain", "channel_stage", "interim_finetune", "lacd", "finetune"]
    states = _states(s["prefect_flow_run_id"])
    assert states["interim_finetune"] == ["Completed"]
    children = _children(project.client, s["mlflow_parent_run_id"])
    assert len(project.client.get_metric_history(children["interim_finetune"].info.run_id, "val_accuracy")) == 1
    interim = json.loads(next((project.root / "runs" / "interim_finetune").glob("*/result.json")).read_text())
    lacd = json.loads(next((project.root / "runs" / "lacd").glob("*/result.json")).read_text())
    channel = json.loads(next((project.root / "runs" / "channel_stage").glob("*/result.json")).read_text())
    assert interim["plan"] == channel["plan"] and interim["checkpoint_md5"] != channel["checkpoint_md5"]
    lacd_run = children["lacd"]
    assert lacd_run.data.params["parent_checkpoint_md5"] == interim["checkpoint_md5"]   # LaCD probed the recovered net
    assert lacd["pruning"]["options"]["interim_epochs"] == 1
    tags = project.client.get_model_version("amr-cnn1d-fcos", s["pruned"]["version"]).tags
    assert tags["method"] == "fcos" and json.loads(tags["options"])["interim_epochs"] == 1

    calls.update(fit=0, prune=0)
    again = project.run(str(cfg))
    assert calls["fit"] == 0                                    # nothing trained again
    states = _states(again["prefect_flow_run_id"])
    for stage in ("pretrain", "channel_stage", "interim_finetune", "lacd", "finetune"):
        assert states[stage] == ["Cached"], (stage, states[stage])
    assert again["pruned"] == s["pruned"]


def test_fcos_final_target_scope_refits_the_channel_stage(project, calls):
    """channel_stage.target_scope: final — a match_target stage after LaCD re-fits the channel stage around
    the removed blocks, so the registered network meets the MAC target itself (not target + LaCD's cut)."""
    from amrlib.models import load_model
    from amrlib.pruning import rebuild
    sections = {"channel_stage": {"keep_ratio": None, "target_macs_reduction": 0.5, "target_scope": "final"},
                "lacd": {"margin": 0.5}}          # a large margin: LaCD calls most units collapsed
    cfg = tiny_config(project.root, "final.yaml", **sections)
    s = project.run(str(cfg))
    assert s["stages"] == ["pretrain", "channel_stage", "lacd", "match_target", "finetune"]
    runs = project.root / "runs"
    matched = json.loads(next((runs / "match_target").glob("*/result.json")).read_text())
    params = _children(project.client, s["mlflow_parent_run_id"])["match_target"].data.params

    def result(stage, md5):
        return next(r for r in (json.loads(p.read_text()) for p in (runs / stage).glob("*/result.json"))
                    if r["checkpoint_md5"] == md5)
    lacd = result("lacd", params["diagnosed_checkpoint_md5"])
    base = result("pretrain", params["parent_checkpoint_md5"])
    assert 1 - lacd["macs"] / base["macs"] > 0.55                      # channel target + LaCD's removals
    assert 0.5 <= matched["metrics"]["macs_reduction"] == 1 - matched["macs"] / base["macs"] < 0.51   # the target
    assert 0 < matched["metrics"]["removed_blocks"] <= len(json.loads(open(lacd["diagnosis"]).read())["removed"])
    plan = json.loads(open(matched["plan"]).read())
    rebuilt = rebuild(load_model(base["checkpoint"]), plan)
    assert rebuilt.arch == load_model(matched["checkpoint"]).arch
    assert s["pruned"]["macs_reduction"] == pytest.approx(matched["metrics"]["macs_reduction"])
    tags = project.client.get_model_version("amr-cnn1d-fcos", s["pruned"]["version"]).tags
    assert json.loads(tags["options"])["target_scope"] == "final"
    children = _children(project.client, s["mlflow_parent_run_id"])
    assert children["match_target"].data.params["target_scope"] == "final"

    calls.update(fit=0, prune=0)
    again = project.run(str(cfg))
    assert calls["fit"] == 0 and _states(again["prefect_flow_run_id"])["match_target"] == ["Cached"]


def test_latency_widths_and_threshold_allocation_reach_the_registered_network(project):
    """channel_stage.width_multiple and .allocation pass through the channel stage and the final-target re-fit."""
    from amrlib.models import load_model
    sections = {"channel_stage": {"keep_ratio": None, "target_macs_reduction": 0.5, "target_scope": "final",
                                  "width_multiple": 4, "allocation": "threshold"}, "lacd": {"margin": 0.5}}
    s = project.run(str(tiny_config(project.root, "widths.yaml", **sections)))
    # met, not matched to the point: around 10 removed units, 4-channel steps on the dominant group are coarse
    assert 0.5 <= s["pruned"]["macs_reduction"] < 0.7
    results = [json.loads(p.read_text()) for p in (project.root / "runs" / "match_target").glob("*/result.json")]
    mine = [r for r in results if r["pruning"]["options"]["channel_stage"].get("width_multiple") == 4]
    assert len(mine) == 1
    net = load_model(mine[0]["checkpoint"])
    assert all(g.size % 4 == 0 for g in net.structure().groups)
    plan = json.loads(open(mine[0]["plan"]).read())
    assert plan["stages"][0]["settings"]["allocation"] == "threshold"
    assert plan["stages"][0]["settings"]["width_multiple"] == 4


def test_status_lists_every_methods_models(project, monkeypatch):
    from rich.console import Console

    import flows.report as report
    from settings.pipeline import load_config
    buf = io.StringIO()
    monkeypatch.setattr(report, "console", Console(file=buf, width=250))
    rows = report.print_registry(load_config(project.root / "interim.yaml"))    # an fcos configuration
    assert {r["name"] for r in rows} == {BASE, "amr-cnn1d-fcos", "amr-cnn1d-l1", "amr-cnn1d-lcp"}
    text = buf.getvalue()
    for name in ("amr-cnn1d-l1", "amr-cnn1d-lcp", "amr-cnn1d-fcos"):
        assert name in text
    assert "50%" in text and "40%" in text                     # the peers' targets
