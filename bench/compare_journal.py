"""The comparison's journal: one JSON line per finished row in bench/out/compare_<tag>.jsonl.

A run appends each row as it finishes, so an interrupted run resumes where it stopped. bench/out is not
committed, so a new machine (or a clean clone) starts without it: the journal is then seeded from the rows of
the committed report bench/results/compare_<tag>.json, and the run resumes from those, with the parents
committed in bench/results/parents (:func:`compare_paths.committed_parent`). A parent that has to be trained
again is not bit-identical on another machine: bench_compare refuses to resume when it does not score what the
journal's parent scored.
"""
from __future__ import annotations

import json
from pathlib import Path

from common import OUT, RESULTS
from compare_paths import PARENT, model_path


def row_key(r: dict) -> tuple:
    return (r["seed"], r["model"], r["method"], r["target"])


class Journal:
    def __init__(self, tag: str, out: Path = OUT, results: Path = RESULTS):
        self.path = out / f"compare_{tag}.jsonl"
        self.report = results / f"compare_{tag}.json"
        self.rows: dict[tuple, dict] = {}
        self.seeded_from: Path | None = None
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    self.rows[row_key(r)] = r
        elif self.report.exists():
            self._seed_from_report()

    def _seed_from_report(self):
        try:
            models = json.loads(self.report.read_text())["models"]
            rows = [r for m in models.values() for r in m["rows"]]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SystemExit(f"{self.report}: not a comparison report with rows ({e}); move it away to start over")
        self.rows = {row_key(r): r for r in rows}
        self.seeded_from = self.report
        self.rewrite()

    def record(self, row: dict):
        self.rows[row_key(row)] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def rewrite(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.rows.values()))


def measure_latencies(journal: Journal, parents: dict, a):
    """CPU latency at batch 1 and 256 of seed 0's models, one at a time, nothing else of this run on the CPU."""
    from amrlib.measure import measure_latency
    from amrlib.models import load_model
    seed = a.seeds[0]
    pending = [r for r in journal.rows.values() if r["seed"] == seed and "error" not in r and "latency_s" not in r]
    for r in pending:
        if r["method"] == PARENT:
            net = parents[(r["model"], seed)]
        else:
            path = model_path(a, seed, r["model"], r["method"], r["target"])
            if not path.exists():
                continue
            net = load_model(path)
        r["latency_s"] = {str(b): measure_latency(net, batch_size=b, threads=a.threads, repeats=a.latency_repeats)
                          ["median_s"] for b in (1, 256)}
    if pending:
        journal.rewrite()

