"""The edge latency benchmark on a tiny comparison: every architecture is timed in every runtime, and the
JSON, the report and the latency-vs-MACs plot are written."""
import json
import os
import subprocess
import sys

import torch

from conftest import ROOT


def _compare_json(tmp):
    from amrlib.measure import count_macs
    from amrlib.models import build_model
    from amrlib.pruning import channel_stage
    torch.manual_seed(0)
    parent = build_model("resnet20", 4, 64)
    rows = []
    for method, keep in (("fcos", 0.3), ("l1", 0.5)):
        net, plan = channel_stage(parent, keep_ratio=keep)
        rows.append({"seed": 0, "method": method, "target": 1 - keep, "plan": plan, "macs": count_macs(net)})
    (tmp / "results").mkdir()
    (tmp / "results" / "compare_tiny.json").write_text(json.dumps({"models": {"resnet20": {"rows": rows}}}))


def test_edge_benchmark_writes_its_json_report_and_plot(tmp_path):
    _compare_json(tmp_path)
    env = {**os.environ, "AMR_BENCH_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_edge.py"), "--compare", "tiny", "--tag", "t",
                          "--repeats", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path / "results" / "edge_t.json").read_text())
    names = [r["method"] for r in res["latency"]]
    assert names == ["parent", "fcos", "l1", "fcos+w8"]
    for r in res["latency"]:
        assert set(r["latency_s"]) == {"eager", "eager-folded", "ort-fp32", "ort-int8", "ort_kernels"}
        assert all(r["latency_s"][rt][str(b)] > 0 for rt in ("eager", "ort-fp32", "ort-int8") for b in (1, 256))
    w8, parent = res["latency"][3], res["latency"][0]
    assert 1 - w8["macs"] / parent["macs"] >= 0.7               # re-cut on multiples of 8 at the same target
    assert all(v % 8 == 0 for v in w8["widths"])
    assert set(res["profiles"]) == {"parent", "fcos@70%"} and res["machine"]["onnxruntime"]
    md = (tmp_path / "results" / "edge_t.md").read_text()
    assert "Speed-up over the unpruned model" in md and "| fcos+w8 |" in md and "outside kernels" in md
    assert (tmp_path / "results" / "edge_t_latency_vs_macs.png").stat().st_size > 10_000
