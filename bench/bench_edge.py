"""Edge latency: do pruned networks run as much faster as their MAC cut says, in eager PyTorch, ONNX Runtime
FP32 and ONNX Runtime INT8, at batch 1 and 256? And how accurate is INT8?

Latency depends on the architecture, not on the weights, so part 1 rebuilds every pruned architecture of a
committed comparison (its rows' plans), with BatchNorm statistics as after training, and times each:
eager PyTorch (as pruned), eager with BatchNorm folded, ORT FP32 (folded, exported, highest graph
optimisation) and ORT INT8 (QDQ, calibrated on random frames: latency only). Per row it also counts ORT's
kernels after optimisation, so LaCD's removals show as fewer operators, and times the FCOS rows again
re-cut at the same MACs with every width on a multiple of ``--width-multiple`` (the channel stage's
``width_multiple``, with the row's removed blocks).
ORT's profiler says where the time goes for the parent and the smallest FCOS network.

Part 2 (``--checkpoints``: trained models saved by a comparison run, e.g. bench/out/compare_cpu/) measures
INT8's accuracy against FP32 on the seed's test split, overall and per SNR.

    .venv/bin/python bench/bench_edge.py --compare resnet56-cpu-s1 --tag resnet56
    .venv/bin/python bench/bench_edge.py --compare cpu --seed 0 --checkpoints bench/out/compare_cpu --tag resnet20
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, write_json

BATCHES = (1, 256)


def _trained_like(net):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


def _width_multiple_net(parent_arch: dict, arch: dict, target: float, k: int):
    """The row's network re-cut with widths on multiples of ``k``: the same removed blocks (read from the
    row's architecture), the channel stage at the same MAC target with ``width_multiple=k``, on the parent's
    architecture with untrained weights (latency depends on the widths, not on the weights). None when the
    target cannot be reached on multiples of ``k``."""
    from amrlib.models import build_from_arch
    from amrlib.pruning import PruningError, channel_stage, remove_blocks
    if arch.get("family") != "resnet":
        return None
    removed = [f"layer{si + 1}.{bi}" for si, st in enumerate(arch["stages"])
               for bi, blk in enumerate(st["blocks"]) if blk.get("removed")]
    try:
        narrow, _ = channel_stage(_trained_like(build_from_arch(parent_arch)), target_macs_reduction=target,
                                  planned_removals=removed, width_multiple=k)
    except PruningError as exc:
        print(f"[edge] no multiple-of-{k} network at {target:.0%}: {exc}", flush=True)
        return None
    return _trained_like(remove_blocks(narrow, removed) if removed else narrow)


def time_all(net, length, repeats, threads, tmp: Path, int8: bool = True) -> dict:
    """Median latency (s) per runtime and batch, and ORT's kernel count, for one network."""
    from amrlib.deploy import fold_batchnorm
    from amrlib.deploy.int8 import quantize_int8
    from amrlib.deploy.profile import profile_onnx
    from amrlib.measure import measure_latency
    from amrlib.onnx_export import check_onnx, export_onnx, measure_onnx_latency
    folded = fold_batchnorm(net)
    fp32 = export_onnx(folded, tmp / "m.onnx")
    check_onnx(net, fp32)
    out = {"eager": {}, "eager-folded": {}, "ort-fp32": {}}
    paths = {"ort-fp32": fp32}
    if int8:
        calib = np.random.default_rng(0).standard_normal((128, 2, length)).astype(np.float32)
        paths["ort-int8"] = quantize_int8(fp32, tmp / "m8.onnx", calib)
        out["ort-int8"] = {}
    for b in BATCHES:
        r = max(3, repeats // (8 if b > 1 else 1))
        out["eager"][b] = measure_latency(net, batch_size=b, threads=threads, repeats=r)["median_s"]
        out["eager-folded"][b] = measure_latency(folded, batch_size=b, threads=threads, repeats=r)["median_s"]
        for rt, p in paths.items():
            out[rt][b] = measure_onnx_latency(p, b, length, r, threads=threads)["median_s"]
    out["ort_kernels"] = profile_onnx(fp32, batch_size=1, frame_length=length, repeats=3, warmup=1)["nodes"]
    return out


def part_latency(a, rows, parent_arch, tmp):
    from amrlib.measure import count_macs
    from amrlib.models import build_from_arch
    nets = [("parent", 0.0, _trained_like(build_from_arch(parent_arch)), False)]
    nets += [(r["method"], r["target"], _trained_like(build_from_arch(r["plan"]["arch"])), False)
             for r in rows if (r.get("plan") or {}).get("arch")]
    if a.width_multiple > 1:
        for r in rows:
            if r["method"] in ("fcos", "fcos:channel") and (r.get("plan") or {}).get("arch"):
                net = _width_multiple_net(parent_arch, r["plan"]["arch"], r.get("macs_reduction", r["target"]),
                                          a.width_multiple)
                if net is not None:
                    nets.append((f"{r['method']}+w{a.width_multiple}", r["target"], net, True))
    results = []
    for method, target, net, rounded in nets:
        arch = net.current_arch() if hasattr(net, "current_arch") else net.arch
        t0 = time.perf_counter()
        lat = time_all(net, int(arch["frame_length"]), a.repeats, a.threads, tmp)
        results.append({"method": method, "target": target, "macs": count_macs(net), "rounded": rounded,
                        "widths": sorted({g.size for g in net.structure().groups}),
                        "removed_blocks": sum(b.get("removed", False) for st in arch.get("stages", [])
                                              for b in st["blocks"]), "latency_s": lat})
        print(f"[edge] {method} @ {target:.0%}: {results[-1]['macs'] / 1e6:.2f} M MACs, "
              + ", ".join(f"{rt} b{b} {lat[rt][b] * 1e3:.2f} ms" for rt in lat if rt != "ort_kernels" for b in BATCHES)
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return results


def part_int8(a, settings, tmp):
    """FP32 vs INT8 accuracy of the trained checkpoints of one seed, on that seed's test split."""
    from amrlib.deploy import fold_batchnorm
    from amrlib.deploy.int8 import int8_accuracy_check, quantize_int8
    from amrlib.models import load_model
    from amrlib.onnx_export import export_onnx
    from bench_compare import parse_args, split_for
    argv = ["--preset", settings["preset"], "--frames-per-key", str(settings["frames_per_key"]),
            "--fractions", *map(str, settings["fractions"]), "--mlflow-uri", ""]
    c = parse_args(argv + (["--data", settings["data"]] if settings.get("data") else []))
    train, _, test = split_for(c, a.seed)
    pick = np.sort(np.random.default_rng(0).choice(len(train), a.calibration, replace=False))
    calib = np.asarray(train.iq[pick], np.float32)
    out = []
    for ckpt in sorted(Path(a.checkpoints).glob(f"s{a.seed}_*.pt")) + sorted(a.parent_checkpoints):
        net = load_model(ckpt).eval()
        fp32 = export_onnx(fold_batchnorm(net), tmp / "a.onnx")
        int8 = quantize_int8(fp32, tmp / "a8.onnx", calib)
        rep = int8_accuracy_check(fp32, int8, np.asarray(test.iq, np.float32), test.labels, test.snrs,
                                  max_drop_pt=float("inf"))
        out.append({"model": Path(ckpt).stem, **rep})
        print(f"[edge] int8 {Path(ckpt).stem}: fp32 {rep['fp32_accuracy']:.2%} int8 {rep['int8_accuracy']:.2%} "
              f"(drop {rep['drop_pt']:+.2f} pt, agreement {rep['agreement']:.1%})", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", required=True, help="a committed comparison: bench/results/compare_<TAG>.json")
    ap.add_argument("--model", help="the comparison's model (default: its first)")
    ap.add_argument("--seed", type=int, default=None, help="whose rows (default: the first seed with rows)")
    ap.add_argument("--repeats", type=int, default=40, help="timed runs at batch 1 (batch 256: an eighth, >= 3)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width-multiple", type=int, default=8,
                    help="also time the FCOS rows re-cut with widths on multiples of this (1: off)")
    ap.add_argument("--checkpoints", help="folder of a comparison's trained models: also measure INT8 accuracy")
    ap.add_argument("--parent-checkpoints", nargs="*", default=[], help="the seed's parent checkpoint(s)")
    ap.add_argument("--calibration", type=int, default=256, help="training frames INT8 is calibrated on")
    ap.add_argument("--tag", required=True)
    a = ap.parse_args(argv)
    res = json.loads((RESULTS / f"compare_{a.compare}.json").read_text())
    model = a.model or next(iter(res["models"]))
    block = res["models"][model]
    rows = [r for r in block["rows"] if r.get("method") != "__parent__" and "error" not in r]
    seeds = sorted({r.get("seed", 0) for r in rows})
    a.seed = seeds[0] if a.seed is None else a.seed
    rows = [r for r in rows if r.get("seed", 0) == a.seed]
    parent_arch = next(r["plan"]["parent_arch"] for r in rows if (r.get("plan") or {}).get("parent_arch"))
    import onnxruntime

    from amrlib.measure import machine
    out = {"compare": a.compare, "model": model, "seed": a.seed, "threads": a.threads, "repeats": a.repeats,
           "machine": {**machine(), "onnxruntime": onnxruntime.__version__},
           "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        out["latency"] = part_latency(a, rows, parent_arch, Path(tmp))
        out["profiles"] = profiles(a, rows, parent_arch, Path(tmp))
        if a.checkpoints:
            out["int8_accuracy"] = part_int8(a, res["settings"], Path(tmp))
    out["load_after"] = os.getloadavg()
    write_json(f"edge_{a.tag}.json", out)
    from edge_report import write_edge_report
    write_edge_report(out, a.tag)


def profiles(a, rows, parent_arch, tmp):
    from amrlib.deploy import fold_batchnorm
    from amrlib.deploy.profile import profile_onnx
    from amrlib.models import build_from_arch
    from amrlib.onnx_export import export_onnx
    fcos = [r for r in rows if r["method"] == "fcos" and (r.get("plan") or {}).get("arch")]
    picks = [("parent", parent_arch)] + ([(f"fcos@{fcos[-1]['target']:.0%}", max(
        fcos, key=lambda r: r["target"])["plan"]["arch"])] if fcos else [])
    out = {}
    for name, arch in picks:
        path = export_onnx(fold_batchnorm(_trained_like(build_from_arch(arch))), tmp / "p.onnx")
        out[name] = {str(b): profile_onnx(path, batch_size=b, frame_length=int(arch["frame_length"]),
                                          repeats=20 if b == 1 else 5, threads=a.threads) for b in BATCHES}
    return out


if __name__ == "__main__":
    main()
