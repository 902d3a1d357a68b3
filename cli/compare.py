"""``amr-prune compare``: FCOS against every peer, paired over seeds, on your own data (bench/bench_compare.py).

    amr-prune compare --data my_frames.h5 --models cnn1d --seeds 0 1 2 --targets 0.9 0.95

Every option of the benchmark passes through (``amr-prune compare --help`` lists them): the protocol and
its outputs are docs/BENCHMARKS.md's. The comparison runs in its own process, so its worker processes and
its resumable journal behave as when the script is run directly.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_compare.py"


def compare(ctx: typer.Context) -> None:
    """Compare pruning methods on a dataset file (--data FILE), paired over seeds, logged to MLflow.

    Options pass through to the comparison benchmark: --data, --models, --seeds, --targets, --methods,
    --recipe, --epochs, --patience, --jobs, --tag, ... (`amr-prune compare --help` for all of them)."""
    code = subprocess.call([sys.executable, str(BENCH), *ctx.args])
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                  "help_option_names": []})(compare)
