"""The comparison on a user's dataset file (--data, also through `amr-prune compare`), logged to MLflow."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from helpers.bench_compare_run import results as _results
from helpers.bench_compare_run import run_bench as _bench
from helpers.rml_pickle import py2_pickle_protocol0, rml2016_dict


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


def test_unknown_method_and_missing_data_file_are_named(tmp_path):
    out = _bench(tmp_path, "--methods", "fcos", "l2", ok=False)
    assert out.returncode == 2 and "unknown method(s) ['l2']" in out.stderr
    cli = subprocess.run([sys.executable, "-m", "flows", "compare", "--methods", "l2"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert cli.returncode == 2 and "unknown method(s) ['l2']" in cli.stderr
    out = _bench(tmp_path, "--data", str(tmp_path / "nope.h5"), ok=False)
    assert out.returncode == 2 and "nope.h5: no such file" in out.stderr
