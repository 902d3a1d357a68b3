"""Real processes, real faults: a flow run SIGKILLed between MLflow creating a model version and the stage
recording it, then re-run; and three flow runs at once against one SQLite tracking store and one runs/
directory (two identical, one with another seed). Every flow runs in its own Python process
(tests/helpers/flow_job.py) against the Prefect test server of this module.

(The training process SIGKILLed mid-epoch is tests/test_train_resume.py; a stage failing and the flow
re-run is test_pipeline_flow.py::test_failure_in_lacd_then_rerun_skips_finished_stages.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fixtures_pipeline import PY, ROOT, make_project, prefect_harness, task_states, tiny_config

pytestmark = pytest.mark.integration
JOB = ROOT / "tests" / "helpers" / "flow_job.py"
BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"
STAGES = ("pretrain", "evaluate-base", "register-base", "channel_stage", "lacd", "finetune", "evaluate-pruned",
          "register-pruned", "promotion_gate")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    import prefect.settings
    with prefect_harness():
        yield str(prefect.settings.PREFECT_API_URL.value())


def start(api: str, cfg: Path, out: Path, kill_at: str = "") -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(out.parent / f".prefect-{out.stem}"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "CI": "1"}
    log = open(out.with_suffix(".log"), "w")
    return subprocess.Popen([PY, str(JOB), str(cfg), str(out)] + ([kill_at] if kill_at else []), env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=out.parent)


def finish(proc: subprocess.Popen, out: Path, timeout: float = 400) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)         # only this job's own process group
            proc.wait()


def _client(root: Path):
    from mlflow import MlflowClient
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _versions(client, name) -> list[str]:
    return [str(v) for v in sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))]


def _log(out: Path) -> str:
    return out.with_suffix(".log").read_text()


def test_flow_killed_after_registering_reruns_without_duplicates(api, tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root)
    killed = tmp_path / "killed.json"
    proc = start(api, cfg, killed, "after_pruned_version")
    rc = finish(proc, killed)
    assert rc == -signal.SIGKILL, _log(killed)
    assert not killed.exists()
    c = _client(root)
    exp = c.get_experiment_by_name("test").experiment_id
    [ghost] = c.search_runs([exp], f"tags.`amr_prune.pid` = '{proc.pid}'")      # the killed flow's parent run
    assert ghost.info.status == "RUNNING"
    ghost_children = c.search_runs([exp], f"tags.`mlflow.parentRunId` = '{ghost.info.run_id}' and "
                                          f"attributes.status = 'RUNNING'")
    assert [r.info.run_name for r in ghost_children] == ["register-pruned"]
    assert _versions(c, BASE) == ["1"]
    assert _versions(c, PRUNED) == ["1"]             # created, then the process died
    recorded = [json.loads(p.read_text())["name"] for p in (root / "runs" / "register").glob("*/result.json")]
    assert recorded == [BASE]                                               # the pruned one never recorded
    assert "gate.passed" not in c.get_model_version(PRUNED, "1").tags

    again = tmp_path / "again.json"
    rc = finish(start(api, cfg, again), again)
    assert rc == 0, _log(again)
    summary = json.loads(again.read_text())
    states = task_states(summary["prefect_flow_run_id"])
    for stage in ("pretrain", "channel_stage", "lacd", "finetune", "evaluate"):
        assert states[stage] and set(states[stage]) == {"Cached"}, (stage, states[stage])
    assert sorted(states["register"]) == ["Cached", "Completed"]      # base cached; pruned found, not redone
    assert _versions(c, BASE) == ["1"]
    assert _versions(c, PRUNED) == ["1"]              # no duplicate version
    recovered = c.get_model_version(PRUNED, "1")
    tags = recovered.tags
    assert tags["gate.passed"] == "True" and summary["pruned"]["version"] == "1"
    # the killed run never logged the card: the re-run that found the version logs it and describes the version
    assert "Model card" in (recovered.description or "") and tags["model_card"].endswith("/model_card/model_card.md")
    card_run = tags["model_card"].removeprefix("runs:/").split("/")[0]
    assert card_run != recovered.run_id and "model_card.md" in {
        Path(f.path).name for f in c.list_artifacts(card_run, "model_card")}
    assert str(c.get_model_version_by_alias(PRUNED, "champion").version) == "1"
    assert c.get_run(ghost.info.run_id).info.status == "KILLED"           # the re-run closed what was left open
    assert "marked 1 run(s) KILLED whose flow process on" in _log(again) and ghost.info.run_id in _log(again)
    assert c.get_run(ghost_children[0].info.run_id).info.status == "KILLED"


def test_three_flow_runs_at_once_do_not_mix(api, tmp_path):
    """A fresh project (no dataset, no MLflow database yet): runs A and B share one configuration (a cron run
    and a manual run of the same thing), C has another model seed. Each stage is computed once, each model
    registered once, and every run, version and lineage tag stays with the flow that made it."""
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg1 = tiny_config(root, "seed1.yaml", model={"name": "cnn1d", "seed": 1})
    cfg2 = tiny_config(root, "seed2.yaml", model={"name": "cnn1d", "seed": 2})
    outs = {k: tmp_path / f"{k}.json" for k in "ABC"}
    procs = {"A": start(api, cfg1, outs["A"]), "B": start(api, cfg1, outs["B"]), "C": start(api, cfg2, outs["C"])}
    t0 = time.time()
    rcs = {k: finish(p, outs[k]) for k, p in procs.items()}
    assert rcs == {"A": 0, "B": 0, "C": 0}, {k: _log(outs[k]) for k in "ABC" if rcs[k]}
    print(f"three concurrent flow runs: {time.time() - t0:.0f} s")
    s = {k: json.loads(outs[k].read_text()) for k in "ABC"}
    c = _client(root)
    assert _versions(c, BASE) == ["1", "2"]
    assert _versions(c, PRUNED) == ["1", "2"]
    assert s["A"]["base"]["version"] == s["B"]["base"]["version"] != s["C"]["base"]["version"]
    assert s["A"]["pruned"]["version"] == s["B"]["pruned"]["version"] != s["C"]["pruned"]["version"]
    assert s["A"]["data"] == s["B"]["data"] == s["C"]["data"]
    generated = [k for k in "ABC" if "does not exist: generating" in outs[k].with_suffix(".log").read_text()]
    assert len(generated) == 1                        # one run generated the dataset, the others waited for it

    flow_ids = {k: s[k]["prefect_flow_run_id"] for k in "ABC"}
    # a flow run that found every stage done by the others deletes its empty parent run (soft delete)
    parents = {k: s[k]["mlflow_parent_run_id"] or s[k]["mlflow_parent_run_deleted"] for k in "ABC"}
    seed_of = {"A": "1", "B": "1", "C": "2"}
    exp = c.get_experiment_by_name("test").experiment_id
    nested = {k: c.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parents[k]}'") for k in "ABC"}
    assert sorted(r.info.run_name for r in nested["C"]) == sorted(STAGES)        # C did all of its own work
    ab = [r.info.run_name for r in nested["A"] + nested["B"]]
    assert sorted(ab) == sorted(STAGES)               # A and B together did each stage exactly once
    for k in "ABC":
        for r in nested[k]:
            if r.info.run_name == "pretrain":
                assert r.data.params["model.seed"] == seed_of[k]
            assert r.info.status == "FINISHED"
        assert c.get_run(parents[k]).info.status == "FINISHED"
        assert bool(s[k].get("mlflow_parent_run_deleted")) == (not nested[k])
    for name in (BASE, PRUNED):
        for k in "ABC":
            mv = c.get_model_version(name, s[k]["base" if name == BASE else "pruned"]["version"])
            makers = {flow_ids[x] for x in "ABC" if seed_of[x] == seed_of[k]}
            assert mv.tags["flow_run_id"] in makers, (name, k)
            if name == PRUNED:
                assert mv.tags["parent_version"] == s[k]["base"]["version"]        # lineage not crossed
    gated = [r for r in c.search_runs([exp], "attributes.run_name = 'promotion_gate'")]
    assert len(gated) == 2                            # one gate decision per pruned version
