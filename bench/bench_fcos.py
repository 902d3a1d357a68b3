"""FCOS end to end on a trained model at several MAC targets: accuracy, reductions, probe curves, timings.

    .venv/bin/python bench/bench_fcos.py --model resnet56 --frames-per-key 100 --targets 0.5 0.8 0.9 0.95 --epochs 10 \
        [--interim-epochs 2 --tag interim2]

Needs the checkpoint written by bench_train.py. Writes bench/results/fcos_<model>_<frames>.json and
a probe-curve plot bench/results/fcos_probes_<model>_<frames>.png.
"""
from __future__ import annotations

import argparse

import torch

from common import OUT, RESULTS, bench_data, write_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--frames-per-key", type=int, default=100)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--margin", type=float, default=0.005)
    ap.add_argument("--interim-epochs", type=int, default=0, help="recovery epochs between channel stage and LaCD")
    ap.add_argument("--tag", default="", help="suffix for the output files")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from amrlib.models import load_model
    from amrlib.plots import probe_curve
    from amrlib.pruning import fcos, probe_blocks
    train, val, test = bench_data(a.frames_per_key)
    parent = load_model(OUT / f"{a.model}_{a.frames_per_key}.pt")
    curves = {"unpruned": probe_blocks(parent, train, val)}
    rows = []
    for target in a.targets:
        res = fcos(parent, train, val, target_macs_reduction=target, lacd_margin=a.margin,
                   finetune={"epochs": a.epochs}, eval_set=test, target_scope="channel",   # its v1 results' scope
                   interim_epochs=a.interim_epochs)
        r = res.report
        curves[f"after channel stage ({target:.0%})"] = r["diagnosis"]
        row = {"target": target, "accuracy": r["accuracy"], "high_snr_accuracy": r["high_snr_accuracy"],
               "delta": r["accuracy_delta"], "macs_reduction": r["macs_reduction"],
               "params_reduction": r["params_reduction"], "macs": r["model"]["macs"], "params": r["model"]["params"],
               "channel_stage_macs_reduction": 1 - r["channel_stage"]["macs"] / r["parent"]["macs"],
               "removed_blocks": r["removed_blocks"], "seconds": r["seconds"], "per_snr": r["per_snr"]}
        rows.append(row)
        print(f"target {target:.0%}: acc {r['accuracy']['parent']:.4f} -> channel {r['accuracy']['channel_stage']:.4f} "
              f"-> lacd {r['accuracy']['lacd']:.4f} -> finetuned {r['accuracy']['finetuned']:.4f} "
              f"(delta {r['accuracy_delta'] * 100:+.2f} pt); MACs -{r['macs_reduction']:.1%}, "
              f"params -{r['params_reduction']:.1%}; removed {len(r['removed_blocks'])} blocks; "
              f"seconds {({k: round(v, 1) for k, v in r['seconds'].items()})}", flush=True)
        if "interim_finetune" in r["accuracy"]:
            print(f"  after {a.interim_epochs} interim epochs: {r['accuracy']['interim_finetune']:.4f}", flush=True)
    tag = f"_{a.tag}" if a.tag else ""
    write_json(f"fcos_{a.model}_{a.frames_per_key}{tag}.json",
               {"rows": rows, "probes": curves, "epochs": a.epochs, "interim_epochs": a.interim_epochs})
    probe_curve(curves, RESULTS / f"fcos_probes_{a.model}_{a.frames_per_key}{tag}.png")
    print("\n| MAC target | accuracy (test) | delta vs unpruned | >= 10 dB | MACs cut | params cut | blocks removed "
          "| channel / LaCD / fine-tune time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["seconds"]
        print(f"| {r['target']:.0%} | {r['accuracy']['finetuned']:.4f} | {r['delta'] * 100:+.2f} pt | "
              f"{r['high_snr_accuracy']['finetuned']:.4f} | {r['macs_reduction']:.1%} | {r['params_reduction']:.1%} | "
              f"{len(r['removed_blocks'])} | {s['channel_stage']:.1f} s / {s['lacd']:.1f} s / {s['finetune']:.0f} s |")


if __name__ == "__main__":
    main()
