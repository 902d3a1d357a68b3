"""DDP on CPU: training throughput of 2 processes (torchrun, gloo) against 1 process, same global batch.

Each configuration runs ``python -m torch.distributed.run --standalone --nproc_per_node P -m
amrlib.train.launch`` on the benchmark's synthetic dataset (bench/common.py) with the same model, global
batch and epochs, and reports the median training frames/s over epochs (from the launcher's history;
an epoch's time includes its validation pass, kept small by a 5 % validation split):

* 1 process x 1 thread, 1 process x ``--threads`` threads (the fair baseline on the same cores), and
* ``--nproc`` processes x 1 thread (each process trains on its half of every batch; gradients and
  BatchNorm statistics are all-reduced over gloo).

    .venv/bin/python bench/bench_ddp.py --frames-per-key 6 --epochs 1 --repeats 2   # small: ~7 min on 2 shared cores
    .venv/bin/python bench/bench_ddp.py --frames-per-key 100 --epochs 3 --repeats 3   # the full version

Figures go to bench/results/ddp_cpu_<model>_<frames>.json. On a GPU machine the same launcher uses NCCL
(``--nproc`` = number of GPUs); this script does not run there (no GPU was available when it was written).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import OUT, ROOT, bench_data, write_json


def launch(data: str, model: str, nproc: int, threads: int, train: dict, tag: str) -> dict:
    work = OUT / f"ddp_{tag}"
    result = work / "result.json"
    result.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "amrlib.train.launch", "--data", data, "--model", model, "--split", "0.85", "0.05", "0.1",
           "--train", json.dumps(train), "--out", str(work / "model.pt"), "--result", str(result),
           "--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    rec = json.loads(result.read_text())
    fps = [h["frames_per_s"] for h in rec["history"]]
    return {"processes": nproc, "threads_per_process": threads, "frames_per_s_median": statistics.median(fps),
            "frames_per_s_epochs": fps, "fit_seconds": rec["seconds"], "wall_seconds_with_startup": wall,
            "train_frames": rec["train_frames"], "best_val_accuracy": rec["best_val_accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--frames-per-key", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads of the 1-process baseline on the same cores")
    ap.add_argument("--repeats", type=int, default=1, help="run the three configurations this many times, interleaved")
    a = ap.parse_args()
    bench_data(a.frames_per_key)                     # writes the dataset file once
    data = str(OUT / f"synth_{a.frames_per_key}_128_s0.h5")
    train = {"epochs": a.epochs, "batch_size": a.batch_size, "seed": 0}
    configs = [(1, 1), (1, a.threads), (a.nproc, 1)]
    runs: dict = {c: [] for c in configs}
    for _ in range(a.repeats):                       # interleaved, so a change of machine load hits all three
        for nproc, threads in configs:
            r = launch(data, a.model, nproc, threads, train, f"{nproc}x{threads}")
            print(json.dumps(r), flush=True)
            runs[(nproc, threads)].append(r)
    rows = []
    for c in configs:
        rows.append({"processes": c[0], "threads_per_process": c[1],
                     "frames_per_s_median": statistics.median(r["frames_per_s_median"] for r in runs[c]),
                     "frames_per_s_repeats": [r["frames_per_s_median"] for r in runs[c]], "repeats": runs[c]})
    base1, base_t, ddp = (r["frames_per_s_median"] for r in rows)
    out = {"model": a.model, "frames_per_key": a.frames_per_key, "epochs": a.epochs, "global_batch": a.batch_size,
           "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(), "runs": rows,
           f"ratio_{a.nproc}proc_vs_1proc_1thread": ddp / base1,
           f"ratio_{a.nproc}proc_vs_1proc_{a.threads}threads": ddp / base_t,
           "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv])}
    path = write_json(f"ddp_cpu_{a.model}_{a.frames_per_key}.json", out)
    print(f"\n{'processes x threads':>20} {'frames/s':>9}")
    for r in rows:
        print(f"{r['processes']:>14} x {r['threads_per_process']:<3} {r['frames_per_s_median']:9.0f}")
    print(f"DDP {a.nproc} processes / 1 process x 1 thread: {ddp / base1:.2f}; "
          f"/ 1 process x {a.threads} threads: {ddp / base_t:.2f}  ({path})")


if __name__ == "__main__":
    main()
