"""Run bench/bench_compare.py as a process against a scratch benchmark folder, for the comparison's tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "AMR_BENCH_DIR": str(tmp), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_compare.py"), *args], env=env,
                         capture_output=True, text=True, timeout=900)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def results(tmp: Path, tag: str) -> dict:
    return json.loads((tmp / "results" / f"compare_{tag}.json").read_text())
