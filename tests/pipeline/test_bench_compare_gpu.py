"""The `gpu` preset of the comparison (ResNet56, FCOS + the best channel and layer peers) at a tiny size on CPU."""

import pytest

from helpers.bench_compare_run import results as _results
from helpers.bench_compare_run import run_bench as _bench


@pytest.mark.slow
def test_gpu_preset_runs_at_a_tiny_size_on_cpu(tmp_path):
    _bench(tmp_path, "--preset", "gpu", "--frames-per-key", "3", "--pretrain-epochs", "1", "--epochs", "1",
           "--min-test", "0", "--jobs", "1", "--threads", "1", "--device", "cpu", "--mlflow-uri", "")
    res = _results(tmp_path, "gpu")
    assert res["settings"]["models"] == ["resnet56"] and res["settings"]["recipe"] == "reference"
    cells = {(c["method"], c["target"]) for c in res["models"]["resnet56"]["cells"]}
    assert cells == {(m, t) for m in ("fcos", "ssbn", "lcp") for t in (0.9, 0.95)}
