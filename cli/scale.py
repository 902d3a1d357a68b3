"""Scale-out commands (docs/SCALING.md):

    sweep          prune_pipeline for every (method, target, model) of a sweep configuration, on Prefect's local
                   thread pool or on Dask; prints the table read back from MLflow
    sweep-report   a finished sweep's table and Pareto plot, rebuilt from the tracking store and the registry
    deploy         prune_pipeline as a deployment on a Prefect work pool (needs PREFECT_API_URL)

Errors become one line plus a hint (cli/common.py: AmrPruneGroup).
"""
from __future__ import annotations

import json
from typing import Optional

import typer

from .common import SET, console, parse_overrides

SWEEP_CONFIG = typer.Option("configs/sweep.yaml", "--sweep-config", "-s", help="sweep configuration (YAML)")


def sweep(sweep_config: str = SWEEP_CONFIG,
          method: Optional[list[str]] = typer.Option(None, "--method", "-m", help="replace the methods (repeatable)"),
          target: Optional[list[float]] = typer.Option(None, "--target", help="replace the MAC targets (repeatable)"),
          model: Optional[list[str]] = typer.Option(None, "--model", help="replace the models (repeatable)"),
          runner: Optional[str] = typer.Option(None, help="local | dask"),
          workers: Optional[int] = typer.Option(None, help="local threads / Dask LocalCluster processes"),
          dask_address: Optional[str] = typer.Option(None, help="a running Dask scheduler, e.g. tcp://HOST:8786"),
          max_training: Optional[int] = typer.Option(None, help="set the training concurrency limit's slots"),
          set_: Optional[list[str]] = SET) -> None:
    """Run prune_pipeline for every (method, target, model) combination and print the sweep's table.

    `--set` changes a pipeline setting of every combination (e.g. --set finetune.epochs=2)."""
    from flows.sweep import run_sweep
    overrides: dict = {}
    for key, value in (("methods", method), ("targets", target), ("models", model), ("runner", runner),
                       ("workers", workers)):
        if value:
            overrides[key] = list(value) if isinstance(value, list) else value
    if dask_address:
        overrides["dask"] = {"address": dask_address}
        overrides.setdefault("runner", "dask")
    if max_training:
        overrides["training"] = {"max_concurrent": max_training}
    if set_:
        overrides["overrides"] = parse_overrides(set_)
    summary = run_sweep(sweep_config, overrides)
    console.print(f"report: {json.dumps(summary['report'], indent=1)}", soft_wrap=True)
    console.print(f"MLflow sweep run: {summary['mlflow_sweep_run_id']} ({summary['wall_seconds']:.0f} s)")


def sweep_report(run_id: str = typer.Argument(..., help="the sweep's MLflow run id"),
                 sweep_config: str = SWEEP_CONFIG,
                 out: Optional[str] = typer.Option(None, help="folder for sweep.md/.csv/pareto.png (default: "
                                                              "ROOT/OUT_DIR/RUN_ID, OUT_DIR from the sweep "
                                                              "configuration)")) -> None:
    """Rebuild a sweep's table and Pareto plot from the tracking store and the registry."""
    from flows.sweep_report import markdown, sweep_rows, write_report
    from settings.sweep import combination_configs, load_sweep_config
    sw = load_sweep_config(sweep_config)
    cfg = combination_configs(sw)[0][3]
    rows = sweep_rows(cfg.tracking_uri(), run_id)
    paths = write_report(rows, out or cfg.root_path / sw.out_dir / run_id, title=f"sweep {run_id[:8]}")
    typer.echo(markdown(rows))
    typer.echo(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))


def deploy(pool: str = typer.Option(..., help="the work pool (prefect work-pool create NAME --type process)"),
           name: str = typer.Option("prune", help="deployment name: prune_pipeline/NAME"),
           config: str = typer.Option("configs/default.yaml", "--config", "-c",
                                      help="the configuration the runs use (a path on the worker)"),
           source: Optional[str] = typer.Option(None, help="where workers get the code: this checkout (default) "
                                                           "or a Git URL"),
           image: Optional[str] = typer.Option(None, help="container image for a Docker/Kubernetes pool")) -> None:
    """Register prune_pipeline as a deployment on a Prefect work pool (a worker then runs its flow runs)."""
    from prefect.settings import PREFECT_API_URL

    from flows.deploy import deploy as deploy_flow

    from .pipeline import NoPrefectServer
    if not PREFECT_API_URL.value():
        raise NoPrefectServer("PREFECT_API_URL is not set: deployments and workers need a Prefect server")
    deployment_id = deploy_flow(pool, name=name, config=config, source=source, image=image)
    typer.echo(f"deployment prune_pipeline/{name} ({deployment_id}) on work pool {pool!r}; start a worker: "
               f".venv/bin/prefect worker start --pool {pool}; trigger a run: "
               f".venv/bin/prefect deployment run prune_pipeline/{name}")


def register(app: typer.Typer) -> None:
    app.command()(sweep)
    app.command("sweep-report")(sweep_report)
    app.command()(deploy)
