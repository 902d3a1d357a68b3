"""A registered version whose artefacts changed after registration is refused on every read path:
MLflow's own pyfunc loader, the checkpoint checkout (export, bench-latency, promote, reuse as a parent)
and the lineage's plan. Changing the bytes in the artefact store is what an attacker or a bad disk does."""
from __future__ import annotations

from pathlib import Path

import pytest

import mlflow
from fixtures_pipeline import make_project, prefect_harness, tiny_config

PRUNED = "amr-cnn1d-fcos"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from flows.prune_pipeline import prune_pipeline
    with prefect_harness():
        tmp = tmp_path_factory.mktemp("tamper")
        root = make_project(tmp / "proj", tmp / "remote")
        prune_pipeline(str(tiny_config(root)))
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return root, uri


def _artefact(name: str, version: str, filename: str) -> Path:
    """The file inside the artefact store itself (not a downloaded copy)."""
    src = mlflow.MlflowClient().get_model_version_download_uri(name, version)
    root = Path(src.removeprefix("file://"))
    found = [p for p in root.rglob(filename)]
    assert len(found) == 1, found
    return found[0]


def test_flipped_checkpoint_and_edited_plan_are_refused(project, tmp_path):
    root, uri = project
    from tracking.lineage import download_plan
    from tracking.registry import TamperedArtefact, download_checkpoint
    assert download_plan(uri, PRUNED, "1") is not None              # untouched: every path reads it
    good = download_checkpoint(PRUNED, "1", tmp_path / "ok")
    mlflow.pyfunc.load_model(f"models:/{PRUNED}/1")

    ckpt = _artefact(PRUNED, "1", "model.pt")
    raw = bytearray(ckpt.read_bytes())
    raw[-200] ^= 0xFF                                                # one flipped byte inside the weights
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(TamperedArtefact, match=f"models:/{PRUNED}/1: model.pt has md5"):
        download_checkpoint(PRUNED, "1", tmp_path / "bad")
    with pytest.raises(Exception, match="differs from .* recorded when this model was registered"):
        mlflow.pyfunc.load_model(f"models:/{PRUNED}/1")
    ckpt.write_bytes(good.read_bytes())                              # restored: loads again
    mlflow.pyfunc.load_model(f"models:/{PRUNED}/1")

    plan = _artefact(PRUNED, "1", "plan.json")
    plan.write_text(plan.read_text().replace('"fcos"', '"forged"', 1))
    with pytest.raises(TamperedArtefact, match="plan.json has md5"):
        download_plan(uri, PRUNED, "1")
