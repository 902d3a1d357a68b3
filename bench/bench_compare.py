"""FCOS against every peer method, side by side, at matched MAC targets — one command.

    .venv/bin/python bench/bench_compare.py --preset small      # 2 CPU cores, well under an hour
    .venv/bin/python bench/bench_compare.py --preset full       # GPU / many cores: ResNet56, VGG16, CNN1D
    .venv/bin/python bench/bench_compare.py --preset resnet56-cpu   # the committed ResNet56 table (CPU, hours)
    .venv/bin/python bench/bench_compare.py --preset vgg16-cpu      # VGG16 on little data (CPU, about an hour)

Every method gets the same parent network (trained here if ``bench/out/<model>_<frames>.pt`` is missing,
by the reference recipe), the same stratified data split and seed, and the same training budget after
pruning: ``--epochs`` fine-tuning epochs. FCOS's optional interim recovery (``--interim-epochs``, between
its channel stage and LaCD) is taken out of that budget (FCOS then fine-tunes ``epochs - interim`` epochs),
and every method's BatchNorm statistics are re-estimated on the same 2,048 training frames after the
structural change (FCOS does it inside; the peers here). Accuracy is measured on the test split, which no
method sees while pruning or choosing its best epoch (validation does that).

Targets are fractions of the parent's MACs to remove. Channel peers meet them within 2 points or refuse
(an ``error`` row); layer peers remove whole blocks and report what they reach (``target_met: false``).
``fcos`` meets the target with the final network (``target_scope="final"``: the channel stage is re-fitted
around the blocks LaCD diagnosed); ``fcos:channel`` gives the target to the channel stage alone and lets
LaCD remove blocks on top (it overshoots; the table says by how much).

``--jobs N`` runs the combinations (and missing parents) in N worker processes of ``--threads`` torch
threads each, longest first; the CPU latencies are then measured afterwards, one model at a time, so that
no other job shares the CPU while they are timed. Results are appended per combination to
bench/out/compare_<tag>.jsonl (an interrupted run resumes), then written as
bench/results/compare_<tag>.{json,md} and a Pareto plot bench/results/compare_<tag>_<model>.png, and logged
to MLflow (one parent run, a child per combination). ``AMR_BENCH_DIR`` moves bench/out and bench/results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import torch

from common import OUT, RESULTS, ROOT, bench_data, write_json
from compare_report import log_mlflow, matrix, table

PRESETS = {
    # sized for this project's 2-core CPU machine: two workers, 18 min idle (README)
    "small": dict(models=["resnet20", "cnn1d"], frames_per_key=60, pretrain_epochs=15, epochs=6, interim_epochs=2,
                  targets=[0.5, 0.8, 0.9, 0.95], jobs=2),
    # ResNet56 on CPU at the size of the committed FCOS benchmark (hours on 2 cores)
    "resnet56-cpu": dict(models=["resnet56"], frames_per_key=100, pretrain_epochs=20, epochs=10, interim_epochs=2,
                         targets=[0.8, 0.9, 0.95], jobs=2),
    # VGG16 (918 M MACs: ~15 training frames/s per core here) at a size a 2-core CPU finishes in about an hour:
    # few frames and epochs, so read it for how the methods rank, not for absolute accuracy
    "vgg16-cpu": dict(models=["vgg16"], frames_per_key=20, pretrain_epochs=12, epochs=4, interim_epochs=1,
                      targets=[0.8, 0.9], jobs=2, latency_repeats=5),
    # a GPU or a many-core machine: RML2016.10a-sized synthetic set, the reference recipe's lengths
    "full": dict(models=["resnet56", "vgg16", "cnn1d"], frames_per_key=1000, pretrain_epochs=50, epochs=30,
                 interim_epochs=2, targets=[0.5, 0.8, 0.9, 0.95], jobs=1),
}
RECAL_FRAMES = 2048
PARENT = "__parent__"     # the journal's record of an unpruned parent
FCOS_SCOPES = {"fcos": "final", "fcos:final": "final", "fcos:channel": "channel"}


def parent_path(name, frames_per_key, seed=0):
    """Seed 0 keeps the historical name (bench_train.py and bench_fcos.py read it)."""
    return OUT / (f"{name}_{frames_per_key}.pt" if seed == 0 else f"{name}_{frames_per_key}_s{seed}.pt")


def parent_model(name, frames_per_key, epochs, seed, train, val):
    """The shared parent: bench/out/<name>_<frames>.pt, trained here (reference recipe) when missing."""
    from amrlib.models import build_model, load_model, save_model
    from amrlib.train import fit
    path = parent_path(name, frames_per_key, seed)
    if path.exists():
        return load_model(path)
    print(f"[compare] training the parent {name} ({epochs} epochs) -> {path}", flush=True)
    torch.manual_seed(seed)
    model = build_model(name, train.num_classes, train.frame_length)
    fit(model, train, val, epochs=epochs, seed=seed, checkpoint_dir=OUT / f"ckpt_{path.stem}",
        progress=False, callbacks=[lambda r: print(f"  {name} epoch {r['epoch']}: val {r['val_accuracy']:.3f} "
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
        if method in FCOS_SCOPES:
            interim = min(a.interim_epochs, a.epochs - 1)
            res = prune("fcos", parent, train, val, target, seed=a.seed, interim_epochs=interim,
                        recalibrate_frames=RECAL_FRAMES, target_scope=FCOS_SCOPES[method],
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
    row = {"target_met": rep["target_met"], "note": rep.get("note"), "accuracy": ev["accuracy"],
           "high_snr_accuracy": ev["high_snr_accuracy"], "macs_reduction": rep["macs_reduction"],
           "params_reduction": rep["params_reduction"], "macs": rep["macs_after"], "params": rep["params_after"],
           "prune_seconds": rep["prune_seconds"], "finetune_seconds": rep.get("finetune_seconds"),
           "interim_seconds": rep.get("interim_seconds"), "removed_blocks": rep.get("removed_blocks"),
           "diagnosis_pass": rep.get("diagnosis_pass"), "wall_seconds": time.perf_counter() - t0,
           "per_snr": ev["per_snr"], "plan": res.plan}
    if a.jobs == 1:          # alone on the machine: time it now (else after every job is done)
        row["latency_s"] = latencies(model, a.threads, a.latency_repeats)
    return row


def model_path(tag, model, method, target):
    return OUT / f"compare_{tag}" / f"{model}_{method.replace(':', '-')}_{round(target * 100)}.pt"


def _load_split(a):
    return bench_data(a.frames_per_key, a.seed)


def _train_parent_job(name, a):
    """Train one missing parent; fewer parents than workers share the idle workers' threads."""
    torch.set_num_threads(a.parent_threads)
    train, val, _ = _load_split(a)
    parent_model(name, a.frames_per_key, a.pretrain_epochs, a.seed, train, val)
    torch.set_num_threads(a.threads)
    return name


def _combination_job(name, method, target, a):
    """One combination in a worker process: the parent and the split come from disk."""
    from amrlib.models import load_model
    torch.set_num_threads(a.threads)
    train, val, test = _load_split(a)
    parent = load_model(parent_path(name, a.frames_per_key, a.seed))
    return {"model": name, "method": method, "target": target, **run_one(method, target, parent, train, val, test, a)}


def _run_all(jobs, fn, a):
    """Yield fn(*job) for each job: in this process (--jobs 1) or in a pool of spawned workers, as they end."""
    if a.jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(*job, a)
        return
    with ProcessPoolExecutor(max_workers=a.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *job, a) for job in jobs]
        for fut in as_completed(futures):
            yield fut.result()


def _cost_rank(job, macs):
    """Longest first: a combination's fine-tuning costs about the parent's MACs x what the target keeps."""
    name, method, target = job
    kind = 2.0 if method in ("layer_cka", "lcp") else 1.0     # layer peers often stop short of the target
    return -macs[name] * max(1 - target, 0.05) * kind


def measure_pending_latencies(done, a):
    """Time every model without a latency (one at a time, nothing else running in this benchmark)."""
    from amrlib.models import load_model
    pending = [r for r in done.values() if r["method"] != PARENT and "error" not in r and "latency_s" not in r]
    if pending:
        print(f"[compare] measuring CPU latency of {len(pending)} pruned models, one at a time", flush=True)
    for r in pending:
        path = model_path(a.tag, r["model"], r["method"], r["target"])
        if not path.exists():       # a journal row whose model file is gone: its speed-up stays unknown
            print(f"[compare] warning: {path} is missing; {r['model']} {r['method']} @ {r['target']:.0%} gets no "
                  "latency", flush=True)
            continue
        r["latency_s"] = latencies(load_model(path), a.threads, a.latency_repeats)
    return bool(pending)


def remeasure_latency(results, a):
    """Measure every model's CPU latency again (e.g. on an idle machine, after a run that shared its CPU)."""
    from amrlib.models import load_model
    for name, block in results["models"].items():
        print(f"[compare] re-measuring latency: {name}", flush=True)
        for r in block["rows"]:
            path = model_path(a.tag, name, r["method"], r["target"])
            if "error" not in r and path.exists():
                r["latency_s"] = latencies(load_model(path), a.threads, a.latency_repeats)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--models", nargs="+")
    ap.add_argument("--frames-per-key", type=int)
    ap.add_argument("--pretrain-epochs", type=int)
    ap.add_argument("--epochs", type=int, help="training budget after pruning (every method)")
    ap.add_argument("--interim-epochs", type=int, help="FCOS's recovery epochs before LaCD (out of --epochs)")
    ap.add_argument("--targets", type=float, nargs="+")
    ap.add_argument("--methods", nargs="+",
                    help="default: fcos, fcos:channel and every peer (fcos = final-network target)")
    ap.add_argument("--jobs", type=int, help="worker processes (default: the preset's; 1 = in this process)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job, for training and latency")
    ap.add_argument("--latency-repeats", type=int, help="timed forward passes per batch size (default 20)")
    ap.add_argument("--remeasure-latency", action="store_true",
                    help="measure every saved model's latency again (run on an idle machine)")
    ap.add_argument("--tag", help="name of the result files (default: the preset)")
    ap.add_argument("--mlflow-uri", default=f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}", help="'' to skip MLflow")
    a = ap.parse_args(argv)
    for k, v in PRESETS[a.preset].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    a.tag = a.tag or a.preset
    a.latency_repeats = a.latency_repeats or 20
    from amrlib.pruning.methods import METHODS
    a.methods = a.methods or ["fcos", "fcos:channel", *(m for m in METHODS if m != "fcos")]
    unknown = [m for m in a.methods if m not in METHODS and m not in FCOS_SCOPES]
    if unknown:
        ap.error(f"unknown method(s) {unknown}: choose from {sorted(set(METHODS) | set(FCOS_SCOPES))}")
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    return a


def main(argv=None):
    a = parse_args(argv)
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    from amrlib.measure import count_macs, count_params
    from amrlib.models import build_model
    from amrlib.plots import pareto
    from amrlib.train import evaluate
    settings = {k: getattr(a, k) for k in ("preset", "models", "frames_per_key", "pretrain_epochs", "epochs",
                                           "interim_epochs", "targets", "seed", "threads", "jobs", "methods")}
    settings["machine"] = (f"{platform.machine()}, {a.jobs} job(s) x {a.threads} torch thread(s), "
                           f"{os.cpu_count()} cores, torch {torch.__version__}")
    journal = OUT / f"compare_{a.tag}.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    done = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            done[(r["model"], r["method"], r["target"])] = r

    def record(row):
        done[(row["model"], row["method"], row["target"])] = row
        with journal.open("a") as f:
            f.write(json.dumps(row) + "\n")

    train, val, test = _load_split(a)              # writes the dataset file once, before any worker reads it
    missing = [(n,) for n in a.models if not parent_path(n, a.frames_per_key, a.seed).exists()]
    a.parent_threads = a.threads * max(1, a.jobs // max(1, len(missing)))
    for name in _run_all(missing, _train_parent_job, a):
        print(f"[compare] parent {name} trained", flush=True)
    parents, base = {}, {}
    for name in a.models:
        parents[name] = parent_model(name, a.frames_per_key, a.pretrain_epochs, a.seed, train, val)
        base[name] = evaluate(parents[name], test)
    macs = {n: count_macs(build_model(n, train.num_classes, train.frame_length)) for n in a.models}
    todo = sorted(((n, m, t) for n in a.models for m in a.methods for t in a.targets if (n, m, t) not in done),
                  key=lambda job: _cost_rank(job, macs))
    if todo:
        print(f"[compare] {len(todo)} combinations on {a.jobs} worker(s)", flush=True)
    for row in _run_all(todo, _combination_job, a):
        record(row)
        msg = row.get("error") or (
            f"acc {row['accuracy']:.4f} ({(row['accuracy'] - base[row['model']]['accuracy']) * 100:+.2f} pt), "
            f"MACs -{row['macs_reduction']:.1%}, params -{row['params_reduction']:.1%}, "
            f"prune {row['prune_seconds']:.1f} s, wall {row['wall_seconds']:.0f} s")
        print(f"[compare] {row['model']} {row['method']} @ {row['target']:.0%}: {msg}", flush=True)
    combos_seconds = time.perf_counter() - t_start
    for name in a.models:                          # the parents' latency, measured once with the rows (or again)
        pkey = (name, PARENT, 0.0)
        if pkey not in done or a.remeasure_latency:
            record({"model": name, "method": PARENT, "target": 0.0,
                    "latency_s": latencies(parents[name], a.threads, a.latency_repeats)})
    if measure_pending_latencies(done, a):
        journal.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    results = {"tag": a.tag, "settings": settings, "models": {}}
    files = []
    for name in a.models:
        p = parents[name]
        block = {"parent": {"accuracy": base[name]["accuracy"], "high_snr_accuracy": base[name]["high_snr_accuracy"],
                            "macs": count_macs(p), "params": count_params(p),
                            "latency_s": done[(name, PARENT, 0.0)]["latency_s"]},
                 "rows": [done[(name, m, t)] for m in a.methods for t in a.targets]}
        results["models"][name] = block
        points = [{"method": r["method"], "macs": r["macs"], "accuracy": r["accuracy"]}
                  for r in block["rows"] if "error" not in r]
        files.append(pareto(points, RESULTS / f"compare_{a.tag}_{name}.png",
                            baseline={"macs": block["parent"]["macs"], "accuracy": base[name]["accuracy"]},
                            title=f"{name}: test accuracy vs MACs after pruning + {a.epochs} epochs"))
    if a.remeasure_latency:
        remeasure_latency(results, a)
        journal.write_text("".join(json.dumps(r) + "\n" for r in done.values()))   # keep the new figures
        settings["latency"] = f"re-measured at {time.strftime('%Y-%m-%d %H:%M')}"
    settings["wall_seconds_this_invocation"] = round(time.perf_counter() - t_start)
    settings["wall_seconds_training_and_pruning"] = round(combos_seconds)
    md = matrix(results) + "\nEvery row:\n" + table(results)
    files.append(write_json(f"compare_{a.tag}.json", results))
    (RESULTS / f"compare_{a.tag}.md").write_text(f"Settings: {json.dumps(settings)}\n{md}")
    files.append(RESULTS / f"compare_{a.tag}.md")
    print(md)
    print(f"[compare] {settings['wall_seconds_this_invocation']} s in all "
          f"({settings['wall_seconds_training_and_pruning']} s training parents and combinations)", flush=True)
    if a.mlflow_uri:
        run = log_mlflow(results, files, a.mlflow_uri)
        print(f"[compare] logged to MLflow {a.mlflow_uri}: experiment amr-prune-benchmarks, run {run}")


if __name__ == "__main__":
    main()
