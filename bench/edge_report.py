"""The edge benchmark's report: speed-ups per runtime against the MAC ratio, rounding, profiles, INT8 accuracy."""
from __future__ import annotations

from common import RESULTS

RUNTIMES = ("eager", "eager-folded", "ort-fp32", "ort-int8")


def _lat(row, rt, b):
    d = row["latency_s"].get(rt, {})
    return d.get(b, d.get(str(b)))


def speedup_table(out: dict) -> str:
    rows = out["latency"]
    par = rows[0]
    lines = ["| method | target | MACs cut (ratio) | blocks removed | ORT kernels | "
             + " | ".join(f"{rt} b1 / b256" for rt in RUNTIMES) + " |", "|---|" + "---|" * (4 + len(RUNTIMES))]
    for r in rows:
        ratio = par["macs"] / r["macs"]
        cells = [f"x{_lat(par, rt, 1) / _lat(r, rt, 1):.2f} / x{_lat(par, rt, 256) / _lat(r, rt, 256):.2f}"
                 if _lat(r, rt, 1) else "" for rt in RUNTIMES]
        lines.append(f"| {r['method']} | {r['target']:.0%} | {1 - r['macs'] / par['macs']:.1%} (x{ratio:.1f}) | "
                     f"{r['removed_blocks']} | {r['latency_s']['ort_kernels']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def absolute_table(out: dict) -> str:
    par = out["latency"][0]
    lines = ["| runtime | parent b1 (ms) | parent b256 (ms) | parent b256 frames/s |", "|---|---|---|---|"]
    for rt in RUNTIMES:
        if _lat(par, rt, 1):
            lines.append(f"| {rt} | {_lat(par, rt, 1) * 1e3:.3f} | {_lat(par, rt, 256) * 1e3:.2f} | "
                         f"{256 / _lat(par, rt, 256):,.0f} |")
    return "\n".join(lines) + "\n"


def int8_table(out: dict) -> str:
    rows = out.get("int8_accuracy") or []
    if not rows:
        return ""
    lines = ["| model | FP32 | INT8 | drop | same prediction | worst SNR drop |", "|---|---|---|---|---|---|"]
    for r in rows:
        worst = max(((v["fp32"] - v["int8"]) * 100, s) for s, v in r["per_snr"].items()) if r["per_snr"] else (0, "")
        lines.append(f"| {r['model']} | {r['fp32_accuracy']:.2%} | {r['int8_accuracy']:.2%} | {r['drop_pt']:+.2f} pt | "
                     f"{r['agreement']:.1%} | {worst[0]:+.1f} pt at {worst[1]} dB |")
    drops = [r["drop_pt"] for r in rows]
    lines.append(f"\nMean drop {sum(drops) / len(drops):+.2f} pt over {len(rows)} models (largest {max(drops):+.2f}).")
    return "\n".join(lines) + "\n"


def write_edge_report(out: dict, tag: str) -> None:
    from amrlib.deploy.profile import profile_table
    from amrlib.plots import latency_vs_macs
    m = out["machine"]
    md = [f"# Edge latency: {out['model']} (comparison {out['compare']}, seed {out['seed']})\n",
          f"Machine: {m['cpu']}, {m['cores']} cores, {out['threads']} thread(s); torch {m['torch']}, onnxruntime "
          f"{m['onnxruntime']}. Load average before / after: {out['load_before'][0]:.2f} / {out['load_after'][0]:.2f}."
          f" Median of {out['repeats']} runs at batch 1 (an eighth, at least 3, at batch 256).\n",
          "## Unpruned model per runtime\n", absolute_table(out),
          "\n## Speed-up over the unpruned model in the same runtime (batch 1 / batch 256)\n", speedup_table(out)]
    for name, per_b in out.get("profiles", {}).items():
        for b, prof in per_b.items():
            md += [f"\n## Where the time goes: {name}, ORT FP32\n", profile_table(prof, top=8)]
    if out.get("int8_accuracy"):
        md += ["\n## INT8 accuracy against FP32 (ORT, the seed's test split)\n", int8_table(out)]
    (RESULTS / f"edge_{tag}.md").write_text("\n".join(md))
    points, parents = [], {}
    for r in out["latency"]:
        for rt in RUNTIMES:
            for b in (1, 256):
                if _lat(r, rt, b):
                    p = {"runtime": rt, "batch": b, "macs": r["macs"], "latency_s": _lat(r, rt, b)}
                    (parents.__setitem__((rt, b), p) if r["method"] == "parent" else points.append(p))
    latency_vs_macs(points, parents, RESULTS / f"edge_{tag}_latency_vs_macs.png",
                    title=f"{out['model']}: measured latency vs MACs ({out['compare']}, seed {out['seed']})")
    print((RESULTS / f"edge_{tag}.md").read_text())
