"""prune_pipeline / promote meeting bad input, on a project that already has registered models: every case
fails with an error naming what is wrong and where, and nothing already saved changes (registered
versions, their tags and aliases, finished stages' checkpoints and results).

The project's DVC remote is S3 (moto on loopback) with credentials from the environment only; the last
test scans everything the runs wrote — MLflow store and artefacts, runs/, DVC files, Prefect's logs and
database, the console — for those credentials."""
from __future__ import annotations

import hashlib
import json
import secrets
import string
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from fixtures_pipeline import DVC, TINY_DATA, free_port, make_project, prefect_harness, run, tiny_config

pytestmark = pytest.mark.integration
BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"
KEY_ID = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
SECRET = "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))


@pytest.fixture(scope="module")
def s3_env():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    mp = pytest.MonkeyPatch()
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        mp.setenv(k, v)
    import boto3
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="amr-data")
    yield f"http://127.0.0.1:{port}"
    mp.undo()
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, s3_env):
    from flows.prune_pipeline import prune_pipeline
    with prefect_harness():
        tmp = tmp_path_factory.mktemp("flow-bad-input")
        root = make_project(tmp / "proj", None)
        run([DVC, "remote", "add", "-d", "team", "s3://amr-data/dvc"], root)
        run([DVC, "remote", "modify", "team", "endpointurl", s3_env], root)
        run([DVC, "remote", "modify", "team", "region", "us-east-1"], root)
        cfg = tiny_config(root)
        first = prune_pipeline(str(cfg))
        from mlflow import MlflowClient
        uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
        yield SimpleNamespace(root=root, cfg=cfg, first=first, uri=uri, run=prune_pipeline,
                              client=MlflowClient(tracking_uri=uri, registry_uri=uri))


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def saved_state(project) -> dict:
    """Registered versions with tags and aliases, and every finished stage's files."""
    from tracking.registry import registry_state
    stages = {str(p.relative_to(project.root)): _md5(p) for p in sorted((project.root / "runs").glob("*/*/*"))
              if p.is_file() and p.name in ("result.json", "model.pt", "plan.json")
              and p.parts[-3] != "registry"}             # runs/registry/ only caches downloaded versions
    return {"registry": registry_state(project.uri, [BASE, PRUNED]), "stages": stages}


def _fails(project, cfg, exc_type, message, flow=None):
    before = saved_state(project)
    with pytest.raises(exc_type) as err:
        (flow or project.run)(str(cfg))
    assert message in str(err.value), str(err.value)
    assert saved_state(project) == before
    return str(err.value)


def test_baseline_registered_both_models(project):
    assert project.first["gate"]["passed"]
    assert [r["version"] for r in saved_state(project)["registry"]] == ["1", "1"]


def test_unknown_alias(project):
    cfg = tiny_config(project.root, "alias.yaml", pretrain={"epochs": 1, "batch_size": 32, "reuse_alias": "nosuch"})
    _fails(project, cfg, RuntimeError, f"no registered model version {BASE}@nosuch at {project.uri}")


def test_reused_base_of_another_class_count(project):
    other = dict(TINY_DATA, path="data/three.h5", classes=["BPSK", "QPSK", "WBFM"])
    cfg = tiny_config(project.root, "three.yaml", data={"dvc_file": "three.dvc", "synthetic": other},
                      pretrain={"epochs": 1, "batch_size": 32, "reuse_alias": "champion"})
    _fails(project, cfg, ValueError, f"pretrain.reuse_alias: {BASE}@champion has 4 classes and frame length 128, "
                                     f"the dataset data/three.h5 3 and 128")


def test_frame_length_the_model_cannot_take(project):
    from amrlib.models import ModelError
    short = dict(TINY_DATA, path="data/short.h5", frame_length=32)
    cfg = tiny_config(project.root, "short.yaml", data={"dvc_file": "short.dvc", "synthetic": short})
    _fails(project, cfg, ModelError, "model.name 'cnn1d' cannot take the dataset data/short.h5 (4 classes, frame "
                                     "length 32): cnn1d cannot be built for 4 classes and frame length 32: frame "
                                     "length 32 is too short for 6 pooling stacks")


def test_unreadable_dataset_behind_the_dvc_pointer(project):
    """data.dvc points at a file whose checksum matches but whose frames hold NaN (e.g. a bad import made
    elsewhere): the run stops at fetch, before any stage."""
    from datastore.dvc_store import DataStoreError, file_md5, write_dvc_file
    bad = project.root / "data" / "nan.h5"
    with h5py.File(bad, "w") as f:
        iq = np.zeros((8, 2, 128), np.float32)
        iq[3, 0, 9] = np.nan
        f["iq"], f["labels"], f["snrs"] = iq, np.arange(8) % 4, np.zeros(8, np.int64)
        f.attrs["format"], f.attrs["format_version"] = "amr-prune", 1
        f.attrs["classes"], f.attrs["meta"] = json.dumps(TINY_DATA["classes"]), "{}"
    write_dvc_file(project.root, "nan.dvc", "data/nan.h5", file_md5(bad), bad.stat().st_size, {})
    cfg = tiny_config(project.root, "nan.yaml", data={"dvc_file": "nan.dvc", "synthetic": TINY_DATA})
    _fails(project, cfg, DataStoreError, f"dataset unreadable: {bad}: non-finite samples (NaN/Inf) in frame 3")


def test_compression_target_that_would_empty_a_layer(project):
    from amrlib.pruning import PruningError
    cfg = tiny_config(project.root, "empty.yaml", channel_stage={"keep_ratio": None, "target_macs_reduction": 0.9999})
    _fails(project, cfg, PruningError, "channel_stage.target_macs_reduction: 0.9999 on cnn1d: a 99.99% MACs "
                                       "reduction would empty a layer: with one channel per group this model "
                                       "reaches at most 99.")


def test_promote_a_version_that_does_not_exist(project):
    from flows.promote import promote
    from tasks.registry import checkout_version
    cfg = tiny_config(project.root, "nothing.yaml", registry={"pruned_model": "amr-cnn1d-nothing"})
    _fails(project, cfg, RuntimeError, f"amr-cnn1d-nothing has no 'challenger' version at {project.uri}: run "
                                       f"prune_pipeline first", flow=promote)
    t = {"uri": project.uri, "experiment_id": None}
    with pytest.raises(RuntimeError, match=rf"no registered model version {BASE} v99 at {project.uri}"):
        checkout_version.fn(BASE, None, "99", str(project.root / "runs"), t)


def test_gate_with_impossible_bounds(project):
    from flows.promote import promote
    from settings.pipeline import ConfigError
    before = saved_state(project)
    with pytest.raises(ConfigError, match=r"gate.min_macs_reduction must be in \[0, 1\) \(1 would mean no MACs left\), "
                                          r"got 1.2"):
        promote(str(project.cfg), overrides={"gate": {"min_macs_reduction": 1.2}})
    assert saved_state(project) == before


# ---- credentials: last, so that it sees everything the runs above wrote ---------------------------------

def find(needles: list[str], paths: list[Path]) -> list[str]:
    """Files under ``paths`` whose bytes contain any needle."""
    hits = []
    for base in paths:
        for p in ([base] if base.is_file() else sorted(base.rglob("*"))):
            if p.is_file():
                data = p.read_bytes()
                hits += [f"{p}: {n[:4]}..." for n in needles if n.encode() in data]
    return hits


def test_credentials_from_the_environment_are_never_logged(project, s3_env, tmp_path, capfd):
    import prefect.settings
    from prefect.client.orchestration import get_client
    assert project.first["data"]["md5"]                       # the data went through S3 with these keys
    again = project.run(str(project.cfg))                     # once more, with the console captured
    assert again["pruned"] == project.first["pruned"]
    messages = []
    with get_client(sync_client=True) as client:
        while batch := client.read_logs(limit=200, offset=len(messages)):
            messages += [rec.message for rec in batch]
    logs = "\n".join(messages)
    db_url = str(prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or "")
    out, err = capfd.readouterr()
    needles = [SECRET, KEY_ID]
    places = [project.root / "mlflow", project.root / "runs", project.root / ".dvc", project.root / ".git",
              *project.root.glob("*.dvc"), *project.root.glob("*.yaml")]
    prefect_db = Path(db_url.split("///", 1)[1]) if "///" in db_url else None
    assert prefect_db is not None and prefect_db.exists(), db_url
    places.append(prefect_db.parent)                          # the database and its WAL
    assert len(logs) > 0 and "prune_pipeline" in out + err + logs
    assert find(needles, places) == []
    assert not any(n in out or n in err or n in logs for n in needles)
    c = project.client
    for r in c.search_runs([c.get_experiment_by_name("test").experiment_id]):
        blob = json.dumps({"params": r.data.params, "tags": r.data.tags, "metrics": list(r.data.metrics)})
        assert not any(n in blob for n in needles), r.info.run_name
    for mv in c.search_model_versions(f"name = '{BASE}'") + c.search_model_versions(f"name = '{PRUNED}'"):
        assert not any(n in json.dumps(mv.tags) for n in needles)
    (tmp_path / "control.txt").write_text(f"key={SECRET}")      # the scan does find a leak where there is one
    assert find(needles, [tmp_path]) == [f"{tmp_path / 'control.txt'}: {SECRET[:4]}..."]
