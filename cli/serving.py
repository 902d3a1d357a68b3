"""``amr-prune serve-model NAME@ALIAS``: a registered version behind MLflow's scoring server (REST, ``/invocations``).

It resolves the alias to a version now (the server keeps serving that version if the alias moves later) and
replaces itself with ``mlflow models serve -m models:/NAME/VERSION --env-manager local`` from this virtual
environment, with the environment's ``bin/`` first on PATH (MLflow starts ``uvicorn`` by name: without the
environment activated that is "uvicorn: not found") and the configuration's tracking URI in MLFLOW_TRACKING_URI.
Ctrl-C stops the server. A request::

    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
         -d '{"inputs": [[[0.1, ...], [0.0, ...]]], "params": {"output": "classes"}}'

returns ``{"predictions": [{"class": "QPSK", "probability": 0.93, "8PSK": 0.01, ...}]}``; without ``params``
the logits (one row of class scores per frame).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from .common import CONFIG, load_cfg, note, parse_model_ref


def serve_model(ref: str = typer.Argument(..., metavar="NAME@ALIAS", help="e.g. amr-resnet20-fcos@champion, or "
                                                                             "NAME/VERSION"),
                port: int = typer.Option(5001, "--port", "-p", min=1, max=65535,
                                         help="port (MLflow's default 5000 is also moto's)"),
                host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on (0.0.0.0: all)"),
                workers: int = typer.Option(1, "--workers", min=1, help="server worker processes"),
                env_manager: str = typer.Option("local", "--env-manager",
                                                help="local (this environment) | virtualenv | uv | conda: MLflow "
                                                     "builds an environment from the model's requirements"),
                config: str = CONFIG) -> None:
    """Serve a registered version over HTTP with MLflow's scoring server (blocks; Ctrl-C stops it)."""
    model = parse_model_ref(ref)
    uri = load_cfg(config).tracking_uri()
    from tracking.lineage import resolve_version
    version = str(resolve_version(uri, model.name, alias=model.alias, version=model.version).version)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    cmd = [str(venv_bin / "mlflow"), "models", "serve", "-m", f"models:/{model.name}/{version}", "--env-manager",
           env_manager, "--host", host, "--port", str(port), "--workers", str(workers)]
    note(f"serving {model} (version {version}) on http://{host}:{port}/invocations (Ctrl-C stops it): "
         f"{' '.join(cmd[1:])}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
