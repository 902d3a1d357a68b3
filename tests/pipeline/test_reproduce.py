"""Reproducible versions (issue 19): every registered version records the torch thread count, device, library
versions and a fingerprint of the training/pruning code besides its data md5, commit and configuration, and
``amr-prune reproduce NAME@ALIAS`` re-makes it on this machine (a child process, no Prefect) and compares
the logits: identical with every input as recorded; with another thread count the report names that input
and applies the tolerance. A tiny run: 192 frames, a 1-epoch cnn1d (tests/fixtures_pipeline.py)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from fixtures_pipeline import make_project, prefect_harness, tiny_config
from helpers.cli_process import run_cli

BASE, PRUNED = "amr-cnn1d-base", "amr-cnn1d-fcos"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from flows.prune_pipeline import prune_pipeline
    from mlflow import MlflowClient
    tmp = tmp_path_factory.mktemp("reproduce")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root)
    with prefect_harness():
        prune_pipeline(str(cfg))
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    return SimpleNamespace(root=root, cfg=cfg, client=MlflowClient(tracking_uri=uri, registry_uri=uri))


def _report(project, *args) -> tuple[int, dict, str]:
    code, out, _ = run_cli("reproduce", *args, "--config", project.cfg, "--json", cwd=project.root)
    start = out.find("{\n")
    assert start >= 0, out
    return code, json.loads(out[start:]), out


def test_versions_record_threads_device_libraries_and_code(project):
    for name in (BASE, PRUNED):
        tags = project.client.get_model_version(name, "1").tags
        assert tags["torch_threads"] == str(torch.get_num_threads())          # what training ran with
        assert tags["device"] == "cpu"
        libs = json.loads(tags["library_versions"])
        assert libs["torch"].split("+")[0] == torch.__version__.split("+")[0] and libs["mlflow"] and libs["numpy"]
        assert tags["python_version"] and tags["machine"] and len(tags["code_fingerprint"]) == 64


@pytest.mark.parametrize("ref", [f"{PRUNED}@challenger", f"{BASE}/1"])
def test_reproduce_gives_identical_logits_with_the_recorded_inputs(project, ref):
    code, r, out = _report(project, ref)
    assert code == 0, out
    assert r["differs"] == [] and r["expected_identical"]
    assert r["identical"] and r["max_abs_logit_diff"] == 0.0 and r["match"]
    assert r["frames"] > 0 and r["threads"] == torch.get_num_threads()


def test_reproduce_with_another_thread_count_names_it_and_uses_the_tolerance(project):
    recorded = int(project.client.get_model_version(PRUNED, "1").tags["torch_threads"])
    code, r, out = _report(project, f"{PRUNED}@challenger", "--threads", str(recorded + 1), "--atol", "1e-3")
    assert {"input": "torch_threads", "recorded": str(recorded), "here": str(recorded + 1)} in r["differs"]
    assert [d["input"] for d in r["differs"]] == ["torch_threads"]           # nothing else differs
    assert not r["expected_identical"] and r["tolerance"] == 1e-3
    assert r["match"] == (r["max_abs_logit_diff"] <= 1e-3) and code == (0 if r["match"] else 1), out
