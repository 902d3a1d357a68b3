"""FCOS against every peer method, side by side, at matched MAC targets — one command.

    .venv/bin/python bench/bench_compare.py --preset small      # 2 CPU cores, well under an hour
    .venv/bin/python bench/bench_compare.py --preset full       # GPU / many cores: ResNet56, VGG16, CNN1D
    .venv/bin/python bench/bench_compare.py --preset resnet56-cpu   # the committed ResNet56 table (CPU, hours)

Every method gets the same parent network (trained here if ``bench/out/<model>_<frames>.pt`` is missing,
by the reference recipe), the same stratified data split and seed, and the same training budget after
pruning: ``--epochs`` fine-tuning epochs. FCOS's optional interim recovery (``--interim-epochs``, between
its channel stage and LaCD) is taken out of that budget (FCOS then fine-tunes ``epochs - interim`` epochs),
and every method's BatchNorm statistics are re-estimated on the same 2,048 training frames after the
structural change (FCOS does it inside; the peers here). Accuracy is measured on the test split, which no
method sees while pruning or choosing its best epoch (validation does that).

Targets are fractions of the parent's MACs to remove. Channel peers meet them within 2 points or refuse
(an ``error`` row); layer peers remove whole blocks and report what they reach (``target_met: false``);
FCOS removes at least the target (LaCD takes blocks on top of the channel stage's cut) and reports how
far beyond it went. Results are appended per combination to bench/out/compare_<tag>.jsonl (an interrupted
run resumes), then written as bench/results/compare_<tag>.{json,md} and a Pareto plot
bench/results/compare_<tag>_<model>.png, and logged to MLflow (one parent run, a child per combination).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from common import OUT, RESULTS, ROOT, bench_data, write_json

PRESETS = {
    # sized for this project's 2-core CPU machine: about 30 minutes idle
    "small": dict(models=["resnet20", "cnn1d"], frames_per_key=60, pretrain_epochs=15, epochs=6, interim_epochs=2,
                  targets=[0.5, 0.8, 0.9, 0.95]),
    # ResNet56 on CPU at the size of the committed FCOS benchmark (hours on 2 cores)
    "resnet56-cpu": dict(models=["resnet56"], frames_per_key=100, pretrain_epochs=20, epochs=10, interim_epochs=2,
                         targets=[0.8, 0.9, 0.95]),
    # a GPU or a many-core machine: RML2016.10a-sized synthetic set, the reference recipe's lengths
    "full": dict(models=["resnet56", "vgg16", "cnn1d"], frames_per_key=1000, pretrain_epochs=50, epochs=30,
                 interim_epochs=2, targets=[0.5, 0.8, 0.9, 0.95]),
}
RECAL_FRAMES = 2048
PARENT = "__parent__"     # the journal's record of an unpruned parent


def parent_model(name, frames_per_key, epochs, seed, train, val):
    """The shared parent: bench/out/<name>_<frames>.pt, trained here (reference recipe) when missing."""
    from amrlib.models import build_model, load_model, save_model
    from amrlib.train import fit
    path = OUT / f"{name}_{frames_per_key}.pt"
    if path.exists():
        return load_model(path)
    print(f"[compare] training the parent {name} ({epochs} epochs) -> {path}", flush=True)
    torch.manual_seed(seed)
    model = build_model(name, train.num_classes, train.frame_length)
    fit(model, train, val, epochs=epochs, seed=seed, checkpoint_dir=OUT / f"ckpt_{name}_{frames_per_key}",
        progress=False, callbacks=[lambda r: print(f"  epoch {r['epoch']}: val {r['val_accuracy']:.3f} "
                                                   f"{r['frames_per_s']:.0f} frames/s", flush=True)])
    save_model(model, path)
    return model


def latencies(model, threads, repeats):
    from amrlib.measure import measure_latency
    return {str(b): measure_latency(model, batch_size=b, threads=threads, repeats=repeats)["median_s"] for b in (1, 256)}


def run_one(method, target, parent, train, val, test, a):
    """Prune, recalibrate, fine-tune with the shared budget, evaluate on test; a row (or an error row)."""
    from amrlib.models import save_model
    from amrlib.pruning import recalibrate_bn
    from amrlib.pruning.api import PruningError
    from amrlib.pruning.methods import prune
    from amrlib.train import TrainConfig, evaluate, fit
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    try:
        if method == "fcos":
            interim = min(a.interim_epochs, a.epochs - 1)
            res = prune("fcos", parent, train, val, target, seed=a.seed, interim_epochs=interim,
                        recalibrate_frames=RECAL_FRAMES,
                        finetune=TrainConfig(epochs=a.epochs - interim, seed=a.seed))
            model = res.model
        else:
            res = prune(method, parent, train, val, target, seed=a.seed)
            model = recalibrate_bn(res.model, train, RECAL_FRAMES, seed=a.seed)
            t1 = time.perf_counter()
            fit(model, train, val, TrainConfig(epochs=a.epochs, seed=a.seed), progress=False)
            res.report["finetune_seconds"] = time.perf_counter() - t1
    except PruningError as exc:
        return {"error": str(exc)}
    rep = res.report
    ev = evaluate(model, test)
    save_model(model, model_path(a.tag, parent.arch["name"], method, target))
    return {"target_met": rep["target_met"], "note": rep.get("note"), "accuracy": ev["accuracy"],
            "high_snr_accuracy": ev["high_snr_accuracy"], "macs_reduction": rep["macs_reduction"],
            "params_reduction": rep["params_reduction"], "macs": rep["macs_after"], "params": rep["params_after"],
            "latency_s": latencies(model, a.threads, a.latency_repeats), "prune_seconds": rep["prune_seconds"],
            "finetune_seconds": rep.get("finetune_seconds"), "interim_seconds": rep.get("interim_seconds"),
            "removed_blocks": rep.get("removed_blocks"), "wall_seconds": time.perf_counter() - t0,
            "per_snr": ev["per_snr"], "plan": res.plan}


def model_path(tag, model, method, target):
    return OUT / f"compare_{tag}" / f"{model}_{method}_{round(target * 100)}.pt"


def remeasure_latency(results, a):
    """Measure every model's CPU latency again (e.g. on an idle machine, after a run that shared its CPU)."""
    from amrlib.models import load_model
    for name, block in results["models"].items():
        print(f"[compare] re-measuring latency: {name}", flush=True)
        for r in block["rows"]:
            path = model_path(a.tag, name, r["method"], r["target"])
            if "error" not in r and path.exists():
                r["latency_s"] = latencies(load_model(path), a.threads, a.latency_repeats)


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
            s = [p["latency_s"][k] / r["latency_s"][k] for k in ("1", "256")]
            lines.append(f"| {r['method']} | {r['target']:.0%} | {acc} | {(r['accuracy'] - p['accuracy']) * 100:+.2f} pt | "
                         f"{r['high_snr_accuracy']:.2%} | {r['macs_reduction']:.1%}{flag} | {r['params_reduction']:.1%} | "
                         f"x{s[0]:.2f} / x{s[1]:.2f} | {r['prune_seconds']:.1f} s |")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--models", nargs="+")
    ap.add_argument("--frames-per-key", type=int)
    ap.add_argument("--pretrain-epochs", type=int)
    ap.add_argument("--epochs", type=int, help="training budget after pruning (every method)")
    ap.add_argument("--interim-epochs", type=int, help="FCOS's recovery epochs before LaCD (out of --epochs)")
    ap.add_argument("--targets", type=float, nargs="+")
    ap.add_argument("--methods", nargs="+", help="default: fcos and every peer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and latency")
    ap.add_argument("--latency-repeats", type=int, default=20)
    ap.add_argument("--remeasure-latency", action="store_true",
                    help="measure every saved model's latency again (run on an idle machine)")
    ap.add_argument("--tag", help="name of the result files (default: the preset)")
    ap.add_argument("--mlflow-uri", default=f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}", help="'' to skip MLflow")
    a = ap.parse_args()
    for k, v in PRESETS[a.preset].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    a.tag = a.tag or a.preset
    torch.set_num_threads(a.threads)
    from amrlib.measure import count_macs, count_params
    from amrlib.plots import pareto
    from amrlib.pruning.methods import METHODS
    from amrlib.train import evaluate
    methods = a.methods or list(METHODS)
    settings = {k: getattr(a, k) for k in ("preset", "models", "frames_per_key", "pretrain_epochs", "epochs",
                                           "interim_epochs", "targets", "seed", "threads")}
    settings.update(methods=methods, machine=f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                                              f"{__import__('os').cpu_count()} cores, torch {torch.__version__}")
    journal = OUT / f"compare_{a.tag}.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    done = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            done[(r["model"], r["method"], r["target"])] = r
    results = {"tag": a.tag, "settings": settings, "models": {}}
    files = []
    for name in a.models:
        train, val, test = bench_data(a.frames_per_key, a.seed)
        parent = parent_model(name, a.frames_per_key, a.pretrain_epochs, a.seed, train, val)
        base = evaluate(parent, test)
        pkey = (name, PARENT, 0.0)              # the parent's latency, measured once with the rows (or again)
        if pkey not in done or a.remeasure_latency:
            done[pkey] = {"model": name, "method": PARENT, "target": 0.0,
                          "latency_s": latencies(parent, a.threads, a.latency_repeats)}
            with journal.open("a") as f:
                f.write(json.dumps(done[pkey]) + "\n")
        block = {"parent": {"accuracy": base["accuracy"], "high_snr_accuracy": base["high_snr_accuracy"],
                            "macs": count_macs(parent), "params": count_params(parent),
                            "latency_s": done[pkey]["latency_s"]}, "rows": []}
        results["models"][name] = block
        for method in methods:
            for target in a.targets:
                key = (name, method, target)
                if key not in done:
                    row = {"model": name, "method": method, "target": target,
                           **run_one(method, target, parent, train, val, test, a)}
                    with journal.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    done[key] = row
                row = done[key]
                block["rows"].append(row)
                msg = row.get("error") or (f"acc {row['accuracy']:.4f} ({(row['accuracy'] - base['accuracy']) * 100:+.2f} pt), "
                                           f"MACs -{row['macs_reduction']:.1%}, params -{row['params_reduction']:.1%}, "
                                           f"prune {row['prune_seconds']:.1f} s, wall {row['wall_seconds']:.0f} s")
                print(f"[compare] {name} {method} @ {target:.0%}: {msg}", flush=True)
        points = [{"method": r["method"], "macs": r["macs"], "accuracy": r["accuracy"]}
                  for r in block["rows"] if "error" not in r]
        files.append(pareto(points, RESULTS / f"compare_{a.tag}_{name}.png",
                            baseline={"macs": block["parent"]["macs"], "accuracy": base["accuracy"]},
                            title=f"{name}: test accuracy vs MACs after pruning + {a.epochs} epochs"))
    if a.remeasure_latency:
        remeasure_latency(results, a)
        journal.write_text("".join(json.dumps(r) + "\n" for r in done.values()))   # keep the new figures
        settings["latency"] = f"re-measured at {time.strftime('%Y-%m-%d %H:%M')}"
    md = matrix(results) + "\nEvery row:\n" + table(results)
    files.append(write_json(f"compare_{a.tag}.json", results))
    (RESULTS / f"compare_{a.tag}.md").write_text(f"Settings: {json.dumps(settings)}\n{md}")
    files.append(RESULTS / f"compare_{a.tag}.md")
    print(md)
    if a.mlflow_uri:
        run = log_mlflow(results, files, a.mlflow_uri)
        print(f"[compare] logged to MLflow {a.mlflow_uri}: experiment amr-prune-benchmarks, run {run}")


if __name__ == "__main__":
    main()
