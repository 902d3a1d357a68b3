"""Where an exported model's time goes: ONNX Runtime's profiler, per operator and per layer.

ORT's profiler records every kernel of every run (``cat: "Node"``, ``*_kernel_time`` events, with the
operator type) and every whole run (``model_run``). :func:`profile_onnx` runs a model ``repeats`` times
at one batch size and reduces the trace to: the median run time; per node, its median kernel time; per
operator type, the share of the run; and the *overhead* — the part of a run spent outside kernels
(scheduling, memory planning, Python/C++ crossings). When overhead and the many small kernels of thin
layers dominate, latency stops following MACs; when Conv kernels dominate, it follows them.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..onnx_export import onnx_session


def profile_onnx(path: str | os.PathLike, *, batch_size: int = 1, frame_length: int = 128, repeats: int = 50,
                 warmup: int = 5, threads: int = 1) -> dict:
    """Profile ``repeats`` runs of the ONNX model at ``batch_size`` (after ``warmup`` runs, left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = onnx_session(path, threads=threads, profile_prefix=str(Path(tmp) / "ort"))
        name = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((batch_size, 2, frame_length)).astype(np.float32)
        for _ in range(warmup + repeats):
            session.run(None, {name: x})
        trace = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"][warmup:]
    start = min(e["ts"] for e in runs) if runs else 0
    nodes = [e for e in trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
             and e["ts"] >= start]
    per_node, op_of = defaultdict(list), {}
    for e in nodes:
        node = e["name"][: -len("_kernel_time")]
        per_node[node].append(e["dur"])
        op_of[node] = e.get("args", {}).get("op_name", "?")
    run_us = statistics.median(e["dur"] for e in runs) if runs else float("nan")
    n = max(len(runs), 1)
    # per node: its median kernel time (a node runs once per run; the median ignores the odd preempted run)
    layers = sorted(({"node": k, "op": op_of[k], "median_us": statistics.median(v), "calls": len(v) / n}
                     for k, v in per_node.items()), key=lambda r: -r["median_us"])
    by_op = defaultdict(float)
    for r in layers:
        by_op[r["op"]] += r["median_us"] * r["calls"]
    kernel_us = sum(by_op.values())
    return {"batch_size": batch_size, "threads": threads, "repeats": len(runs), "run_median_us": run_us,
            "kernel_us": kernel_us, "overhead_us": max(run_us - kernel_us, 0.0),
            "overhead_share": max(run_us - kernel_us, 0.0) / run_us if run_us else float("nan"),
            "nodes": len(layers), "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])), "layers": layers}


def profile_table(prof: dict, top: int = 12) -> str:
    """A Markdown summary of :func:`profile_onnx`: the operator types and the slowest layers."""
    run = prof["run_median_us"]
    lines = [f"batch {prof['batch_size']}, {prof['threads']} thread(s): median run {run:,.0f} µs, "
             f"{prof['nodes']} kernels take {prof['kernel_us']:,.0f} µs, outside kernels "
             f"{prof['overhead_us']:,.0f} µs ({prof['overhead_share']:.0%})", "",
             "| operator | µs per run | share |", "|---|---|---|"]
    lines += [f"| {op} | {us:,.1f} | {us / run:.0%} |" for op, us in prof["by_op"].items()]
    lines += ["", f"| slowest layers (of {prof['nodes']}) | operator | µs per run |", "|---|---|---|"]
    lines += [f"| {r['node']} | {r['op']} | {r['median_us']:,.1f} |" for r in prof["layers"][:top]]
    return "\n".join(lines) + "\n"
