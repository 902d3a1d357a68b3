"""Throughput of the synthetic RML2016.10a-style generator (full channel, 2 x 128 frames).

Run: ``.venv/bin/python bench/bench_synth.py [--frames-per-key 20] [--frame-length 128] [--repeats 3]``
Prints frames/s for all 11 classes x 20 SNRs (-20..18 dB), best of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from amrlib.data.synth import synthesize  # noqa: E402


def bench(frames_per_key: int, frame_length: int, repeats: int) -> dict:
    synthesize(frames_per_key=2, frame_length=frame_length)        # warm-up (imports, tables)
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        ds = synthesize(frames_per_key=frames_per_key, frame_length=frame_length, seed=seed)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"frames": len(ds), "frame_length": frame_length, "best_s": best,
            "frames_per_s": len(ds) / best, "mean_s": sum(times) / len(times)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames-per-key", type=int, default=20)
    p.add_argument("--frame-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    r = bench(a.frames_per_key, a.frame_length, a.repeats)
    print(f"synthesize: {r['frames']} frames of 2x{r['frame_length']} (11 classes x 20 SNRs x "
          f"{a.frames_per_key}/key, full channel) in {r['best_s']:.3f} s best / {r['mean_s']:.3f} s mean "
          f"of {a.repeats}: {r['frames_per_s']:,.0f} frames/s (cpus: {os.cpu_count()})")


if __name__ == "__main__":
    main()
