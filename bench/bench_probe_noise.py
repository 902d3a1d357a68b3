"""How noisy is LaCD's probe? The spread of each block's probe accuracy and gain, and what each rule decides.

    .venv/bin/python bench/bench_probe_noise.py --preset cpu --seed 0 --targets 0.9 0.95

On the comparison's parent of that seed (bench_compare.py trains it), compressed by the channel stage to each
MAC target: every block's probe accuracy over ``--seeds`` probe seeds (which 4,000 training frames fit the
probe, which 4,000 validation frames score it) and over ``--resamples`` bootstrap replicates; the standard
deviation of the gain over the best earlier block; and which blocks the point rule (margin 0.005) and the
confident rule (gain <= margin in 90% of the replicates) call collapsed. Writes
bench/results/probe_noise_<preset>_s<seed>.{json,md}.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from bench_compare import PRESETS, split_for
from bench_compare import parse_args as compare_args
from common import RESULTS, write_json
from compare_paths import parent_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.9, 0.95])
    ap.add_argument("--seeds", type=int, default=5, help="probe seeds (training/validation frame subsets)")
    ap.add_argument("--resamples", type=int, default=100)
    ap.add_argument("--margin", type=float, default=0.005)
    ap.add_argument("--confidence", type=float, default=0.9)
    a = ap.parse_args(argv)
    from amrlib.models import load_model
    from amrlib.pruning import channel_stage, diagnose_collapse, recalibrate_bn
    from amrlib.pruning.probes import probe_blocks
    torch.set_num_threads(1)
    c = compare_args(["--preset", a.preset, "--mlflow-uri", ""])
    model_name = c.models[0]
    train, val, _ = split_for(c, a.seed)
    parent = load_model(parent_path(c, model_name, a.seed))
    out, md = {"preset": a.preset, "seed": a.seed, "model": model_name, "targets": {}}, []
    for t in a.targets:
        narrow, _ = channel_stage(parent, target_macs_reduction=t)
        narrow = recalibrate_bn(narrow, train, 2048, seed=a.seed)
        by_seed = [probe_blocks(narrow, train, val, seed=s) for s in range(a.seeds)]
        boot = probe_blocks(narrow, train, val, seed=0, resamples=a.resamples)
        point = diagnose_collapse(boot, a.margin)
        conf = diagnose_collapse(boot, a.margin, confidence=a.confidence)
        reps = np.array([b["probe_accuracy_resamples"] for b in boot])
        best = np.maximum.accumulate(reps, axis=0)
        rows = []
        for u, b in enumerate(boot):
            seeds_acc = [p[u]["probe_accuracy"] for p in by_seed]
            gains = reps[u] - best[u - 1] if u else None
            rows.append({"block": b["block"], "probe_accuracy": b["probe_accuracy"],
                         "sd_over_probe_seeds": statistics.stdev(seeds_acc),
                         "sd_over_bootstrap": float(reps[u].std(ddof=1)),
                         "gain": point[u]["gain"], "gain_sd": None if gains is None else float(gains.std(ddof=1)),
                         "point_collapsed": point[u]["collapsed"], "confident_collapsed": conf[u]["collapsed"]})
        out["targets"][str(t)] = rows
        sd_seed = statistics.median(r["sd_over_probe_seeds"] for r in rows)
        sd_boot = statistics.median(r["sd_over_bootstrap"] for r in rows)
        sd_gain = statistics.median(r["gain_sd"] for r in rows if r["gain_sd"] is not None)
        n_point = sum(r["point_collapsed"] for r in rows)
        n_conf = sum(r["confident_collapsed"] for r in rows)
        md += [f"\n**{model_name}, seed {a.seed}, channel stage at {t:.0%}**: median sd of a block's probe accuracy "
               f"{sd_seed * 100:.2f} pt over {a.seeds} probe seeds, {sd_boot * 100:.2f} pt over {a.resamples} "
               f"bootstrap replicates; median sd of a gain {sd_gain * 100:.2f} pt. Collapsed: {n_point} blocks by "
               f"the point rule (margin {a.margin}), {n_conf} by the confident rule ({a.confidence}).\n",
               "| block | probe acc | sd (probe seeds) | sd (bootstrap) | gain | gain sd | point | confident |",
               "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            g = "—" if r["gain"] is None else f"{r['gain'] * 100:+.2f}"
            gs = "—" if r["gain_sd"] is None else f"{r['gain_sd'] * 100:.2f}"
            md.append(f"| {r['block']} | {r['probe_accuracy']:.3f} | {r['sd_over_probe_seeds'] * 100:.2f} | "
                      f"{r['sd_over_bootstrap'] * 100:.2f} | {g} | {gs} | {'x' if r['point_collapsed'] else ''} | "
                      f"{'x' if r['confident_collapsed'] else ''} |")
    name = f"probe_noise_{a.preset}_s{a.seed}"
    write_json(f"{name}.json", out)
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
