"""Subprocess body for tests/test_fault_flows.py: run prune_pipeline on a configuration and write its summary;
``kill_at`` = ``after_pruned_version`` SIGKILLs the process right after MLflow created the pruned model's
version (before the register stage could record it) — the worst moment for a duplicate registration."""
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

torch.set_num_threads(1)
config, out = sys.argv[1], sys.argv[2]
kill_at = sys.argv[3] if len(sys.argv) > 3 else ""

if kill_at == "after_pruned_version":
    from mlflow import MlflowClient
    real = MlflowClient.create_model_version

    def create_then_die(self, name, *args, **kwargs):
        mv = real(self, name, *args, **kwargs)
        if name.endswith("-fcos"):
            os.kill(os.getpid(), signal.SIGKILL)
        return mv
    MlflowClient.create_model_version = create_then_die    # before tracking.runs wraps MlflowClient's methods
elif kill_at:
    raise SystemExit(f"unknown kill point {kill_at!r}")

from flows.prune_pipeline import prune_pipeline  # noqa: E402

summary = prune_pipeline(config)
Path(out).write_text(json.dumps(summary, default=str))
