"""A sweep's results, read back from the tracking store and the model registry (never from the memory of
the process that ran it): one row per planned combination, as a table (Markdown, CSV) and a Pareto plot.

Where each value comes from:
- the plan: the sweep run's ``combinations.json`` artefact (so a combination that never started a run
  still gets a row, "not run");
- each combination's MLflow run: a child of the sweep run (``tags.mlflow.parentRunId``), matched to its
  combination by its logged params (``model.name``, ``method``, and the MAC target:
  ``channel_stage.target_macs_reduction`` for FCOS, ``peer.target_macs_reduction`` otherwise); its
  status; its ``summary.json`` artefact names the registered pruned version;
- the registered version's tags (test accuracy, MAC/param reduction, accuracy drop, MACs, params, gate)
  and its parent version's ``test_accuracy``.
"""
from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from amrlib.pareto import accuracy_vs_reduction, pareto_front
from mlflow import MlflowClient
from tracking.runs import PARENT_TAG
from tracking.tag_names import read_tags

PLAN_ARTIFACT = "combinations.json"
COLUMNS = ("model", "method", "target", "status", "version", "test_accuracy", "base_accuracy", "accuracy_drop",
           "macs_reduction", "params_reduction", "macs", "params", "gate_passed", "pareto", "run_id")


def _artifact_json(client: MlflowClient, run_id: str, path: str) -> Any | None:
    with tempfile.TemporaryDirectory() as d:
        try:
            local = client.download_artifacts(run_id, path, d)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(local).read_text())


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _target_of(params: dict[str, str]) -> float | None:
    fcos = params.get("method", "fcos") == "fcos"
    key = "channel_stage.target_macs_reduction" if fcos else "peer.target_macs_reduction"
    return _float(params.get(key))


def _version_row(client: MlflowClient, summary: dict | None) -> dict[str, Any]:
    pruned = (summary or {}).get("pruned") or {}
    if not pruned.get("model") or pruned.get("version") is None:
        return {}
    try:
        mv = client.get_model_version(pruned["model"], str(pruned["version"]))
    except MlflowException:
        return {"version": f"{pruned['model']} v{pruned['version']} (gone from the registry)"}
    tags = read_tags(mv.tags)
    row = {"version": f"{mv.name} v{mv.version}", "test_accuracy": _float(tags.get("test_accuracy")),
           "accuracy_drop": _float(tags.get("accuracy_drop")), "macs_reduction": _float(tags.get("macs_reduction")),
           "params_reduction": _float(tags.get("params_reduction")), "macs": _float(tags.get("macs")),
           "params": _float(tags.get("params")), "gate_passed": tags.get("gate.passed")}
    if tags.get("parent_model") and tags.get("parent_version"):
        try:
            parent = client.get_model_version(tags["parent_model"], tags["parent_version"])
            row["base_accuracy"] = _float(parent.tags.get("test_accuracy"))
        except MlflowException:
            pass
    return row


def sweep_rows(tracking_uri: str, sweep_run_id: str) -> list[dict[str, Any]]:
    """One row per planned combination of the sweep run ``sweep_run_id`` (see the module docstring)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    sweep = client.get_run(sweep_run_id)
    plan = _artifact_json(client, sweep_run_id, PLAN_ARTIFACT)
    if plan is None:
        raise RuntimeError(f"MLflow run {sweep_run_id} at {tracking_uri} has no {PLAN_ARTIFACT}: not a sweep run")
    children = client.search_runs([sweep.info.experiment_id], f"tags.`{PARENT_TAG}` = '{sweep_run_id}'",
                                  max_results=10_000)
    by_combo: dict[tuple, list] = {}
    for run in children:
        p = run.data.params
        key = (p.get("model.name"), p.get("method", "fcos"), _target_of(p))
        by_combo.setdefault(key, []).append(run)
    rows = []
    for combo in plan:
        row: dict[str, Any] = {k: None for k in COLUMNS}
        row.update(model=combo["model"], method=combo["method"], target=float(combo["target"]), status="not run")
        runs = sorted(by_combo.get((combo["model"], combo["method"], float(combo["target"])), []),
                      key=lambda r: r.info.start_time)
        if runs:
            run = runs[-1]                             # the latest attempt of this combination
            row.update(status=run.info.status, run_id=run.info.run_id)
            if run.info.status == "FINISHED":
                row.update(_version_row(client, _artifact_json(client, run.info.run_id, "summary.json")))
        rows.append(row)
    done = [i for i, r in enumerate(rows) if r["test_accuracy"] is not None and r["macs_reduction"] is not None]
    for model in {rows[i]["model"] for i in done}:
        mine = [i for i in done if rows[i]["model"] == model]
        pts = [{"macs_reduction": rows[i]["macs_reduction"], "accuracy": rows[i]["test_accuracy"]} for i in mine]
        for j in pareto_front(pts):
            rows[mine[j]]["pareto"] = True
    for r in rows:
        if r["test_accuracy"] is not None:
            r["pareto"] = bool(r["pareto"])
    return rows


def _fmt(value, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "pt":
        return f"{-100 * value + 0.0:+.2f} pt"      # + 0.0: no "-0.00"
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "int":
        return f"{value:,.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | method | MAC target | status | registered | test accuracy | vs unpruned | MACs cut | "
             "params cut | MACs | gate | Pareto |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['target']:.0%} | {r['status']} | {_fmt(r['version'])} | "
                     f"{_fmt(r['test_accuracy'], 'acc')} | {_fmt(r['accuracy_drop'], 'pt')} | "
                     f"{_fmt(r['macs_reduction'], 'pct')} | {_fmt(r['params_reduction'], 'pct')} | "
                     f"{_fmt(r['macs'], 'int')} | {_fmt(r['gate_passed'])} | {'yes' if r['pareto'] else ''} |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    return buf.getvalue()


def write_report(rows: list[dict[str, Any]], out_dir: str | Path, title: str = "sweep") -> dict[str, Path]:
    """``sweep.md``, ``sweep.csv`` and ``pareto.png`` (accuracy vs MAC reduction) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "sweep.md", "csv": out / "sweep.csv", "pareto": out / "pareto.png"}
    paths["markdown"].write_text(markdown(rows))
    paths["csv"].write_text(csv_text(rows))
    done = [r for r in rows if r["test_accuracy"] is not None and r["macs_reduction"] is not None]
    points = [{"label": f"{r['model']} {r['method']}", "macs_reduction": r["macs_reduction"],
               "accuracy": r["test_accuracy"], "group": r["model"]} for r in done]
    baselines = {r["model"]: r["base_accuracy"] for r in done if r["base_accuracy"] is not None}
    accuracy_vs_reduction(points, paths["pareto"], baselines, title=f"{title}: test accuracy vs MACs removed")
    return paths
