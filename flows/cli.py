"""Command line of the pipeline: ``.venv/bin/python -m flows COMMAND`` (see flows/README.md).

    pipeline          run prune_pipeline (fetch -> pretrain -> channel stage -> LaCD -> fine-tune -> evaluate
                      -> register -> promotion gate) on a configuration file
    promote           re-evaluate challenger vs champion on the current test split, move champion if it passes
    serve             serve retrain_and_prune as a cron deployment (needs a Prefect server)
    fetch             make the dataset of data.dvc present (pull, or generate + push from an empty remote)
    import-dataset    convert a real dataset file (RML2016.10a .pkl, RML2018.01a .hdf5), track it, push it
    status            registered versions with their metrics and aliases
"""
from __future__ import annotations

import json
import signal
import sys
from typing import Optional

import typer
import yaml

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="amr-prune pipeline: Prefect flows over amrlib, DVC-versioned data, MLflow registry.")

CONFIG = typer.Option("configs/default.yaml", "--config", "-c", help="pipeline configuration (YAML)")
SET = typer.Option(None, "--set", help="override a setting: --set pretrain.epochs=2 (YAML value)")


def _overrides(pairs: list[str] | None) -> dict:
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


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1)


@app.command()
def pipeline(config: str = CONFIG, set_: Optional[list[str]] = SET) -> None:
    """Run prune_pipeline end to end."""
    from tasks.config import ConfigError, load_config

    from .prune_pipeline import prune_pipeline
    from .report import print_report
    try:
        load_config(config, _overrides(set_))          # fail fast, before Prefect starts
        summary = prune_pipeline(config=config, overrides=_overrides(set_))
    except ConfigError as exc:
        _fail(exc)
    print_report(load_config(config, _overrides(set_)), summary)


@app.command()
def promote(config: str = CONFIG, model: str = typer.Option("pruned", help="pruned | base"),
            set_: Optional[list[str]] = SET) -> None:
    """Challenger vs champion on the current test split; move champion if the gate passes."""
    from .promote import promote as promote_flow
    summary = promote_flow(config=config, overrides=_overrides(set_), model=model)
    typer.echo(json.dumps(summary, indent=1, default=str))


@app.command()
def serve(config: str = CONFIG, cron: str = typer.Option("0 3 * * 1", help="cron schedule"),
          name: str = typer.Option("weekly", help="deployment name")) -> None:
    """Serve retrain_and_prune on a cron schedule (blocks; needs PREFECT_API_URL of a Prefect server)."""
    from .retrain_and_prune import serve as serve_flow
    serve_flow(config=config, cron=cron, name=name)


@app.command()
def fetch(config: str = CONFIG) -> None:
    """Make the dataset of the configuration's .dvc file present and verified."""
    from tasks.config import load_config
    from tasks.dvc_store import DataStoreError, fetch as fetch_data
    cfg = load_config(config)
    try:
        info = fetch_data(cfg.root_path, cfg.data.dvc_file, cfg.data.remote, cfg.data.synthetic.model_dump())
    except DataStoreError as exc:
        _fail(exc)
    typer.echo(json.dumps({k: v for k, v in info.items() if k != "classes"}, indent=1))


@app.command("import-dataset")
def import_dataset(source: str = typer.Argument(..., help="RML2016.10a .pkl, RML2018.01a .hdf5, or own .h5"),
                   config: str = CONFIG,
                   dvc_file: Optional[str] = typer.Option(None, help="default: the configuration's data.dvc_file"),
                   out: Optional[str] = typer.Option(None, help="converted file (default data/<name>.h5)"),
                   format: Optional[str] = typer.Option(None, help="force a format: rml2016 | rml2018 | generic"),
                   force: bool = typer.Option(False, help="overwrite an existing converted file")) -> None:
    """Convert a dataset file, track it with DVC (replacing what the .dvc file pointed to) and push it."""
    from tasks.config import load_config
    from tasks.dvc_store import DataStoreError, import_dataset as import_data
    cfg = load_config(config)
    try:
        info = import_data(cfg.root_path, source, dvc_file or cfg.data.dvc_file, cfg.data.remote,
                           out=out, format=format, force=force)
    except DataStoreError as exc:
        _fail(exc)
    typer.echo(json.dumps({k: v for k, v in info.items() if k != "classes"}, indent=1, default=str))
    typer.echo(f"now commit {dvc_file or cfg.data.dvc_file} to git: the next pipeline run uses it")


@app.command()
def status(config: str = CONFIG) -> None:
    """Registered versions, their metrics and which alias points where."""
    from tasks.config import load_config

    from .report import print_registry
    print_registry(load_config(config))


from . import cli_sync  # noqa: E402,F401  (adds the `sync` command to app)


def main() -> None:
    # SIGTERM (kill, CI timeouts) unwinds like Ctrl-C: the MLflow runs are closed as FAILED instead of
    # staying RUNNING; finished stages stay cached and training resumes from its last checkpoint.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app(prog_name=f"{sys.executable} -m flows")
