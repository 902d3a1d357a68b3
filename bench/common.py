"""Shared bits of the benchmarks: the benchmark dataset and the pretrained models they reuse."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_MOVED = os.environ.get("AMR_BENCH_DIR")       # tests point the benchmarks at a scratch folder
OUT = Path(_MOVED) / "out" if _MOVED else ROOT / "bench" / "out"                # git-ignored: datasets, checkpoints
RESULTS = Path(_MOVED) / "results" if _MOVED else ROOT / "bench" / "results"    # committed: tables and plots


def bench_data(frames_per_key: int, seed: int = 0, frame_length: int = 128):
    """The default synthetic dataset at this size, cached on disk, split (train, val, test)."""
    from amrlib.data import load_dataset, save_dataset, split, synthesize
    path = OUT / f"synth_{frames_per_key}_{frame_length}_s{seed}.h5"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        save_dataset(synthesize(frames_per_key=frames_per_key, frame_length=frame_length, seed=seed), path)
    return split(load_dataset(path).load(), seed=seed)


def write_json(name: str, obj) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / name
    p.write_text(json.dumps(obj, indent=2))
    return p
