"""The comparison benchmark end to end on tiny data: worker processes, journal resume, tables, plot."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

ARGS = ["--models", "cnn1d", "--frames-per-key", "6", "--pretrain-epochs", "1", "--epochs", "2",
        "--interim-epochs", "1", "--targets", "0.5", "--methods", "fcos", "fcos:channel", "l1", "lcp",
        "--latency-repeats", "2", "--mlflow-uri", "", "--tag", "tiny"]


def _bench(tmp, *extra):
    env = {**os.environ, "AMR_BENCH_DIR": str(tmp), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_compare.py"), *ARGS, *extra],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _rows(tmp):
    return {r["method"]: r for r in json.loads((tmp / "results" / "compare_tiny.json").read_text())
            ["models"]["cnn1d"]["rows"]}


@pytest.mark.slow
def test_parallel_run_matches_sequential_and_resumes(tmp_path):
    par, seq = tmp_path / "par", tmp_path / "seq"
    log = _bench(par, "--jobs", "2")
    assert "4 combinations on 2 worker(s)" in log
    rows = _rows(par)
    assert set(rows) == {"fcos", "fcos:channel", "l1", "lcp"}
    for r in rows.values():
        assert "error" not in r and set(r["latency_s"]) == {"1", "256"}
    assert abs(rows["fcos"]["macs_reduction"] - 0.5) <= 0.02          # the final network meets the target
    assert rows["l1"]["target_met"] and abs(rows["l1"]["macs_reduction"] - 0.5) <= 0.02
    md = (par / "results" / "compare_tiny.md").read_text()
    assert "| fcos:channel |" in md and "Every row:" in md
    assert (par / "results" / "compare_tiny_cnn1d.png").stat().st_size > 0
    journal = (par / "out" / "compare_tiny.jsonl").read_text().splitlines()
    assert len(journal) == 5                                            # 4 combinations + the parent

    again = _bench(par, "--jobs", "2")                                  # every combination is in the journal
    assert "combinations on" not in again and _rows(par) == rows

    (seq / "out").mkdir(parents=True)                                   # same parent, one process: same results
    for f in ("cnn1d_6.pt", "synth_6_128_s0.h5"):
        (seq / "out" / f).write_bytes((par / "out" / f).read_bytes())
    _bench(seq, "--jobs", "1")
    for method, r in _rows(seq).items():
        assert r["accuracy"] == rows[method]["accuracy"], method
        assert r["macs"] == rows[method]["macs"], method
