"""MLflow tracking with explicit run ids (MlflowClient): one parent run per flow run, one nested run per stage.

MLflow's fluent "active run" is per thread; nothing here uses it, so concurrent tasks never log into
each other's runs. The tracking context handed to tasks is a small dict
``{"uri", "experiment", "experiment_id", "parent_run_id", "outbox", ...}`` (kept out of cache keys).
Every client comes from :func:`client_for`: a :class:`~tracking.client.TrackingClient`, which keeps
a flow run's records in its outbox when the tracking server cannot be reached (tracking/client.py).
A flow's parent run carries its host and process id, so that the next flow run on the host can close the
runs a killed process left RUNNING (:func:`close_dead_runs`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.time import get_current_time_millis

import mlflow
from mlflow import MlflowClient

from .client import (  # noqa: F401
    _OFFLINE,
    TrackingClient,
    TrackingUnavailable,
    check_online,
    client_for,
    go_offline,
    needs_server,
    offline_outbox,
    unreachable,
    warn,
)
from .probe import forget, probe
from .ui import mark_training_experiment

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_CHARS = 6000

@contextlib.contextmanager
def _store_lock(uri: str):
    """For a SQLite store: one process at a time creates/migrates the database and the experiment."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            yield
    else:
        yield


def _experiment_id(client: MlflowClient, experiment: str, artifact_location: str | None, uri: str) -> str:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            return client.create_experiment(experiment, artifact_location=artifact_location)
        except MlflowException as exc:          # another flow run created it in between
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(experiment)
    if exp.lifecycle_stage == "deleted":
        raise RuntimeError(f"MLflow experiment {experiment!r} at {uri} is deleted: restore it "
                           f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or use another name")
    return exp.experiment_id


def setup(uri: str, experiment: str, artifact_location: str | None,
          outbox: str | os.PathLike | None = None) -> dict[str, Any]:
    """Point MLflow at ``uri`` and return the tracking context for ``experiment`` (created if needed).

    ``outbox``: the folder where this flow run keeps its MLflow records if the server becomes unreachable
    (None: no offline mode, an unreachable server is an error at once). ``mlflow.set_tracking_uri`` is
    process-wide (not per thread); model logging resolves it from there.
    """
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _OFFLINE.pop(uri, None)                   # a new flow run tries the server again
    forget(uri)
    tracking = {"uri": uri, "experiment": experiment, "experiment_id": None, "parent_run_id": None,
                "artifact_location": artifact_location, "outbox": str(outbox) if outbox else None}
    try:
        probe(uri)                            # an outage is found in seconds, not after MLflow's retries
        with _store_lock(uri):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            tracking["experiment_id"] = _experiment_id(client, experiment, artifact_location, uri)
            mark_training_experiment(client, tracking["experiment_id"])    # the UI opens on the runs
            client.search_registered_models(max_results=1)    # a fresh SQLite store: its registry tables too
    except Exception as exc:
        if not unreachable(exc):
            raise
        go_offline(tracking, exc)
    return tracking


HOST_TAG, PID_TAG = "amr_prune.host", "amr_prune.pid"


def process_tags() -> dict[str, str]:
    """Tags for a flow's parent run that let a later run on this host see that its process is gone."""
    import socket
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_dead_runs(tracking: dict[str, Any]) -> list[str]:
    """Mark KILLED the parent runs (and their RUNNING stage runs) that a flow process on this host left
    RUNNING when it was killed (SIGKILL, power loss): their process no longer exists. Returns their ids.
    A run of another host, or whose process is alive (a flow running right now), is left alone."""
    import socket
    if tracking.get("experiment_id") is None or offline_outbox(tracking) is not None:
        return []
    client = client_for(tracking)
    host = socket.gethostname().replace("'", "")
    closed = []
    for run in client.search_runs([tracking["experiment_id"]],
                                  f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"):
        try:
            pid = int(run.data.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        for child in client.search_runs([tracking["experiment_id"]], f"attributes.status = 'RUNNING' and "
                                        f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"):
            client.set_terminated(child.info.run_id, "KILLED")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    if closed:
        warn(f"[tracking] marked {len(closed)} run(s) KILLED whose flow process on {host} no longer exists: "
              f"{', '.join(closed)}")
    return closed


def start_run(tracking: dict[str, Any], name: str, tags: dict[str, str] | None = None,
              parent_run_id: str | None = None) -> str:
    tags = dict(tags or {})
    parent = parent_run_id or tracking.get("parent_run_id")
    if parent:
        tags[PARENT_TAG] = parent
    run = client_for(tracking).create_run(tracking["experiment_id"], run_name=name, tags=tags)
    return run.info.run_id


def end_run(tracking: dict[str, Any], run_id: str, ok: bool = True) -> None:
    client_for(tracking).set_terminated(run_id, "FINISHED" if ok else "FAILED")


class StageRun:
    """``with StageRun(tracking, "pretrain") as run: run.metrics({...})`` — a nested run, FAILED on error."""

    def __init__(self, tracking: dict[str, Any] | None, name: str, tags: dict[str, str] | None = None):
        self.tracking, self.name, self.tags = tracking, name, tags or {}
        self.run_id: str | None = None
        self.client = client_for(tracking) if tracking else None

    def __enter__(self) -> "StageRun":
        if self.tracking:
            self.run_id = start_run(self.tracking, self.name, {"stage": self.name, **self.tags})
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.run_id:
            end_run(self.tracking, self.run_id, ok=exc_type is None)
        return False

    def params(self, params: dict[str, Any]) -> None:
        if self.run_id:
            log_params(self.client, self.run_id, params)

    def metrics(self, metrics: dict[str, Any], step: int = 0) -> None:
        if self.run_id:
            log_metrics(self.client, self.run_id, metrics, step)

    def tags_(self, tags: dict[str, Any]) -> None:
        if self.run_id:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if self.run_id:
            self.client.log_artifact(self.run_id, str(path), artifact_path)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    flat = flatten(params)
    items = []
    for k, v in flat.items():
        s = json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v)
        items.append(Param(k, s[:MAX_PARAM_CHARS]))
    for i in range(0, len(items), 100):       # MLflow accepts at most 100 params per batch
        client.log_batch(run_id, params=items[i:i + 100])


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, Any], step: int = 0) -> None:
    now = get_current_time_millis()
    items = [Metric(k, float(v), now, int(step)) for k, v in flatten(metrics).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i:i + 1000])


def log_json(client: MlflowClient, run_id: str, obj: Any, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / Path(artifact_file).name
        p.write_text(json.dumps(obj, indent=1, sort_keys=True))
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(p), None if parent == "." else parent)


def git_commit(root: str | os.PathLike) -> str:
    """HEAD of the repository at ``root`` (``+dirty`` when tracked files differ); "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=root, capture_output=True,
                               timeout=10).returncode != 0
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def snr_metrics(per_snr: dict[Any, float], prefix: str = "test_accuracy_snr") -> dict[str, float]:
    """``{"test_accuracy_snr_-20db": ...}`` — one metric per SNR (MLflow names take digits and '-')."""
    return {f"{prefix}_{int(s)}db": float(a) for s, a in per_snr.items()}


def iter_runs(tracking: dict[str, Any], parent_run_id: str) -> Iterable:
    """Nested runs of a parent run."""
    return client_for(tracking).search_runs([tracking["experiment_id"]],
                                            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
