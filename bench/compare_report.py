"""The comparison benchmark's outputs: the methods x targets matrix, the full table and the MLflow log."""
from __future__ import annotations

import json

from common import ROOT


def matrix(results) -> str:
    """One compact table per model: methods x targets, test accuracy change vs the unpruned parent
    (and the MAC cut actually reached where it differs from the target by more than 2 points)."""
    lines = []
    for model, block in results["models"].items():
        p = block["parent"]
        targets = sorted({r["target"] for r in block["rows"]})
        lines += [f"\n**{model}**, unpruned {p['accuracy']:.2%}: accuracy change after pruning + fine-tuning "
                  "(MAC cut reached, where it is not the target)\n",
                  "| method | " + " | ".join(f"{t:.0%} MACs cut" for t in targets) + " |",
                  "|---|" + "---|" * len(targets)]
        best = {t: max((r["accuracy"] for r in block["rows"] if r["target"] == t and "error" not in r
                        and r["target_met"]), default=None) for t in targets}
        for method in dict.fromkeys(r["method"] for r in block["rows"]):
            cells = []
            for t in targets:
                r = next((r for r in block["rows"] if r["method"] == method and r["target"] == t), None)
                if r is None:
                    cells.append("")
                    continue
                if "error" in r:
                    cells.append("cannot")
                    continue
                cell = f"{(r['accuracy'] - p['accuracy']) * 100:+.1f} pt"
                if abs(r["macs_reduction"] - t) > 0.02:
                    cell += f" ({r['macs_reduction']:.0%}{'' if r['target_met'] else ', short'})"
                if r["target_met"] and r["accuracy"] == best[t]:
                    cell = f"**{cell}**"
                cells.append(cell)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table(results) -> str:
    lines = []
    for model, block in results["models"].items():
        p = block["parent"]
        lines += [f"\n**{model}** (unpruned: test accuracy {p['accuracy']:.2%}, >= 10 dB {p['high_snr_accuracy']:.2%}, "
                  f"{p['macs'] / 1e6:.2f} M MACs, {p['params']:,} params)\n",
                  "| method | MAC target | accuracy (test) | delta vs unpruned | >= 10 dB | MACs cut | params cut "
                  "| CPU speed-up b1 / b256 | pruning time |", "|---|---|---|---|---|---|---|---|---|"]
        best = {}
        for r in block["rows"]:           # the best accuracy among the methods that reached the target
            if "error" not in r and r["target_met"]:
                best[r["target"]] = max(best.get(r["target"], 0.0), r["accuracy"])
        for r in block["rows"]:
            if "error" in r:
                lines.append(f"| {r['method']} | {r['target']:.0%} | — | — | — | cannot: {r['error'][:70]} | — | — | — |")
                continue
            flag = "" if r["target_met"] else " (target not met)"
            acc = f"{r['accuracy']:.2%}"
            acc = f"**{acc}**" if r["target_met"] and r["accuracy"] == best.get(r["target"]) else acc
            lat = r.get("latency_s")
            speed = (f"x{p['latency_s']['1'] / lat['1']:.2f} / x{p['latency_s']['256'] / lat['256']:.2f}"
                     if lat else "not measured")
            lines.append(f"| {r['method']} | {r['target']:.0%} | {acc} | {(r['accuracy'] - p['accuracy']) * 100:+.2f} pt | "
                         f"{r['high_snr_accuracy']:.2%} | {r['macs_reduction']:.1%}{flag} | {r['params_reduction']:.1%} | "
                         f"{speed} | {r['prune_seconds']:.1f} s |")
    return "\n".join(lines) + "\n"


def log_mlflow(results, files, uri):
    """One parent run (settings, table, plots) with a child run per combination."""
    import mlflow
    from mlflow.tracking import MlflowClient
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("amr-prune-benchmarks")
    exp_id = exp.experiment_id if exp else client.create_experiment(
        "amr-prune-benchmarks", artifact_location=(ROOT / "mlflow" / "artifacts").as_uri() if uri.startswith("sqlite") else None)
    parent = client.create_run(exp_id, run_name=f"compare-{results['tag']}").info.run_id
    for k, v in results["settings"].items():
        client.log_param(parent, k, json.dumps(v) if isinstance(v, (list, dict)) else v)
    for f in files:
        client.log_artifact(parent, str(f))
    for model, block in results["models"].items():
        for r in block["rows"]:
            child = client.create_run(exp_id, run_name=f"{model}-{r['method']}-{r['target']:.0%}",
                                      tags={"mlflow.parentRunId": parent}).info.run_id
            for k, v in (("model", model), ("method", r["method"]), ("target", r["target"])):
                client.log_param(child, k, v)
            if "error" in r:
                client.set_tag(child, "error", r["error"][:500])
            else:
                for k in ("accuracy", "high_snr_accuracy", "macs_reduction", "params_reduction", "prune_seconds"):
                    client.log_metric(child, k, float(r[k]))
                client.log_metric(child, "accuracy_delta", r["accuracy"] - block["parent"]["accuracy"])
            client.set_terminated(child)
    client.set_terminated(parent)
    return parent
