"""The comparison's outputs: paired tables with 95% intervals, calibration, latency, plots, the MLflow log.

Every number in the tables is a mean over seeds of a *paired* difference (the same seed's split and parent),
with its Student-t 95% interval (amrlib.stats): ``+0.4 [-0.8, +1.6] pt``. An interval that excludes zero is
marked with a star; only those are rankings.
"""
from __future__ import annotations

import json
import re
import statistics

from amrlib.stats import paired_difference, t_interval
from common import RESULTS, ROOT, write_json
from compare_methods import PUBLISHED, RETRAIN
from compare_removals import removal_cost, removal_table


def _cells(done, parent_key, model, seeds, combos):
    """{(method, target): {seed: row}} of the rows without errors, and the error counts."""
    cells, errors = {}, {}
    for method, target in combos:
        for s in seeds:
            r = done.get((s, model, method, target))
            if r is None:
                continue
            if "error" in r:
                errors[(method, target)] = r["error"]
                continue
            cells.setdefault((method, target), {})[s] = r
    return cells, errors


def _diff(rows_a: dict, rows_b: dict) -> tuple:
    seeds = sorted(set(rows_a) & set(rows_b))
    if not seeds:
        return None, 0
    return paired_difference([rows_a[s]["accuracy"] for s in seeds], [rows_b[s]["accuracy"] for s in seeds]), len(seeds)


def _fmt(d, n, n_all) -> str:
    if d is None:
        return "—"
    cell = d.format() + (" *" if d.excludes_zero else "")
    return cell + (f" [{n} of {n_all} seeds]" if n < n_all else "")


def summarise(done, parent_key, model, seeds, combos) -> dict:
    parents = {s: done[(s, model, parent_key, 0.0)] for s in seeds if (s, model, parent_key, 0.0) in done}
    cells, errors = _cells(done, parent_key, model, seeds, combos)
    out = []
    for (method, target), rows in cells.items():
        vs_parent, n = _diff(rows, parents)
        fcos_rows = cells.get(("fcos", target), {})
        vs_fcos, n_f = _diff(rows, fcos_rows) if method != "fcos" else (None, 0)
        out.append({"method": method, "target": target, "seeds": sorted(rows), "n": n,
                    "accuracy": statistics.mean(r["accuracy"] for r in rows.values()),
                    "accuracy_ci": t_interval([r["accuracy"] for r in rows.values()]).as_dict(),
                    "macs": statistics.mean(r["macs"] for r in rows.values()),
                    "macs_reduction": statistics.mean(r["macs_reduction"] for r in rows.values()),
                    "target_met": all(r["target_met"] for r in rows.values()),
                    "vs_parent": vs_parent.as_dict() if vs_parent else None,
                    "vs_fcos": vs_fcos.as_dict() if vs_fcos else None, "n_vs_fcos": n_f,
                    "epochs": [(r.get("stop") or {}).get("epochs_run") for r in rows.values()],
                    "stops": [(r.get("stop") or {}).get("stop_reason") for r in rows.values()]})
    return {"parents": parents, "cells": out, "errors": {f"{m}@{t}": e for (m, t), e in errors.items()}}


def _cut(c, target) -> str:
    if abs(c["macs_reduction"] - target) <= 0.02:
        return ""
    return f" ({c['macs_reduction']:.0%}{'' if c['target_met'] else ', short'})"


def tables(summary: dict, model: str, seeds, combos) -> str:
    parents = summary["parents"]
    accs = [p["accuracy"] for p in parents.values()]
    stops = ", ".join(f"s{s}: {p['accuracy']:.2%} after {p['stop'].get('epochs_run')} epochs "
                      f"({p['stop'].get('stop_reason')})" for s, p in sorted(parents.items()))
    lines = [f"\n### {model}\n", f"Parents ({len(accs)} seeds, mean {statistics.mean(accs):.2%}): {stops}.\n"]
    by = {(c["method"], c["target"]): c for c in summary["cells"]}
    ctrl = by.get((RETRAIN, 0.0))
    if ctrl:
        lines.append(f"Convergence check — the unpruned parent fine-tuned again under the same rule: "
                     f"{_fmt(_as_pd(ctrl['vs_parent']), ctrl['n'], len(seeds))} (an interval above zero means the "
                     "parents were not converged and part of any pruned network's result is extra training).\n")
    targets = sorted({t for _, t in combos if any(m == "fcos" for m, tt in combos if tt == t)}) or \
        sorted({t for _, t in combos})
    methods = list(dict.fromkeys(m for m, t in combos if t in targets and m != RETRAIN))
    n_all = len(seeds)
    for title, key in (("accuracy change vs the parent (paired, 95% CI)", "vs_parent"),
                       ("accuracy vs FCOS at the same target (paired, 95% CI; > 0: the row beats FCOS)", "vs_fcos")):
        lines += [f"\n**{model}: {title}**\n", "| method | " + " | ".join(f"{t:.0%} MACs cut" for t in targets) + " |",
                  "|---|" + "---|" * len(targets)]
        for m in methods:
            if key == "vs_fcos" and m == "fcos":
                continue
            cells = []
            for t in targets:
                c = by.get((m, t))
                if c is None:
                    cells.append("cannot" if f"{m}@{t}" in summary["errors"] else "")
                    continue
                d = c[key]
                n = c["n"] if key == "vs_parent" else c["n_vs_fcos"]
                cells.append(_fmt(_as_pd(d), n, n_all) + _cut(c, t))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    calib = [(m, t) for (m, t) in PUBLISHED if (m, t) in by]
    if calib:
        lines += [f"\n**{model}: calibration against the published ResNet56 figures**\n",
                  "| method | target | measured (paired, 95% CI) | published |", "|---|---|---|---|"]
        for m, t in calib:
            c = by[(m, t)]
            lines.append(f"| {m} | {t:.1%} | {_fmt(_as_pd(c['vs_parent']), c['n'], n_all)}{_cut(c, t)} | "
                         f"{PUBLISHED[(m, t)]:+.2f} pt |")
    if summary["errors"]:
        lines.append("\nCould not run: " + "; ".join(f"{k}: {v[:90]}" for k, v in summary["errors"].items()))
    return "\n".join(lines) + "\n"


def _as_pd(d):
    if d is None:
        return None
    from amrlib.stats import PairedDifference
    return PairedDifference(d["mean"], d["low"], d["high"], d["sd"], d["n"], d["level"])


def latency_table(done, parent_key, model, seed, combos) -> str:
    p = done.get((seed, model, parent_key, 0.0), {}).get("latency_s")
    if not p:
        return ""
    lines = [f"\n**{model}: CPU speed-up over the parent (seed {seed}'s models; batch 1 / batch 256)**\n",
             "| method | target | MACs cut | speed-up b1 / b256 |", "|---|---|---|---|"]
    for m, t in combos:
        r = done.get((seed, model, m, t))
        if r and "latency_s" in r:
            lat = r["latency_s"]
            lines.append(f"| {m} | {t:.1%} | {r['macs_reduction']:.1%} | x{p['1'] / lat['1']:.2f} / "
                         f"x{p['256'] / lat['256']:.2f} |")
    return "\n".join(lines) + "\n"


def plots(summary, done, parent_key, model, seeds, tag, combos) -> list:
    from amrlib.plots import accuracy_vs_snr, pareto
    files = []
    parents = summary["parents"]
    pts = [{"method": c["method"], "macs": c["macs"], "accuracy": c["accuracy"],
            "accuracy_err": (c["accuracy_ci"]["high"] - c["accuracy"]) if c["n"] > 1 else None}
           for c in summary["cells"]]
    if pts and parents:
        base = {"macs": statistics.mean(p["macs"] for p in parents.values()),
                "accuracy": statistics.mean(p["accuracy"] for p in parents.values())}
        files.append(pareto(pts, RESULTS / f"compare_{tag}_{model}.png", baseline=base,
                            title=f"{model}: test accuracy vs MACs, mean over {len(seeds)} seeds (95% CI)"))
    for t in sorted({t for _, t in combos}):
        curves = {"parent": _mean_snr([p["per_snr"] for p in parents.values()])}
        for m, tt in combos:
            rows = [done[(s, model, m, t)] for s in seeds if tt == t and "per_snr" in done.get((s, model, m, t), {})]
            if rows:
                curves[m] = _mean_snr([r["per_snr"] for r in rows])
        if len(curves) > 1:
            files.append(accuracy_vs_snr(curves, RESULTS / f"compare_{tag}_{model}_snr{round(t * 1000)}.png",
                                         title=f"{model} at a {t:.1%} MAC cut: accuracy vs SNR (mean over seeds)"))
    return files


def _mean_snr(curves: list[dict]) -> dict:
    keys = sorted({int(k) for c in curves for k in c})
    return {k: statistics.mean(c[str(k)] if str(k) in c else c[k] for c in curves if str(k) in c or k in c)
            for k in keys}


def write_report(a, settings, done, parent_key, combos):
    results = {"tag": a.tag, "settings": settings, "models": {}}
    md = [f"Settings: {json.dumps(settings)}\n"]
    files = []
    for model in a.models:
        summary = summarise(done, parent_key, model, a.seeds, combos)
        rows = [r for k, r in done.items() if k[1] == model]
        cost = removal_cost(done, parent_key, model)
        results["models"][model] = {**summary, "removal_cost": cost, "rows": rows}
        md.append(tables(summary, model, a.seeds, combos))
        md.append(removal_table(cost, model))
        md.append(latency_table(done, parent_key, model, a.seeds[0], combos))
        files += plots(summary, done, parent_key, model, a.seeds, a.tag, combos)
    files.append(write_json(f"compare_{a.tag}.json", results))
    text = "".join(md)
    (RESULTS / f"compare_{a.tag}.md").write_text(text)
    files.append(RESULTS / f"compare_{a.tag}.md")
    print(text)
    print(f"[compare] {settings['wall_seconds_this_invocation']} s in all "
          f"({settings['wall_seconds_training']} s training parents and rows)", flush=True)
    if a.mlflow_uri:
        run = log_mlflow(results, files, a.mlflow_uri)
        print(f"[compare] logged to MLflow {a.mlflow_uri}: experiment amr-prune-benchmarks, run {run}")
    return results


def metric_name(*parts) -> str:
    """An MLflow metric key from a row's parts: MLflow refuses characters such as the '+' of
    'parent+finetune', which become '_' (the method's own name stays in the child run's params)."""
    return re.sub(r"[^\w\-. :/]", "_", ".".join(str(p) for p in parts))


def log_mlflow(results, files, uri):
    """One parent run (settings, tables, plots) with a child run per (seed, model, method, target) row."""
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("amr-prune-benchmarks")
    exp_id = exp.experiment_id if exp else client.create_experiment(
        "amr-prune-benchmarks",
        artifact_location=(ROOT / "mlflow" / "artifacts").as_uri() if uri.startswith("sqlite") else None)
    parent = client.create_run(exp_id, run_name=f"compare-{results['tag']}").info.run_id
    for k, v in results["settings"].items():
        client.log_param(parent, k, json.dumps(v) if isinstance(v, (list, dict)) else v)
    for f in files:
        client.log_artifact(parent, str(f))
    for model, block in results["models"].items():
        for c in block["cells"]:
            for k in ("vs_parent", "vs_fcos"):
                if c[k]:
                    client.log_metric(parent, metric_name(model, c["method"], round(c["target"] * 1000), k),
                                      c[k]["mean"])
        for r in block["rows"]:
            child = client.create_run(exp_id, run_name=f"s{r['seed']}-{model}-{r['method']}-{r['target']:.1%}",
                                      tags={"mlflow.parentRunId": parent}).info.run_id
            for k in ("seed", "method", "target"):
                client.log_param(child, k, r[k])
            client.log_param(child, "model", model)
            if "error" in r:
                client.set_tag(child, "error", r["error"][:500])
            else:
                for k in ("accuracy", "high_snr_accuracy", "macs_reduction", "params_reduction", "prune_seconds"):
                    if r.get(k) is not None:
                        client.log_metric(child, k, float(r[k]))
                if r.get("stop"):
                    client.set_tag(child, "stop_reason", str(r["stop"].get("stop_reason")))
            client.set_terminated(child)
    client.set_terminated(parent)
    return parent
