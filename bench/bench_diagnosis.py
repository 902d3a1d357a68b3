"""How many blocks LaCD calls collapsed on a committed comparison parent cut by the channel stage, before and
after a short recovery, under the point and the confident rule (the diagnosis pass alone: no fine-tuning).

    .venv/bin/python bench/bench_diagnosis.py --preset cpu-resnet56 --seed 4 --target 0.95

Prints one line per (recovery, rule). The parent must exist (bench/out/parents or bench/results/parents).
"""
from __future__ import annotations

import argparse
import shutil

import torch

from bench_compare import parse_args, split_for
from compare_methods import train_config
from compare_paths import committed_parent, parent_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu-resnet56")
    ap.add_argument("--model", default=None, help="default: the preset's first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--recovery-epochs", type=int, default=2)
    ap.add_argument("--resamples", type=int, default=50)
    a = ap.parse_args(argv)
    from amrlib.models import load_model
    from amrlib.pruning.fcos_steps import channel_step, lacd_step
    from amrlib.train import evaluate, fit
    torch.set_num_threads(1)
    c = parse_args(["--preset", a.preset, "--mlflow-uri", ""])
    model = a.model or c.models[0]
    path, kept = parent_path(c, model, a.seed), committed_parent(c, model, a.seed)
    if not path.exists():
        if not kept.exists():
            raise SystemExit(f"no parent {path.name}: run bench_compare.py --preset {a.preset} --seeds {a.seed} first")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, path)
    train, val, _ = split_for(c, a.seed)
    narrow, _ = channel_step(load_model(path), train, target_macs_reduction=a.target, seed=a.seed)
    blocks = len(narrow.structure().blocks)

    def diagnose(tag):
        acc = evaluate(narrow, val)["accuracy"]
        for conf in (None, 0.9):
            _, d = lacd_step(narrow, train, val, confidence=conf, resamples=a.resamples if conf else 0, seed=a.seed,
                             recalibrate_seed=a.seed)
            print(f"s{a.seed} {model} at {a.target:.0%}, {tag} (val {acc:.3f}): "
                  f"{'confident' if conf else 'point'} rule removes {len(d['removed'])} of {blocks} units", flush=True)
    diagnose("no recovery")
    fit(narrow, train, val, train_config(c, a.seed, epochs=a.recovery_epochs, patience=None), progress=False)
    diagnose(f"after {a.recovery_epochs} recovery epochs")


if __name__ == "__main__":
    main()
