"""Several seeds of the comparison benchmark in one table: mean and spread of each method's accuracy change.

    .venv/bin/python bench/bench_compare.py --preset small                       # seed 0 (tag: small)
    .venv/bin/python bench/bench_compare.py --preset small --seed 1 --tag small-s1
    .venv/bin/python bench/bench_compare.py --preset small --seed 2 --tag small-s2
    .venv/bin/python bench/compare_seeds.py --tags small small-s1 small-s2 --out small-seeds

A seed changes everything a run draws: the synthetic frames and their split, the parent's initialisation and
batches, the pruning's random choices and the fine-tuning. Each run's accuracy change is measured against its
own parent; the table gives the mean over seeds and the sample standard deviation, so a difference smaller
than the spread is not a ranking. Writes bench/results/compare_<out>.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import statistics

from common import RESULTS, write_json


def collect(results: list[dict]) -> dict:
    """{model: {"parents": [acc...], "cells": {(method, target): {"delta": [...], "macs_cut": [...], ...}}}}"""
    out: dict = {}
    for res in results:
        for model, block in res["models"].items():
            m = out.setdefault(model, {"parents": [], "cells": {}, "methods": [], "targets": set()})
            m["parents"].append(block["parent"]["accuracy"])
            for r in block["rows"]:
                key = (r["method"], r["target"])
                if r["method"] not in m["methods"]:
                    m["methods"].append(r["method"])
                m["targets"].add(r["target"])
                cell = m["cells"].setdefault(key, {"delta": [], "macs_cut": [], "met": [], "errors": 0})
                if "error" in r:
                    cell["errors"] += 1
                    continue
                cell["delta"].append(r["accuracy"] - block["parent"]["accuracy"])
                cell["macs_cut"].append(r["macs_reduction"])
                cell["met"].append(bool(r["target_met"]))
    return out


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def matrix(data: dict, n_runs: int) -> str:
    lines = []
    for model, m in data.items():
        targets = sorted(m["targets"])
        p_mean, p_sd = summary(m["parents"])
        lines += [f"\n**{model}**, unpruned {p_mean:.2%} ± {p_sd * 100:.1f} pt over {len(m['parents'])} seeds: "
                  "accuracy change after pruning + fine-tuning, mean ± sd (MAC cut reached, where it is not the "
                  "target)\n", "| method | " + " | ".join(f"{t:.0%} MACs cut" for t in targets) + " |",
                  "|---|" + "---|" * len(targets)]
        best = {}
        for (method, t), c in m["cells"].items():     # best mean among cells that met the target in every seed
            if len(c["delta"]) == n_runs and all(c["met"]):
                best[t] = max(best.get(t, -1.0), summary(c["delta"])[0])
        for method in m["methods"]:
            cells = []
            for t in targets:
                c = m["cells"].get((method, t))
                if c is None:
                    cells.append("")
                    continue
                if not c["delta"]:
                    cells.append("cannot")
                    continue
                mean, sd = summary(c["delta"])
                cell = f"{mean * 100:+.1f} ± {sd * 100:.1f} pt"
                cut = statistics.mean(c["macs_cut"])
                if abs(cut - t) > 0.02:
                    cell += f" ({cut:.0%}{'' if all(c['met']) else ', short'})"
                if len(c["delta"]) < n_runs:
                    cell += f" [{len(c['delta'])} of {n_runs} runs]"
                if best.get(t) == mean and all(c["met"]):
                    cell = f"**{cell}**"
                cells.append(cell)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tags", nargs="+", required=True, help="result tags of bench_compare.py runs (one per seed)")
    ap.add_argument("--out", required=True, help="name of the combined table: bench/results/compare_<out>.md")
    a = ap.parse_args(argv)
    results = []
    for tag in a.tags:
        path = RESULTS / f"compare_{tag}.json"
        if not path.exists():
            ap.error(f"{path}: no such result (run bench_compare.py --tag {tag} first)")
        results.append(json.loads(path.read_text()))
    seeds = [r["settings"]["seed"] for r in results]
    if len(set(seeds)) != len(seeds):
        ap.error(f"the runs {a.tags} share seeds {seeds}: a spread needs different seeds")
    data = collect(results)
    md = (f"Seeds {seeds} (runs {', '.join(a.tags)}), settings of the first: {json.dumps(results[0]['settings'])}\n"
          + matrix(data, len(results)))
    (RESULTS / f"compare_{a.out}.md").write_text(md)
    write_json(f"compare_{a.out}.json", {
        "tags": a.tags, "seeds": seeds,
        "models": {model: {"parents": m["parents"], "cells": [
            {"method": k[0], "target": k[1], **{f: v for f, v in c.items()}} for k, c in m["cells"].items()]}
            for model, m in data.items()}})
    print(md)


if __name__ == "__main__":
    main()
