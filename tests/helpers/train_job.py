"""Subprocess body for tests/test_train_resume.py: train a tiny model, optionally SIGKILL itself mid-epoch."""
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)

from amrlib.models import build_model, save_model  # noqa: E402
from amrlib.train import fit  # noqa: E402
from conftest import toy_dataset  # noqa: E402

ckpt_dir, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
ds = toy_dataset(n=520)
train, val = ds.subset(range(400)), ds.subset(range(400, 520))
torch.manual_seed(0)
model = build_model("cnn1d", 3, 128)


def maybe_die(info):
    # epoch index 1 (the second epoch), after optimiser step kill_at: a mid-epoch crash
    if kill_at and info["epoch"] == 1 and info["step"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


res = fit(model, train, val, epochs=3, batch_size=32, checkpoint_every=4, checkpoint_dir=ckpt_dir,
          step_callbacks=[maybe_die], progress=False)
save_model(res.model, out, extra={"resumed_from": res.resumed_from})
