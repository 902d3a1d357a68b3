"""FCOS channel stage vs L1-norm selection (Torch-Pruning) at the same widths, before fine-tuning.

Rows: ``fcos`` (BN-aware fusion), ``fcos-select`` (clusters, medoid kept, no fusion), ``l1``. Accuracy
is reported raw and after re-estimating BN statistics on 2048 training frames (the same for all).

    .venv/bin/python bench/bench_channel_stage.py --model resnet56 --frames-per-key 100

Needs the checkpoint written by bench_train.py. Prints a Markdown table and writes
bench/results/channel_stage_<model>_<frames>.json.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch

from common import OUT, bench_data, write_json


def l1_same_widths(model, keep):
    """L1-norm selection at FCOS's widths, cut through Torch-Pruning's dependency graph."""
    from amrlib.pruning.peers.channels import apply_kept, build_graph, ranking, score_groups
    from amrlib.pruning.peers.classic import make_importance
    w = copy.deepcopy(model)
    dg = build_graph(w)
    scores = score_groups(w, make_importance("l1"), None, dg)
    kept = {g.name: sorted(int(i) for i in ranking(scores[g.name])[:max(1, round(keep * g.size))])
            for g in w.structure().groups}
    return apply_kept(w, kept, dg).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--frames-per-key", type=int, default=100)
    ap.add_argument("--keep", type=float, nargs="+", default=[0.7, 0.5, 0.3, 0.1])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from amrlib.measure import count_macs, count_params
    from amrlib.models import load_model
    from amrlib.pruning import channel_stage, recalibrate_bn
    from amrlib.train import evaluate
    train, _, test = bench_data(a.frames_per_key)
    model = load_model(OUT / f"{a.model}_{a.frames_per_key}.pt")
    base = {"accuracy": evaluate(model, test)["accuracy"], "macs": count_macs(model), "params": count_params(model)}
    rows = []
    for keep in a.keep:
        for method in ("fcos", "fcos-select", "l1"):
            t0 = time.perf_counter()
            if method == "l1":
                pruned = l1_same_widths(model, keep)
            else:
                pruned, _ = channel_stage(model, keep_ratio=keep,
                                          fusion="bn_aware" if method == "fcos" else "select")
            secs = time.perf_counter() - t0
            ev = evaluate(pruned, test)
            recal = evaluate(recalibrate_bn(pruned, train, 2048), test)
            rows.append({"keep": keep, "method": method, "accuracy": ev["accuracy"],
                         "accuracy_bn_recalibrated": recal["accuracy"],
                         "high_snr_accuracy": ev["high_snr_accuracy"], "macs": count_macs(pruned),
                         "params": count_params(pruned), "seconds": secs})
            r = rows[-1]
            print(f"keep {keep}: {method:12s} acc {r['accuracy']:.4f} (BN-recal {r['accuracy_bn_recalibrated']:.4f}) "
                  f"MACs {r['macs'] / 1e6:.2f} M "
                  f"params {r['params']:,} ({secs:.2f} s)", flush=True)
    write_json(f"channel_stage_{a.model}_{a.frames_per_key}.json", {"unpruned": base, "rows": rows})
    print(f"\nunpruned {a.model}: test accuracy {base['accuracy']:.4f}, {base['macs'] / 1e6:.2f} M MACs, "
          f"{base['params']:,} params\n")
    print("| keep ratio | method | accuracy, no fine-tuning | same, BN recalibrated | MACs | params | time |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['keep']} | {r['method']} | {r['accuracy']:.4f} | {r['accuracy_bn_recalibrated']:.4f} "
              f"| {r['macs'] / 1e6:.2f} M "
              f"({1 - r['macs'] / base['macs']:.1%} cut) | {r['params']:,} "
              f"({1 - r['params'] / base['params']:.1%} cut) "
              f"| {r['seconds']:.2f} s |")


if __name__ == "__main__":
    main()
