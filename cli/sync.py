"""``amr-prune sync``: upload the MLflow records a flow run kept in ``<runs>/outbox/`` while the
tracking server was unreachable (tracking/outbox.py does the work).

Registered as ``amr-prune sync`` by cli/__init__.py.
"""
from __future__ import annotations

import json
from typing import Optional

import typer


def sync(config: str = typer.Option("configs/default.yaml", "--config", "-c", help="pipeline configuration (YAML)"),
         uri: Optional[str] = typer.Option(None, help="upload to this tracking URI instead of the one each "
                                                      "outbox was recorded for"),
         dry_run: bool = typer.Option(False, "--dry-run", help="list what is pending, upload nothing")) -> None:
    """Upload the MLflow records kept while the tracking server was unreachable."""
    from settings.pipeline import ConfigError, load_config
    from tracking.outbox import SyncError, pending, sync_pending
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1)
    directory = cfg.runs_path / "outbox"
    boxes = pending(directory)
    if not boxes:
        typer.echo(f"nothing to upload: no pending MLflow records under {directory}")
        return
    if dry_run:
        for box in boxes:
            head = box.header()
            typer.echo(f"{box.path}: {box.count()} records for {uri or head['uri']} (experiment "
                       f"{head['experiment']!r}; kept because: {head['reason']})")
        return
    local = uri is not None and (uri.startswith(("sqlite:", "file:")) or "://" not in uri)
    art = (cfg.root_path / "mlflow" / "artifacts").as_uri() if local else None   # a new experiment's artefacts
    try:
        done = sync_pending(directory, uri, log=typer.echo, artifact_location=art)
    except SyncError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"uploaded": [{k: d[k] for k in ("file", "uri", "records", "runs_created", "metrics",
                                                             "params", "artifacts")} for d in done]}, indent=1))
    typer.echo("now run the pipeline again: finished stages are cached, and what needed the server "
               "(registering the models, the promotion gate) runs")
