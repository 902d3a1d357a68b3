"""``amrlib.train.predict_batched`` gives the logits of one whole-array forward, batch by batch, from any
sliceable frames (array, lazy HDF5 view), and its memory does not grow with the number of frames
(child processes of bench/bench_predict_memory.py; peak RSS above the RSS before predicting)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from amrlib.data import load_dataset, save_dataset
from amrlib.models import build_model
from amrlib.train import evaluate, predict, predict_batched
from conftest import ROOT, toy_dataset


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("resnet20", num_classes=3, frame_length=128)


def test_same_logits_as_one_forward_for_any_batch_size(model):
    frames = toy_dataset(n=67).iq
    with torch.no_grad():
        whole = model.eval()(torch.from_numpy(frames)).numpy()
    for batch_size in (7, 16, 67, 1000):
        got = predict_batched(model, frames, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (67, 3)
        np.testing.assert_allclose(got, whole, rtol=1e-4, atol=1e-5)


def test_lazy_frames_and_training_mode_restored(model, tmp_path):
    ds = toy_dataset(n=150)
    save_dataset(ds, tmp_path / "toy.h5")
    lazy = load_dataset(tmp_path / "toy.h5")
    model.train()
    np.testing.assert_allclose(predict_batched(model, lazy.iq, batch_size=32), predict_batched(model, ds.iq),
                               rtol=1e-4, atol=1e-5)
    assert model.training
    np.testing.assert_array_equal(predict(model, ds, batch_size=40).numpy(), predict_batched(model, ds.iq, 40))


def test_evaluate_never_forwards_more_than_a_batch(model):
    sizes = []
    hook = model.register_forward_hook(lambda m, inp, out: sizes.append(len(inp[0])))
    try:
        evaluate(model, toy_dataset(n=300), batch_size=64)
    finally:
        hook.remove()
    assert max(sizes) == 64 and sum(sizes) == 300


@pytest.mark.parametrize("frames, batch_size, match", [
    (np.zeros((4, 3, 128), np.float32), 8, r"expected IQ frames \[n, 2, L\]"),
    (np.zeros((4, 2, 64), np.float32), 8, r"resnet20 was built for frames \[n, 2, 128\]"),
    (np.zeros((4, 2, 128), np.float32), 0, "batch_size must be a positive integer"),
])
def test_bad_input_is_refused(model, frames, batch_size, match):
    with pytest.raises(ValueError, match=match):
        predict_batched(model, frames, batch_size=batch_size)


def _growth(n: int) -> float:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_predict_memory.py"), "--child", str(n),
                           "batched", "--model", "cnn1d", "--batch-size", "256"],
                          capture_output=True, text=True, check=True, timeout=600)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return row["peak_rss_mib"] - row["rss_before_predict_mib"]


def test_memory_is_flat_in_the_number_of_frames():
    # 20x the frames (allocated before both figures); one whole-array forward grows about 20x too
    small, large = _growth(500), _growth(10_000)
    assert large < small + 64, f"predicting 10k frames took {large:.0f} MiB above the frames, 500 {small:.0f} MiB"
