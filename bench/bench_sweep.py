"""Sweep wall time: the same 8 combinations of prune_pipeline run sequentially (Prefect's local runner, one
worker) and on Dask (a LocalCluster of 2 worker processes), each in a fresh project (fresh runs/ folder, DVC
remote and MLflow store: both do the same work, the shared parent's training included).

    .venv/bin/python bench/bench_sweep.py                     # 8 combinations: cnn1d x {fcos, l1} x 4 targets
    .venv/bin/python bench/bench_sweep.py --frames-per-key 40 --epochs 3 --tag larger

Both modes share one Prefect API (a temporary local server, started once, not timed). Reported per mode:
``end to end`` = the flow call including the task runner's start and stop (the Dask cluster's processes
start and import torch/MLflow/Prefect there), ``in flow`` = the sweep body (fan-out, combinations, report).
Writes bench/results/sweep_<tag>.json. The machine's load is printed: on a 2-core machine shared with other
jobs the ratio says little about a dedicated multi-core host.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write_json


def make_project(root: Path, args) -> Path:
    """A git + DVC project with a local DVC remote and a pipeline configuration of the benchmark's size."""
    import yaml
    root.mkdir(parents=True)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "b@example.com"],
                ["git", "config", "user.name", "bench"]):
        subprocess.run(cmd, cwd=root, check=True)
    from dvc.repo import Repo
    Repo.init(str(root)).close()
    (root / ".dvc" / "config").write_text(f"[core]\n    analytics = false\n    remote = local\n"
                                          f"['remote \"local\"']\n    url = {root.parent / (root.name + '-remote')}\n")
    cfg = {"root": str(root), "torch_threads": 1,
           "data": {"dvc_file": "bench.dvc", "synthetic": {"path": "data/bench.h5",
                                                           "frames_per_key": args.frames_per_key,
                                                           "snrs": [-10, -4, 0, 4, 10, 18], "seed": 0}},
           "model": {"name": args.model},
           "pretrain": {"epochs": args.epochs, "batch_size": 64},
           "finetune": {"epochs": args.epochs, "batch_size": 64},
           "lacd": {"enabled": True, "max_train_frames": 512, "max_val_frames": 256},
           "recalibrate": {"frames": 256},
           "evaluate": {"latency_batch_sizes": [1], "latency_repeats": 3},
           "gate": {"max_accuracy_drop": 0.5, "min_macs_reduction": 0.1},
           "tracking": {"uri": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}", "experiment": "bench-sweep"}}
    (root / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    return root / "pipeline.yaml"


def run_mode(name: str, runner: str, workers: int, tmp: Path, args) -> dict:
    import yaml

    from flows.sweep import runner_config, sweep, task_runner
    from settings.sweep import load_sweep_config
    pipeline = make_project(tmp / name, args)
    sweep_file = tmp / f"{name}.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "pipeline": str(pipeline), "methods": args.methods, "targets": args.targets, "models": [args.model],
        "runner": runner, "workers": workers,
        "training": {"limit_name": f"bench-{name}", "max_concurrent": workers}}))
    sw = load_sweep_config(sweep_file)
    t0 = time.perf_counter()
    with runner_config(sw):
        summary = sweep.with_options(task_runner=task_runner(sw))(sweep_config=str(sweep_file))
    end_to_end = time.perf_counter() - t0
    print(f"[{name}] {len(summary['combinations'])} combinations: {end_to_end:.1f} s end to end, "
          f"{summary['wall_seconds']:.1f} s in flow; workers: {sorted(set(summary['workers'].values()))}", flush=True)
    return {"mode": name, "runner": runner, "workers": workers, "end_to_end_s": end_to_end,
            "in_flow_s": summary["wall_seconds"], "combinations": summary["combinations"],
            "processes": sorted(set(summary["workers"].values())), "rows": summary["rows"],
            "report": summary["report"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn1d")
    ap.add_argument("--methods", nargs="+", default=["fcos", "l1"])
    ap.add_argument("--targets", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    ap.add_argument("--frames-per-key", type=int, default=20, help="frames per (class, SNR): 11 classes x 6 SNRs")
    ap.add_argument("--epochs", type=int, default=2, help="pretraining and fine-tuning epochs")
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--tag", default="cnn1d_8")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-sweep-prefect-")
    os.environ["PREFECT_HOME"] = home                      # before Prefect is imported
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from settings.environment import apply_defaults
    apply_defaults()                                       # the project's Prefect/MLflow settings, before Prefect
    from flows.sweep import shared_api
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with shared_api():
        results = [run_mode("sequential", "local", 1, tmp, a),
                   run_mode(f"dask{a.dask_workers}", "dask", a.dask_workers, tmp, a)]
    load_after = os.getloadavg()
    seq, dask = results
    ratio = seq["end_to_end_s"] / dask["end_to_end_s"]
    ratio_flow = seq["in_flow_s"] / dask["in_flow_s"]
    out = {"args": vars(a), "cpus": os.cpu_count(), "load_before": load, "load_after": load_after,
           "results": results, "speedup_end_to_end": ratio, "speedup_in_flow": ratio_flow}
    path = write_json(f"sweep_{a.tag}.json", out)
    print("\n| mode | combinations | end to end | in flow |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {len(r['combinations'])} | {r['end_to_end_s']:.1f} s | {r['in_flow_s']:.1f} s |")
    print(f"\nsequential / dask{a.dask_workers}: x{ratio:.2f} end to end, x{ratio_flow:.2f} in flow "
          f"(load average after: {load_after[0]:.2f}); {path.relative_to(ROOT)}")
    print(f"sweep table (from the registry) of the Dask run: {dask['report']['markdown']}")
    print(Path(dask["report"]["markdown"]).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
