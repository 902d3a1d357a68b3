"""Scale-out commands of ``python -m flows`` (registered on the app of flows/cli.py by importing this module;
docs/SCALING.md):

    sweep          run prune_pipeline for every (method, target, model) of a sweep configuration, locally or on
                   Dask, and print the table read back from MLflow
    sweep-report   the table and Pareto plot of a finished sweep run, read from the tracking store
    deploy         register prune_pipeline as a deployment on a Prefect work pool (needs PREFECT_API_URL)
"""
from __future__ import annotations

import json
from typing import Optional

import typer
import yaml

from .cli import app

SWEEP_CONFIG = typer.Option("configs/sweep.yaml", "--sweep-config", "-s", help="sweep configuration (YAML)")


def _pipeline_overrides(pairs: list[str] | None) -> dict:
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"--set expects key.path=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _error(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1)


@app.command("sweep")
def sweep_command(
        sweep_config: str = SWEEP_CONFIG,
        method: Optional[list[str]] = typer.Option(None, "--method", help="replace the methods (repeatable)"),
        target: Optional[list[float]] = typer.Option(None, "--target", help="replace the MAC targets (repeatable)"),
        model: Optional[list[str]] = typer.Option(None, "--model", help="replace the models (repeatable)"),
        runner: Optional[str] = typer.Option(None, help="local | dask"),
        workers: Optional[int] = typer.Option(None, help="local threads / Dask LocalCluster processes"),
        dask_address: Optional[str] = typer.Option(None, help="a running Dask scheduler, e.g. tcp://HOST:8786"),
        max_training: Optional[int] = typer.Option(None, help="set the training concurrency limit's slots"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="pipeline setting for every combination: "
                                                                     "--set finetune.epochs=2")) -> None:
    """Run prune_pipeline for every (method, target, model) combination; print the sweep's table."""
    from tasks.config import ConfigError

    from .sweep import SweepError, run_sweep
    overrides: dict = {}
    for key, value in (("methods", method), ("targets", target), ("models", model), ("runner", runner),
                       ("workers", workers)):
        if value:
            overrides[key] = list(value) if isinstance(value, list) else value
    if dask_address:
        overrides.setdefault("dask", {})["address"] = dask_address
        overrides.setdefault("runner", "dask")
    if max_training:
        overrides["training"] = {"max_concurrent": max_training}
    if set_:
        overrides["overrides"] = _pipeline_overrides(set_)
    try:
        summary = run_sweep(sweep_config, overrides)
    except (ConfigError, SweepError) as exc:
        _error(exc)
    typer.echo(f"report: {json.dumps(summary['report'], indent=1)}")
    typer.echo(f"MLflow sweep run: {summary['mlflow_sweep_run_id']} ({summary['wall_seconds']:.0f} s)")


@app.command("sweep-report")
def sweep_report_command(run_id: str = typer.Argument(..., help="the sweep's MLflow run id"),
                         sweep_config: str = SWEEP_CONFIG,
                         out: Optional[str] = typer.Option(None, help="folder for sweep.md/.csv/pareto.png "
                                                                      "(default: <root>/<out_dir>/<run id>)")) -> None:
    """Rebuild a sweep's table and Pareto plot from the tracking store and the registry."""
    from tasks.config import ConfigError
    from tasks.sweep_config import combination_configs, load_sweep_config
    from tasks.sweep_report import markdown, sweep_rows, write_report
    try:
        sw = load_sweep_config(sweep_config)
        cfg = combination_configs(sw)[0][3]
        rows = sweep_rows(cfg.tracking_uri(), run_id)
    except (ConfigError, RuntimeError) as exc:
        _error(exc)
    paths = write_report(rows, out or cfg.root_path / sw.out_dir / run_id, title=f"sweep {run_id[:8]}")
    typer.echo(markdown(rows))
    typer.echo(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))


@app.command("deploy")
def deploy_command(pool: str = typer.Option(..., help="the work pool (prefect work-pool create NAME --type process)"),
                   name: str = typer.Option("prune", help="deployment name: prune_pipeline/NAME"),
                   config: str = typer.Option("configs/default.yaml", "--config", "-c",
                                              help="the configuration the runs use (a path on the worker)"),
                   source: Optional[str] = typer.Option(None, help="where workers get the code: this checkout "
                                                                   "(default) or a Git URL"),
                   image: Optional[str] = typer.Option(None, help="container image for a Docker/Kubernetes pool")) -> None:
    """Register prune_pipeline as a deployment on a Prefect work pool (a worker then runs its flow runs)."""
    from prefect.settings import PREFECT_API_URL

    from .deploy import deploy
    if not PREFECT_API_URL.value():
        _error(RuntimeError("PREFECT_API_URL is not set: deployments and workers need a Prefect server "
                            "(.venv/bin/prefect server start --host 127.0.0.1 --port 4200)"))
    try:
        deployment_id = deploy(pool, name=name, config=config, source=source, image=image)
    except ValueError as exc:
        _error(exc)
    typer.echo(f"deployment prune_pipeline/{name} ({deployment_id}) on work pool {pool!r}; start a worker: "
               f".venv/bin/prefect worker start --pool {pool}; trigger a run: "
               f".venv/bin/prefect deployment run prune_pipeline/{name}")
