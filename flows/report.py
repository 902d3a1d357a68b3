"""What the main job prints: registered versions with their metrics, where the aliases point, and how to
open the MLflow and Prefect UIs."""
from __future__ import annotations

import os
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from amrlib.names import BUILTIN_METHODS
from settings.pipeline import PipelineConfig
from tracking.registry import registry_state

console = Console(markup=False, emoji=False)   # registry text (names, aliases in [...], tags) reads as written


def _f(tags: dict, key: str, fmt: str = "{:.4f}") -> str:
    try:
        return fmt.format(float(tags[key]))
    except (KeyError, ValueError):
        return "-"


def model_names(cfg: PipelineConfig) -> list[str]:
    """The base model, the configured pruned model, and ``amr-<model>-<method>`` of every other method."""
    names = [cfg.base_model_name, cfg.pruned_model_name] + [f"amr-{cfg.model.name}-{m}" for m in BUILTIN_METHODS]
    return list(dict.fromkeys(names))


def _target(t: dict) -> str:
    if "target_macs_reduction" not in t:
        return "-"
    met = {"True": "", "False": " (not met)"}.get(t.get("target_met", "True"), "")
    return _f(t, "target_macs_reduction", "{:.0%}") + met


def print_registry(cfg: PipelineConfig, names: list[str] | None = None) -> list[dict]:
    """The versions of ``names`` (default: :func:`model_names`) as a table."""
    uri = cfg.tracking_uri()
    rows = registry_state(uri, names if names is not None else model_names(cfg))
    table = Table(title=f"Registered models at {uri}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True, show_edge=False,
                  caption="acc: test accuracy (all SNRs / high SNR); red.: MAC reduction and accuracy drop vs the "
                          "parent; --json for every tag")
    for col, just in (("model", "left"), ("aliases", "left"), ("method", "left"), ("target", "right"), ("acc", "right"),
                      ("hi-SNR", "right"), ("MACs", "right"), ("params", "right"), ("MAC red.", "right"),
                      ("acc drop", "right"), ("gate", "left"), ("data", "left"), ("git", "left")):
        table.add_column(col, justify=just, overflow="fold", no_wrap=col not in ("model", "aliases"))
    for r in rows:
        t = r["tags"]
        table.add_row(f"{r['name']} v{r['version']}", ",".join(r["aliases"]) or "-", t.get("method", "-"), _target(t),
                      _f(t, "test_accuracy", "{:.3f}"), _f(t, "test_high_snr_accuracy", "{:.3f}"),
                      _f(t, "macs", "{:,.0f}"), _f(t, "params", "{:,.0f}"), _f(t, "macs_reduction", "{:.1%}"),
                      _f(t, "accuracy_drop", "{:+.3f}"), {"True": "passed", "False": "failed"}.get(
                          t.get("gate.passed", ""), "-"), t.get("data_md5", "-")[:7], t.get("git_commit", "-")[:7])
    if console.width >= 140:
        console.print(table)
    else:                                   # a narrow terminal: one line per version
        console.print(f"Registered models at {uri}", soft_wrap=True)
        for r in rows:
            t = r["tags"]
            red = f" ({_f(t, 'macs_reduction', '{:.1%}')} fewer)" if "macs_reduction" in t else ""
            console.print(f"  {r['name']} v{r['version']} [{', '.join(r['aliases']) or 'no alias'}] "
                          f"{t.get('method', '-')}: acc {_f(t, 'test_accuracy', '{:.3f}')} (hi-SNR "
                          f"{_f(t, 'test_high_snr_accuracy', '{:.3f}')}), {_f(t, 'macs', '{:,.0f}')} MACs{red}, "
                          f"gate {t.get('gate.passed', '-')}, data {t.get('data_md5', '-')[:7]}, "
                          f"git {t.get('git_commit', '-')[:7]}", markup=False)
    if not rows:
        console.print("no registered versions yet")
    return rows


def _runs_link(uri: str, cfg: PipelineConfig, ui: str) -> str:
    """The UI link that opens the experiment on its training runs with the key metrics (tracking/ui.py)."""
    from tracking.runs import client_for
    from tracking.ui import runs_url
    try:
        exp = client_for({"uri": uri}).get_experiment_by_name(cfg.tracking.experiment)
    except Exception:                        # offline: the plain address
        return ui
    return runs_url(ui, exp.experiment_id) if exp is not None else ui


def print_report(cfg: PipelineConfig, summary: dict) -> None:
    gate = summary.get("gate", {})
    console.rule(f"prune_pipeline: {summary.get('method', cfg.method)}")
    base, pruned = summary.get("base", {}), summary.get("pruned", {})
    console.print(f"data: {summary['data']['relpath']} (md5 {summary['data']['md5']}, "
                  f"{summary['data']['frames']} frames)")
    console.print(f"base   {base.get('model')} v{base.get('version')}: test accuracy {base.get('accuracy', 0):.4f}, "
                  f"MACs {base.get('macs', 0):,}")
    console.print(f"pruned {pruned.get('model')} v{pruned.get('version')} ({summary.get('method', cfg.method)}): "
                  f"test accuracy "
                  f"{pruned.get('accuracy', 0):.4f} (drop {pruned.get('accuracy_drop', 0):+.4f}), MACs "
                  f"{pruned.get('macs', 0):,} ({pruned.get('macs_reduction', 0):.1%} fewer)")
    verdict = "PASSED: champion moved" if gate.get("passed") else f"not passed ({'; '.join(gate.get('reasons', []))})"
    champion = gate.get("champion_after")
    console.print(f"promotion gate: {verdict}; champion of {gate.get('name')}: "
                  f"{'v' + str(champion) if champion else 'none yet'}")
    print_registry(cfg)
    uri = cfg.tracking_uri()
    console.rule("UIs")
    if uri.startswith("sqlite:"):
        art = cfg.artifact_location() or ""
        console.print(f"MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {uri} "
                      f"--default-artifact-root {art} --host 127.0.0.1 --port 5050   -> "
                      f"{_runs_link(uri, cfg, 'http://127.0.0.1:5050')}",
                      soft_wrap=True, markup=False)          # a command stays on one line: copy-pasteable
    else:
        console.print(f"MLflow UI:  {_runs_link(uri, cfg, uri)}", soft_wrap=True, markup=False)
    home = Path(os.environ.get("PREFECT_HOME", ".prefect")).resolve()
    home = home.relative_to(Path.cwd()) if home.is_relative_to(Path.cwd()) else home
    console.print(f"Prefect UI: PREFECT_HOME={home} .venv/bin/prefect server start --host 127.0.0.1 --port 4200"
                  "   -> http://127.0.0.1:4200 (flow runs of this machine's local Prefect database)",
                  soft_wrap=True, markup=False)
    if summary.get("mlflow_parent_run_deleted"):
        console.print(f"every stage was cached: no new MLflow run (the flow run's empty parent run "
                      f"{summary['mlflow_parent_run_deleted']} was deleted)")
    else:
        console.print(f"MLflow parent run of this flow run: {summary.get('mlflow_parent_run_id')}")
