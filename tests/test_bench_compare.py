"""The comparison benchmark (protocol v2) end to end at tiny sizes: paired seeds, resume, --data (also
through `amr-prune compare`), the gpu preset."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from helpers.rml_pickle import py2_pickle_protocol0, rml2016_dict


def _bench(tmp, *args, ok=True):
    env = {**os.environ, "AMR_BENCH_DIR": str(tmp), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_compare.py"), *args], env=env,
                         capture_output=True, text=True, timeout=900)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def _results(tmp, tag):
    return json.loads((tmp / "results" / f"compare_{tag}.json").read_text())


@pytest.mark.slow
def test_paired_seeds_share_parents_and_a_rerun_resumes(tmp_path):
    args = ["--preset", "tiny", "--methods", "fcos", "l1", "scratch", "--jobs", "2", "--mlflow-uri", ""]
    log = _bench(tmp_path, *args).stdout
    assert "6 rows on 2 worker(s)" in log
    journal = [json.loads(x) for x in (tmp_path / "out" / "compare_tiny.jsonl").read_text().splitlines()]
    parents = [r for r in journal if r["method"] == "__parent__"]
    assert sorted(r["seed"] for r in parents) == [0, 1]
    assert all(r["stop"]["stop_reason"] in ("plateau", "max_epochs") and r["stop"]["l1"] == 1e-4 for r in parents)
    rows = [r for r in journal if r["method"] != "__parent__"]
    assert len(rows) == 6 and all("error" not in r and r["stop"]["device"] == "cpu" for r in rows)
    res = _results(tmp_path, "tiny")["models"]["cnn1d"]
    cells = {c["method"]: c for c in res["cells"]}
    assert set(cells) == {"fcos", "l1", "scratch"}
    for c in cells.values():                       # each difference is paired over both seeds
        acc = {r["seed"]: r["accuracy"] for r in rows if r["method"] == c["method"]}
        par = {r["seed"]: r["accuracy"] for r in parents}
        assert c["vs_parent"]["n"] == 2
        assert c["vs_parent"]["mean"] == pytest.approx(sum(acc[s] - par[s] for s in (0, 1)) / 2)
    assert cells["fcos"]["vs_fcos"] is None and cells["l1"]["vs_fcos"]["n"] == 2
    md = (tmp_path / "results" / "compare_tiny.md").read_text()
    assert "accuracy change vs the parent (paired, 95% CI)" in md and "| scratch |" in md
    assert (tmp_path / "results" / "compare_tiny_cnn1d.png").stat().st_size > 0
    assert (tmp_path / "results" / "compare_tiny_cnn1d_snr500.png").stat().st_size > 0
    again = _bench(tmp_path, *args).stdout                   # every row is in the journal: nothing is retrained
    assert "rows on" not in again and "training the parent" not in again
    assert _results(tmp_path, "tiny")["models"]["cnn1d"]["cells"] == res["cells"]


@pytest.mark.slow
def test_data_file_in_the_real_rml2016_layout_is_compared_and_logged(tmp_path):
    from amrlib.data import RML2016_10A_CLASSES
    data = tmp_path / "RML2016.10a_dict.pkl"
    data.write_bytes(py2_pickle_protocol0(rml2016_dict(RML2016_10A_CLASSES, [-10, 0, 10], frames=12)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "AMR_BENCH_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "flows", "compare", "--preset", "tiny", "--data", str(data),
                          "--seeds", "0", "--methods", "fcos", "l1", "--tag", "mine", "--mlflow-uri", uri],
                         env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)   # the CLI's way in
    assert out.returncode == 0, out.stderr[-3000:]
    res = _results(tmp_path, "mine")
    assert res["settings"]["data"] == str(data)
    assert {c["method"] for c in res["models"]["cnn1d"]["cells"]} == {"fcos", "l1"}
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("amr-prune-benchmarks")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 + 3                                  # the benchmark + its parent row and two methods
    assert {r.data.params.get("method") for r in runs} >= {"fcos", "l1", "__parent__"}


@pytest.mark.slow
def test_gpu_preset_runs_at_a_tiny_size_on_cpu(tmp_path):
    _bench(tmp_path, "--preset", "gpu", "--frames-per-key", "3", "--pretrain-epochs", "1", "--epochs", "1",
           "--min-test", "0", "--jobs", "1", "--threads", "1", "--device", "cpu", "--mlflow-uri", "")
    res = _results(tmp_path, "gpu")
    assert res["settings"]["models"] == ["resnet56"] and res["settings"]["recipe"] == "reference"
    cells = {(c["method"], c["target"]) for c in res["models"]["resnet56"]["cells"]}
    assert cells == {(m, t) for m in ("fcos", "ssbn", "lcp") for t in (0.9, 0.95)}


def test_a_test_split_below_the_protocol_minimum_is_refused(tmp_path):
    out = _bench(tmp_path, "--preset", "cpu", "--frames-per-key", "4", "--mlflow-uri", "", ok=False)
    assert out.returncode != 0 and "fewer than --min-test 6000" in out.stderr
    assert not (tmp_path / "out" / "parents").exists()         # refused before any training


def test_unknown_method_and_missing_data_file_are_named(tmp_path):
    out = _bench(tmp_path, "--methods", "fcos", "l2", ok=False)
    assert out.returncode == 2 and "unknown method(s) ['l2']" in out.stderr
    cli = subprocess.run([sys.executable, "-m", "flows", "compare", "--methods", "l2"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert cli.returncode == 2 and "unknown method(s) ['l2']" in cli.stderr
    out = _bench(tmp_path, "--data", str(tmp_path / "nope.h5"), ok=False)
    assert out.returncode == 2 and "nope.h5: no such file" in out.stderr
