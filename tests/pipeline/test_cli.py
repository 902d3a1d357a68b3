"""The amr-prune command line through Typer's CliRunner on tiny data: data synth/import/info, run (one tiny
prune_pipeline under Prefect's test harness), models, lineage, export --onnx, bench-latency, promote, and
errors as one line plus a hint (a traceback only with --debug)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import prefect  # noqa: F401  (imported here so Prefect's log handlers bind to pytest's stream, not a CliRunner's)
import pytest
from typer.testing import CliRunner

from cli import app
from datastore.dvc_store import file_md5, read_dvc_file
from fixtures_pipeline import ROOT, make_project, prefect_harness, tiny_config

PRUNED, BASE = "amr-cnn1d-fcos", "amr-cnn1d-base"


def _prefect_console_to(stream) -> None:
    """Point Prefect's console log handlers at ``stream``. CliRunner swaps sys.stderr for a buffer it closes
    afterwards; a Prefect handler (re)configured during one invocation would keep writing into that closed
    buffer in the next one (and, with a flow's log_prints, recurse). A test-harness artefact only: a real
    process has one stderr."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler
    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        for h in getattr(logger, "handlers", []):
            if isinstance(h, PrefectConsoleHandler):
                h.stream = stream               # not setStream(): it flushes the old, closed buffer
                h.console.file = stream


def cli(*args, ok=True):
    _prefect_console_to(sys.stderr)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        _prefect_console_to(sys.stderr)
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def as_json(result):
    return json.loads(result.stdout)


# ---- without a pipeline run -----------------------------------------------------------------------------

def test_help_entry_points_and_method_list():
    from amrlib.pruning.methods import METHODS
    out = cli("--help").output
    for command in ("data", "run", "serve", "promote", "models", "lineage", "export", "bench-latency"):
        assert command in out
    run_help = cli("run", "--help").output
    assert all(m in run_help for m in METHODS), "run --help must list every method of amrlib.pruning.methods"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["amr-prune"] == "cli:main"
    done = subprocess.run([sys.executable, "-m", "flows", "data", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "synth" in done.stdout


def test_data_synth_info_and_import(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    args = ["--frames-per-key", 3, "--snrs=-10,0,10", "--classes", "BPSK,QPSK,WBFM", "--seed", 4, "--json"]
    info = as_json(cli("data", "synth", "--out", a, *args))
    assert (info["frames"], info["classes"], info["snrs"]) == (27, ["BPSK", "QPSK", "WBFM"], [-10, 0, 10])
    assert info["md5"] == file_md5(a) and info["frames_per_class"] == {"BPSK": 9, "QPSK": 9, "WBFM": 9}
    assert as_json(cli("data", "synth", "--out", b, *args))["md5"] == info["md5"]        # byte-deterministic
    before = a.read_bytes()
    refused = cli("data", "synth", "--out", a, "--frames-per-key", 1, ok=False)
    assert refused.exit_code == 1 and "exists" in refused.output and a.read_bytes() == before
    table = cli("data", "info", a).stdout
    assert "27" in table and "BPSK (9)" in table and info["md5"] in table

    imported = as_json(cli("data", "import", a, "-c", cfg, "--out", "data/a.h5", "--json"))
    assert read_dvc_file(root, "tiny.dvc")["md5"] == imported["md5"]
    tracked = as_json(cli("data", "info", "-c", cfg, "--json"))
    assert tracked["md5_matches_dvc"] is True and tracked["frames"] == 27 and tracked["dvc_file"] == "tiny.dvc"

    # a generic X/Y/Z file with its own key names, integer labels and [n, L, 2] frames
    rng = np.random.default_rng(0)
    npz = tmp_path / "own.npz"
    np.savez(npz, sig=rng.standard_normal((12, 64, 2)).astype(np.float32), lab=np.repeat([0, 1, 2], 4),
             snr=np.tile([0, 10], 6))
    generic = as_json(cli("data", "import", npz, "-c", cfg, "--dvc-file", "own.dvc", "--out", "data/own.h5",
                          "--x-key", "sig", "--y-key", "lab", "--z-key", "snr", "--classes", "a,b,c",
                          "--layout", "nlc", "--json"))
    assert generic["frames"] == 12 and generic["classes"] == ["a", "b", "c"] and generic["frame_length"] == 64
    assert read_dvc_file(root, "own.dvc")["md5"] == file_md5(root / "data/own.h5")
    assert read_dvc_file(root, "tiny.dvc")["md5"] == imported["md5"]                    # untouched


def test_errors_are_one_line_with_a_hint(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: resnet20\npretrain:\n  epochs: 0\n  epoks: 3\n")
    out = cli("run", "-c", bad, ok=False)
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "error:" in out.output and "pretrain.epochs" in out.output and "pretrain.epoks" in out.output
    assert "hint:" in out.output and "--debug" in out.output
    from settings.pipeline import ConfigError
    debug = cli("--debug", "run", "-c", bad, ok=False)
    assert isinstance(debug.exception, ConfigError)                                       # re-raised as is
    unknown = cli("run", "-c", bad, "--method", "nosuch", "--set", "pretrain.epochs=1", "--set",
                  "pretrain.epoks=null", ok=False)
    assert unknown.exit_code == 1 and "unknown pruning method 'nosuch'" in unknown.output and "fcos" in unknown.output
    missing = cli("data", "info", tmp_path / "none.h5", ok=False)
    assert missing.exit_code == 1 and "none.h5" in missing.output and "Traceback" not in missing.output
    assert cli("export", "no-alias-or-version", "--onnx", tmp_path / "m.onnx", ok=False).exit_code == 2
    assert cli("bench-latency", ok=False).exit_code == 2                                   # nothing to time
    good = tiny_config(make_project(tmp_path / "proj", None))
    cron = cli("serve", "-c", good, "--cron", "61 * * * *", ok=False)
    assert cron.exit_code == 2 and "not a cron schedule" in cron.output


def test_serve_without_a_prefect_server(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run([sys.executable, "-m", "flows", "serve", "-c", str(cfg)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "needs a Prefect server" in done.stderr and "prefect server start" in done.stderr
    assert "Traceback" not in done.stderr


# ---- one tiny pipeline run, then the registry commands ---------------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    root = make_project(tmp / "proj", tmp / "remote")
    cfg = tiny_config(root)
    with prefect_harness():
        result = cli("run", "-c", cfg)
        yield SimpleNamespace(root=root, cfg=cfg, output=result.output, tmp=tmp)


def test_run_registers_versions_with_model_cards(project):
    from mlflow import MlflowClient
    assert "promotion gate" in project.output and "Model cards and pictures" in project.output
    uri = f"sqlite:///{project.root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name, pngs in ((BASE, {"accuracy_vs_snr.png", "confusion_matrix.png"}),
                       (PRUNED, {"accuracy_vs_snr.png", "confusion_matrix.png", "channel_widths.png",
                                 "probe_curve.png"})):
        mv = client.get_model_version(name, "1")
        assert mv.tags["model_card"] == f"runs:/{mv.run_id}/model_card/model_card.md"
        assert f"runs:/{mv.run_id}/model_card/model_card.html" in mv.description
        exp = client.get_run(mv.run_id).info.experiment_id                  # a link the version page renders
        assert f"[model_card.html](#/experiments/{exp}/runs/{mv.run_id}/artifacts/model_card/model_card.html)" \
            in mv.description
        logged = {Path(f.path).name for f in client.list_artifacts(mv.run_id, "model_card")}
        assert logged == {"model_card.md", "model_card.html", *pngs}
        page = Path(client.download_artifacts(mv.run_id, "model_card/model_card.html", str(project.tmp))).read_text()
        assert page.count('src="data:image/png;base64,') == len(pngs) and "<table>" in page   # MLflow renders it
        card = Path(client.download_artifacts(mv.run_id, "model_card/model_card.md", str(project.tmp))).read_text()
        assert f"# Model card: {name} v1" in card and "## Limits" in card
        assert read_dvc_file(project.root, "tiny.dvc")["md5"] in card
        for png in pngs:
            assert f"]({png})" in card
            assert f"/model_card/{png}" not in card           # relative links: the card travels with its PNGs
        assert str(Path(mv.tags.get("data_path", "data/tiny.h5"))) in card


def test_models_and_lineage(project):
    rows = as_json(cli("models", "-c", project.cfg, "--json"))
    assert {(r["name"], r["version"]) for r in rows} == {(BASE, "1"), (PRUNED, "1")}
    assert all("champion" in r["aliases"] for r in rows)
    table = cli("models", "-c", project.cfg).stdout
    assert BASE in table and PRUNED in table
    info = as_json(cli("lineage", PRUNED, "1", "-c", project.cfg, "--json"))
    assert info["data_md5"] == read_dvc_file(project.root, "tiny.dvc")["md5"]
    assert [(p["name"], p["version"]) for p in info["parents"]] == [(BASE, "1")]
    assert [s["stage"] for s in info["plan"]["stages"]] == ["channel", "layer"]
    channel = info["plan"]["stages"][0]
    assert channel["channels_after"] < channel["channels_before"]
    assert info["gate"]["passed"] == "True" and info["git_commit"]
    assert as_json(cli("lineage", PRUNED, "@champion", "-c", project.cfg, "--json"))["version"] == "1"
    text = cli("lineage", PRUNED, "1", "-c", project.cfg).stdout
    assert "parent chain" in text and "channel stage" in text
    missing = cli("lineage", PRUNED, "9", "-c", project.cfg, ok=False)
    assert missing.exit_code == 1 and "no version 9" in missing.output and "amr-prune models" in missing.output


def test_export_onnx_and_latency(project, tmp_path):
    import onnxruntime as ort
    out = tmp_path / "pruned.onnx"
    report = as_json(cli("export", f"{PRUNED}@champion", "--onnx", out, "-c", project.cfg, "--json"))
    assert out.exists() and report["check"]["max_abs_diff"] < 1e-4 and report["version"] == "1"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"iq": np.zeros((3, 2, 128), np.float32)})[0]
    assert logits.shape == (3, 4)
    size = out.stat().st_size
    again = cli("export", f"{PRUNED}/1", "--onnx", out, "-c", project.cfg, ok=False)
    assert again.exit_code == 1 and "--force" in again.output and out.stat().st_size == size
    lat = as_json(cli("bench-latency", f"{PRUNED}/1", "-c", project.cfg, "--batch-sizes", "1,3", "--repeats", 2,
                      "--onnx", "--json"))
    assert [r["torch"]["batch_size"] for r in lat["latency"]] == [1, 3]
    assert all(r["torch"]["median_s"] > 0 and r["onnxruntime"]["median_s"] > 0 for r in lat["latency"])
    assert lat["machine"]["cores"] >= 1


def test_promote_when_already_champion(project):
    summary = as_json(cli("promote", "-c", project.cfg, "--json"))
    assert summary["challenger"] == summary["champion_before"] == "1" and summary["passed"] is None


def test_export_int8_logged_to_the_version(project, tmp_path):
    import mlflow
    from mlflow import MlflowClient
    out = tmp_path / "edge.onnx"
    report = as_json(cli("export", f"{PRUNED}@champion", "--onnx", out, "--int8", "--max-int8-drop", 100,
                         "--calibration-frames", 32, "--repeats", 2, "-c", project.cfg, "--json"))
    int8 = tmp_path / "edge.int8.onnx"
    assert out.exists() and int8.exists() and sorted(report["written"]) == sorted([str(out), str(int8)])
    q = report["int8"]
    assert q["calibration_frames"] == 32 and q["frames"] > 0 and "test split" in q["data"]
    assert abs(q["drop_pt"] - 100 * (q["fp32_accuracy"] - q["int8_accuracy"])) < 1e-9
    assert set(report["latency_s"]) == {"eager", "ort-fp32", "ort-int8"}
    uri = f"sqlite:///{project.root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version(PRUNED, report["version"])
    run_id = report["logged"]["run_id"]
    assert mv.tags["edge_export_run_id"] == run_id and mv.tags["edge_onnx_md5"] == file_md5(out)
    assert mv.tags["edge_int8_md5"] == file_md5(int8) and float(mv.tags["edge_int8_drop_pt"]) == pytest.approx(
        q["drop_pt"], abs=1e-4)
    assert f"Edge card: runs:/{run_id}/edge/edge_card.md" in mv.description
    assert client.get_run(run_id).data.tags["mlflow.parentRunId"] == mv.run_id
    card = Path(client.download_artifacts(run_id, "edge/edge_card.md", str(tmp_path))).read_text()
    assert "## INT8" in card and "| SNR (dB) | FP32 | INT8 |" in card and report["machine"]["cpu"] in card
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(mv.tags["edge_int8_uri"])        # the ONNX flavour, as MLflow loads it
    logits = served.predict(np.zeros((2, 2, 128), np.float32))
    assert np.asarray(next(iter(logits.values())) if isinstance(logits, dict) else logits).shape == (2, 4)
    # an export without INT8 afterwards leaves no stale INT8 tag on the version; TorchScript is logged as a file
    cli("export", f"{PRUNED}@champion", "--onnx", out, "--force", "--torchscript", "--repeats", 2, "-c", project.cfg)
    tags = client.get_model_version(PRUNED, report["version"]).tags
    assert "edge_int8_uri" not in tags and tags["edge_onnx_md5"] == file_md5(out)
    scripted = tmp_path / "edge.torchscript.pt"
    assert scripted.exists() and tags["edge_torchscript_md5"] == file_md5(scripted)
    assert tags["edge_torchscript_uri"].endswith("/edge/model.torchscript.pt")


def test_export_refused_int8_writes_and_logs_nothing(project, tmp_path, monkeypatch):
    import amrlib.deploy.package as package
    from amrlib.deploy.int8 import Int8AccuracyError
    from mlflow import MlflowClient

    def refuse(fp32, int8, *a, **k):
        raise Int8AccuracyError(f"{int8}: INT8 accuracy 10.00% is 40.00 pt below FP32 50.00% (allowed 0.5 pt)")
    monkeypatch.setattr(package, "int8_accuracy_check", refuse)
    uri = f"sqlite:///{project.root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    before = client.get_model_version_by_alias(PRUNED, "champion")
    experiment = client.get_run(before.run_id).info.experiment_id
    runs_before = len(client.search_runs([experiment]))
    out = tmp_path / "refused.onnx"
    result = cli("export", f"{PRUNED}@champion", "--onnx", out, "--int8", "--repeats", 2, "-c", project.cfg, ok=False)
    assert result.exit_code == 1 and "40.00 pt below FP32" in result.output
    assert not list(tmp_path.iterdir())                     # neither the FP32 nor the INT8 file, no temp folder
    after = client.get_model_version(PRUNED, before.version)
    assert after.tags == before.tags and after.description == before.description
    assert len(client.search_runs([experiment])) == runs_before
