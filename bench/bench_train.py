"""Train a model on the default synthetic dataset and report accuracy (overall, >= 10 dB, per SNR).

    .venv/bin/python bench/bench_train.py --model resnet56 --frames-per-key 100 --epochs 20

Saves the checkpoint to bench/out/<model>_<frames>.pt (reused by the pruning benchmarks) and the
figures to bench/results/train_<model>_<frames>.json.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import OUT, bench_data, write_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--frames-per-key", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from amrlib.models import build_model, save_model
    from amrlib.train import evaluate, fit
    train, val, test = bench_data(a.frames_per_key, a.seed)
    torch.manual_seed(a.seed)
    model = build_model(a.model, train.num_classes, train.frame_length)
    t0 = time.perf_counter()
    res = fit(model, train, val, epochs=a.epochs, seed=a.seed,
              checkpoint_dir=OUT / f"ckpt_{a.model}_{a.frames_per_key}",
              callbacks=[lambda r: print(f"epoch {r['epoch']}: train {r['train_accuracy']:.3f} "
                                         f"val {r['val_accuracy']:.3f} "
                                         f"{r['frames_per_s']:.0f} frames/s", flush=True)])
    wall = time.perf_counter() - t0
    ev = evaluate(model, test)
    save_model(model, OUT / f"{a.model}_{a.frames_per_key}.pt")
    conf = np.array(ev["confusion"])
    np.fill_diagonal(conf, 0)
    top = np.dstack(np.unravel_index(np.argsort(conf.ravel())[::-1][:4], conf.shape))[0]
    out = {"model": a.model, "frames_per_key": a.frames_per_key, "train_frames": len(train), "epochs": a.epochs,
           "best_epoch": res.best_epoch, "test_accuracy": ev["accuracy"], "high_snr_accuracy": ev["high_snr_accuracy"],
           "per_snr": ev["per_snr"], "train_frames_per_s": float(np.median([h["frames_per_s"] for h in res.history])),
           "wall_s": wall, "threads": a.threads,
           "top_confusions": [[ev["classes"][i], ev["classes"][j], int(conf[i, j])] for i, j in top]}
    write_json(f"train_{a.model}_{a.frames_per_key}.json", out)
    print(f"test accuracy {ev['accuracy']:.4f}, >= 10 dB {ev['high_snr_accuracy']:.4f}, "
          f"{out['train_frames_per_s']:.0f} frames/s training")
    print("per SNR:", {k: round(v, 3) for k, v in ev["per_snr"].items()})
    print("top confusions (true -> predicted, count):", out["top_confusions"])


if __name__ == "__main__":
    main()
