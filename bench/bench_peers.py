"""The peer pruners on a trained model at matched MAC targets: accuracy, reductions, latency, pruning time.

    .venv/bin/python bench/bench_peers.py --model resnet56 --frames-per-key 100 --targets 0.5 0.8 0.9 0.95 --epochs 10

Needs the checkpoint written by bench_train.py. Every method gets the same parent, data split, seed
and fine-tuning budget (TrainConfig(epochs, seed)); accuracy is on the test split. A method that
cannot reach a target says so (channel methods refuse: an ``error`` row; layer methods return what
they reach with ``target_met: false``). Writes bench/results/peers_<model>_<frames>.json and a
Pareto plot bench/results/peers_pareto_<model>_<frames>.png (with FCOS's rows from
fcos_<model>_<frames>.json when bench_fcos.py has been run).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from common import OUT, RESULTS, bench_data, write_json


def latency(model, batch, threads, repeats):
    from amrlib.measure import measure_latency
    return measure_latency(model, batch_size=batch, threads=threads, repeats=repeats)["median_s"]


def plot_pareto(rows, fcos_rows, parent_acc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for method in sorted({r["method"] for r in rows}):
        pts = sorted((r["macs_reduction"], r["accuracy"]) for r in rows if r["method"] == method and "error" not in r)
        if pts:
            ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    if fcos_rows:
        pts = sorted((r["macs_reduction"], r["accuracy"]["finetuned"]) for r in fcos_rows)
        ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="*", markersize=12, color="k", label="FCOS")
    ax.axhline(parent_acc, color="gray", ls="--", lw=1, label="unpruned")
    ax.set_xlabel("MACs removed (%)")
    ax.set_ylabel("test accuracy after fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--frames-per-key", type=int, default=100)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95])
    ap.add_argument("--methods", nargs="+", default=None, help="default: every peer method")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latency-repeats", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from amrlib.models import load_model
    from amrlib.pruning.api import PruningError
    from amrlib.pruning.peers import PEER_METHODS
    from amrlib.train import TrainConfig, evaluate
    train, val, test = bench_data(a.frames_per_key, a.seed)
    parent = load_model(OUT / f"{a.model}_{a.frames_per_key}.pt")
    base = evaluate(parent, test)
    lat0 = {b: latency(parent, b, a.threads, a.latency_repeats) for b in (1, 256)}
    methods = a.methods or list(PEER_METHODS)
    rows = []
    for method in methods:
        for target in a.targets:
            torch.manual_seed(a.seed)
            t0 = time.perf_counter()
            try:
                res = PEER_METHODS[method](parent, train, val, target, seed=a.seed,
                                           finetune=TrainConfig(epochs=a.epochs, seed=a.seed))
            except PruningError as e:
                rows.append({"method": method, "target": target, "error": str(e)})
                print(f"{method} @ {target:.0%}: {e}", flush=True)
                continue
            rep = res.report
            ev = evaluate(res.model, test)
            lat = {b: latency(res.model, b, a.threads, a.latency_repeats) for b in (1, 256)}
            row = {"method": method, "target": target, "target_met": rep["target_met"], "note": rep.get("note"),
                   "accuracy": ev["accuracy"], "delta": ev["accuracy"] - base["accuracy"],
                   "high_snr_accuracy": ev["high_snr_accuracy"], "macs_reduction": rep["macs_reduction"],
                   "params_reduction": rep["params_reduction"], "macs": rep["macs_after"], "params": rep["params_after"],
                   "speedup_b1": lat0[1] / lat[1], "speedup_b256": lat0[256] / lat[256],
                   "prune_seconds": rep["prune_seconds"], "finetune_seconds": rep.get("finetune_seconds"),
                   "wall_seconds": time.perf_counter() - t0, "per_snr": ev["per_snr"], "plan": res.plan}
            rows.append(row)
            print(f"{method} @ {target:.0%}: acc {ev['accuracy']:.4f} ({row['delta'] * 100:+.2f} pt), MACs "
                  f"-{row['macs_reduction']:.1%}, params -{row['params_reduction']:.1%}, speed-up "
                  f"x{row['speedup_b1']:.2f}/x{row['speedup_b256']:.2f}, prune {row['prune_seconds']:.1f} s", flush=True)
    out = {"model": a.model, "frames_per_key": a.frames_per_key, "epochs": a.epochs, "seed": a.seed,
           "threads": a.threads, "parent": {"accuracy": base["accuracy"], "high_snr_accuracy": base["high_snr_accuracy"],
                                            "latency_s": lat0}, "rows": rows}
    write_json(f"peers_{a.model}_{a.frames_per_key}.json", out)
    fcos_file = RESULTS / f"fcos_{a.model}_{a.frames_per_key}.json"
    fcos_rows = json.loads(fcos_file.read_text())["rows"] if fcos_file.exists() else []
    plot_pareto(rows, fcos_rows, base["accuracy"], RESULTS / f"peers_pareto_{a.model}_{a.frames_per_key}.png")
    print(f"\nunpruned {a.model}: test accuracy {base['accuracy']:.4f}, >= 10 dB {base['high_snr_accuracy']:.4f}")
    print("\n| method | MAC target | accuracy (test) | delta vs unpruned | >= 10 dB | MACs cut | params cut "
          "| speed-up b1 / b256 | pruning time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | {r['target']:.0%} | — | — | — | unreachable | — | — | — |")
            continue
        flag = "" if r["target_met"] else " (target not met)"
        print(f"| {r['method']} | {r['target']:.0%} | {r['accuracy']:.4f} | {r['delta'] * 100:+.2f} pt | "
              f"{r['high_snr_accuracy']:.4f} | {r['macs_reduction']:.1%}{flag} | {r['params_reduction']:.1%} | "
              f"x{r['speedup_b1']:.2f} / x{r['speedup_b256']:.2f} | {r['prune_seconds']:.1f} s |")


if __name__ == "__main__":
    main()
