"""Peak memory of prediction against the number of frames: ``amrlib.train.predict_batched`` (batches of
512) against one whole-array forward (what the MLflow pyfunc wrapper did), for 10k and 100k frames.

Each measurement runs in a fresh child process and reports that process's peak RSS (``VmHWM`` of
``/proc/self/status``: the high-water mark of this process image only; ``ru_maxrss`` would include the
size of whatever process forked it), so one run's allocations never hide in another's. The frames
(float32 ``[n, 2, 128]``, 1 MiB per 1,024 frames) are part of every figure; ``frames_mib`` says how much.

    .venv/bin/python bench/bench_predict_memory.py                   # writes bench/results/predict_memory.json
    .venv/bin/python bench/bench_predict_memory.py --frames 10000,100000 --model resnet20 --no-one-call
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

from common import ROOT, write_json


def peak_rss() -> int:
    """Peak resident bytes of this process image (VmHWM); ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(n: int, mode: str, model_name: str, batch_size: int) -> dict:
    import numpy as np
    import torch

    from amrlib.models import build_model
    from amrlib.train import predict_batched
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=11, frame_length=128).eval()
    frames = np.random.default_rng(0).standard_normal((n, 2, 128), dtype=np.float32)
    before = peak_rss()
    t0 = time.perf_counter()
    if mode == "batched":
        logits = predict_batched(model, frames, batch_size=batch_size)
    else:
        with torch.no_grad():
            logits = model(torch.from_numpy(frames)).numpy()
    seconds = time.perf_counter() - t0
    assert logits.shape == (n, 11) and np.isfinite(logits).all()
    peak = peak_rss()
    return {"frames": n, "mode": mode, "model": model_name, "batch_size": batch_size if mode == "batched" else n,
            "peak_rss_mib": round(peak / 2**20, 1), "rss_before_predict_mib": round(before / 2**20, 1),
            "frames_mib": round(frames.nbytes / 2**20, 1), "seconds": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", default="10000,100000")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--no-one-call", action="store_true", help="skip the whole-array forward (about 8 GB at 100k)")
    ap.add_argument("--out", default="predict_memory.json")
    ap.add_argument("--child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.model, args.batch_size)))
        return
    rows = []
    modes = ["batched"] + ([] if args.no_one_call else ["one_call"])
    for n in [int(v) for v in args.frames.split(",")]:
        for mode in modes:
            done = subprocess.run([sys.executable, __file__, "--child", str(n), mode, "--model", args.model,
                                   "--batch-size", str(args.batch_size)], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    import torch
    path = write_json(args.out, {"command": " ".join(["python bench/bench_predict_memory.py", *sys.argv[1:]]),
                                 "torch": torch.__version__, "threads": torch.get_num_threads(),
                                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
