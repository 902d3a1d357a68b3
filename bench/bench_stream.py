"""Streaming trainer: frames/s and peak RSS on a generated RML2018.01a-layout file (default 4 GiB).

1. write ``X`` float32 [N, 1024, 2], one-hot ``Y`` [N, 24], ``Z`` [N, 1] (bench_reader.write_file);
2. **reader** (child process): one full epoch of the training split (70 %) through
   ``ChunkShuffleSampler.plan`` + ``read`` (shuffled chunks, bounded buffer) without a model: frames/s,
   peak RSS, the buffer's most-resident frames, and a check that every frame came exactly once;
3. **trainer** (child process): ``amrlib.train.fit`` with the sampler on the same split, for
   ``--train-seconds`` (a step callback stops it: a CPU epoch of 367k frames of 1024 samples takes hours);
   frames/s over the steps done and peak RSS;
4. **control** (child process): the same model trained on one random in-memory batch, for the RSS the
   model itself needs (activations of a 1024-sample batch): trainer minus control is the data path.

Each phase runs in a fresh process, so ``ru_maxrss`` is that phase's peak. ``--cold`` drops the file from
the page cache before each phase (then disk speed counts); the file is deleted at the end.

    .venv/bin/python bench/bench_stream.py                        # 4 GiB, ~4-5 minutes here
    .venv/bin/python bench/bench_stream.py --gb 21 --train-seconds 600 --cold   # RML2018.01a size
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from common import ROOT, write_json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_reader import FRAME_BYTES, drop_cache, write_file  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Budget(Exception):
    pass


def open_train(path: str):
    from amrlib.data import load_dataset, split
    t0 = time.perf_counter()
    ds = load_dataset(path)
    train, val, _ = split(ds)
    return ds, train, val, time.perf_counter() - t0


def phase_reader(a) -> dict:
    from amrlib.train.stream import ChunkShuffleSampler
    ds, train, _, open_s = open_train(a.path)
    s = ChunkShuffleSampler(a.chunk_frames, a.buffer_frames)
    t0 = time.perf_counter()
    plan = s.plan(len(train), a.batch_size, seed=0, epoch=0)
    plan_s = time.perf_counter() - t0
    seen = np.zeros(len(train), dtype=np.int8)
    frames, checksum = 0, 0.0
    t0 = time.perf_counter()
    for x, _, idx in s.read(train, plan, plan.batches):
        seen[idx] += 1
        frames += len(idx)
        checksum += float(x[0, 0, 0])
    secs = time.perf_counter() - t0
    return {"phase": "reader", "file_frames": len(ds), "train_frames": len(train), "open_split_s": open_s,
            "plan_s": plan_s, "read_s": secs, "frames_per_s": frames / secs,
            "mb_per_s": frames * FRAME_BYTES / secs / 2**20, "every_frame_once": bool((seen == 1).all()),
            "buffer_frames": a.buffer_frames, "max_resident_frames": s.last_pool.max_resident,
            "peak_rss_mb": peak_rss_mb(), "checksum": checksum}


def phase_trainer(a) -> dict:
    import torch

    from amrlib.models import build_model
    from amrlib.train import fit
    from amrlib.train.stream import ChunkShuffleSampler
    torch.set_num_threads(a.threads)
    ds, train, val, open_s = open_train(a.path)
    torch.manual_seed(0)
    model = build_model(a.model, ds.num_classes, ds.frame_length)
    steps = []
    t0 = [None]

    def budget(info):
        now = time.perf_counter()
        if t0[0] is None:          # time from the end of the first step: plan and first reads excluded
            t0[0] = now
        steps.append(now)
        if now - t0[0] > a.train_seconds:
            raise _Budget

    start = time.perf_counter()
    try:
        fit(model, train, val, epochs=1, batch_size=a.batch_size,
            sampler=ChunkShuffleSampler(a.chunk_frames, a.buffer_frames),
            step_callbacks=[budget], progress=False)
    except _Budget:
        pass
    n_steps = len(steps) - 1
    secs = steps[-1] - steps[0] if n_steps > 0 else float("nan")
    return {"phase": "trainer", "model": a.model, "threads": a.threads, "batch_size": a.batch_size,
            "steps_timed": n_steps, "frames_per_s": n_steps * a.batch_size / secs,
            "first_step_s": steps[0] - start if steps else None, "open_split_s": open_s,
            "peak_rss_mb": peak_rss_mb()}


def phase_control(a) -> dict:
    """The same model and batch trained on one random in-memory batch: the RSS of the model alone."""
    import torch

    from amrlib.models import build_model
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build_model(a.model, 24, 1024)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(a.batch_size, 2, 1024), torch.randint(0, 24, (a.batch_size,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return {"phase": "control", "model": a.model, "batch_size": a.batch_size, "peak_rss_mb": peak_rss_mb()}


def run_child(a, phase: str) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), "--child", phase, "--path", a.path,
            "--chunk-frames", str(a.chunk_frames), "--buffer-frames", str(a.buffer_frames),
            "--batch-size", str(a.batch_size), "--model", a.model, "--threads", str(a.threads),
            "--train-seconds", str(a.train_seconds)]
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise SystemExit(f"{phase} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=4.0, help="size of X in GiB")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--chunk-frames", type=int, default=1024)
    ap.add_argument("--buffer-frames", type=int, default=16384)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-seconds", type=float, default=90)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", choices=["reader", "trainer", "control"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        res = {"reader": phase_reader, "trainer": phase_trainer, "control": phase_control}[a.child](a)
        print("RESULT " + json.dumps(res))
        return
    a.path = os.path.join(a.dir, f"bench_stream_rml2018_{a.gb:g}gb.hdf5")
    try:
        w = write_file(a.path, a.gb)
        print(json.dumps(w), flush=True)
        if a.cold:
            drop_cache(a.path)
        r = run_child(a, "reader")
        print(json.dumps(r), flush=True)
        if a.cold:
            drop_cache(a.path)
        t = run_child(a, "trainer")
        print(json.dumps(t), flush=True)
        c = run_child(a, "control")
        print(json.dumps(c), flush=True)
    finally:
        if not a.keep and os.path.exists(a.path):
            os.remove(a.path)
    out = {"file_gib": os.path.getsize(a.path) / 2**30 if os.path.exists(a.path) else w["file_gb"],
           "frames": w["frames"], "write": w, "reader": r, "trainer": t, "control_same_model_in_memory": c,
           "cold": a.cold,
           "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(),
           "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv])}
    path = write_json(f"stream_rml2018_{a.gb:g}gb.json", out)
    print(f"\nfile {w['file_gb']:.2f} GiB ({w['frames']} frames); train split {r['train_frames']} frames")
    print(f"reader : {r['frames_per_s']:8.0f} frames/s ({r['mb_per_s']:.0f} MB/s), peak RSS {r['peak_rss_mb']:.0f} MB, "
          f"buffer {r['max_resident_frames']}/{r['buffer_frames']} frames, every frame once: {r['every_frame_once']}")
    print(f"trainer: {t['frames_per_s']:8.1f} frames/s ({t['model']}, {t['threads']} thread(s), "
          f"{t['steps_timed']} steps), peak RSS {t['peak_rss_mb']:.0f} MB; "
          f"the same model on one in-memory batch: {c['peak_rss_mb']:.0f} MB  ({path})")


if __name__ == "__main__":
    main()
