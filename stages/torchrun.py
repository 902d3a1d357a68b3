"""Running a training stage as ``torchrun --nproc_per_node N -m amrlib.train.launch`` (DDP) from a task.

The task saves its starting model, launches torchrun in a subprocess (this repository on PYTHONPATH, CPU
threads split between the processes), forwards each finished epoch to the tracker while it runs (the
launcher appends them to ``epochs.jsonl``), and loads the trained weights back into the task's model.
The training state lives in the stage folder, so re-running a failed stage resumes it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from amrlib.models import load_model, save_model
from settings.pipeline import REPO_ROOT


def _new_lines(path: Path, done: int) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines[done:] if line.strip()]


def fit_with_torchrun(model: torch.nn.Module, workdir: Path, nproc: int, fit_kwargs: dict[str, Any],
                      data: dict[str, Any], split: dict[str, Any], stream: dict[str, Any] | None = None,
                      teacher_checkpoint: str | None = None, on_epoch: Callable[[dict], None] | None = None,
                      poll_s: float = 0.5) -> dict[str, Any]:
    """Train ``model`` (in place) with ``nproc`` DDP processes; returns the launcher's result record
    (history, best_epoch, best_val_accuracy, resumed_from, world_size, ...)."""
    workdir.mkdir(parents=True, exist_ok=True)
    init, out, result, epochs = (workdir / n for n in ("init.pt", "model.pt", "result.json", "epochs.jsonl"))
    save_model(model, init)
    threads = max(1, torch.get_num_threads() // nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "amrlib.train.launch", "--data", str(data["path"]),
           "--split", *(str(f) for f in split["fractions"]), "--split-seed", str(int(split["seed"])),
           "--init", str(init), "--train", json.dumps(fit_kwargs), "--checkpoint-dir", str(workdir / "state"),
           "--out", str(out), "--result", str(result), "--epoch-log", str(epochs), "--threads", str(threads)]
    if teacher_checkpoint:
        cmd += ["--teacher", str(teacher_checkpoint)]
    if stream:
        cmd += ["--stream-chunk-frames", str(stream["chunk_frames"]),
                "--stream-buffer-frames", str(stream["buffer_frames"])]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result.unlink(missing_ok=True)
    logged = 0
    log_path = workdir / "torchrun.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        try:
            while True:
                finished = proc.poll() is not None
                for rec in _new_lines(epochs, logged):
                    logged += 1
                    if on_epoch:
                        on_epoch(rec)
                if finished:
                    break
                time.sleep(poll_s)
        except BaseException:
            proc.terminate()
            proc.wait(timeout=60)
            raise
    if proc.returncode != 0 or not result.exists():
        tail = "\n".join(log_path.read_text().splitlines()[-30:])
        raise RuntimeError(f"torchrun with {nproc} processes failed (exit {proc.returncode}); the training state "
                           f"in {workdir / 'state'} is kept, re-run to resume. Last lines of {log_path}:\n{tail}")
    record = json.loads(result.read_text())
    model.load_state_dict(load_model(out).state_dict())
    return record
