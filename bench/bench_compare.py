"""FCOS against every peer method, paired over seeds, on converged parents — one command (protocol v2).

    .venv/bin/python bench/bench_compare.py --preset cpu            # ResNet20, 3 seeds, 2 CPU cores (hours)
    .venv/bin/python bench/bench_compare.py --preset cpu-resnet56   # ResNet56 at 100 frames per key (many hours)
    .venv/bin/python bench/bench_compare.py --preset gpu            # ResNet56, RML2016.10a-sized, one GPU
    .venv/bin/python bench/bench_compare.py --data my_frames.h5 --models cnn1d --seeds 0 1 2

The protocol (docs/BENCHMARKS.md):

* **Paired seeds.** For each seed in ``--seeds`` one split of the data (``--fractions``, stratified by class
  and SNR; the test part at least ``--min-test`` frames) and one parent per model, trained to convergence:
  a plateau stop (``--pretrain-patience`` epochs without a better validation accuracy) under a cap
  (``--pretrain-epochs``). Every method of that seed prunes that parent, so differences are paired.
* **One fine-tune rule.** Every pruned network (every method, ablation and the control) has its BatchNorm
  statistics re-estimated on the same 2,048 training frames, then is fine-tuned by the same recipe
  (``--recipe``: ``reference`` = Adam 1e-3, StepLR(10, 0.8), batch 128, loss + 1e-4 * sum|theta|) under the
  same stop rule (``--patience``, cap ``--epochs``). The stop reason and epoch are in every row.
* **Rows.** FCOS and its ablations (``fcos:*``: one refinement changed each), every peer, ``scratch`` (FCOS's
  final architecture from random init, budget = the parent's cap + the fine-tune cap) and, with
  ``--calibration``, L1-norm and BN-scale at the published targets (87.1% and 97.6%).
* **Report.** Per method and target the mean paired difference to the parent and to FCOS with a 95%
  t-interval over seeds, per-SNR curves and Pareto plots with error bars: bench/results/compare_<tag>.*,
  logged to MLflow (one parent run, a child per row).

``--data FILE`` takes any file the readers accept (RML2016 pickles, RML2018 HDF5, generic X/Y/Z, the project's
HDF5); without it the project's RML-style generator makes ``--frames-per-key`` frames per (class, SNR).
Rows are appended to bench/out/compare_<tag>.jsonl as they finish: an interrupted run resumes where it
stopped. ``--jobs N`` runs N worker processes of ``--threads`` torch threads each. CPU latencies (seed 0's
models) are measured afterwards, one model at a time. ``AMR_BENCH_DIR`` moves bench/out and bench/results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import torch

from common import OUT, ROOT
from compare_journal import Journal, measure_latencies
from compare_methods import CALIBRATION, RETRAIN, SCRATCH, all_methods, run_one, train_parent
from compare_paths import PARENT, committed_parent, model_path, parent_path

PRESETS = {
    # 2 CPU cores: ResNet20 on 22,000 synthetic frames (6,600 test), 3 seeds, every method and ablation
    "cpu": dict(models=["resnet20"], frames_per_key=100, seeds=[0, 1, 2], targets=[0.8, 0.9, 0.95],
                pretrain_epochs=60, pretrain_patience=10, epochs=30, patience=5, jobs=2),
    # CNN1D has no BatchNorm: under Adam the reference recipe's L1 term (1e-4 * sign(theta) on every weight)
    # outweighs its small early cross-entropy gradients and holds it at chance (measured: 9.1% validation
    # accuracy for 10 epochs with l1 1e-4, 41% after 4 epochs without), so it trains without the L1 term
    "cpu-cnn1d": dict(models=["cnn1d"], frames_per_key=200, seeds=[0, 1, 2], targets=[0.8, 0.9, 0.95],
                      recipe="plain", pretrain_epochs=60, pretrain_patience=10, epochs=30, patience=5, jobs=2),
    "cpu-resnet56": dict(models=["resnet56"], frames_per_key=100, seeds=[0, 1, 2], targets=[0.8, 0.9, 0.95],
                         pretrain_epochs=60, pretrain_patience=10, epochs=30, patience=5, jobs=2),
    # one datacenter GPU, at most ~12 minutes: ResNet56 on an RML2016.10a-sized set (220,000 frames), the
    # reference recipe, FCOS + the best channel peer + the best layer peer of the CPU runs at 90 and 95%;
    # three processes share the device
    "gpu": dict(models=["resnet56"], frames_per_key=1000, seeds=[0], targets=[0.9, 0.95],
                methods=["fcos", "ssbn", "lcp"], pretrain_epochs=30, pretrain_patience=4, epochs=15, patience=3,
                jobs=3, threads=4, latency_repeats=5),
    # the tests' size: seconds on CPU
    "tiny": dict(models=["cnn1d"], frames_per_key=8, seeds=[0, 1], targets=[0.5], methods=["fcos", "l1"],
                 pretrain_epochs=2, pretrain_patience=1, epochs=2, patience=1, jobs=1, latency_repeats=2),
}
def load_data(a):
    """The whole dataset (a user's file, or the generator's, cached under bench/out)."""
    from amrlib.data import load_dataset, save_dataset, synthesize
    if a.data:
        return load_dataset(a.data).load()
    path = OUT / f"synth_{a.frames_per_key}_128_s0.h5"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        save_dataset(synthesize(frames_per_key=a.frames_per_key, frame_length=128, seed=0), path)
    return load_dataset(path).load()


def split_for(a, seed, ds=None):
    from amrlib.data import split
    train, val, test = split(load_data(a) if ds is None else ds, a.fractions, seed=seed)
    if len(test) < a.min_test:
        raise SystemExit(f"the test split has {len(test)} frames, fewer than --min-test {a.min_test}: use more "
                         f"frames per key or a larger test fraction (--fractions)")
    return train, val, test


def _parent_job(model, seed, a):
    from amrlib.models import load_model
    torch.set_num_threads(a.threads)
    path, kept = parent_path(a, model, seed), committed_parent(a, model, seed)
    if not path.exists() and kept.exists():         # a new machine: the committed copy (checked against the journal)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".pt", ".json"):
            shutil.copyfile(kept.with_suffix(suffix), path.with_suffix(suffix))
    if not path.exists():
        train, val, _ = split_for(a, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        train_parent(model, train, val, seed, a, path)
        kept.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".pt", ".json"):
            shutil.copyfile(path.with_suffix(suffix), kept.with_suffix(suffix))
    return model, seed, load_model(path)


def _row_job(model, method, target, seed, a):
    from amrlib.models import load_model, save_model
    torch.set_num_threads(a.threads)
    train, val, test = split_for(a, seed)
    parent = load_model(parent_path(a, model, seed))
    row, pruned = run_one(method, target, parent, train, val, test, seed, a)
    if pruned is not None:
        path = model_path(a, seed, model, method, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(pruned, path)
    return {"seed": seed, "model": model, "method": method, "target": target, **row}


def _run_all(jobs, fn, a):
    """Yield fn(*job) for each job: in this process (--jobs 1) or in a pool of spawned workers, as they end."""
    if a.jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(*job, a)
        return
    with ProcessPoolExecutor(max_workers=a.jobs, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(fn, *job, a) for job in jobs]):
            yield fut.result()


HEADLINE = ("fcos", "l1", "fpgm", "bn_scale", "ssbn", "lcp", "layer_cka")
# the controls and ablations in the order a partial run should have them (each complete over seeds first)
# (no-lacd first: whether LaCD's removals help at all is the question the ResNet20 run left open)
SECOND = ("fcos:no-lacd", "fcos:recovered-confident", "fcos:confident", "fcos:guarded", SCRATCH,
          "fcos:threshold-widths", "fcos:plain-fusion", "fcos:kd", "fcos:light-diagnosis",
          "fcos:recovered-diagnosis", "fcos:channel")


def _order(job, a):
    """What a partial run should have first: the headline methods at the 90/95% targets on every seed (the
    aim's criteria, paired), then the controls and ablations there one method at a time, then the other
    targets, then the rest."""
    model, method, target, seed = job
    calibration = target not in a.targets and method in CALIBRATION["methods"] and target in CALIBRATION["targets"]
    if calibration:                                 # after the first controls: is the setting calibrated?
        tier, rank = 1, SECOND.index(SCRATCH) + 0.5
    elif method in HEADLINE or method == RETRAIN:
        tier, rank = 0, 0
    elif method in SECOND:
        tier, rank = 1, SECOND.index(method)
    else:
        tier, rank = 2, 0
    if not calibration and method != RETRAIN and (target < 0.9 or target not in a.targets):
        tier += 3
    return (tier, rank, -target if tier == 0 else 0, a.seeds.index(seed), -target, method)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--data", help="compare on this dataset file instead of the generator's frames")
    ap.add_argument("--models", nargs="+")
    ap.add_argument("--frames-per-key", type=int)
    ap.add_argument("--seeds", type=int, nargs="+", help="one split and one parent per seed, shared by all methods")
    ap.add_argument("--fractions", type=float, nargs=3, default=[0.55, 0.15, 0.30], metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--min-test", type=int, default=None, help="refuse a test split smaller than this (default 6000)")
    ap.add_argument("--recipe", help="training recipe (reference | plain; default: the preset's, else reference)")
    ap.add_argument("--pretrain-epochs", type=int, help="the parent's epoch cap")
    ap.add_argument("--pretrain-patience", type=int, help="the parent's plateau stop")
    ap.add_argument("--epochs", type=int, help="every method's fine-tune cap")
    ap.add_argument("--patience", type=int, help="every method's fine-tune plateau stop")
    ap.add_argument("--min-delta", type=float, default=0.0)
    ap.add_argument("--targets", type=float, nargs="+")
    ap.add_argument("--methods", nargs="+", help="default: FCOS, its ablations, every peer and the scratch control")
    ap.add_argument("--calibration", action="store_true", help="add L1-norm and BN-scale at the published targets")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--jobs", type=int, help="worker processes (1 = in this process)")
    ap.add_argument("--threads", type=int, help="torch threads per job (default 1)")
    ap.add_argument("--latency-repeats", type=int)
    ap.add_argument("--report-only", action="store_true",
                    help="write the tables from the journal's finished rows; train nothing (a partial run's report)")
    ap.add_argument("--tag", help="name of the result files (default: the preset)")
    ap.add_argument("--mlflow-uri", default=f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}", help="'' to skip MLflow")
    a = ap.parse_args(argv)
    for k, v in PRESETS[a.preset].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    a.tag, a.threads = a.tag or a.preset, a.threads or 1
    a.latency_repeats = a.latency_repeats or 20
    a.min_test = a.min_test if a.min_test is not None else (0 if a.preset == "tiny" else 6000)
    known = all_methods()
    a.methods = a.methods or known
    unknown = [m for m in a.methods if m not in known]
    if unknown:
        ap.error(f"unknown method(s) {unknown}: choose from {known}")
    if a.data and not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such file")
    if a.jobs < 1 or len(set(a.seeds)) != len(a.seeds):
        ap.error("--jobs must be >= 1 and --seeds distinct")
    from amrlib.train import RECIPES
    a.recipe = a.recipe or "reference"
    if a.recipe not in RECIPES:
        ap.error(f"unknown recipe {a.recipe!r}: choose from {sorted(RECIPES)}")
    if "fcos" not in a.methods and any(m.startswith("fcos:") or m == SCRATCH for m in a.methods):
        a.methods = ["fcos", *a.methods]            # ablations and the control are read against FCOS
    return a


def combos(a):
    out = [(m, t) for m in a.methods if m != RETRAIN for t in a.targets]
    if RETRAIN in a.methods:
        out.insert(0, (RETRAIN, 0.0))             # no target: the unpruned parent, fine-tuned again
    if a.calibration:
        out += [(m, t) for m in CALIBRATION["methods"] for t in CALIBRATION["targets"] if (m, t) not in out]
    return out


def main(argv=None):
    a = parse_args(argv)
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    from compare_report import write_report
    journal = Journal(a.tag)
    if journal.seeded_from is not None:
        print(f"[compare] no journal here: resuming from the {len(journal.rows)} rows of {journal.seeded_from}",
              flush=True)
    done, record = journal.rows, journal.record

    if a.report_only:
        settings = {"preset": a.preset, "seeds": a.seeds, "recipe": a.recipe, "note": "report of the rows finished "
                    f"so far ({sum(1 for r in done.values() if r['method'] != PARENT)} rows)"}
        settings["wall_seconds_this_invocation"] = settings["wall_seconds_training"] = 0
        a.mlflow_uri = ""
        write_report(a, settings, done, PARENT, combos(a))
        return
    ds = load_data(a)                                 # writes the generator's file once, before any worker
    for seed in a.seeds:
        split_for(a, seed, ds)                        # refuse a too-small test split before any training
    from amrlib.measure import count_macs, count_params
    from amrlib.train import evaluate
    parents = {}
    for model, seed, net in _run_all([(m, s) for s in a.seeds for m in a.models], _parent_job, a):
        parents[(model, seed)] = net
        test = split_for(a, seed, ds)[2]
        ev = evaluate(net, test)
        known = done.get((seed, model, PARENT, 0.0))
        if known is not None and abs(known["accuracy"] - ev["accuracy"]) > 1e-9:
            # the journal's rows were pruned from another parent (its checkpoint was lost and the one trained
            # again differs): resuming would pair them with the wrong network
            raise SystemExit(f"the {model} parent of seed {seed} ({parent_path(a, model, seed)}) scores "
                             f"{ev['accuracy']:.4f}, the journal's rows were pruned from one scoring "
                             f"{known['accuracy']:.4f}: move {journal.path} away to start over")
        if known is None:
            prov = json.loads(parent_path(a, model, seed).with_suffix(".json").read_text())
            record({"seed": seed, "model": model, "method": PARENT, "target": 0.0, "accuracy": ev["accuracy"],
                    "high_snr_accuracy": ev["high_snr_accuracy"], "per_snr": ev["per_snr"], "stop": prov,
                    "macs": count_macs(net), "params": count_params(net)})
    todo = sorted(((m, meth, t, s) for s in a.seeds for m in a.models for meth, t in combos(a)
                   if (s, m, meth, t) not in done), key=lambda j: _order(j, a))
    if todo:
        print(f"[compare] {len(todo)} rows on {a.jobs} worker(s)", flush=True)
    for row in _run_all(todo, _row_job, a):
        record(row)
        p = done[(row["seed"], row["model"], PARENT, 0.0)]["accuracy"]
        msg = row.get("error") or (f"acc {row['accuracy']:.4f} ({(row['accuracy'] - p) * 100:+.2f} pt), MACs "
                                   f"-{row['macs_reduction']:.1%}, stop {(row.get('stop') or {}).get('stop_reason')}, "
                                   f"wall {row['wall_seconds']:.0f} s")
        print(f"[compare] s{row['seed']} {row['model']} {row['method']} @ {row['target']:.1%}: {msg}", flush=True)
    train_seconds = time.perf_counter() - t_start
    measure_latencies(journal, parents, a)
    settings = {k: getattr(a, k) for k in ("preset", "data", "models", "frames_per_key", "seeds", "fractions",
                                           "recipe", "pretrain_epochs", "pretrain_patience", "epochs", "patience",
                                           "min_delta", "targets", "methods", "calibration", "jobs", "threads")}
    settings["machine"] = (f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, {a.jobs} "
                           f"job(s) x {a.threads} thread(s), torch {torch.__version__}, device {a.device}")
    settings["wall_seconds_this_invocation"] = round(time.perf_counter() - t_start)
    settings["wall_seconds_training"] = round(train_seconds)
    write_report(a, settings, done, PARENT, combos(a))


if __name__ == "__main__":
    main()
