"""How fast the read-only commands answer: each command timed as a whole process (interpreter start, imports,
work, exit), several runs, median.

    .venv/bin/python bench/bench_cli.py [--runs 5] [--tag after] [--src DIR]

``--src DIR`` times another checkout of the project (e.g. ``git worktree add /tmp/before a639d26``) as
``python -m cli`` with ``PYTHONPATH=DIR``, run in DIR, with this venv.

Set-up (not timed): a scratch folder with a small dataset (`amr-prune data synth`, 3 frames per key) and an
MLflow SQLite store holding a registered base model and a pruned version (aliases challenger and champion on the
same version, so that `promote` has nothing to do), with the tags and the plan artefact `models` and `lineage`
read; the commands find it through MLFLOW_TRACKING_URI. Writes bench/results/cli_<tag>.json and .md.
The machine should be idle: the figures are wall-clock times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT  # noqa: E402

EXE = str(Path(sys.executable).with_name("amr-prune"))
BASE, PRUNED = "amr-resnet20-base", "amr-resnet20-fcos"


def fake_registry(uri: str, tmp: Path) -> None:
    """A base version and a pruned version (challenger = champion) with the tags the registry commands read."""
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("amr-prune", artifact_location=(tmp / "artifacts").as_uri())
    model_dir = tmp / "model"
    model_dir.mkdir()
    (model_dir / "plan.json").write_text(json.dumps({
        "method": "fcos", "parent_arch": {"name": "resnet20"}, "arch": {"name": "resnet20-pruned"},
        "stages": [{"stage": "channel", "settings": {"keep_ratio": 0.5},
                    "groups": [{"size_before": 16, "size_after": 8}] * 9},
                   {"stage": "layer", "method": "lacd", "removed": ["layer2.1", "layer3.2"]}]}))
    common = {"data_md5": "0" * 32, "data_path": "data/synthetic-rml2016a.h5", "data_dvc_file": "data.dvc",
              "git_commit": "f" * 40, "flow_run_id": "bench", "test_accuracy": "0.61", "test_high_snr_accuracy": "0.9"}
    for name, tags in ((BASE, {"role": "base", "method": "pretrain", "macs": "40000000", "params": "270000"}),
                       (PRUNED, {"role": "pruned", "method": "fcos", "macs": "8000000", "params": "60000",
                                 "macs_reduction": "0.8", "accuracy_drop": "0.01", "gate.passed": "True",
                                 "parent_model": BASE, "parent_version": "1"})):
        run = client.create_run(exp, run_name=f"register-{name}")
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(name)
        mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                         tags={**common, **tags})
        for alias in ("challenger", "champion"):
            client.set_registered_model_alias(name, alias, mv.version)


def commands(tmp: Path) -> list[tuple[str, list[str], int]]:
    """(label, arguments, expected exit status)."""
    small = str(tmp / "small.h5")
    return [("--help", ["--help"], 0),
            ("run --help", ["run", "--help"], 0),
            ("models", ["models"], 0),
            ("models --json", ["models", "--json"], 0),
            ("lineage NAME @champion", ["lineage", PRUNED, "@champion"], 0),
            ("data info SMALL.h5", ["data", "info", small], 0),
            ("run --set (unknown key)", ["run", "--set", "pretrain.epoch=3"], 1),
            ("run --set (bad value)", ["run", "--set", "pretrain.epochs=-1"], 1),
            ("promote (nothing to do)", ["promote"], 0)]


def time_command(args: list[str], env: dict, runs: int, expect: int, src: Path | None = None) -> dict:
    times = []
    exe = [sys.executable, "-m", "cli"] if src else [EXE]
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([*exe, *args], cwd=src or ROOT, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - t0)
        if done.returncode != expect:
            raise SystemExit(f"amr-prune {' '.join(args)}: exit {done.returncode}, expected {expect}\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "runs": [round(t, 3) for t in times]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tag", default="after", help="results file suffix: bench/results/cli_<tag>.json")
    ap.add_argument("--only", default=None, help="comma-separated labels to time (default: all)")
    ap.add_argument("--src", type=Path, default=None, help="time this checkout instead (python -m cli)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as d:
        tmp = Path(d)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CI": "1", "COLUMNS": "160"}
        if a.src:
            env["PYTHONPATH"] = str(a.src.resolve())
        subprocess.run([EXE, "data", "synth", "--out", str(tmp / "small.h5"), "--frames-per-key", "3"], cwd=ROOT,
                       env=env, check=True, capture_output=True)
        fake_registry(uri, tmp)
        rows = {}
        for label, args, expect in commands(tmp):
            if a.only and label not in a.only.split(","):
                continue
            rows[label] = {"command": "amr-prune " + " ".join(x if x != str(tmp / "small.h5") else "SMALL.h5"
                                                                for x in args), **time_command(args, env, a.runs,
                                                                                               expect, a.src)}
            print(f"{label:28s} median {rows[label]['median_s']:6.2f} s  {rows[label]['runs']}", flush=True)
    load = os.getloadavg()
    out = {"tag": a.tag, "source": str(a.src or ROOT), "runs_per_command": a.runs,
           "python": platform.python_version(), "cpus": os.cpu_count(),
           "loadavg_after": [round(x, 2) for x in load], "commands": rows,
           "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=a.src or ROOT, capture_output=True,
                                        text=True).stdout.strip() or "unknown (not a git checkout)"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"cli_{a.tag}.json").write_text(json.dumps(out, indent=2))
    lines = ["| command | median (s) | min-max (s) |", "|---|---:|---:|"]
    lines += [f"| `{r['command']}` | {r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} |" for r in rows.values()]
    (RESULTS / f"cli_{a.tag}.md").write_text(f"CLI start-up, {a.runs} runs per command, {os.cpu_count()} CPUs, "
                                             f"commit {out['git_commit']}\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {RESULTS / f'cli_{a.tag}.json'}")


if __name__ == "__main__":
    main()
