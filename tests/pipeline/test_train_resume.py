"""A training run killed with SIGKILL mid-epoch resumes and ends with the same weights."""
import json
import subprocess
import sys
from pathlib import Path

import torch

JOB = Path(__file__).parents[1] / "helpers" / "train_job.py"


def run(ckpt, out, kill_at):
    return subprocess.run([sys.executable, str(JOB), str(ckpt), str(out), str(kill_at)], capture_output=True,
                          text=True, timeout=300)


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    ref = run(tmp_path / "ref_ckpt", tmp_path / "ref.pt", 0)
    assert ref.returncode == 0, ref.stderr
    killed = run(tmp_path / "ckpt", tmp_path / "never.pt", 6)
    assert killed.returncode == -9, killed.stderr            # really killed, mid-epoch
    assert not (tmp_path / "never.pt").exists()
    resumed = run(tmp_path / "ckpt", tmp_path / "resumed.pt", 0)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "ref.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    # the resumed run restarted inside epoch 2 from the step-4 checkpoint, not from scratch
    assert json.loads(b["extra"])["resumed_from"] == {"epoch": 1, "step": 4}
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
